"""The whole local pipeline under load: 10,000 sites, three ticks, every check to a row.

Parameter Store (moto) -> scheduler -> local Lambda Invoke API -> checker containers
(worker processes) -> Kafka (Tansu) -> poller -> writer -> PostgreSQL (embedded), the same
stack as ``webchecker local``. The targets are ``bench/slow_target.py`` in a process of its
own (an asyncio protocol server, so that the target is not what limits the pipeline),
answering every request after an emulated ``LATENCY_MS``. Ticks are fired back to back (the
next as soon as the previous tick's checker invocations have finished), so the rate is what
the pipeline sustains on this machine.

Reported: checks per minute sustained, the CPU seconds each component used while the checks
ran (per process, from /proc), check-to-row latency (``stored_at - checked_at``)
p50/p99, lost and duplicated rows (both must be 0), peak memory of each component, and the
AWS Lambda cost per million checks computed from the measured checker and writer durations,
next to Route 53 health checks and CloudWatch Synthetics. Baseline, measured in the same
run: the same checks one after another (the checker's own probe, one site at a time).
Results go to bench/RESULTS.md (this benchmark's section is replaced).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil

from bench_checker import start_target
from webchecker.check.probe import ProbeSettings, check_site
from webchecker.local.embedded.lambda_api import LambdaApi
from webchecker.local.settings import NOTIFIER
from webchecker.local.stack import CHECKER, SCHEDULER, WRITER, LocalSettings, LocalStack
from webchecker.sites import Site

SITES = 10_000
TICKS = 5
CHECKS_PER_INVOCATION = LocalSettings().checks_per_invocation
SITES_PER_PARAMETER = 50  # arrays keep Parameter Store at 200 parameters
BASELINE_SAMPLE = 200
#: Every target answers after this long: loopback answers in well under a millisecond,
#: which would flatter checking one site after another (the baseline) beyond reason.
LATENCY_MS = 50
CHECKER_WORKERS = max(2, os.cpu_count() or 2)
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
SECTION = "## Pipeline (bench_pipeline.py)"

# AWS prices assumed (us-east-1, arm64, on-demand, no free tier), and the memory sizes the
# SAM template gives the functions.
PRICE_GB_SECOND = 0.0000133334
PRICE_PER_MILLION_REQUESTS = 0.20
MEMORY_MB = {SCHEDULER: 512, CHECKER: 256, WRITER: 1024}
ROUTE53_AWS, ROUTE53_NON_AWS = 0.50, 0.75  # per basic health check per month (30 s interval)
SYNTHETICS_PER_RUN = 0.0012
MINUTES_PER_MONTH = 30 * 24 * 60


class PeakMemory:
    """Samples the RSS (PSS for PostgreSQL's processes, which share buffers) of components."""

    def __init__(self, components: dict[str, Callable[[], list[psutil.Process]]]) -> None:
        self.components = components
        self.peaks = dict.fromkeys(components, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            for name, processes in self.components.items():
                total = 0
                for process in processes():
                    try:
                        if name == "postgresql":
                            total += process.memory_full_info().pss
                        else:
                            total += process.memory_info().rss
                    except psutil.Error:
                        continue
                self.peaks[name] = max(self.peaks[name], total)
            self._stop.wait(1.0)  # PSS reads (smaps) cost the stack CPU: once a second


def cpu_seconds(processes: list[psutil.Process]) -> dict[int, tuple[float, float]]:
    """(user, system) CPU seconds of each process so far (gone processes are left out)."""
    seconds: dict[int, tuple[float, float]] = {}
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue
        seconds[process.pid] = (times.user, times.system)
    return seconds


class CpuUsage:
    """CPU seconds each component used between ``start()`` and ``stop()``.

    Per process, so a container that exits (or a PostgreSQL backend) only loses what it
    used in the window; machine-wide busy time (other tenants included) comes from
    /proc/stat for comparison.
    """

    def __init__(self, components: dict[str, Callable[[], list[psutil.Process]]]) -> None:
        self.components = components
        self._before: dict[str, dict[int, tuple[float, float]]] = {}
        self.used: dict[str, float] = {}
        self.system: dict[str, float] = {}  # the kernel's part of ``used``
        self.machine_busy = 0.0
        self._machine_before = 0.0
        self.seconds = 0.0  # wall time between start() and stop()

    @staticmethod
    def _machine() -> float:
        times = psutil.cpu_times()
        # guest time is already in user; steal is the hypervisor's, not this machine's work
        busy = ("user", "nice", "system", "irq", "softirq")
        return float(sum(getattr(times, name, 0.0) for name in busy))

    def start(self) -> None:
        self._before = {name: cpu_seconds(find()) for name, find in self.components.items()}
        self._machine_before = self._machine()
        self.seconds = -time.monotonic()

    def stop(self) -> None:
        self.machine_busy = self._machine() - self._machine_before
        self.seconds += time.monotonic()
        for name, find in self.components.items():
            before = self._before.get(name, {})
            after = cpu_seconds(find())
            user = sum(u - before.get(pid, (0.0, 0.0))[0] for pid, (u, _) in after.items())
            system = sum(k - before.get(pid, (0.0, 0.0))[1] for pid, (_, k) in after.items())
            self.used[name], self.system[name] = user + system, system


def postgres_processes(data_dir: Path) -> list[psutil.Process]:
    try:
        pid = int((data_dir / "postmaster.pid").read_text().split()[0])
        postmaster = psutil.Process(pid)
        return [postmaster, *postmaster.children()]
    except (OSError, ValueError, psutil.Error):
        return []


def pid_process(pid: int | None) -> list[psutil.Process]:
    try:
        return [psutil.Process(pid)] if pid else []
    except psutil.Error:
        return []


def containers(api: LambdaApi, name: str) -> Callable[[], list[psutil.Process]]:
    """The running containers (worker processes) of one function."""
    return lambda: [
        process for pid in api.worker_pids().get(name, []) for process in pid_process(pid)
    ]


def put_sites(stack: LocalStack, target: str, count: int) -> None:
    client = stack.ssm()
    path = stack.settings.sites_path
    for first in range(0, count, SITES_PER_PARAMETER):
        sites = [
            {"id": f"site-{n:05d}", "url": f"{target}/healthy?site={n}"}
            for n in range(first, min(count, first + SITES_PER_PARAMETER))
        ]
        client.put_parameter(
            Name=f"{path}/bench/{first // SITES_PER_PARAMETER:03d}",
            Value=json.dumps(sites, separators=(",", ":")),
            Type="String",
            Tier="Intelligent-Tiering",
        )


def sequential_baseline(target: str) -> float:
    """Checks per minute, one site after another, with the checker's probe."""
    settings = ProbeSettings(allow_private_targets=True, concurrency=1)
    sites = [Site(id=f"base-{n}", url=f"{target}/healthy?site={n}") for n in range(BASELINE_SAMPLE)]
    tick = datetime.now(UTC).replace(second=0, microsecond=0)

    async def run() -> None:
        for site in sites:
            result = await check_site(site, scheduled_at=tick, settings=settings)
            assert result.ok, result

    started = time.perf_counter()
    asyncio.run(run())
    return BASELINE_SAMPLE / (time.perf_counter() - started) * 60


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = psutil.virtual_memory().total / 2**30
    return (
        f"{model}, {os.cpu_count()} CPUs, {memory:.0f} GiB RAM, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}"
    )


def write_results(lines: list[str]) -> None:
    header = "# Benchmark results\n\nOne section per benchmark, replaced by its latest run.\n"
    text = RESULTS.read_text() if RESULTS.exists() else header
    section = "\n".join([SECTION, *lines]) + "\n"
    if SECTION in text:
        before, rest = text.split(SECTION, 1)
        after = rest[rest.find("\n## ") + 1 :] if "\n## " in rest else ""
        text = before + section + ("\n" + after if after else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    RESULTS.write_text(text)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sites", type=int, default=SITES)
    parser.add_argument("--ticks", type=int, default=TICKS)
    parser.add_argument("--checks-per-invocation", type=int, default=CHECKS_PER_INVOCATION)
    parser.add_argument("--checker-workers", type=int, default=CHECKER_WORKERS)
    parser.add_argument(
        "--no-results", action="store_true", help="print only; leave bench/RESULTS.md alone"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    sites, ticks_count = args.sites, args.ticks
    state_dir = Path(tempfile.mkdtemp(prefix="webchecker-bench-"))
    demo, demo_port = start_target(LATENCY_MS)
    target = f"http://127.0.0.1:{demo_port}"
    settings = LocalSettings(
        state_dir=state_dir,
        seed=False,
        persist_sites=False,
        public_sites=False,
        demo_port=None,
        checker_workers=args.checker_workers,
        checks_per_invocation=args.checks_per_invocation,
        retry_delays=(1.0, 2.0),
        function_env={"POWERTOOLS_LOG_LEVEL": "WARNING"},
    )
    try:
        baseline = sequential_baseline(target)
        print(f"baseline: {BASELINE_SAMPLE} checks one after another: {baseline:,.0f} checks/min")
        with LocalStack(settings) as stack:
            put_sites(stack, target, sites)
            tansu_pid = json.loads((state_dir / "run" / "tansu.pid").read_text())["pid"]
            components: dict[str, Callable[[], list[psutil.Process]]] = {
                "stack (ticks, Lambda API, poller)": lambda: [psutil.Process()],
                "broker (Tansu)": lambda: pid_process(tansu_pid),
                "postgresql": lambda: postgres_processes(state_dir / "postgres"),
                "parameter store (moto)": lambda: pid_process(stack.aws.pid if stack.aws else 0),
                "status page (its renderer, every 5 ticks)": lambda: pid_process(
                    stack.status_site.pid
                ),
                "targets (bench/slow_target.py)": lambda: pid_process(demo.pid),
            }
            assert stack.lambda_api is not None
            api = stack.lambda_api
            cpu = CpuUsage(
                {
                    **components,
                    **{
                        name: containers(api, name)
                        for name in (SCHEDULER, CHECKER, WRITER, NOTIFIER)
                    },
                }
            )
            first_tick = stack.clock.start + timedelta(days=1)
            ticks = [first_tick + timedelta(minutes=n) for n in range(ticks_count)]
            with PeakMemory(components) as memory:
                cpu.start()
                started = time.monotonic()
                for tick in ticks:
                    summary = stack.tick(tick)
                    assert summary["due"] == sites, summary
                    assert api.drain(300), "checker invocations did not finish"
                assert stack.wait_for_writer(timeout=300), "the writer did not catch up"
                elapsed = time.monotonic() - started
                # the status page a tick started in the background: its CPU is counted too
                stack.status_site.wait(120)
                cpu.stop()
            with stack.database.transaction() as connection:
                rows = connection.run(
                    "SELECT site_id, scheduled_at, "
                    "EXTRACT(EPOCH FROM stored_at - checked_at) * 1000 "
                    "FROM webchecker.checks "
                    "WHERE scheduled_at = ANY(CAST(:ticks AS timestamptz[]))",
                    ticks=ticks,
                )
            stats = {name: api.stats[name] for name in (SCHEDULER, CHECKER, WRITER)}
            writer_records = stack.handed_over
            failures = len(api.failures)
    finally:
        demo.terminate()
        demo.wait()
        shutil.rmtree(state_dir, ignore_errors=True)

    expected = sites * ticks_count
    pairs = {(site_id, scheduled_at) for site_id, scheduled_at, _ in rows}
    lost = expected - len(pairs)
    duplicated = len(rows) - len(pairs)
    latencies = [float(latency) for _, _, latency in rows]
    rate = len(pairs) / elapsed * 60
    p50, p99 = percentile(latencies, 0.50), percentile(latencies, 0.99)

    checker = stats[CHECKER]
    writer = stats[WRITER]
    scheduler = stats[SCHEDULER]
    checks_per_invocation = expected / max(1, len(checker.durations_ms))
    records_per_batch = writer_records / max(1, len(writer.durations_ms))

    def gb_seconds(durations: list[float], memory_mb: int) -> float:
        # Lambda bills each invocation rounded up to the millisecond.
        return sum(int(d + 0.999) / 1000 for d in durations) * memory_mb / 1024

    checker_gbs = gb_seconds(checker.durations_ms, MEMORY_MB[CHECKER]) / expected * 1e6
    writer_gbs = gb_seconds(writer.durations_ms, MEMORY_MB[WRITER]) / expected * 1e6
    scheduler_gbs = (
        gb_seconds(scheduler.durations_ms[-ticks_count:], MEMORY_MB[SCHEDULER]) / expected * 1e6
    )
    requests = (len(checker.durations_ms) + len(writer.durations_ms) + ticks_count) / expected * 1e6
    compute = (checker_gbs + writer_gbs + scheduler_gbs) * PRICE_GB_SECOND
    request_cost = requests / 1e6 * PRICE_PER_MILLION_REQUESTS
    lambda_cost = compute + request_cost
    site_months = 1e6 / MINUTES_PER_MONTH  # sites checked once a minute for a month
    route53 = (site_months * ROUTE53_AWS, site_months * ROUTE53_NON_AWS)
    synthetics = 1e6 * SYNTHETICS_PER_RUN

    def mib(value: float) -> str:
        return f"{value / 2**20:,.0f} MiB"

    memory_lines = [f"  {name}: {mib(peak)}" for name, peak in memory.peaks.items()]
    for name, function_stats in ((SCHEDULER, scheduler), (CHECKER, checker), (WRITER, writer)):
        peak = max(function_stats.max_rss_kb.values(), default=0) * 1024
        memory_lines.append(
            f"  {name}: {mib(peak)} per container (largest of {len(function_stats.max_rss_kb)}, "
            f"configured {MEMORY_MB[name]} MB in template.yaml)"
        )

    pipeline_cpu = sum(cpu.used.values())
    cpu_lines = [
        f"  {name}: {used:,.1f} ({used / expected * 1000:.2f}; "
        f"{cpu.system[name] / max(used, 1e-9):.0%})"
        for name, used in sorted(cpu.used.items(), key=lambda item: -item[1])
    ]
    cpu_lines.append(
        f"  all of the pipeline: {pipeline_cpu:,.1f} ({pipeline_cpu / expected * 1000:.2f}); "
        f"at this cost 2 cores would sustain {2 * 60 / (pipeline_cpu / expected):,.0f} checks/min"
    )
    lines = [
        f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"- machine: {machine()}",
        f"- load: {sites:,} sites x {ticks_count} ticks = {expected:,} checks against loopback "
        f"/healthy answering after {LATENCY_MS} ms; {args.checker_workers} checker containers, "
        f"{args.checks_per_invocation} sites per invocation, ticks back to back",
        f"- sustained: **{rate:,.0f} checks/min** ({len(pairs):,} checks stored in "
        f"{elapsed:.1f} s)",
        f"- baseline (same checks one after another, checker probe, same run): "
        f"{baseline:,.0f} checks/min; ratio **{rate / baseline:.1f}x**",
        f"- check-to-row latency (stored_at - checked_at): p50 {p50:,.0f} ms, p99 {p99:,.0f} ms",
        f"- lost rows: **{lost}**, duplicated rows: **{duplicated}**, "
        f"checker events dropped after retries: {failures}",
        f"- CPU from the first tick until the writer caught up and the status page was "
        f"rendered ({cpu.seconds:.1f} s; the machine's 2 cores were busy "
        f"{cpu.machine_busy:.1f} CPU-s in all, other tenants included), per component: "
        "CPU-s (ms per check; the kernel's share)",
        *cpu_lines,
        "- peak memory (RSS; PostgreSQL as PSS summed over its processes):",
        *memory_lines,
        f"- measured durations: checker {statistics.mean(checker.durations_ms):,.0f} ms per "
        f"invocation of {checks_per_invocation:.0f} checks (p99 "
        f"{percentile(checker.durations_ms, 0.99):,.0f} ms); writer "
        f"{statistics.mean(writer.durations_ms):,.0f} ms per batch of {records_per_batch:,.0f} "
        f"records; scheduler {statistics.mean(scheduler.durations_ms[-ticks_count:]):,.0f} ms "
        "per tick",
        "- AWS cost per million checks (assumptions: arm64 at $0.0000133334 per GB-second and "
        "$0.20 per million requests, no free tier; memory as in template.yaml: checker "
        f"{MEMORY_MB[CHECKER]} MB, writer {MEMORY_MB[WRITER]} MB, scheduler "
        f"{MEMORY_MB[SCHEDULER]} MB; durations as measured here, with targets answering "
        f"in {LATENCY_MS} ms: real sites vary, and a checker invocation lasts as long as the "
        f"slowest site of its {args.checks_per_invocation} (up to its timeout); MSK, RDS and "
        "Parameter Store not included):",
        f"  Lambda: **${lambda_cost:.3f}** (checker {checker_gbs:,.1f} GB-s, writer "
        f"{writer_gbs:,.1f} GB-s, scheduler {scheduler_gbs:,.1f} GB-s = "
        f"${compute:.3f}; {requests:,.0f} requests = ${request_cost:.4f})",
        f"  Route 53 health checks: ${route53[0]:.2f} (AWS endpoints, $0.50/month) to "
        f"${route53[1]:.2f} (other endpoints, $0.75/month): one million checks at one per "
        f"minute is {site_months:.1f} sites for a month; each basic health check probes every "
        "30 s from several regions, string matching and the 10 s interval cost extra",
        f"  CloudWatch Synthetics: ${synthetics:,.0f} ($0.0012 per canary run, one run per "
        "check; the canary's own Lambda and S3 costs not included)",
    ]
    print("\n".join([SECTION, *lines]))
    if not args.no_results:
        write_results(lines)
    return 0 if lost == 0 and duplicated == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
