"""CPU per check of the checker's probe alone, for profiling (issue 14).

Starts the realistic benchmark's targets and PKI (``bench_realistic.py``), takes the first
``--sites`` answering sites of one scheme from its mix (seed 14, no regex), warms up on
10 of them, then runs ``check_sites`` over all of them ``--rounds`` times, 20 at a time,
in this process, printing CPU per check (user and system) for each round.

Wall-clock CPU is noisy on a shared machine; instruction counts are not. For those, run
the same command under callgrind with ``--rounds 0`` and ``--rounds 1`` and divide the
difference of the two ``I refs`` totals by ``--sites``::

    valgrind --tool=callgrind --callgrind-out-file=/tmp/r0.out \\
        .venv/bin/python bench/probe_cpu.py --rounds 0
    valgrind --tool=callgrind --callgrind-out-file=/tmp/r1.out \\
        .venv/bin/python bench/probe_cpu.py --rounds 1

``--profile FILE`` writes a cProfile of the last round instead.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import datetime as dt
import resource
import ssl
import sys
import tempfile
from pathlib import Path

import bench_realistic as realistic
from webchecker.check.probe import ProbeSettings, check_sites
from webchecker.sites import Site


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scheme", choices=("https", "http"), default="https")
    parser.add_argument("--sites", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", type=Path, help="write a cProfile of the last round here")
    args = parser.parse_args(argv)
    directory = Path(tempfile.mkdtemp(prefix="probe-cpu-"))
    ca, chain, key = realistic.make_pki(directory)
    with realistic.targets(2, chain, key) as (http_port, https_port):
        mix = realistic.make_mix(3000, 14, http_port, https_port)
        sites = [
            Site.from_dict(m.site)
            for m in mix
            if m.kind == "ok"
            and m.site["url"].startswith(f"{args.scheme}:")
            and "regex" not in m.site
        ][: args.sites]
        settings = ProbeSettings(allow_private_targets=True, ca_bundle=str(ca), concurrency=20)

        def run(batch: list[Site]) -> int:
            now = dt.datetime.now(dt.UTC)
            results = asyncio.run(check_sites(batch, scheduled_at=now, settings=settings))
            return sum(result.ok for result in results)

        run(sites[:10])
        for round_number in range(args.rounds):
            profile = cProfile.Profile() if args.profile else None
            before = resource.getrusage(resource.RUSAGE_SELF)
            if profile is not None:
                profile.enable()
            passed = run(sites)
            if profile is not None:
                profile.disable()
                profile.dump_stats(args.profile)
            after = resource.getrusage(resource.RUSAGE_SELF)
            user = (after.ru_utime - before.ru_utime) / len(sites) * 1000
            system = (after.ru_stime - before.ru_stime) / len(sites) * 1000
            print(
                f"round {round_number + 1}: {user + system:.2f} ms CPU per {args.scheme} check "
                f"(user {user:.2f}, system {system:.2f}); {passed}/{len(sites)} ok; "
                f"{ssl.OPENSSL_VERSION}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
