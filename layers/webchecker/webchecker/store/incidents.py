"""Site state and incidents: the state machine the writer runs inside each batch's transaction.

Each site is ``unknown`` until its first streak completes, then ``up`` or ``down``. Checks
move it only when they were actually inserted (a redelivered check changes nothing), in
``(scheduled_at, checked_at, check_id)`` order per site; a check that sorts before the last
one applied to its site (a late check) is stored but ignored.

- ``failure_threshold`` consecutive failures: ``down``, and an incident opens at the first
  failed check of that streak (its error is that check's error).
- ``success_threshold`` consecutive passes: ``up``; an open incident is resolved at the
  first passing check of that streak.
- Maintenance: a failed check whose ``scheduled_at`` falls in a window covering the site
  does not count towards opening (the streak starts again after the window), so no
  incident opens. A window does not hide the resolution of an incident whose opening was
  sent: a receiver must never be left with an incident that never closes.
- Flapping: when a site opens its ``ALERT_FLAP_OPENS``-th incident (default 3) within
  ``ALERT_FLAP_WINDOW_MINUTES`` (default 60), it is flapping: one ``site.flapping`` alert,
  and from then on the opened/resolved alerts of its incidents are held (the incidents
  are still recorded). Once its state has not changed for ``ALERT_FLAP_STEADY_MINUTES``
  (default 30) it is steady: one ``site.stable`` alert and, if it is down at that moment,
  the held ``incident.opened`` of the open incident (its resolution is then sent too).
- ``certificate.expiring``: a check whose certificate expires within ``CERT_WARNING_DAYS``
  (default 14; 0 turns it off) of the check, once per certificate (by expiry time).
- ``alerts: false`` on a site records everything and writes no alert.

Per batch: the ``site_state`` rows of the batch's sites are locked in ``site_id`` order
(``SELECT ... FOR UPDATE``), so concurrent writers apply a site's checks one after the
other and never deadlock on them; the new state, incidents and alerts (the outbox) are
written in the same transaction as the checks.

Settled sites are not written: a site up with a pass streak going, not flapping, whose
checks in the batch all passed, warn of no certificate and carry its url, tags and alerts
setting, would only move its watermark (the last applied check; once up, passes are not
counted). So ``site_state.last_*`` is the watermark as of the row's last write (at least
daily, ``WATERMARK_REFRESH``), and when a site's checks go through the rules its watermark
is first moved up to the newest check stored for it before this transaction: every stored
check was applied or late, so that is the watermark. The search assumes a check's
``checked_at`` is at most ``CLOCK_SKEW`` before its ``scheduled_at`` (its request starts
after its tick). Incident and alert ids are UUIDv5 of what
caused them, so even a logic error could not write the same alert twice (primary keys).
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import orjson
import pg8000.native

from webchecker.config import env_int
from webchecker.results import format_timestamp, lenient_tags, lenient_threshold
from webchecker.store.database import Statement, quote_identifier

logger = logging.getLogger(__name__)

ALERT_SCHEMA = 1
DEFAULT_CERT_WARNING_DAYS = 14
DEFAULT_FLAP_OPENS = 3
DEFAULT_FLAP_WINDOW_MINUTES = 60
DEFAULT_FLAP_STEADY_MINUTES = 30
#: A settled site's watermark is written at least this often (site_state.last_checked_at
#: says a site is still checked: the status page hides sites not checked for 90 days).
WATERMARK_REFRESH = timedelta(days=1)
#: How much earlier than its scheduled_at a check's checked_at may be (the checker's clock
#: against the scheduler's): the watermark search looks back this far.
CLOCK_SKEW = timedelta(minutes=5)
#: Seeds the UUIDv5 ids of incidents and alerts.
ID_NAMESPACE = uuid.UUID("5f0f8d56-2a47-4c47-9a53-8f0b8f6c2a10")

OPENED = "incident.opened"
RESOLVED = "incident.resolved"
REMINDER = "incident.reminder"
CERTIFICATE = "certificate.expiring"
FLAPPING = "site.flapping"
STABLE = "site.stable"


def stable_id(*parts: object) -> str:
    return str(uuid.uuid5(ID_NAMESPACE, "/".join(str(part) for part in parts)))


@dataclass(frozen=True, kw_only=True)
class IncidentSettings:
    """The writer's alerting rules (built once at cold start)."""

    cert_warning_days: int = DEFAULT_CERT_WARNING_DAYS
    flap_opens: int = DEFAULT_FLAP_OPENS  # 0: no flapping detection
    flap_window: timedelta = timedelta(minutes=DEFAULT_FLAP_WINDOW_MINUTES)
    flap_steady: timedelta = timedelta(minutes=DEFAULT_FLAP_STEADY_MINUTES)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> IncidentSettings:
        return cls(
            cert_warning_days=env_int(
                "CERT_WARNING_DAYS", DEFAULT_CERT_WARNING_DAYS, env, minimum=0, maximum=3650
            ),
            flap_opens=env_int("ALERT_FLAP_OPENS", DEFAULT_FLAP_OPENS, env, minimum=0),
            flap_window=timedelta(
                minutes=env_int(
                    "ALERT_FLAP_WINDOW_MINUTES", DEFAULT_FLAP_WINDOW_MINUTES, env, minimum=1
                )
            ),
            flap_steady=timedelta(
                minutes=env_int(
                    "ALERT_FLAP_STEADY_MINUTES", DEFAULT_FLAP_STEADY_MINUTES, env, minimum=1
                )
            ),
        )


