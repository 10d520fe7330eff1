"""`webchecker preflight` (what `make deploy` runs first): an environment that cannot
deploy is refused before anything is built, with every problem naming the value."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from webchecker.cli import main
from webchecker.exceptions import ConfigurationError
from webchecker.provision.preflight import (
    UNRESERVED_MINIMUM,
    account_concurrency_problem,
    concurrency_problem,
    load_config,
    offline_problems,
    parse_overrides,
    region_problem,
    template_parameters,
)

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"


def samconfig(tmp_path: Path, overrides: list[str], *, extra: str = "") -> Path:
    path = tmp_path / "samconfig.toml"
    lines = ", ".join(f"'{item}'" for item in overrides)
    path.write_text(
        "version = 0.1\n[default.global.parameters]\n"
        f'stack_name = "webchecker-dev"\nparameter_overrides = [{lines}]\n{extra}'
    )
    return path


def problems_for(tmp_path: Path, overrides: list[str], **kwargs: str) -> list[str]:
    config = load_config(samconfig(tmp_path, overrides, **kwargs), "default")
    return offline_problems(config, template_parameters(TEMPLATE), root=ROOT)


@pytest.mark.parametrize("environment", ["default", "staging", "prod"])
def test_the_shipped_environments_are_ready(environment: str) -> None:
    config = load_config(ROOT / "samconfig.toml", environment)
    assert offline_problems(config, template_parameters(TEMPLATE), root=ROOT) == []


def test_placeholders_are_refused_by_name(tmp_path: Path) -> None:
    problems = problems_for(
        tmp_path,
        [
            'DatabaseHost="<NAME.xxxx.eu-west-1.rds.amazonaws.com>"',
            'AlarmEmail="<oncall@example.com>"',
        ],
        extra='s3_prefix = "<prefix>"\n',
    )
    text = "\n".join(problems)
    assert (
        "parameter DatabaseHost = '<NAME.xxxx.eu-west-1.rds.amazonaws.com>': placeholder left"
        in text
    )
    assert "AlarmEmail" in text
    assert "global.s3_prefix" in text


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        (['Nonsense="1"'], "Nonsense: not a parameter of template.yaml"),
        (['NatGateways="three"'], "NatGateways='three': expected one of single, per-az"),
        (['WriterBatchSize="0"'], "WriterBatchSize=0: at least 1"),
        (['WriterBatchSize="lots"'], "WriterBatchSize='lots': expected a number"),
        (['MskClusterArn="my-cluster"'], "MskClusterArn='my-cluster': does not match"),
        (['WriterMinimumPollers="4"', 'WriterMaximumPollers="2"'], "WriterMaximumPollers=2: below"),
        (['VpcSubnetIds="subnet-1,subnet-2"'], "VpcSecurityGroupIds: required"),
        (['VpcSubnetIds="subnet-1"', 'VpcSecurityGroupIds="sg-1"'], "VpcId: required"),
        (
            ['DatabaseHost="db.example.com"', 'DatabaseAuth="secret"'],
            "DatabaseSecretArn: required with DatabaseAuth=secret",
        ),
        (
            ['DatabaseHost="db.example.com"', 'DatabaseAuth="iam"'],
            "DatabaseResourceId: required with DatabaseAuth=iam",
        ),
        (
            [
                'DatabaseHost="main.abcdefgh.eu-west-1.rds.amazonaws.com"',
                'DatabaseAuth="iam"',
                'DatabaseResourceId="db-ABC"',
            ],
            "DatabaseSslRootCert: required for the direct RDS endpoint",
        ),
        (
            [
                'DatabaseHost="main.abcdefgh.eu-west-1.rds.amazonaws.com"',
                'DatabaseAuth="iam"',
                'DatabaseResourceId="db-ABC"',
                'DatabaseSslRootCert="/opt/certs/missing.pem"',
            ],
            "missing.pem does not exist",
        ),
    ],
)
def test_what_cannot_deploy_is_named(tmp_path: Path, overrides: list[str], named: str) -> None:
    assert any(named in problem for problem in problems_for(tmp_path, overrides))


def test_a_proxy_endpoint_needs_no_ca_bundle(tmp_path: Path) -> None:
    proxy = [
        'DatabaseHost="main.proxy-abcdefgh.eu-west-1.rds.amazonaws.com"',
        'DatabaseAuth="iam"',
        'DatabaseResourceId="prx-0123"',
    ]
    assert problems_for(tmp_path, proxy) == []


def test_overrides_as_one_string_or_a_list() -> None:
    assert parse_overrides('A=1 B="two words"') == {"A": "1", "B": "two words"}
    assert parse_overrides(['A="1"', "B=2"]) == {"A": "1", "B": "2"}
    with pytest.raises(ConfigurationError, match="not Name=value"):
        parse_overrides(["just-a-word"])


def test_an_unknown_environment_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"no environment 'qa' \(have: default\)"):
        load_config(samconfig(tmp_path, []), "qa")


def test_a_broken_samconfig_is_named(tmp_path: Path) -> None:
    path = tmp_path / "samconfig.toml"
    path.write_text("version = [")
    with pytest.raises(ConfigurationError, match=r"samconfig\.toml"):
        load_config(path, "default")


def test_no_region_anywhere_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    config = load_config(samconfig(tmp_path, []), "default")
    assert "no region" in (region_problem(config, None) or "")
    assert region_problem(config, "eu-west-1") is None
    monkeypatch.setenv("AWS_REGION", "eu-central-1")
    assert region_problem(config, None) is None
    pinned = load_config(samconfig(tmp_path, [], extra='region = "eu-west-1"\n'), "default")
    assert pinned.region == "eu-west-1"


def test_the_deploy_section_wins_over_the_global_one(tmp_path: Path) -> None:
    # The SAM CLI reads [env.deploy.parameters] over [env.global.parameters] for `sam deploy`:
    # preflight and smoke must check the stack and region that deploy will really use.
    extra = (
        'region = "eu-west-1"\n[default.deploy.parameters]\n'
        'region = "eu-central-1"\nstack_name = "webchecker-deployed"\n'
    )
    config = load_config(samconfig(tmp_path, [], extra=extra), "default")
    assert config.region == "eu-central-1"
    assert config.stack_name == "webchecker-deployed"
    only_global = load_config(samconfig(tmp_path, [], extra='region = "eu-west-1"\n'), "default")
    assert only_global.stack_name == "webchecker-dev"


@pytest.mark.parametrize(
    ("wanted", "unreserved", "current", "ok"),
    [
        (0, 50, 0, True),  # nothing reserved: nothing to check
        (200, 1000, 0, True),
        (200, 300, 0, True),  # exactly 100 left
        (200, 299, 0, False),
        (200, 100, 200, True),  # a redeploy: today's reservation is released first
        (200, 10, 0, False),  # a new account's quota of 10
    ],
)
def test_reserved_concurrency_must_leave_100_unreserved(
    wanted: int, unreserved: int, current: int, ok: bool
) -> None:
    problem = concurrency_problem(wanted=wanted, unreserved=unreserved, limit=1000, current=current)
    assert (problem is None) == ok
    if problem:
        assert f"CheckerReservedConcurrency={wanted}" in problem
        assert str(wanted + UNRESERVED_MINIMUM) in problem


def test_command_exits_2_naming_each_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = samconfig(tmp_path, ['DatabaseSecretArn="<arn>"'])
    code = main(
        ["preflight", "--config", str(path), "--template", str(TEMPLATE), "--region", "eu-west-1"]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "DatabaseSecretArn = '<arn>': placeholder left" in err
    assert "nothing was built or deployed" in err


def test_make_deploy_refuses_to_start_while_a_placeholder_is_left(tmp_path: Path) -> None:
    path = samconfig(tmp_path, ['VpcSubnetIds="<subnet-id-a>,<subnet-id-b>"'])
    result = subprocess.run(
        ["make", "--no-print-directory", "deploy", f"SAMCONFIG={path}", "REGION=eu-west-1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "VpcSubnetIds = '<subnet-id-a>,<subnet-id-b>': placeholder left" in result.stderr
    assert "sam build" not in result.stdout + result.stderr  # refused before building
    assert "sam deploy" not in result.stdout


def test_an_unreadable_account_concurrency_is_a_named_problem(aws: None, tmp_path: Path) -> None:
    # moto answers GetAccountSettings with an error, as AWS does for an identity without
    # lambda:GetAccountSettings: the deploy stops, saying which permission and how to skip.
    config = load_config(samconfig(tmp_path, ['CheckerReservedConcurrency="200"']), "default")
    problem = account_concurrency_problem(config, region="eu-west-1")
    assert problem is not None
    assert "lambda:GetAccountSettings" in problem
    assert "--offline" in problem


def test_no_reservation_needs_no_aws_call(tmp_path: Path) -> None:
    config = load_config(samconfig(tmp_path, []), "default")
    assert account_concurrency_problem(config, region="eu-west-1", lambda_client=object()) is None
