"""``STATE_DIR/env``: what another terminal sources to use the running stack."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from webchecker.local.embedded.service import Service


class EnvFile(Service):
    """Writes the variables at start (the file's appearance says the stack is up)."""

    def __init__(self, path: Path, variables: Callable[[], Mapping[str, str]]) -> None:
        self.path = path
        self.variables = variables

    def start(self) -> EnvFile:
        variables = dict(self.variables())
        lines = [
            f"export {key}={value}" for key, value in variables.items() if key != "DATABASE_URL"
        ]
        lines.append(f"export DATABASE_URL='{variables.get('DATABASE_URL', '')}'")
        self.path.write_text("\n".join(lines) + "\n")
        return self

    def stop(self) -> None:
        """The file stays: its values are stale, which the next start overwrites."""