class Observation(NamedTuple):
    """What the state machine needs of one inserted check. The site's rules come raw from
    the message (the checker copies them) and are defaulted here when absent or invalid."""

    check_id: str
    site_id: str
    url: str
    scheduled_at: datetime
    checked_at: datetime
    ok: bool
    error: str | None
    error_detail: str | None
    status_code: int | None
    cert_expires_at: datetime | None
    tags: object = None
    failure_threshold: object = None
    success_threshold: object = None
    alerts: object = None

    @property
    def order(self) -> tuple[datetime, datetime, str]:
        return (self.scheduled_at, self.checked_at, self.check_id)


@dataclass(frozen=True, kw_only=True)
class MaintenanceWindow:
    """A window: every site (no ids, no tags), the listed ids, or sites with a listed tag."""

    starts_at: datetime
    ends_at: datetime
    site_ids: frozenset[str] | None = None
    tags: frozenset[str] | None = None

    def covers(self, site_id: str, tags: Iterable[str], moment: datetime) -> bool:
        if not self.starts_at <= moment < self.ends_at:
            return False
        if self.site_ids is None and self.tags is None:
            return True
        if self.site_ids is not None and site_id in self.site_ids:
            return True
        return self.tags is not None and not self.tags.isdisjoint(tags)


@dataclass(kw_only=True, slots=True)
class SiteState:
    """One ``site_state`` row while a batch is applied."""

    site_id: str
    url: str = ""
    state: str = "unknown"
    since: datetime | None = None
    tags: tuple[str, ...] = ()
    alerts: bool = True
    last_check_id: str | None = None
    last_scheduled_at: datetime | None = None
    last_checked_at: datetime | None = None
    incident_id: str | None = None
    flapping: bool = False
    fail_streak: int = 0
    pass_streak: int = 0
    streak_started_at: datetime | None = None
    streak_check_id: str | None = None
    streak_error: str | None = None
    streak_error_detail: str | None = None
    streak_status_code: int | None = None
    incident_opened_at: datetime | None = None
    incident_error: str | None = None
    incident_error_detail: str | None = None
    incident_status_code: int | None = None
    incident_notified: bool = False
    recent_opens: list[datetime] = field(default_factory=list)
    cert_warned_expires_at: datetime | None = None

    def last_order(self) -> tuple[datetime, datetime, str] | None:
        if self.last_scheduled_at is None or self.last_checked_at is None:
            return None
        return (self.last_scheduled_at, self.last_checked_at, self.last_check_id or "")


