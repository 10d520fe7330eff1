"""Pure parts of the local stack: ticks, saved demo URLs, the live table, settings."""

from __future__ import annotations

import io
import itertools
import json
import os
import stat
import subprocess
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Self
from urllib.parse import quote, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from webchecker.exceptions import ConfigurationError
from webchecker.local.board import invalid_lines
from webchecker.local.demo import DemoServer
from webchecker.local.embedded.service import Service
from webchecker.local.env_file import EnvFile
from webchecker.local.env_file import read as read_env_file
from webchecker.local.live import LiveView, SiteStatus, clip, format_table
from webchecker.local.settings import EMBEDDED_KAFKA_VARIABLE, LocalSettings
from webchecker.local.site_file import demo_sites, follow_demo, points_at, seeded_names
from webchecker.local.stack import LocalStack
from webchecker.local.ticks import SimulatedClock, scheduled_event
from webchecker.schedule.plan import tick_from_event
from webchecker.sites import InvalidSite, Site
from webchecker.store.database import redact_url

OLD, NEW = "http://127.0.0.1:8780", "http://127.0.0.1:9999"


@given(st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2099, 1, 1)))
def test_simulated_ticks_are_successive_minutes_the_scheduler_reads_back(start: datetime) -> None:
    clock = SimulatedClock(start.replace(tzinfo=UTC))
    ticks = [clock.next() for _ in range(3)]
    assert [(b - a).total_seconds() for a, b in itertools.pairwise(ticks)] == [60, 60]
    assert ticks[0].second == ticks[0].microsecond == 0
    for tick in ticks:
        assert tick_from_event(scheduled_event(tick, region="eu-west-1")) == tick


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"id": "a", "url": f"{OLD}/healthy"}, {"id": "a", "url": f"{NEW}/healthy"}),
        (
            [{"id": "a", "url": f"{OLD}/slow", "timeout": 5}, {"id": "b", "url": "https://x.org/"}],
            [{"id": "a", "url": f"{NEW}/slow", "timeout": 5}, {"id": "b", "url": "https://x.org/"}],
        ),
        (
            {"id": "t", "url": "https://127.0.0.1:8780/healthy"},
            {"id": "t", "url": "https://127.0.0.1:9999/healthy"},
        ),
        # Another port on loopback is not the demo server: left alone.
        (
            {"id": "a", "url": "http://127.0.0.1:87801/x"},
            {"id": "a", "url": "http://127.0.0.1:87801/x"},
        ),
        ({"id": "a", "url": "https://example.com/"}, {"id": "a", "url": "https://example.com/"}),
    ],
)
def test_saved_demo_sites_follow_the_demo_port(value: object, expected: object) -> None:
    assert json.loads(follow_demo(json.dumps(value), OLD, NEW)) == expected


def test_an_invalid_saved_value_is_kept_as_it_is() -> None:
    assert follow_demo("{not json", OLD, NEW) == "{not json"
    assert follow_demo('"a string"', OLD, NEW) == '"a string"'


def test_the_example_sites_are_valid() -> None:
    sites = [Site.from_dict(site) for site in demo_sites(OLD)]
    assert len({site.id for site in sites}) == len(sites)
    # Loopback only: the demo sites never send traffic anywhere else.
    assert all(urlsplit(site.url).hostname == "127.0.0.1" for site in sites)


@pytest.mark.parametrize(
    ("status", "state"),
    [
        (SiteStatus(site_id="s", url="u", enabled=False), "disabled"),
        (SiteStatus(site_id="s", url="u", enabled=True), "waiting"),
        (SiteStatus(site_id="s", url="u", enabled=True, checks=4, passed=3, ok=True), "ok"),
        (
            SiteStatus(
                site_id="s", url="u", enabled=True, checks=4, passed=0, ok=False, error="dns"
            ),
            "dns",
        ),
    ],
)
def test_table_state_column(status: SiteStatus, state: str) -> None:
    header, row = format_table([status])
    assert header.split()[:2] == ["STATE", "SITE"]
    assert row.split()[0] == state


