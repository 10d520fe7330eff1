"""`webchecker sites` with hostile input: non-finite numbers, lone surrogates (what Python
makes of a command-line argument that is not UTF-8), huge numbers; and the site settings
that route alerts (tags, thresholds, alerts). Every refusal is one clear error naming the
field, and Parameter Store is left as it was."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.fixtures.aws import (
    SitesCli,
    moto_server,
    put_parameters,
    snapshot_parameters,
    stored_site,
)

if TYPE_CHECKING:
    from mypy_boto3_ssm import SSMClient

ROOT = "/webchecker/sites"
URL = "http://127.0.0.1/"
# os.fsdecode(b"\xff"): how Python hands a non-UTF-8 argument to the program
NOT_UTF8 = b"caf\xe9".decode("utf-8", "surrogateescape")


def test_add_and_set_the_alert_settings(ssm_client: SSMClient, sites_cli: SitesCli) -> None:
    code, out, err = sites_cli(
        "add", "http://127.0.0.1:8001/", "--id", "shop", "--tag", "prod,eu", "--tag", "team-a",
        "--failure-threshold", "3", "--success-threshold", "1", "--no-alerts",
    )  # fmt: skip
    assert code == 0, err
    site = stored_site(ssm_client, "shop")
    assert site.tags == ("prod", "eu", "team-a")
    assert (site.failure_threshold, site.success_threshold, site.alerts) == (3, 1, False)

    assert sites_cli("set", "shop", "tags=web", "failure_threshold=5", "alerts=true")[0] == 0
    site = stored_site(ssm_client, "shop")
    assert (site.tags, site.failure_threshold, site.alerts) == (("web",), 5, True)
    assert sites_cli("set", "shop", 'tags=["a", "b"]', "success_threshold=")[0] == 0
    site = stored_site(ssm_client, "shop")
    assert (site.tags, site.success_threshold) == (("a", "b"), 2)

    code, out, _ = sites_cli("export")
    (exported,) = json.loads(out)
    assert exported["tags"] == ["a", "b"]
    assert (exported["failure_threshold"], exported["alerts"]) == (5, True)


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["add", "http://127.0.0.1/", "--id", "t1", "--tag", "Prod"], "tags"),
        (["add", URL, "--id", "t2", "--failure-threshold", "0"], "failure_threshold"),
        (["add", URL, "--id", "t3", "--success-threshold", "11"], "success_threshold"),
        (["add", f"http://127.0.0.1/{NOT_UTF8}", "--id", "s1"], "url"),
        (["add", "http://127.0.0.1/", "--id", "s2", "--header", f"X-A={NOT_UTF8}"], "headers"),
        (["add", "http://127.0.0.1/", "--id", "s3", "--body", NOT_UTF8], "body"),
        (["add", "http://127.0.0.1/", "--id", "s4", "--regex", NOT_UTF8], "regex"),
        (["add", "http://127.0.0.1/", "--id", f"s5{NOT_UTF8}"], "id"),
        (["add", "http://127.0.0.1/", "--id", "s6", "--regex", "(a)\\1"], "regex"),
        (["add", "http://127.0.0.1/", "--id", "s7", "--header", "X-A=a\x0bb"], "headers"),
        (["set", "alpha", "interval=1e309"], "interval"),
        (["set", "alpha", "interval=NaN"], "interval"),
        (["set", "alpha", "timeout=Infinity"], "timeout"),
        (["set", "alpha", "timeout=" + "9" * 400], "timeout"),
        (["set", "alpha", f"body={NOT_UTF8}"], "body"),
        (["set", "alpha", "tags=a,A"], "tags"),
    ],
)  # fmt: skip
def test_hostile_arguments_are_refused_naming_the_field(
    ssm_client: SSMClient, sites_cli: SitesCli, args: list[str], field: str
) -> None:
    put_parameters(ssm_client, {f"{ROOT}/alpha": {"url": "http://127.0.0.1:8001/"}})
    before = snapshot_parameters(ssm_client)
    code, out, err = sites_cli(*args)
    assert (code, out) == (2, "")
    assert err.startswith(f"webchecker: error: {field}: ")
    assert len(err) < 1000
    err.encode()  # the message itself is printable Unicode (no lone surrogate)
    assert snapshot_parameters(ssm_client) == before


def test_a_stored_site_with_a_lone_surrogate_is_listed_as_invalid(
    ssm_client: SSMClient, sites_cli: SitesCli
) -> None:
    # plain ASCII JSON: the escape only becomes a lone surrogate when parsed
    put_parameters(
        ssm_client,
        {
            f"{ROOT}/bad": '{"url": "http://example.com/\\ud800"}',
            f"{ROOT}/good": {"url": "http://127.0.0.1:8001/"},
        },
    )
    code, out, err = sites_cli("list")
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()] == ["ID", "good"]
    assert f"{ROOT}/bad: url: contains a lone surrogate" in err
    code, out, _ = sites_cli("export")
    assert [site["id"] for site in json.loads(out)] == ["good"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("- {id: a, url: 'http://127.0.0.1/', interval: .inf}", "[0] interval: "),
        ("- {id: a, url: 'http://127.0.0.1/', timeout: .nan}", "[0] timeout: "),
        ("- {id: a, url: 'http://127.0.0.1/', interval: 1" + "0" * 5000 + "}", "not readable"),
        ('[{"id": "a", "url": "http://127.0.0.1/", "interval": 1e309}]', "[0] interval: "),
        ('[{"id": "a", "url": "http://127.0.0.1/\\udcff"}]', "[0] url: "),
        ('[{"id": "a", "url": "http://127.0.0.1/", "' + "k" * 100_000 + '": 1}]', "unknown key"),
    ],
)
def test_import_refuses_non_finite_huge_and_invalid_unicode_values(
    ssm_client: SSMClient, sites_cli: SitesCli, tmp_path: Path, content: str, message: str
) -> None:
    file = tmp_path / "sites.yaml"
    file.write_text(content)
    before = snapshot_parameters(ssm_client)
    code, out, err = sites_cli("import", str(file))
    assert (code, out) == (2, "")
    assert message in err
    assert len(err) < 1000
    assert snapshot_parameters(ssm_client) == before


def test_a_real_process_given_non_utf8_arguments_refuses_them_and_lists_fine(
    aws_environment: None,
) -> None:
    """Issue 9 item 3 as a user meets it: bytes that are not UTF-8 on the command line."""
    with moto_server() as endpoint:
        env = {**os.environ, "AWS_ENDPOINT_URL": endpoint, "LC_ALL": "C.UTF-8"}
        command = [os.fsencode(sys.executable), b"-m", b"webchecker", b"sites"]
        added = subprocess.run(
            [*command, b"add", b"http://127.0.0.1:8080/caf\xe9", b"--id", b"bad"],
            env=env, capture_output=True, check=False,
        )  # fmt: skip
        assert added.returncode == 2, added.stderr
        assert added.stderr.startswith(b"webchecker: error: url: contains a lone surrogate")
        assert b"Traceback" not in added.stderr
        listed = subprocess.run([*command, b"list"], env=env, capture_output=True, check=False)
        assert listed.returncode == 0, listed.stderr
        assert listed.stdout.splitlines() == [b"ID  URL  INTERVAL  ENABLED  PARAMETER"]
