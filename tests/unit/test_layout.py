"""The package follows the data: no stage imports one that comes after it.

scheduler -> checker -> Kafka -> writer -> PostgreSQL -> notifier / API / status page. The
shared language (site model, message, settings, errors, histogram) sits below every stage;
``cli/``, ``local/`` and ``provision/`` are edges that may use any stage.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "layers" / "webchecker" / "webchecker"

# Lower rank first; a module may import its own rank or a lower one.
RANKS = {
    "exceptions": 0,
    "config": 0,
    "histogram": 0,
    "sites": 0,
    "results": 0,
    "schedule": 1,
    "check": 2,
    "store": 3,
    "report": 4,
    "alert": 5,
    "api": 6,
    "page": 6,
}
EDGES = {"cli", "local", "provision", "__init__", "__main__"}


def unit_of(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def imported_units(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules = [node.module]
            if node.module == "webchecker":  # from webchecker import x
                modules = [f"webchecker.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        else:
            continue
        names |= {m.split(".")[1] for m in modules if m.startswith("webchecker.")}
    return names


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if unit_of(p) not in EDGES)


def test_every_unit_of_the_package_has_a_place_in_the_flow() -> None:
    units = {p.relative_to(PACKAGE).parts[0].removesuffix(".py") for p in PACKAGE.iterdir()}
    units -= {"py.typed", "__pycache__"}
    assert units - EDGES - set(RANKS) == set()


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_stage_imports_a_later_one(path: Path) -> None:
    unit = unit_of(path)
    later = {name for name in imported_units(path) if RANKS.get(name, 99) > RANKS[unit]}
    assert later == set(), f"{unit} imports {sorted(later)}, which come after it in the flow"
