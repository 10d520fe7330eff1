"""Checks `make deploy` runs before building: an environment of samconfig.toml that cannot
deploy is refused with every reason, each naming the value, before anything reaches AWS.

Offline: the environment exists; no ``<placeholder>`` is left; every override names a
template parameter and meets its constraints (allowed values, pattern, bounds); the
combinations the template's Rules check (and some they cannot: numbers compared, a direct
RDS endpoint without the RDS CA bundle); a region comes from samconfig, ``--region`` or the
AWS configuration. Then, with credentials: the account's Lambda concurrency leaves 100
unreserved after the checker's ``CheckerReservedConcurrency``.
"""

from __future__ import annotations

import os
import re
import shlex
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from webchecker.exceptions import ConfigurationError

PLACEHOLDER = re.compile(r"<[^<>]*>")
COMMANDS = ("global", "build", "validate", "deploy", "sync", "logs", "delete")
UNRESERVED_MINIMUM = 100  # Lambda keeps this much of the account's concurrency unreserved


@dataclass(frozen=True, kw_only=True)
class DeployConfig:
    """One samconfig.toml environment: its sections and its parameter overrides."""

    environment: str
    sections: Mapping[str, Mapping[str, Any]]
    overrides: Mapping[str, str]

    @property
    def region(self) -> str | None:
        return self._deploy_setting("region")

    @property
    def stack_name(self) -> str | None:
        return self._deploy_setting("stack_name")

    def _deploy_setting(self, key: str) -> str | None:
        """``key`` from the environment's [deploy] section, else from its [global] one: as in
        the SAM CLI, a command's own section wins over the shared one."""
        for command in ("deploy", "global"):
            value = self.sections.get(command, {}).get(key)
            if value:
                return str(value)
        return None


def parse_overrides(value: Any) -> dict[str, str]:
    """SAM's ``parameter_overrides``: a list of ``Name="value"``, or one such string."""
    items = value if isinstance(value, list) else shlex.split(str(value))
    overrides: dict[str, str] = {}
    for item in items:
        name, sep, raw = str(item).partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z0-9]+", name):
            raise ConfigurationError(f"parameter_overrides: {item!r} is not Name=value")
        overrides[name] = raw[1:-1] if len(raw) >= 2 and raw[0] == raw[-1] == '"' else raw
    return overrides


def load_config(path: Path, environment: str) -> DeployConfig:
    try:
        document = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ConfigurationError(f"{path}: {error}") from None
    env = document.get(environment)
    if not isinstance(env, dict):
        known = ", ".join(k for k, v in document.items() if isinstance(v, dict))
        raise ConfigurationError(f"{path}: no environment {environment!r} (have: {known})")
    sections = {
        command: dict(env.get(command, {}).get("parameters", {}))
        for command in COMMANDS
        if isinstance(env.get(command), dict)
    }
    overrides: dict[str, str] = {}
    for command in ("global", "deploy"):  # deploy's own overrides win, as in SAM
        if "parameter_overrides" in sections.get(command, {}):
            overrides.update(parse_overrides(sections[command]["parameter_overrides"]))
    return DeployConfig(environment=environment, sections=sections, overrides=overrides)


class _IgnoreTags(yaml.SafeLoader):
    """Reads template.yaml's structure; intrinsic functions (!Ref, !Sub, ...) become None."""


_IgnoreTags.add_multi_constructor("!", lambda loader, suffix, node: None)


def template_parameters(path: Path) -> dict[str, dict[str, Any]]:
    document = yaml.load(path.read_text(), Loader=_IgnoreTags)  # noqa: S506 (safe subclass)
    parameters: dict[str, dict[str, Any]] = document.get("Parameters", {})
    return parameters


def _constraint_problem(name: str, value: str, parameter: Mapping[str, Any]) -> str | None:
    allowed = parameter.get("AllowedValues")
    if allowed is not None and value not in [str(v) for v in allowed]:
        return f"{name}={value!r}: expected one of {', '.join(str(v) for v in allowed)}"
    if parameter.get("Type") == "Number":
        try:
            number = float(value)
        except ValueError:
            return f"{name}={value!r}: expected a number"
        if "MinValue" in parameter and number < float(parameter["MinValue"]):
            return f"{name}={value}: at least {parameter['MinValue']}"
        if "MaxValue" in parameter and number > float(parameter["MaxValue"]):
            return f"{name}={value}: at most {parameter['MaxValue']}"
    pattern = parameter.get("AllowedPattern")
    is_text = parameter.get("Type") == "String"
    if pattern is not None and is_text and not re.fullmatch(pattern, value):
        return f"{name}={value!r}: does not match {pattern}"
    return None