def test_table_shows_status_time_and_availability() -> None:
    status = SiteStatus(
        site_id="demo",
        url="http://127.0.0.1/x",
        enabled=True,
        checks=4,
        passed=3,
        ok=True,
        status_code=200,
        response_time_ms=12.4,
    )
    row = format_table([status])[1]
    assert row.split()[:7] == ["ok", "demo", "200", "12", "ms", "75.0%", "4"]
    assert all(len(line) <= 30 for line in format_table([status], width=30))


def test_plain_view_appends_and_terminal_view_redraws() -> None:
    plain = io.StringIO()
    view = LiveView(plain, tty=False)
    view.show("t1", ["a"])
    view.show("t2", ["b"])
    assert plain.getvalue() == "t1\na\n\nt2\nb\n\n"

    screen = io.StringIO()
    view = LiveView(screen, tty=True)
    view.show("t1", ["a"])
    view.message("note")
    view.release()
    view.message("bye")
    # up 2 lines, the note, the table again (each line cleared after its text); after
    # release, below it
    assert screen.getvalue() == ("t1\x1b[K\na\x1b[K\n\r\x1b[2Anote\x1b[K\nt1\x1b[K\na\x1b[K\nbye\n")


@pytest.mark.parametrize(("field", "value"), [("tick_seconds", 0), ("duration", -1)])
def test_settings_refuse_nonsense(field: str, value: float) -> None:
    with pytest.raises(ConfigurationError):
        LocalSettings(**{field: value})  # type: ignore[arg-type]


def test_retries_default_to_one_and_two_ticks_like_aws_minutes() -> None:
    assert LocalSettings(tick_seconds=5).retry.delays == (5, 10)
    assert LocalSettings(retry_delays=(0.1,)).retry.delays == (0.1,)


