"""`webchecker sites` against Parameter Store (moto): every command, and every refusal
leaves Parameter Store exactly as it was."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml

from tests.fixtures.aws import (
    SitesCli,
    moto_server,
    put_parameters,
    snapshot_parameters,
    stored_site,
)
from webchecker.exceptions import SiteStoreError
from webchecker.schedule.catalog import SiteStore, SiteStoreSettings

if TYPE_CHECKING:
    from mypy_boto3_ssm import SSMClient

ROOT = "/webchecker/sites"


@pytest.fixture
def seeded(ssm_client: SSMClient) -> SSMClient:
    put_parameters(
        ssm_client,
        {
            f"{ROOT}/alpha": {"url": "http://127.0.0.1:8001/", "interval": 300},
            f"{ROOT}/team/pack": [
                {"id": "beta", "url": "http://127.0.0.1:8002/"},
                {"id": "gamma", "url": "http://127.0.0.1:8003/", "enabled": False},
            ],
            f"{ROOT}/broken": "{not json",
        },
    )
    return ssm_client


# -- reading ---------------------------------------------------------------------------


def test_list_prints_a_table_with_the_parameter_and_reports_invalid_entries(
    seeded: SSMClient, sites_cli: SitesCli
) -> None:
    code, out, err = sites_cli("list")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "URL", "INTERVAL", "ENABLED", "PARAMETER"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert rows["alpha"] == ["alpha", "http://127.0.0.1:8001/", "300", "yes", f"{ROOT}/alpha"]
    assert rows["gamma"][3:] == ["no", f"{ROOT}/team/pack"]
    assert set(rows) == {"alpha", "beta", "gamma"}
    assert f"{ROOT}/broken: not valid JSON" in err


def test_show_prints_the_site_with_defaults(seeded: SSMClient, sites_cli: SitesCli) -> None:
    code, out, err = sites_cli("show", "beta")
    assert code == 0
    assert json.loads(out) == stored_site(seeded, "beta").to_dict()
    assert json.loads(out)["timeout"] == 10
    assert f"{ROOT}/team/pack" in err


def test_export_then_import_elsewhere_round_trips(seeded: SSMClient, sites_cli: SitesCli) -> None:
    code, out, _ = sites_cli("export")
    assert code == 0
    exported = json.loads(out)
    assert [s["id"] for s in exported] == ["alpha", "beta", "gamma"]
    code, yaml_out, _ = sites_cli("export", "--format", "yaml")
    assert code == 0
    assert yaml.safe_load(yaml_out) == exported


def test_import_of_an_export_into_another_path(
    seeded: SSMClient, sites_cli: SitesCli, tmp_path: Path
) -> None:
    _, out, _ = sites_cli("export")
    dump = tmp_path / "sites.json"
    dump.write_text(out)
    code, result, _ = sites_cli("--path", "/copy/sites", "import", str(dump))
    assert code == 0, result
    assert "3 added" in result
    copy = SiteStore(SiteStoreSettings(path="/copy/sites"), client=seeded).load()
    original = SiteStore(SiteStoreSettings(), client=seeded).load()
    assert copy.sites == original.sites
    assert set(snapshot_parameters(seeded, "/copy/sites")) == {
        f"/copy/sites/{i}" for i in ("alpha", "beta", "gamma")
    }


# -- add -------------------------------------------------------------------------------


def test_add_writes_one_parameter_per_site(seeded: SSMClient, sites_cli: SitesCli) -> None:
    code, out, _ = sites_cli(
        "add",
        "https://127.0.0.1:8443/health",
        "--id",
        "delta",
        "--interval",
        "120",
        "--timeout",
        "5",
        "--regex",
        "ok|up",
        "--expected-status",
        "200-299,301",
        "--header",
        "Accept=text/plain",
        "--no-follow-redirects",
        "--disabled",
    )
    assert code == 0, out
    kind, value, version = snapshot_parameters(seeded, ROOT)[f"{ROOT}/delta"]
    assert (kind, version) == ("String", 1)
    site = stored_site(seeded, "delta")
    assert json.loads(value)["id"] == "delta"
    assert (site.interval, site.timeout, site.regex) == (120, 5.0, "ok|up")
    assert site.expected_status == ((200, 299), (301, 301))
    assert dict(site.headers) == {"Accept": "text/plain"}
    assert (site.follow_redirects, site.enabled) == (False, False)


def test_add_derives_the_id_from_the_host(ssm_client: SSMClient, sites_cli: SitesCli) -> None:
    code, out, _ = sites_cli("add", "http://Shop.Example.test:8080/")
    assert code == 0
    assert "added shop.example.test" in out
    assert stored_site(ssm_client, "shop.example.test").url == "http://Shop.Example.test:8080/"


def test_add_secure_stores_a_securestring_the_scheduler_decrypts(
    ssm_client: SSMClient, sites_cli: SitesCli
) -> None:
    code, _, _ = sites_cli(
        "add", "http://127.0.0.1/", "--id", "secret", "--header", "Authorization=Bearer s3cr3t",
        "--secure",
    )  # fmt: skip
    assert code == 0
    kind, _, _ = snapshot_parameters(ssm_client, ROOT)[f"{ROOT}/secret"]
    assert kind == "SecureString"
    assert stored_site(ssm_client, "secret").headers["Authorization"] == "Bearer s3cr3t"


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["ftp://127.0.0.1/", "--id", "x1"], "url"),
        (["http://127.0.0.1/", "--id", "x2", "--interval", "90"], "interval"),
        (["http://127.0.0.1/", "--id", "x3", "--interval", "60", "--timeout", "60"], "timeout"),
        (["http://127.0.0.1/", "--id", "x4", "--regex", "(unclosed"], "regex"),
        (["http://127.0.0.1/", "--id", "x5", "--header", "Bad Name=v"], "headers"),
        (["http://127.0.0.1/", "--id", "x6", "--header", "novalue"], "headers"),
        (["http://127.0.0.1/", "--id", "x7", "--expected-status", "2xx"], "expected_status"),
        (["http://127.0.0.1/", "--id", "x8", "--method", "FETCH"], "method"),
        (["http://127.0.0.1/", "--id", "Bad_ID"], "id"),
        (["http://127.0.0.1/", "--id", "alpha"], "id"),  # exists as its own parameter
        (["http://127.0.0.1/", "--id", "beta"], "id"),  # exists inside an array
        (["http://[::1/"], "id"),  # no id can be derived
    ],
)
def test_add_refuses_invalid_input_and_writes_nothing(
    seeded: SSMClient, sites_cli: SitesCli, args: list[str], field: str
) -> None:
    before = snapshot_parameters(seeded)
    code, out, err = sites_cli("add", *args)
    assert code == 2
    assert out == ""
    assert f"webchecker: error: {field}:" in err
    assert snapshot_parameters(seeded) == before


# -- set / enable / disable --------------------------------------------------------------


def test_set_changes_fields_and_key_equals_nothing_restores_the_default(
    seeded: SSMClient, sites_cli: SitesCli
) -> None:
    code, _, _ = sites_cli(
        "set", "alpha", "interval=600", "timeout=2.5", "regex=^ok$", 'headers={"A": "b"}'
    )
    assert code == 0
    site = stored_site(seeded, "alpha")
    assert (site.interval, site.timeout, site.regex, dict(site.headers)) == (
        600, 2.5, "^ok$", {"A": "b"},
    )  # fmt: skip
    code, _, _ = sites_cli("set", "alpha", "interval=", "regex=")
    assert code == 0
    site = stored_site(seeded, "alpha")
    assert (site.interval, site.regex) == (60, None)


def test_set_inside_an_array_rewrites_only_that_element(
    seeded: SSMClient, sites_cli: SitesCli
) -> None:
    code, _, _ = sites_cli("set", "gamma", "url=http://127.0.0.1:9999/")
    assert code == 0
    _, value, version = snapshot_parameters(seeded, ROOT)[f"{ROOT}/team/pack"]
    assert version == 2
    assert json.loads(value) == [
        {"id": "beta", "url": "http://127.0.0.1:8002/"},
        {"id": "gamma", "url": "http://127.0.0.1:9999/", "enabled": False},
    ]


def test_enable_and_disable(seeded: SSMClient, sites_cli: SitesCli) -> None:
    assert sites_cli("enable", "gamma")[0] == 0
    assert stored_site(seeded, "gamma").enabled
    assert sites_cli("disable", "alpha")[0] == 0
    assert not stored_site(seeded, "alpha").enabled
    assert stored_site(seeded, "beta").enabled


def test_set_keeps_a_securestring_secure(ssm_client: SSMClient, sites_cli: SitesCli) -> None:
    assert sites_cli("add", "http://127.0.0.1/", "--id", "sec", "--secure")[0] == 0
    assert sites_cli("set", "sec", "interval=120")[0] == 0
    kind, _, version = snapshot_parameters(ssm_client, ROOT)[f"{ROOT}/sec"]
    assert (kind, version) == ("SecureString", 2)


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["set", "alpha", "interval=61"], "interval"),
        (["set", "alpha", "timeout=400"], "timeout"),
        (["set", "alpha", "regex=[a-"], "regex"),
        (["set", "alpha", "enabled=maybe"], "enabled"),
        (["set", "alpha", "url="], "url"),
        (["set", "alpha", "id=other"], "id"),
        (["set", "beta", "headers=[1]"], "headers"),
        (["set", "alpha", "intervall=60"], None),
        (["set", "alpha", "novalue"], None),
        (["set", "nosuch", "interval=60"], "id"),
        (["enable", "nosuch"], "id"),
        (["disable", "broken"], "id"),  # an invalid entry is not a site
        (["remove", "nosuch"], "id"),
        (["show", "nosuch"], "id"),
    ],
)
def test_edits_refuse_invalid_input_and_write_nothing(
    seeded: SSMClient, sites_cli: SitesCli, args: list[str], field: str | None
) -> None:
    before = snapshot_parameters(seeded)
    code, out, err = sites_cli(*args)
    assert code == 2
    assert out == ""
    assert err.startswith("webchecker: error: " + (f"{field}:" if field else ""))
    assert snapshot_parameters(seeded) == before


# -- remove ----------------------------------------------------------------------------


def test_remove_a_single_site_deletes_its_parameter(seeded: SSMClient, sites_cli: SitesCli) -> None:
    assert sites_cli("remove", "alpha")[0] == 0
    assert f"{ROOT}/alpha" not in snapshot_parameters(seeded, ROOT)


def test_remove_from_an_array_keeps_the_others_and_deletes_an_emptied_parameter(
    seeded: SSMClient, sites_cli: SitesCli
) -> None:
    assert sites_cli("remove", "beta")[0] == 0
    _, value, _ = snapshot_parameters(seeded, ROOT)[f"{ROOT}/team/pack"]
    assert [s["id"] for s in json.loads(value)] == ["gamma"]
    assert sites_cli("remove", "gamma")[0] == 0
    assert f"{ROOT}/team/pack" not in snapshot_parameters(seeded, ROOT)


# -- import ----------------------------------------------------------------------------


def test_import_yaml_adds_updates_and_leaves_unchanged(
    seeded: SSMClient, sites_cli: SitesCli, tmp_path: Path
) -> None:
    file = tmp_path / "sites.yaml"
    file.write_text(
        "- {id: alpha, url: 'http://127.0.0.1:8001/', interval: 900}\n"
        "- id: epsilon\n  url: http://127.0.0.1:8005/\n  regex: healthy\n"
    )
    code, out, _ = sites_cli("import", str(file))
    assert code == 0
    assert "1 added, 1 updated, 0 unchanged" in out
    assert stored_site(seeded, "alpha").interval == 900
    assert stored_site(seeded, "epsilon").regex == "healthy"
    code, out, _ = sites_cli("import", str(file))
    assert "0 added, 0 updated, 2 unchanged" in out


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            '[{"id": "ok1", "url": "http://127.0.0.1/"}, {"id": "bad", "url": "x"}]',
            "[1] url:",
        ),
        ('[{"id": "ok1", "url": "http://127.0.0.1/", "colour": "red"}]', "[0] unknown key"),
        ('[{"url": "http://127.0.0.1/"}]', "[0] id: is required"),
        (
            '[{"id": "d", "url": "http://127.0.0.1/"}, {"id": "d", "url": "http://127.0.0.1/"}]',
            "[1] id: duplicate",
        ),
        ('[{"id": "beta", "url": "http://127.0.0.1/"}]', f"already exists in {ROOT}/team/pack"),
        ('{"id": "one", "url": "http://127.0.0.1/"}', "expected a list"),
        ("- [unclosed", "neither JSON nor YAML"),
        ('["just a string"]', "[0] a site must be a JSON object"),
    ],
)
def test_import_refuses_the_whole_file_when_any_entry_is_invalid(
    seeded: SSMClient, sites_cli: SitesCli, tmp_path: Path, content: str, message: str
) -> None:
    file = tmp_path / "sites.json"
    file.write_text(content)
    before = snapshot_parameters(seeded)
    code, out, err = sites_cli("import", str(file))
    assert code == 2
    assert out == ""
    assert message in err
    assert snapshot_parameters(seeded) == before


def test_import_never_replaces_an_array_that_holds_other_sites(
    ssm_client: SSMClient, sites_cli: SitesCli, tmp_path: Path
) -> None:
    # An array parameter that happens to be named like the imported id.
    pack = [
        {"id": "web", "url": "http://127.0.0.1:1/"},
        {"id": "api", "url": "http://127.0.0.1:2/"},
    ]
    put_parameters(ssm_client, {f"{ROOT}/web": pack})
    file = tmp_path / "sites.json"
    file.write_text('[{"id": "web", "url": "http://127.0.0.1:3/"}]')
    before = snapshot_parameters(ssm_client)
    code, _, err = sites_cli("import", str(file))
    assert code == 2
    assert f"{ROOT}/web also holds api" in err
    assert snapshot_parameters(ssm_client) == before


def test_import_of_a_missing_file(seeded: SSMClient, sites_cli: SitesCli, tmp_path: Path) -> None:
    before = snapshot_parameters(seeded)
    code, _, err = sites_cli("import", str(tmp_path / "nope.yaml"))
    assert code == 2
    assert "cannot read" in err
    assert snapshot_parameters(seeded) == before


# -- concurrent edits ------------------------------------------------------------------


def test_an_edit_based_on_a_stale_read_is_refused(seeded: SSMClient) -> None:
    mine = SiteStore(SiteStoreSettings(), client=seeded)
    current = mine.get(f"{ROOT}/alpha")
    assert current is not None
    theirs = SiteStore(SiteStoreSettings(), client=seeded)
    theirs.update(current, '{"url": "http://127.0.0.1:1/"}', secure=False)  # lands first
    after_theirs = snapshot_parameters(seeded)
    with pytest.raises(SiteStoreError, match="changed while you were editing"):
        mine.update(current, '{"url": "http://127.0.0.1:2/"}', secure=False)
    with pytest.raises(SiteStoreError, match="changed while you were editing"):
        mine.delete(current)
    assert snapshot_parameters(seeded) == after_theirs


def test_two_people_adding_different_sites_keep_both(
    ssm_client: SSMClient, sites_cli: SitesCli
) -> None:
    # One parameter per site: the second add does not rewrite anything the first wrote.
    assert sites_cli("add", "http://127.0.0.1:1/", "--id", "one")[0] == 0
    assert sites_cli("add", "http://127.0.0.1:2/", "--id", "two")[0] == 0
    catalog = SiteStore(SiteStoreSettings(), client=ssm_client).load()
    assert {s.id for s in catalog.sites} == {"one", "two"}


# -- the local stack: a real process through AWS_ENDPOINT_URL -------------------------


def test_the_command_line_edits_a_moto_server_through_aws_endpoint_url(
    aws_environment: None,
) -> None:
    with moto_server() as endpoint:
        env = {**os.environ, "AWS_ENDPOINT_URL": endpoint}
        command = [sys.executable, "-m", "webchecker", "sites"]
        added = subprocess.run(
            [*command, "add", "http://127.0.0.1:8080/", "--id", "local"],
            env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert added.returncode == 0, added.stderr
        listed = subprocess.run(
            [*command, "list"], env=env, capture_output=True, text=True, check=False
        )
        assert listed.returncode == 0, listed.stderr
        assert listed.stdout.splitlines()[1].split()[:2] == ["local", "http://127.0.0.1:8080/"]
