"""Rendering a CloudFormation template offline for tests: parameter values in, the
resources that would exist out, with every ``Fn::If`` decided and ``AWS::NoValue`` gone.

Only what the project's templates use is supported (Ref, Condition, Fn::Equals, Not, And,
Or, Join on conditions; Fn::Contains and Fn::EachMemberEquals in Rules). Anything else in a
condition is an error, so a template change the renderer cannot follow fails loudly.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from cfnlint.decode import decode

ROOT = Path(__file__).resolve().parents[1]
ENVIRONMENTS = ("default", "staging", "prod")
NO_VALUE = {"Ref": "AWS::NoValue"}


def load(path: Path) -> dict[str, Any]:
    decoded, errors = decode(str(path))
    assert errors == [], errors
    assert decoded is not None
    return dict(decoded)


def samconfig_overrides(environment: str) -> dict[str, str]:
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    pairs = config[environment]["global"]["parameters"]["parameter_overrides"]
    return dict(re.fullmatch(r'(\w+)="(.*)"', p).groups() for p in pairs)  # type: ignore[union-attr]


def parameter_values(template: dict[str, Any], overrides: dict[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, parameter in template.get("Parameters", {}).items():
        raw = overrides.get(name, parameter.get("Default"))
        assert raw is not None, f"{name} has no value"
        raw = str(raw)
        values[name] = raw.split(",") if "List" in parameter["Type"] else raw
    unknown = set(overrides) - set(values)
    assert not unknown, f"not template parameters: {unknown}"
    return values


def _value(expression: Any, values: dict[str, Any]) -> Any:
    if isinstance(expression, dict):
        ((function, argument),) = expression.items()
        if function == "Ref":
            return values[argument]
        if function == "Fn::Join":
            delimiter, items = argument
            resolved = _value(items, values)
            return delimiter.join(str(v) for v in resolved)
        raise AssertionError(f"unsupported in a condition: {function}")
    if isinstance(expression, list):
        return [_value(item, values) for item in expression]
    return str(expression)


def _truth(expression: Any, values: dict[str, Any], conditions: dict[str, Any]) -> bool:
    ((function, argument),) = expression.items()
    if function == "Fn::Equals":
        left, right = (_value(a, values) for a in argument)
        return bool(left == right)
    if function == "Fn::Not":
        return not _truth(argument[0], values, conditions)
    if function == "Fn::And":
        return all(_truth(a, values, conditions) for a in argument)
    if function == "Fn::Or":
        return any(_truth(a, values, conditions) for a in argument)
    if function == "Condition":
        return _truth(conditions[argument], values, conditions)
    if function == "Fn::Contains":
        haystack, needle = (_value(a, values) for a in argument)
        return needle in haystack
    if function == "Fn::EachMemberEquals":
        members, expected = (_value(a, values) for a in argument)
        return all(m == expected for m in members)
    raise AssertionError(f"unsupported condition function {function}")


def conditions(template: dict[str, Any], values: dict[str, Any]) -> dict[str, bool]:
    raw = template.get("Conditions", {})
    return {name: _truth(expression, values, raw) for name, expression in raw.items()}


def _decide(node: Any, decided: dict[str, bool]) -> Any:
    if isinstance(node, dict):
        if set(node) == {"Fn::If"}:
            name, when_true, when_false = node["Fn::If"]
            return _decide(when_true if decided[name] else when_false, decided)
        out = {}
        for key, value in node.items():
            value = _decide(value, decided)
            if value != NO_VALUE:
                out[key] = value
        return out
    if isinstance(node, list):
        return [v for v in (_decide(item, decided) for item in node) if v != NO_VALUE]
    return node


def render(template: dict[str, Any], overrides: dict[str, str]) -> dict[str, Any]:
    """The template as CloudFormation would create it with these parameter values."""
    values = parameter_values(template, overrides)
    decided = conditions(template, values)
    rendered = {
        key: value for key, value in template.items() if key not in {"Resources", "Outputs"}
    }
    rendered["Parameters"] = values
    rendered["Decided"] = decided
    for section in ("Resources", "Outputs"):
        rendered[section] = {
            name: _decide({k: v for k, v in item.items() if k != "Condition"}, decided)
            for name, item in template.get(section, {}).items()
            if decided.get(item.get("Condition", ""), True)
        }
    if "Globals" in template:
        rendered["Globals"] = _decide(template["Globals"], decided)
    return rendered


def rule_failures(template: dict[str, Any], overrides: dict[str, str]) -> list[str]:
    """The AssertDescription of every Rules assertion these values break."""
    values = parameter_values(template, overrides)
    failures = []
    for rule in template.get("Rules", {}).values():
        condition = rule.get("RuleCondition")
        if condition is not None and not _truth(condition, values, {}):
            continue
        for assertion in rule["Assertions"]:
            if not _truth(assertion["Assert"], values, {}):
                failures.append(assertion["AssertDescription"])
    return failures