def test_settings_from_env_take_the_services_and_arguments_win() -> None:
    env = {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092", "DATABASE_URL": "postgresql://x@h/db"}
    settings = LocalSettings.from_env(env, tick_seconds=7.0, duration=None)
    assert settings.kafka_bootstrap_servers == "127.0.0.1:9092"
    assert settings.database_url == "postgresql://x@h/db"
    assert settings.tick_seconds == 7.0
    assert settings.duration is None


class Recorded(Service):
    """A part that records its starts and stops (and fails to start when told)."""

    def __init__(self, name: str, log: list[str], *, fail: bool = False) -> None:
        self.name, self.log, self.fail = name, log, fail

    def start(self) -> Self:
        self.log.append(f"start {self.name}")
        if self.fail:
            raise ConfigurationError(f"{self.name} cannot start")
        return self

    def stop(self) -> None:
        self.log.append(f"stop {self.name}")


def test_parts_start_in_order_and_stop_in_reverse(tmp_path: Path) -> None:
    stack = LocalStack(LocalSettings(state_dir=tmp_path, demo_port=None))
    log: list[str] = []
    stack.parts = [Recorded(name, log) for name in ("a", "b", "c")]
    with stack:
        assert log == ["start a", "start b", "start c"]
    assert log[3:] == ["stop c", "stop b", "stop a"]


def test_a_part_failing_to_start_stops_the_ones_before_it(tmp_path: Path) -> None:
    stack = LocalStack(LocalSettings(state_dir=tmp_path, demo_port=None))
    log: list[str] = []
    stack.parts = [Recorded("a", log), Recorded("b", log, fail=True), Recorded("c", log)]
    with pytest.raises(ConfigurationError, match="b cannot start"):
        stack.start()
    # b may have started part of itself: it is stopped too; c never started.
    assert log == ["start a", "start b", "stop b", "stop a"]


# -- issue 9 items 12, 14, 18: the env file, the banner, stale addresses ---------------------

HOSTILE_PASSWORD = "p'a\"ss $HOME `id` \\ ;x"


def test_env_file_is_0600_and_any_password_survives_source(tmp_path: Path) -> None:
    url = f"postgresql://app:{quote(HOSTILE_PASSWORD, safe='')}@127.0.0.1:5432/db"
    variables = {"DATABASE_URL": url, "ODD": HOSTILE_PASSWORD, "EMPTY": ""}
    path = tmp_path / "env"
    path.write_text("old")
    path.chmod(0o644)
    EnvFile(path, lambda: variables).start()

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    shown = subprocess.run(
        ["bash", "-c", f'source {path} && printf "%s\\0%s\\0%s" "$DATABASE_URL" "$ODD" "$EMPTY"'],
        capture_output=True,
        check=True,
        env={"PATH": os.environ["PATH"], "HOME": "/nonexistent"},
    ).stdout.decode()
    assert shown.split("\0") == [url, HOSTILE_PASSWORD, ""]
    assert read_env_file(path) == variables


def test_banner_never_shows_a_password_and_names_a_command_that_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = LocalStack(LocalSettings(state_dir=tmp_path, demo_port=None))
    stack.db.url = f"postgresql://app:{quote(HOSTILE_PASSWORD, safe='')}@db.example:5432/wc"
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # the virtual environment is not active

    text = "\n".join(stack.banner())

    assert "postgresql://app:***@db.example:5432/wc" in text
    assert quote(HOSTILE_PASSWORD, safe="") not in text
    assert "p'a" not in text
    command = next(line.split()[0] for line in stack.banner() if line.endswith(" sites list"))
    assert command != "webchecker"  # not on this PATH
    assert subprocess.run([command, "--help"], capture_output=True, check=False).returncode == 0


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://u:secret@h:5/d", "postgresql://u:***@h:5/d"),
        (
            "postgresql://u@h/d?password=secret&sslmode=require",
            "postgresql://u@h/d?password=%2A%2A%2A&sslmode=require",
        ),
        ("postgresql://u@/d?host=/tmp/x", "postgresql://u@/d?host=/tmp/x"),
        ("postgresql://u:p%40ss%3Aw@h/d", "postgresql://u:***@h/d"),
    ],
)
def test_urls_are_shown_without_passwords(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_an_earlier_runs_embedded_broker_in_the_environment_is_not_used() -> None:
    env = {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:4001", EMBEDDED_KAFKA_VARIABLE: "127.0.0.1:4001"}
    settings = LocalSettings.from_env(env)
    assert settings.kafka_bootstrap_servers is None
    assert settings.ignored
    assert "KAFKA_BOOTSTRAP_SERVERS" in settings.ignored[0]
    # A broker the user chose afterwards in that shell is used.
    chosen = LocalSettings.from_env({**env, "KAFKA_BOOTSTRAP_SERVERS": "10.0.0.1:9092"})
    assert chosen.kafka_bootstrap_servers == "10.0.0.1:9092"
    assert chosen.ignored == ()


def test_a_database_url_that_does_not_answer_fails_the_start_at_once(tmp_path: Path) -> None:
    url = f"postgresql://app:s3cret@/db?host={tmp_path / 'no-server-here'}"
    stack = LocalStack(
        LocalSettings(state_dir=tmp_path / "state", demo_port=None, database_url=url)
    )

    with pytest.raises(ConfigurationError) as raised:
        stack.start()

    message = str(raised.value)
    assert "DATABASE_URL" in message
    assert "unset DATABASE_URL" in message
    assert str(tmp_path / "no-server-here") in message
    assert "s3cret" not in message
    assert stack.aws.pid is None  # nothing else was started (the database comes first)


def test_the_demo_root_lists_its_endpoints() -> None:
    with DemoServer() as demo, urllib.request.urlopen(demo.url("/"), timeout=10) as answer:
        body = answer.read().decode()
    assert answer.status == 200
    for path in ("/healthy", "/slow", "/hang", "/failing", "/flapping", "/redirect"):
        assert f"\n  {path} " in body, body
    assert "``" not in body


# -- issue 9 items 16 and 17: invalid entries and a table that fits the terminal -------------


def _statuses(count: int, failing: set[int]) -> list[SiteStatus]:
    return [
        SiteStatus(
            site_id=f"site-{i:02d}",
            url=f"http://127.0.0.1/{i}",
            enabled=True,
            checks=1,
            passed=0 if i in failing else 1,
            ok=i not in failing,
            error="status" if i in failing else None,
        )
        for i in range(count)
    ]


def test_a_table_taller_than_its_room_keeps_the_failing_sites_and_counts_the_rest() -> None:
    statuses = _statuses(40, failing={3, 25, 39})
    lines = format_table(statuses, width=80, height=10)

    assert len(lines) == 10
    shown = [line.split()[1] for line in lines[1:-1]]
    assert {"site-03", "site-25", "site-39"} <= set(shown)
    assert shown == sorted(shown)  # still in table order
    assert lines[-1].startswith("... 32 more sites not shown (all passing or waiting)")
    assert format_table(statuses, width=80, height=41) == format_table(statuses, width=80)


@given(st.integers(min_value=1, max_value=60), st.integers(min_value=2, max_value=50))
def test_the_table_never_exceeds_its_height(count: int, height: int) -> None:
    lines = format_table(_statuses(count, failing={0}), width=60, height=height)
    assert len(lines) <= max(height, 2)
    assert all(len(line) <= 60 for line in lines)


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("columns", "lines"), [(80, 24), (250, 70)])
def test_terminal_view_stays_within_the_screen(columns: int, lines: int) -> None:
    screen = FakeTerminal()
    view = LiveView(screen, size=lambda: os.terminal_size((columns, lines)))
    block = [f"row {i} " + "x" * 300 for i in range(200)]

    view.show("title", block)
    drawn = screen.getvalue().split("\n")[:-1]
    view.show("title", block)

    assert len(drawn) == lines - 1  # one line less than the screen: redraws never scroll
    assert all(len(line.removesuffix("\x1b[K")) <= columns - 1 for line in drawn)
    # The redraw moves up exactly as many lines as were drawn; no "clear to the end of the
    # screen" from its top-left corner (tmux would push the screen into the scrollback).
    redraw = screen.getvalue()[len("\n".join(drawn)) + 1 :]
    assert redraw.startswith(f"\r\x1b[{lines - 1}A")
    assert "\x1b[J" not in redraw


def test_a_shorter_table_clears_the_rest_of_the_old_one() -> None:
    screen = FakeTerminal()
    view = LiveView(screen, size=lambda: os.terminal_size((80, 24)))
    view.show("t", ["a", "b", "c"])
    view.show("t", ["a"])
    assert screen.getvalue().endswith("\r\x1b[4At\x1b[K\na\x1b[K\n\x1b[J")


def test_clip_counts_wide_characters_and_hides_control_characters() -> None:
    assert clip("ab\x1b[2Jc", 80) == "ab?[2Jc"
    assert clip("日本語テキスト", 5) == "日本"
    assert clip("plain", 3) == "pla"


def test_invalid_entries_are_listed_with_reasons_and_where_to_see_the_rest() -> None:
    invalid = [
        InvalidSite(f"/webchecker/sites/bad-{i}", None, "interval: not a number") for i in range(5)
    ]
    lines = invalid_lines(invalid)

    assert lines[0] == "5 invalid site entries skipped:"
    assert lines[1:4] == [f"  /webchecker/sites/bad-{i}: interval: not a number" for i in range(3)]
    assert lines[4].startswith("  ... 2 more: `")
    assert "sites list" in lines[4]
    assert invalid_lines(invalid[:1])[0] == "1 invalid site entry skipped:"
    assert invalid_lines([]) == []


def test_only_the_seeded_examples_follow_the_demo_server() -> None:
    names = seeded_names("/webchecker/sites/")
    assert "/webchecker/sites/demo-healthy" in names
    assert all(name.startswith("/webchecker/sites/demo-") for name in names)
    assert points_at(json.dumps({"id": "a", "url": f"{OLD}/x"}), OLD)
    assert points_at(json.dumps([{"id": "b", "url": "https://127.0.0.1:8780/"}]), OLD)
    assert not points_at(json.dumps({"id": "a", "url": f"{NEW}/x"}), OLD)
    assert not points_at("{not json", OLD)