#: ``site_state`` columns in ``SiteState`` order (``updated_at`` is the server's).
STATE_COLUMNS: tuple[str, ...] = tuple(SiteState.__slots__)
_COLUMN_TYPES = {
    "site_id": "text", "url": "text", "state": "text", "since": "timestamptz",
    "tags": "text[]", "alerts": "boolean", "last_check_id": "uuid",
    "last_scheduled_at": "timestamptz", "last_checked_at": "timestamptz", "incident_id": "uuid",
    "flapping": "boolean", "fail_streak": "integer", "pass_streak": "integer",
    "streak_started_at": "timestamptz", "streak_check_id": "uuid", "streak_error": "text",
    "streak_error_detail": "text", "streak_status_code": "integer",
    "incident_opened_at": "timestamptz", "incident_error": "text",
    "incident_error_detail": "text", "incident_status_code": "integer",
    "incident_notified": "boolean", "recent_opens": "timestamptz[]",
    "cert_warned_expires_at": "timestamptz",
}  # fmt: skip
_TIMESTAMP_COLUMNS = tuple(
    name for name, kind in _COLUMN_TYPES.items() if kind == "timestamptz" and name in STATE_COLUMNS
)
_from_isoformat = datetime.fromisoformat


@dataclass(kw_only=True)
class Changes:
    """What a batch's checks did: incident rows to upsert and alerts, in order."""

    incidents: dict[str, dict[str, Any]] = field(default_factory=dict)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    applied: int = 0
    late: int = 0


def _moment(value: datetime | None) -> str | None:
    return None if value is None else format_timestamp(value)


