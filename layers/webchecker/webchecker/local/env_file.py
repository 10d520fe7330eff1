"""``STATE_DIR/env``: what another terminal sources to use the running stack.

Written with mode 0600 (it holds the database URL, password included) and every value
shell-quoted, so any password survives ``source``. When Kafka is the embedded broker, the
file also sets ``WEBCHECKER_LOCAL_KAFKA`` to its address: a terminal that sourced the file
and starts ``webchecker local`` again must not take that broker (gone with its run) for
the user's own (``LocalSettings.from_env``).
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable, Mapping
from pathlib import Path

from webchecker.local.embedded.service import Service


def render(variables: Mapping[str, str]) -> str:
    """``export NAME=value`` lines that a POSIX shell reads back exactly."""
    return "".join(f"export {name}={shlex.quote(value)}\n" for name, value in variables.items())


def read(path: Path) -> dict[str, str]:
    """The variables of a file written by ``render`` (for tests and tools)."""
    variables: dict[str, str] = {}
    for line in path.read_text().splitlines():
        words = shlex.split(line, comments=True)
        if len(words) == 2 and words[0] == "export" and "=" in words[1]:
            name, _, value = words[1].partition("=")
            variables[name] = value
    return variables


def write_private(path: Path, text: str) -> None:
    """Writes ``text`` readable by the owner only (atomically: no moment with other modes)."""
    partial = path.with_name(path.name + ".partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        os.fchmod(file.fileno(), 0o600)  # an older partial file may have had another mode
        file.write(text)
    partial.replace(path)


class EnvFile(Service):
    """Writes the variables at start (the file's appearance says the stack is up)."""

    def __init__(self, path: Path, variables: Callable[[], Mapping[str, str]]) -> None:
        self.path = path
        self.variables = variables

    def start(self) -> EnvFile:
        write_private(self.path, render(self.variables()))
        return self

    def stop(self) -> None:
        """The file stays (the next start rewrites it); its embedded addresses are marked."""
