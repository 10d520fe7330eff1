"""`webchecker local`: not implemented yet (placeholder so the CLI imports)."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Adds nothing until the command exists."""
