"""Runs every benchmark in bench/ (files named bench_*.py), each in its own process.

Each benchmark measures a baseline in the same run and prints its ratio against it.
``make bench BENCH_ARGS=checker`` runs only the benchmarks whose name contains "checker".
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    selected = [
        path
        for path in sorted(HERE.glob("bench_*.py"))
        if not argv or any(word in path.stem for word in argv)
    ]
    failures = 0
    for path in selected:
        print(f"\n=== {path.stem} ===", flush=True)
        failures += subprocess.run([sys.executable, str(path)], check=False).returncode != 0
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
