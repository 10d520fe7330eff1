"""A newer OpenSSL for the checker benchmarks, taken from a wheel on PyPI (issue 14).

Python's ``ssl`` module links ``libssl.so.3`` and ``libcrypto.so.3`` dynamically, and every
OpenSSL 3.x release keeps that ABI, so pointing ``LD_LIBRARY_PATH`` at a newer pair makes
the same interpreter, the same checker code and the same ``ssl`` calls run on a newer
OpenSSL. That matters for the figures: this machine's Debian 12 has OpenSSL 3.0, whose
certificate decoding is several times slower than 3.1 and later, while Lambda's Python
runtimes are built on Amazon Linux 2023, which ships OpenSSL 3.2.

The libraries come from ``psycopg-binary`` (pinned below: OpenSSL 3.5.9), whose manylinux
wheels carry them (renamed by auditwheel; their sonames are kept, so one copy is loaded).
Nothing is installed: the two files are unpacked into DIRECTORY beside symlinks with the
names Python looks for::

    .venv/bin/python bench/newer_openssl.py /tmp/openssl-3.5
    LD_LIBRARY_PATH=/tmp/openssl-3.5 .venv/bin/python bench/bench_realistic.py --only-cpu

The benchmarks print ``ssl.OPENSSL_VERSION`` so that every figure says which one it used.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

WHEEL = "psycopg-binary==3.3.9"
LIBRARIES = ("libssl", "libcrypto")


def unpack(directory: Path) -> str:
    """Downloads the wheel, unpacks its OpenSSL into ``directory``, returns its version."""
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as download:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--only-binary=:all:",
                "--dest",
                download,
                WHEEL,
            ],
            check=True,
        )
        (wheel,) = Path(download).glob("*.whl")
        with zipfile.ZipFile(wheel) as archive:
            for name in archive.namelist():
                file = Path(name).name
                library = next((lib for lib in LIBRARIES if file.startswith(f"{lib}-")), None)
                if library is None or not file.endswith(".so.3"):
                    continue
                (directory / file).write_bytes(archive.read(name))
                link = directory / f"{library}.so.3"
                link.unlink(missing_ok=True)
                link.symlink_to(file)
    missing = [lib for lib in LIBRARIES if not (directory / f"{lib}.so.3").exists()]
    if missing:
        raise SystemExit(f"{WHEEL} carries no {', '.join(missing)}: pick another wheel")
    probe = subprocess.run(
        [sys.executable, "-c", "import ssl; print(ssl.OPENSSL_VERSION)"],
        env={**os.environ, "LD_LIBRARY_PATH": str(directory)},
        check=True,
        capture_output=True,
        text=True,
    )
    return probe.stdout.strip()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    args = parser.parse_args(argv)
    version = unpack(args.directory.resolve())
    print(f"{version}: run with LD_LIBRARY_PATH={args.directory.resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