def offline_problems(
    config: DeployConfig, parameters: Mapping[str, Mapping[str, Any]], *, root: Path
) -> list[str]:
    """Everything wrong with ``config`` that can be known without AWS, each naming a value."""
    problems: list[str] = []
    where = f"[{config.environment}]"
    for command, values in config.sections.items():
        for key, setting in values.items():
            if key == "parameter_overrides":
                continue
            if PLACEHOLDER.search(str(setting)):
                problems.append(f"{where} {command}.{key} = {setting!r}: placeholder left")
    given = dict(config.overrides)
    for name, text in given.items():
        if PLACEHOLDER.search(text):
            problems.append(f"{where} parameter {name} = {text!r}: placeholder left")
        elif name not in parameters:
            problems.append(f"{where} parameter {name}: not a parameter of template.yaml")
        else:
            problem = _constraint_problem(name, text, parameters[name])
            if problem:
                problems.append(f"{where} parameter {problem}")
    for name, parameter in parameters.items():
        if "Default" not in parameter and name not in given:
            problems.append(f"{where} parameter {name}: required, not set")

    def value(name: str) -> str:
        return str(given.get(name, parameters.get(name, {}).get("Default", "")))

    yours = {
        "network": value("VpcSubnetIds") != "",
        "kafka": value("MskClusterArn") != "",
        "database": value("DatabaseHost") != "",
    }
    if yours["network"] and value("VpcSecurityGroupIds") == "":
        problems.append(f"{where} parameter VpcSecurityGroupIds: required with VpcSubnetIds")
    if yours["network"] and not (yours["kafka"] and yours["database"]) and not value("VpcId"):
        problems.append(
            f"{where} parameter VpcId: required with VpcSubnetIds when the stack creates the "
            "cluster or the database"
        )
    if yours["database"]:
        if value("DatabaseAuth") == "secret" and not value("DatabaseSecretArn"):
            problems.append(
                f"{where} parameter DatabaseSecretArn: required with DatabaseAuth=secret"
            )
        if value("DatabaseAuth") == "iam" and not value("DatabaseResourceId"):
            problems.append(f"{where} parameter DatabaseResourceId: required with DatabaseAuth=iam")
        host = value("DatabaseHost")
        cert = value("DatabaseSslRootCert")
        if host.endswith(".rds.amazonaws.com") and ".proxy-" not in host:
            if not cert:
                problems.append(
                    f"{where} parameter DatabaseSslRootCert: required for the direct RDS endpoint "
                    f"{host} (its certificate is from the RDS CA, not in the system store; "
                    "see docs/deploy.md)"
                )
            elif cert.startswith("/opt/certs/"):
                bundle = root / "layers/webchecker/certs" / cert.removeprefix("/opt/certs/")
                if not bundle.is_file():
                    problems.append(
                        f"{where} parameter DatabaseSslRootCert={cert}: {bundle} does not exist"
                    )
    try:
        low, high = int(value("WriterMinimumPollers")), int(value("WriterMaximumPollers"))
    except ValueError:
        pass  # already reported as not a number
    else:
        if low > high:
            problems.append(
                f"{where} parameter WriterMaximumPollers={high}: below WriterMinimumPollers={low}"
            )
    return problems


def region_problem(config: DeployConfig, region: str | None) -> str | None:
    if config.region or region:
        return None
    import boto3

    # botocore reads AWS_DEFAULT_REGION and the profile; make deploy passes AWS_REGION on.
    if os.environ.get("AWS_REGION") or boto3.session.Session().region_name:
        return None
    return (
        f"[{config.environment}] no region: set AWS_REGION, AWS_DEFAULT_REGION or your "
        "profile's region (aws configure), or pass REGION=... to make deploy"
    )


def concurrency_problem(*, wanted: int, unreserved: int, limit: int, current: int) -> str | None:
    """Whether reserving ``wanted`` for the checker leaves Lambda's minimum unreserved.

    ``unreserved`` is what the account has unreserved now; ``current`` the checker's own
    reservation today (released when it changes), so a redeploy is judged correctly.
    """
    if wanted <= 0:
        return None
    left = unreserved + current - wanted
    if left >= UNRESERVED_MINIMUM:
        return None
    return (
        f"parameter CheckerReservedConcurrency={wanted}: the account's Lambda concurrency "
        f"limit is {limit} with {unreserved + current} unreservable, and Lambda keeps "
        f"{UNRESERVED_MINIMUM} unreserved; it needs at least {wanted + UNRESERVED_MINIMUM} "
        "free (request a higher 'Concurrent executions' quota, L-B99A9384, in Service Quotas, "
        "or lower CheckerReservedConcurrency)"
    )


def account_concurrency_problem(
    config: DeployConfig, *, region: str | None, lambda_client: Any = None
) -> str | None:
    wanted = int(config.overrides.get("CheckerReservedConcurrency", "0") or 0)
    if wanted <= 0:
        return None
    client = lambda_client
    if client is None:
        import boto3

        client = boto3.client("lambda", region_name=region or config.region)
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        limits = client.get_account_settings()["AccountLimit"]
    except (BotoCoreError, ClientError) as error:
        return (
            f"parameter CheckerReservedConcurrency={wanted}: cannot read the account's Lambda "
            f"concurrency (lambda:GetAccountSettings): {error}; PREFLIGHT_ARGS=--offline skips "
            "this check"
        )
    current = 0
    if config.stack_name:
        # The checker's reservation today (a redeploy releases it first). Not found, or not
        # readable by this identity: count none, which can only make the check stricter.
        try:
            reply = client.get_function_concurrency(FunctionName=f"{config.stack_name}-checker")
            current = int(reply.get("ReservedConcurrentExecutions") or 0)
        except (BotoCoreError, ClientError):
            current = 0
    return concurrency_problem(
        wanted=wanted,
        unreserved=int(limits["UnreservedConcurrentExecutions"]),
        limit=int(limits["ConcurrentExecutions"]),
        current=current,
    )
