"""An embedded PostgreSQL server: the binaries shipped in the ``pgserver`` wheel, unix socket only.

Used by the tests, the benchmarks and the local stack when ``DATABASE_URL`` is not set.
We drive ``initdb``/``pg_ctl`` ourselves rather than ``pgserver.get_server()`` because the
tests need to stop and start the same server on purpose, and because a server whose owner
died (SIGKILL skips every cleanup hook) has to be found and stopped.

Ownership: the process that started the server writes its pid (and start time) into
``webchecker-owner`` in the data directory. Another process that finds the server running:
- with a live owner, shares it and leaves it running when done (``webchecker report`` while
  ``webchecker local`` runs);
- with a dead owner, stops it (it is stale) and starts its own.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import subprocess
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from webchecker.config import env_optional
from webchecker.exceptions import WebcheckerError
from webchecker.local.embedded.service import Service

logger = logging.getLogger(__name__)

DEFAULT_DATA_DIR = Path(".webchecker/postgres")
SUPERUSER = "postgres"
#: PostgreSQL refuses to run as root; as root we run it as this system user (as pgserver does).
SYSTEM_USER = "pgserver"
_OWNER_FILE = "webchecker-owner"
_SOCKET_PORT = 5432  # names the socket file; no TCP port unless one is asked for
_MAX_SOCKET_PATH = 100  # sun_path is 108 bytes on Linux, 104 on macOS


@dataclass(frozen=True)
class _Postmaster:
    pid: int
    socket_dir: Path


def _pgserver() -> ModuleType:
    try:
        with warnings.catch_warnings():
            # pgserver asks platformdirs for a runtime dir at import; without XDG_RUNTIME_DIR
            # that warns, and the test suite turns warnings into errors
            warnings.simplefilter("ignore")
            import pgserver
            import pgserver.utils
    except ImportError as error:  # a dev dependency: not in the Lambda layer
        raise WebcheckerError(
            "the embedded PostgreSQL needs the pgserver package (make install)"
        ) from error
    return pgserver


def _binaries() -> Path:
    return Path(_pgserver()._commands.POSTGRES_BIN_PATH)  # not exported by pgserver/__init__


def _process_started_at(pid: int) -> float | None:
    import psutil  # type: ignore[import-untyped]

    try:
        return float(psutil.Process(pid).create_time())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


class EmbeddedPostgres(Service):
    """A PostgreSQL server in ``data_dir``; ``start()``/``stop()`` or use it as a context manager.

    ``stop()`` then ``start()`` restarts it with the same socket, so ``url()`` stays valid:
    that is how tests take the database away under a running writer.
    """

    def __init__(
        self,
        data_dir: Path | str = DEFAULT_DATA_DIR,
        *,
        tcp_port: int | None = None,
        settings: Mapping[str, str] | None = None,
    ) -> None:
        """``tcp_port`` also listens on 127.0.0.1 (the socket stays); ``settings`` are extra
        server settings (``-c name=value``), e.g. ``ssl``."""
        self.data_dir = Path(data_dir).expanduser().absolute()
        self.tcp_port = tcp_port
        self.port = tcp_port or _SOCKET_PORT
        self.settings = dict(settings or {})
        self.socket_dir = self._choose_socket_dir()
        self._owned = False

    # -- public interface -------------------------------------------------------------

    def url(self, database: str = SUPERUSER) -> str:
        """``postgresql://postgres@/<database>?host=<socket dir>`` (trust auth, no password)."""
        port = "" if self.port == _SOCKET_PORT else f":{self.port}"
        return f"postgresql://{SUPERUSER}@{port}/{database}?host={self.socket_dir}"

    def tcp_url(self, database: str = SUPERUSER, host: str = "127.0.0.1") -> str:
        """The URL over TCP (only with ``tcp_port``)."""
        if self.tcp_port is None:
            raise WebcheckerError("this embedded server listens on a unix socket only")
        return f"postgresql://{SUPERUSER}@{host}:{self.tcp_port}/{database}"

    @property
    def running(self) -> bool:
        return self._running_postmaster() is not None

    @property
    def owned(self) -> bool:
        """True when this process started the server (and so stops it)."""
        return self._owned

    def start(self, timeout: float = 30.0) -> EmbeddedPostgres:
        with self._locked():
            postmaster = self._running_postmaster()
            if postmaster is not None:
                if self._owner_alive():
                    self.socket_dir = postmaster.socket_dir
                    self._owned = self._owner_is_me()
                    return self
                logger.warning(
                    "stopping a stale PostgreSQL server (pid %s) in %s: its owner is gone",
                    postmaster.pid,
                    self.data_dir,
                )
                self._pg_ctl("stop", "-m", "fast", "-w", "-t", str(int(timeout)))
            self._initdb()
            self._pg_ctl(
                "start",
                "-w",
                "-t",
                str(int(timeout)),
                "-l",
                str(self.data_dir / "log"),
                "-o",
                self._server_options(),
            )
            self._write_owner()
            self._owned = True
        return self

    def stop_if_stale(self, timeout: float = 30.0) -> bool:
        """Stops the server if it runs without a live owner; True when it did."""
        with self._locked():
            if self._running_postmaster() is None or self._owner_alive():
                return False
            self._pg_ctl("stop", "-m", "fast", "-w", "-t", str(int(timeout)))
            return True

    def stop(self, timeout: float = 30.0) -> None:
        """Stops the server if this process started it; a shared server is left running."""
        if not self._owned:
            return
        self._owned = False
        with self._locked():
            if self._running_postmaster() is not None:
                self._pg_ctl("stop", "-m", "fast", "-w", "-t", str(int(timeout)))
            (self.data_dir / _OWNER_FILE).unlink(missing_ok=True)

    # -- internals --------------------------------------------------------------------

    def _server_options(self) -> str:
        listen = "127.0.0.1" if self.tcp_port else ""
        options = [f"-c listen_addresses='{listen}'", f"-k {self.socket_dir}", f"-p {self.port}"]
        options += [f"-c {name}='{value}'" for name, value in self.settings.items()]
        return " ".join(options)

    def _choose_socket_dir(self) -> Path:
        if len(str(self.data_dir / f".s.PGSQL.{self.port}")) <= _MAX_SOCKET_PATH:
            return self.data_dir
        digest = hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"webchecker-pg-{digest}"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialises start/stop across processes that share the data directory."""
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.data_dir.parent / f".{self.data_dir.name}.lock"
        with open(lock_path, "a") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)

    def _running_postmaster(self) -> _Postmaster | None:
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
        except FileNotFoundError:
            return None
        if len(lines) < 5 or not lines[0].strip().isdigit():
            return None
        pid = int(lines[0])
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass  # exists, owned by another user
        return _Postmaster(pid=pid, socket_dir=Path(lines[4].strip() or self.socket_dir))

    def _read_owner(self) -> dict[str, Any] | None:
        try:
            owner: dict[str, Any] = json.loads((self.data_dir / _OWNER_FILE).read_text())
        except (FileNotFoundError, ValueError):
            return None
        return owner

    def _owner_alive(self) -> bool:
        owner = self._read_owner()
        if owner is None:
            return False
        started = _process_started_at(int(owner["pid"]))
        # the start time guards against a recycled pid
        return started is not None and abs(started - float(owner["started"])) < 1.0

    def _owner_is_me(self) -> bool:
        owner = self._read_owner()
        return owner is not None and int(owner["pid"]) == os.getpid()

    def _write_owner(self) -> None:
        started = _process_started_at(os.getpid())
        (self.data_dir / _OWNER_FILE).write_text(
            json.dumps({"pid": os.getpid(), "started": started})
        )

    def _as_root(self) -> bool:
        return os.geteuid() == 0

    def _prepare_for_system_user(self) -> None:
        utils = _pgserver().utils
        utils.ensure_user_exists(SYSTEM_USER)
        binaries = _binaries()
        utils.ensure_prefix_permissions(binaries)
        utils.ensure_folder_permissions(binaries, 0o055)
        utils.ensure_folder_permissions(binaries.parent / "lib", 0o044)
        for directory in {self.data_dir, self.socket_dir}:
            directory.mkdir(parents=True, exist_ok=True)
            utils.ensure_prefix_permissions(directory)
            shutil.chown(directory, SYSTEM_USER, SYSTEM_USER)

    def _initdb(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        if self._as_root():
            self._prepare_for_system_user()
        if (self.data_dir / "PG_VERSION").exists():
            return
        self._run(
            "initdb",
            "-D",
            str(self.data_dir),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--no-instructions",
        )

    def _pg_ctl(self, *args: str) -> None:
        self._run("pg_ctl", "-D", str(self.data_dir), *args)

    def _run(self, program: str, *args: str) -> None:
        command = [str(_binaries() / program), *args]
        kwargs: dict[str, Any] = {"user": SYSTEM_USER} if self._as_root() else {}
        # pg_ctl's server inherits our stdout: a file, not a pipe, or run() never returns
        with tempfile.TemporaryFile() as output:
            result = subprocess.run(
                command,
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                check=False,
                start_new_session=True,  # Ctrl-C in a terminal reaches us, not the server
                **kwargs,
            )
            if result.returncode != 0:
                output.seek(0)
                text = output.read().decode(errors="replace").strip()
                log = self.data_dir / "log"
                if program == "pg_ctl" and log.exists():
                    text += "\n" + log.read_text(errors="replace")[-2000:]
                raise WebcheckerError(f"{program} {' '.join(args[:3])} failed: {text}")


_started: dict[Path, EmbeddedPostgres] = {}


def database_url(data_dir: Path | str | None = None) -> str:
    """``DATABASE_URL`` if set, else the URL of an embedded server in ``data_dir``.

    The embedded server (default ``.webchecker/postgres``) is started once per process and
    stopped when the process exits, unless another live process owns it.
    """
    url = env_optional("DATABASE_URL")
    if url:
        return url
    path = Path(data_dir or DEFAULT_DATA_DIR).expanduser().absolute()
    server = _started.get(path)
    if server is None:
        server = _started[path] = EmbeddedPostgres(path).start()
        atexit.register(server.stop)
    return server.url()