class StateMachine:
    """The pure rules: ``advance(state, check)`` moves one site by one check."""

    def __init__(
        self,
        settings: IncidentSettings,
        windows: Sequence[MaintenanceWindow] = (),
        *,
        created_at: datetime | None = None,
    ) -> None:
        self.settings = settings
        self.windows = windows
        self.created_at = created_at or datetime.now(UTC)
        self.changes = Changes()

    def run(self, state: SiteState, checks: Iterable[Observation]) -> SiteState:
        """Applies a site's checks in order (the caller need not sort them)."""
        for check in sorted(checks, key=_order):
            self.advance(state, check)
        return state

    def advance(self, state: SiteState, check: Observation) -> bool:
        """Applies one check; False when it is late (changes nothing)."""
        last = state.last_order()
        if last is not None and check.order <= last:
            self.changes.late += 1
            return False
        self.changes.applied += 1
        state.last_check_id = check.check_id
        state.last_scheduled_at = check.scheduled_at
        state.last_checked_at = check.checked_at
        state.url = check.url
        state.tags = lenient_tags(check.tags)
        state.alerts = check.alerts is not False
        in_maintenance = any(
            window.covers(state.site_id, state.tags, check.scheduled_at) for window in self.windows
        )
        if check.ok:
            self._passed(state, check)
        else:
            self._failed(state, check, in_maintenance)
        self._maybe_steady(state, check)
        self._maybe_certificate(state, check, in_maintenance)
        return True

    # -- transitions ----------------------------------------------------------------------

    def _passed(self, state: SiteState, check: Observation) -> None:
        state.fail_streak = 0
        if state.state == "up" and state.pass_streak:
            # up with a pass streak going: a pass changes nothing but the watermark (the
            # streak only counts towards success_threshold), so such sites need no write
            return
        state.pass_streak += 1
        if state.pass_streak == 1:
            self._start_streak(state, check)
        if state.state != "up" and state.pass_streak >= lenient_threshold(check.success_threshold):
            was_down = state.state == "down"
            state.state, state.since = "up", state.streak_started_at
            if was_down and state.incident_id is not None:
                self._resolve(state, check)

    def _failed(self, state: SiteState, check: Observation, in_maintenance: bool) -> None:
        state.pass_streak = 0
        if in_maintenance:  # does not count towards opening: the streak restarts after it
            state.fail_streak = 0
            return
        state.fail_streak += 1
        if state.fail_streak == 1:
            self._start_streak(state, check)
        threshold = lenient_threshold(check.failure_threshold)
        if state.state != "down" and state.fail_streak >= threshold:
            self._open(state, check)

    def _start_streak(self, state: SiteState, check: Observation) -> None:
        state.streak_started_at = check.checked_at
        state.streak_check_id = check.check_id
        state.streak_error = check.error
        state.streak_error_detail = check.error_detail
        state.streak_status_code = check.status_code

    def _open(self, state: SiteState, check: Observation) -> None:
        opened_at = state.streak_started_at or check.checked_at
        incident_id = stable_id("incident", state.site_id, state.streak_check_id)
        state.state, state.since = "down", opened_at
        state.incident_id = incident_id
        state.incident_opened_at = opened_at
        state.incident_error = state.streak_error
        state.incident_error_detail = state.streak_error_detail
        state.incident_status_code = state.streak_status_code
        horizon = check.checked_at - self.settings.flap_window
        state.recent_opens = [t for t in state.recent_opens if t > horizon] + [opened_at]
        settings = self.settings
        if (
            settings.flap_opens
            and not state.flapping
            and len(state.recent_opens) >= settings.flap_opens
        ):
            state.flapping = True
            if state.alerts:
                self._alert(
                    FLAPPING,
                    state,
                    check,
                    stable_id(FLAPPING, state.site_id, check.check_id),
                    incident=False,
                    extra={"incidents_opened": len(state.recent_opens)},
                )
        state.incident_notified = state.alerts and not state.flapping
        self._write_incident(state)
        if state.incident_notified:
            self._alert(OPENED, state, check, stable_id(incident_id, OPENED))

    def _resolve(self, state: SiteState, check: Observation) -> None:
        incident_id = state.incident_id
        resolved_at = state.streak_started_at or check.checked_at
        row = self._write_incident(state)
        row["resolved_at"] = _moment(resolved_at)
        if state.incident_notified:
            self._alert(
                RESOLVED, state, check, stable_id(incident_id, RESOLVED), resolved_at=resolved_at
            )
        state.incident_id = None
        state.incident_opened_at = None
        state.incident_error = state.incident_error_detail = None
        state.incident_status_code = None
        state.incident_notified = False

    def _maybe_steady(self, state: SiteState, check: Observation) -> None:
        if not state.flapping or state.since is None:
            return
        if check.checked_at - state.since < self.settings.flap_steady:
            return
        state.flapping = False
        state.recent_opens = []
        if not state.alerts:
            return
        held = state.state == "down" and state.incident_id is not None
        self._alert(
            STABLE,
            state,
            check,
            stable_id(STABLE, state.site_id, check.check_id),
            incident=held,
            extra={"state": state.state, "since": _moment(state.since)},
        )
        if held and not state.incident_notified:
            state.incident_notified = True
            self._write_incident(state)
            self._alert(OPENED, state, check, stable_id(state.incident_id, OPENED))

    def _maybe_certificate(
        self, state: SiteState, check: Observation, in_maintenance: bool
    ) -> None:
        expires = check.cert_expires_at
        days = self.settings.cert_warning_days
        if expires is None or not days or in_maintenance:
            return
        if expires - check.checked_at > timedelta(days=days):
            return
        if expires == state.cert_warned_expires_at:
            return
        state.cert_warned_expires_at = expires
        if state.alerts:
            self._alert(
                CERTIFICATE,
                state,
                check,
                stable_id(CERTIFICATE, state.site_id, expires.isoformat()),
                incident=False,
                extra={"certificate_expires_at": _moment(expires)},
            )

    # -- output ---------------------------------------------------------------------------

    def _write_incident(self, state: SiteState) -> dict[str, Any]:
        """The incident row to upsert for the site's open incident (made once per batch)."""
        assert state.incident_id is not None
        row = self.changes.incidents.get(state.incident_id)
        if row is None:
            row = self.changes.incidents[state.incident_id] = {
                "incident_id": state.incident_id,
                "site_id": state.site_id,
                "url": state.url,
                "tags": list(state.tags),
                "opened_at": _moment(state.incident_opened_at),
                "resolved_at": None,
                "error": state.incident_error,
                "error_detail": state.incident_error_detail,
                "status_code": state.incident_status_code,
                "notified_at": None,
            }
        if state.incident_notified and row["notified_at"] is None:
            row["notified_at"] = _moment(self.created_at)
        return row

    def _alert(
        self,
        kind: str,
        state: SiteState,
        check: Observation,
        alert_id: str,
        *,
        incident: bool = True,
        resolved_at: datetime | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        opened_at = state.incident_opened_at if incident else None
        duration = (
            round((resolved_at - opened_at).total_seconds(), 3)
            if resolved_at is not None and opened_at is not None
            else None
        )
        payload: dict[str, Any] = {
            "schema": ALERT_SCHEMA,
            "alert_id": alert_id,
            "type": kind,
            "site_id": state.site_id,
            "url": state.url,
            "tags": list(state.tags),
            "incident_id": state.incident_id if incident else None,
            "opened_at": _moment(opened_at),
            "resolved_at": _moment(resolved_at),
            "duration_seconds": duration,
            "error": state.incident_error if incident else None,
            "error_detail": state.incident_error_detail if incident else None,
            "status_code": state.incident_status_code if incident else None,
            "created_at": _moment(self.created_at),
            # the tick of the check that caused it: the notifier summarizes per tick
            "scheduled_at": _moment(check.scheduled_at),
        }
        if extra:
            payload.update(extra)
        self.changes.alerts.append(payload)


@functools.lru_cache(maxsize=1024)
def _tags_literal(tags: tuple[object, ...]) -> str:
    """The site_state.tags text the rules would leave (lenient_tags' tags are
    [a-z0-9._-]: nothing to quote); the same few tag lists repeat across a batch."""
    return "{" + ",".join(lenient_tags(tags)) + "}"


def _order(check: Observation) -> tuple[datetime, datetime, str]:
    return (check.scheduled_at, check.checked_at, check.check_id)


# -- in the database ----------------------------------------------------------------------


class IncidentStore:
    """Applies a batch's inserted checks to ``site_state`` inside the batch's transaction."""

    def __init__(self, schema: str, settings: IncidentSettings | None = None) -> None:
        self.settings = settings or IncidentSettings()
        quoted = quote_identifier(schema)
        columns = ", ".join(STATE_COLUMNS)
        # one JSON document: pg8000 parses timestamps with strptime (~45 us each, 6 a row)
        self._lock = Statement(
            f"SELECT coalesce(json_agg(s), '[]')::text FROM (SELECT {columns}"
            f" FROM {quoted}.site_state"
            " WHERE site_id IN (SELECT json_array_elements_text(CAST(:ids AS json)))"
            " ORDER BY site_id FOR UPDATE) AS s"
        )
        self._create = Statement(
            f"INSERT INTO {quoted}.site_state (site_id, url)"
            " SELECT site_id, url FROM json_to_recordset(CAST(:rows AS json))"
            " AS n(site_id text, url text) ORDER BY site_id ON CONFLICT (site_id) DO NOTHING"
        )
        updated = ", ".join(f"{name} = n.{name}" for name in STATE_COLUMNS if name != "site_id")
        record = ", ".join(f"{name} {_COLUMN_TYPES[name]}" for name in STATE_COLUMNS)
        self._update = Statement(
            f"UPDATE {quoted}.site_state AS s SET {updated}, updated_at = now()"
            f" FROM json_to_recordset(CAST(:rows AS json)) AS n({record})"
            " WHERE s.site_id = n.site_id"
        )
        # the batch's sites locked in site_id order, each with what its checks carry (url,
        # tags, alerts; nulls when they do not agree, failed, or warn of a certificate):
        # the settled ones are up, a pass streak going, not flapping, with those settings
        # and a watermark not older than :fresh_after; their checks change nothing but the
        # watermark, and nothing is written. The values are those of the latest row
        # version once its lock is held (a concurrent writer may have moved it). jsonb:
        # each ->> on json would parse the element's text again (~3 ms a batch).
        self._settled = Statement(f"""
            WITH n AS (
                SELECT r->>0 AS site_id, r->>1 AS url, r->>2 AS tags, r->>3 AS alerts
                FROM jsonb_array_elements(CAST(:rows AS jsonb)) AS r
            ), locked AS MATERIALIZED (
                SELECT s.site_id,
                       s.state = 'up' AND s.fail_streak = 0 AND s.pass_streak > 0
                       AND NOT s.flapping
                       AND s.last_scheduled_at >= CAST(:fresh_after AS timestamptz)
                       AND s.url = n.url AND CAST(s.tags AS text) = n.tags
                       AND CAST(s.alerts AS text) = n.alerts AS settled
                FROM {quoted}.site_state AS s JOIN n ON s.site_id = n.site_id
                ORDER BY s.site_id FOR UPDATE OF s
            )
            SELECT coalesce(json_agg(site_id) FILTER (WHERE settled), '[]')::text FROM locked""")
        # the newest check stored before this transaction, per site: the watermark, which
        # settled batches leave behind in site_state. A check newer than a site's stored
        # watermark has scheduled_at >= that check's; its checked_at (when its request
        # started, after its tick) is then no earlier than :since (the site's first
        # scheduled_at in this batch less CLOCK_SKEW), so the site_id/checked_at index
        # finds it among a few recent rows
        self._watermarks = Statement(f"""
            SELECT coalesce(json_agg(json_build_array(q.site_id, w.scheduled_at, w.checked_at,
                                                      w.check_id)), '[]')::text
            FROM json_to_recordset(CAST(:sites AS json))
                AS q(site_id text, since timestamptz, mine uuid[])
            CROSS JOIN LATERAL (
                SELECT c.scheduled_at, c.checked_at, c.check_id FROM {quoted}.checks AS c
                WHERE c.site_id = q.site_id AND c.checked_at >= q.since
                  AND c.check_id <> ALL(q.mine)
                ORDER BY c.scheduled_at DESC, c.checked_at DESC, c.check_id DESC LIMIT 1
            ) AS w""")
        self._windows = Statement(
            f"SELECT starts_at, ends_at, site_ids, tags FROM {quoted}.maintenance_windows"
            " WHERE starts_at <= :last AND ends_at > :first"
        )
        self._incidents = Statement(
            f"INSERT INTO {quoted}.incidents AS i (incident_id, site_id, url, tags, opened_at,"
            " resolved_at, error, error_detail, status_code, notified_at)"
            " SELECT * FROM json_to_recordset(CAST(:rows AS json)) AS n(incident_id uuid,"
            " site_id text, url text, tags text[], opened_at timestamptz,"
            " resolved_at timestamptz, error text, error_detail text, status_code integer,"
            " notified_at timestamptz)"
            " ON CONFLICT (incident_id) DO UPDATE SET"
            " resolved_at = coalesce(i.resolved_at, excluded.resolved_at),"
            " notified_at = coalesce(i.notified_at, excluded.notified_at)"
        )
        self._alerts = Statement(
            f"INSERT INTO {quoted}.alerts (alert_id, type, site_id, incident_id, payload)"
            " SELECT (a->>'alert_id')::uuid, a->>'type', a->>'site_id',"
            " (a->>'incident_id')::uuid, a FROM jsonb_array_elements(CAST(:alerts AS jsonb))"
            " WITH ORDINALITY AS t(a, i) ORDER BY i"
        )

    def apply(
        self,
        connection: pg8000.native.Connection,
        checks: Sequence[Observation],
        *,
        now: datetime | None = None,
    ) -> Changes:
        """Moves the sites of ``checks`` (the rows this transaction inserted)."""
        if not checks:
            return Changes()
        # every site of the batch locked in site_id order; the usual case (a settled site
        # whose checks all passed) needs no write at all, the rest goes through the rules
        settled = self._lock_settled(connection, checks)
        rest = [check for check in checks if check.site_id not in settled]
        if not rest:
            return Changes(applied=len(checks))
        by_site: dict[str, list[Observation]] = {}
        for check in rest:
            by_site.setdefault(check.site_id, []).append(check)
        states = self._lock_states(connection, by_site)
        self._recover_watermarks(connection, by_site, states)
        first = min(check.scheduled_at for check in rest)
        last = max(check.scheduled_at for check in rest)
        windows = [
            MaintenanceWindow(
                starts_at=starts,
                ends_at=ends,
                site_ids=None if ids is None else frozenset(ids),
                tags=None if tags is None else frozenset(tags),
            )
            for starts, ends, ids, tags in self._windows.rows(connection, first=first, last=last)
        ]
        machine = StateMachine(self.settings, windows, created_at=now)
        machine.changes.applied = len(checks) - len(rest)
        changed: list[SiteState] = []
        for site_id, site_checks in by_site.items():
            state = states[site_id]
            before = machine.changes.applied
            machine.run(state, site_checks)
            if machine.changes.applied != before:
                changed.append(state)
        if changed:
            self._update.run(connection, rows=_state_json(changed))
        changes = machine.changes
        if changes.incidents:
            self._incidents.run(
                connection, rows=orjson.dumps(list(changes.incidents.values())).decode()
            )
        if changes.alerts:
            self._alerts.run(connection, alerts=orjson.dumps(changes.alerts).decode())
        return changes

    def _lock_settled(
        self, connection: pg8000.native.Connection, checks: Sequence[Observation]
    ) -> set[str]:
        """Locks the batch's sites (``site_id`` order); returns the settled ones whose
        checks change nothing but the watermark (the rules move an up site with a pass
        streak going only on a failure, a certificate warning, a new url, tags or alerts
        setting): nothing is written for them."""
        days = self.settings.cert_warning_days
        warning = timedelta(days=days)
        candidates: dict[str, tuple[str, str, str, str]] = {}  # each a row of :rows
        unsettled: set[str] = set()
        latest = checks[0].scheduled_at
        # unpacked: attribute access costs more than the rest of the loop (5,000 rows)
        for _, site_id, url, scheduled, checked, ok, _, _, _, expires, tags, *_, alerts in checks:
            if scheduled > latest:
                latest = scheduled
            if not ok or (days and expires is not None and expires - checked <= warning):
                unsettled.add(site_id)
                continue
            seen = (
                site_id,
                url,
                _tags_literal(tuple(tags) if isinstance(tags, list | tuple) else ()),
                "false" if alerts is False else "true",
            )
            if candidates.setdefault(site_id, seen) != seen:
                unsettled.add(site_id)
        ids = sorted(candidates.keys() | unsettled)
        if len(unsettled) == len(ids):
            return set()  # nothing can be settled: the rules lock the sites themselves
        rows = [(site_id,) if site_id in unsettled else candidates[site_id] for site_id in ids]
        ((document,),) = self._settled.rows(
            connection,
            rows=orjson.dumps(rows).decode(),
            fresh_after=latest - WATERMARK_REFRESH,
        )
        return set(orjson.loads(document))

    def _recover_watermarks(
        self,
        connection: pg8000.native.Connection,
        by_site: Mapping[str, Sequence[Observation]],
        states: Mapping[str, SiteState],
    ) -> None:
        """Moves each state's watermark up to the newest check stored for its site before
        this transaction (settled batches applied checks without writing it)."""
        sites = [
            {
                "site_id": site_id,
                "since": format_timestamp(min(c.scheduled_at for c in site_checks) - CLOCK_SKEW),
                "mine": [check.check_id for check in site_checks],
            }
            for site_id, site_checks in by_site.items()
        ]
        ((document,),) = self._watermarks.rows(connection, sites=orjson.dumps(sites).decode())
        for site_id, scheduled, checked, check_id in orjson.loads(document):
            state = states[site_id]
            newest = (_from_isoformat(scheduled), _from_isoformat(checked), check_id)
            last = state.last_order()
            if last is None or newest > last:
                state.last_scheduled_at, state.last_checked_at, state.last_check_id = newest

    def _lock_states(
        self, connection: pg8000.native.Connection, by_site: Mapping[str, Sequence[Observation]]
    ) -> dict[str, SiteState]:
        ids = sorted(by_site)
        states = self._select(connection, ids)
        missing = [site_id for site_id in ids if site_id not in states]
        if missing:
            # new sites: their rows first (concurrent writers: the first insert wins), then
            # locked like the others
            rows = [{"site_id": site_id, "url": by_site[site_id][0].url} for site_id in missing]
            self._create.run(connection, rows=orjson.dumps(rows).decode())
            states.update(self._select(connection, missing))
        return states

    def _select(self, connection: pg8000.native.Connection, ids: list[str]) -> dict[str, SiteState]:
        states: dict[str, SiteState] = {}
        ((document,),) = self._lock.rows(connection, ids=orjson.dumps(ids).decode())
        for values in orjson.loads(document):
            for name in _TIMESTAMP_COLUMNS:
                if values[name] is not None:
                    values[name] = _from_isoformat(values[name])
            values["tags"] = tuple(values["tags"] or ())
            values["recent_opens"] = [_from_isoformat(t) for t in values["recent_opens"] or ()]
            states[values["site_id"]] = SiteState(**values)
        return states


def _state_json(states: Iterable[SiteState]) -> str:
    return orjson.dumps(
        [{name: getattr(state, name) for name in STATE_COLUMNS} for state in states]
    ).decode()
