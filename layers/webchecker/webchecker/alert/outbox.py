"""The alert outbox in PostgreSQL, as the notifier sees it: pending alerts, reminders, summaries.

Every alert row is created in a transaction together with what caused it (a state change
by the writer; a reminder or a summary here), so each exists exactly once; publishing is
at least once (a crash between the publish and the mark sends it again), and receivers
deduplicate on ``alert_id``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import pg8000.native

from webchecker.alert.formatting import SUMMARY
from webchecker.results import format_timestamp
from webchecker.store.database import Database, Statement, quote_identifier
from webchecker.store.incidents import ALERT_SCHEMA, OPENED, REMINDER, RESOLVED, stable_id

#: At most this many site ids are listed in a summary alert (the count is always exact).
SUMMARY_LISTED_SITES = 50


@dataclass(frozen=True, kw_only=True)
class PendingAlert:
    alert_id: str
    seq: int
    type: str
    site_id: str | None
    payload: dict[str, Any]


class Outbox:
    """Queries on ``alerts`` (and ``incidents`` for reminders) in one schema."""

    def __init__(self, database: Database) -> None:
        self.database = database
        quoted = quote_identifier(database.schema)
        self._lock_key = f"webchecker.notifier.{database.schema}"
        self._pending = Statement(
            "SELECT alert_id::text, seq, type, site_id, payload::text"
            f" FROM {quoted}.alerts WHERE sent_at IS NULL ORDER BY seq LIMIT :limit"
        )
        self._count = Statement(f"SELECT count(*) FROM {quoted}.alerts WHERE sent_at IS NULL")
        self._sent = Statement(
            f"UPDATE {quoted}.alerts SET sent_at = now(), attempts = attempts + 1,"
            " last_error = NULL WHERE alert_id = CAST(:alert_id AS uuid) AND sent_at IS NULL"
        )
        self._failed = Statement(
            f"UPDATE {quoted}.alerts SET attempts = attempts + 1, last_error = :error"
            " WHERE alert_id = CAST(:alert_id AS uuid)"
        )
        self._insert = Statement(
            f"INSERT INTO {quoted}.alerts (alert_id, type, site_id, incident_id, payload)"
            " SELECT (a->>'alert_id')::uuid, a->>'type', a->>'site_id',"
            " (a->>'incident_id')::uuid, a FROM jsonb_array_elements(CAST(:alerts AS jsonb))"
            " WITH ORDINALITY AS t(a, i) ORDER BY i ON CONFLICT (alert_id) DO NOTHING"
        )
        self._due_reminders = Statement(f"""
            UPDATE {quoted}.incidents AS i
            SET last_reminded_at = :now, reminders = i.reminders + 1
            FROM {quoted}.site_state AS s
            WHERE s.incident_id = i.incident_id
              AND i.resolved_at IS NULL AND i.notified_at IS NOT NULL
              AND s.alerts AND NOT s.flapping
              AND coalesce(i.last_reminded_at, i.notified_at)
                  <= CAST(:now AS timestamptz) - make_interval(mins => :minutes)
              AND NOT EXISTS (
                  SELECT 1 FROM {quoted}.maintenance_windows AS w
                  WHERE w.starts_at <= :now AND w.ends_at > :now
                    AND ((w.site_ids IS NULL AND w.tags IS NULL)
                         OR i.site_id = ANY(w.site_ids) OR w.tags && s.tags))
            RETURNING i.incident_id::text, i.site_id, s.url, s.tags, i.opened_at, i.error,
                      i.error_detail, i.status_code, i.reminders""")
        self._summarizable = Statement(f"""
            SELECT type, payload->>'scheduled_at' AS tick,
                   array_agg(alert_id::text ORDER BY seq), array_agg(site_id ORDER BY seq),
                   array_agg(payload->'tags' ORDER BY seq)
            FROM {quoted}.alerts
            WHERE sent_at IS NULL AND type IN ('{OPENED}', '{RESOLVED}')
            GROUP BY 1, 2 HAVING count(*) >= :threshold""")
        self._summarized = Statement(
            f"UPDATE {quoted}.alerts SET sent_at = now(), summary_id = CAST(:summary AS uuid)"
            " WHERE alert_id IN (SELECT json_array_elements_text(CAST(:ids AS json))::uuid)"
            " AND sent_at IS NULL"
        )

    # -- publishing ----------------------------------------------------------------------

    def try_lock(self, connection: pg8000.native.Connection) -> bool:
        """One notifier run at a time per schema (a session lock: released on unlock or
        when the connection drops), so that runs never publish out of order."""
        rows = connection.run("SELECT pg_try_advisory_lock(hashtext(:key))", key=self._lock_key)
        return bool(rows[0][0])

    def unlock(self, connection: pg8000.native.Connection) -> None:
        connection.run("SELECT pg_advisory_unlock(hashtext(:key))", key=self._lock_key)

    def pending(self, connection: pg8000.native.Connection, limit: int) -> list[PendingAlert]:
        return [
            PendingAlert(
                alert_id=alert_id, seq=seq, type=kind, site_id=site, payload=orjson.loads(payload)
            )
            for alert_id, seq, kind, site, payload in self._pending.rows(connection, limit=limit)
        ]

    def count_pending(self, connection: pg8000.native.Connection) -> int:
        return int(self._count.rows(connection)[0][0])

    def mark_sent(self, connection: pg8000.native.Connection, alert_id: str) -> None:
        self._sent.run(connection, alert_id=alert_id)

    def mark_failed(self, connection: pg8000.native.Connection, alert_id: str, error: str) -> None:
        self._failed.run(connection, alert_id=alert_id, error=error[:500])

    # -- alerts made here ----------------------------------------------------------------

    def add_reminders(self, minutes: int, now: datetime) -> int:
        """``incident.reminder`` for each open, notified incident whose last notice is
        ``minutes`` old (not while flapping or in maintenance); returns how many."""
        if minutes <= 0:
            return 0
        with self.database.transaction() as connection:
            due = self._due_reminders.rows(connection, now=now, minutes=minutes)
            alerts = [
                {
                    "schema": ALERT_SCHEMA,
                    "alert_id": stable_id(incident_id, REMINDER, count),
                    "type": REMINDER,
                    "site_id": site_id,
                    "url": url,
                    "tags": list(tags or ()),
                    "incident_id": incident_id,
                    "opened_at": format_timestamp(opened_at),
                    "resolved_at": None,
                    "duration_seconds": None,
                    "open_seconds": round((now - opened_at).total_seconds(), 3),
                    "error": error,
                    "error_detail": detail,
                    "status_code": status,
                    "created_at": format_timestamp(now),
                    "reminder": count,
                }
                for incident_id, site_id, url, tags, opened_at, error, detail, status, count in due
            ]
            self._add(connection, alerts)
        return len(alerts)

    def add_summaries(self, threshold: int, now: datetime) -> int:
        """One ``incidents.summary`` in place of ``threshold`` or more pending opened (or
        resolved) alerts of the same tick; returns how many alerts it folded."""
        if threshold <= 0:
            return 0
        folded = 0
        with self.database.transaction() as connection:
            for kind, tick, alert_ids, site_ids, tags in self._summarizable.rows(
                connection, threshold=threshold
            ):
                summary_id = stable_id(SUMMARY, kind, tick, alert_ids[0])
                all_tags = sorted({tag for group in tags for tag in (group or [])})
                summary = {
                    "schema": ALERT_SCHEMA,
                    "alert_id": summary_id,
                    "type": SUMMARY,
                    "of": kind,
                    "site_id": None,
                    "url": None,
                    "tags": all_tags,
                    "incident_id": None,
                    "scheduled_at": tick,
                    "count": len(alert_ids),
                    "site_ids": site_ids[:SUMMARY_LISTED_SITES],
                    "alert_ids": alert_ids,
                    "created_at": format_timestamp(now),
                }
                self._add(connection, [summary])
                self._summarized.run(
                    connection, summary=summary_id, ids=orjson.dumps(alert_ids).decode()
                )
                folded += len(alert_ids)
        return folded

    def _add(self, connection: pg8000.native.Connection, alerts: Sequence[dict[str, Any]]) -> None:
        if alerts:
            self._insert.run(connection, alerts=orjson.dumps(alerts).decode())
