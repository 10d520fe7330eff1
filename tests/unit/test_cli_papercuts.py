"""Issue 9 item 18, the command line: `| head`, no region, plurals, help texts, make run."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from webchecker.cli import build_parser
from webchecker.cli.sites import _warn_invalid
from webchecker.sites import InvalidSite, SiteCatalog

ROOT = Path(__file__).resolve().parents[2]
WEBCHECKER = [sys.executable, "-m", "webchecker"]


def test_a_reader_that_goes_away_is_not_an_error_with_a_traceback() -> None:
    env = {**os.environ, "DATABASE_URL": "postgresql://app@db.example/wc"}
    process = subprocess.Popen(
        [*WEBCHECKER, "db", "url"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    assert process.stdout is not None
    assert process.stderr is not None
    process.stdout.close()  # like `| head` that has read what it wanted
    errors = process.stderr.read().decode()
    process.stderr.close()

    assert process.wait(60) == 141  # as a writer killed by SIGPIPE
    assert errors == ""


def test_no_region_is_a_clear_error_not_a_traceback(tmp_path: Path) -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("AWS_") or key in {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    }
    env |= {"AWS_CONFIG_FILE": str(tmp_path / "none"), "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}
    done = subprocess.run(
        [*WEBCHECKER, "sites", "list"], env=env, capture_output=True, text=True, timeout=60
    )

    assert done.returncode == 2
    assert "no AWS region: set AWS_REGION" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("count", "text"), [(1, "1 invalid entry skipped:"), (2, "2 invalid entries skipped:")]
)
def test_invalid_entries_are_counted_in_english(
    count: int, text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    invalid = tuple(
        InvalidSite(f"/webchecker/sites/s{i}", None, "url: missing") for i in range(count)
    )
    _warn_invalid(SiteCatalog(sites=(), invalid=invalid))
    assert capsys.readouterr().err.splitlines()[0] == text


def _parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    found = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for subparser in action.choices.values():
                found += _parsers(subparser)
    return found


def test_help_texts_show_no_docstring_markup() -> None:
    parsers = _parsers(build_parser())
    assert len(parsers) > 10  # every subcommand and its actions
    for parser in parsers:
        assert "``" not in parser.format_help(), parser.prog


def test_the_first_make_run_says_what_it_installs_and_how_long() -> None:
    done = subprocess.run(
        ["make", "--no-print-directory", "-n", "-W", "requirements/dev.txt", "run"],
        cwd=ROOT,
        # as a newcomer types it, not as a sub-make of `make test` (which passes its flags on)
        env={k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    first = done.stdout.splitlines()[0]
    assert first.startswith("echo ")
    assert "Installing Python dependencies" in first
    assert "minutes" in first
