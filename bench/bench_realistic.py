"""The checker under real-world conditions: HTTPS, slow tails, hangs, Lambda's CPU share.

The target mix (seeded, ``--seed``; every site's behaviour is in its URL, see
``bench/realistic_target.py``), served on loopback by ``--target-processes`` processes of
their own:

- 80% HTTPS (a CA made for this run: root -> intermediate -> leaf, ECDSA P-256, TLS 1.3,
  the chain passed to the checker with ``CHECKER_CA_BUNDLE``), 20% plain HTTP;
- injected latency log-normal, median 150 ms, p95 1 s (sigma = ln(1000/150)/1.645),
  clipped at 8 s (the sites' timeout is the default 10 s);
- body size log-normal, median 16 KiB, clipped at 256 KiB; 10% of the sites have a regex;
- 1% never answer (the request is read, no response ever comes: a true ``timeout``);
- 3% errors (500, 503, 404 after their latency); 5% redirects (a 302 after a third of the
  latency, then the page after the rest).

Each configuration runs the real checker handler (``functions/checker/app.py``, its
Powertools logging and metrics, publishing to an embedded Kafka broker) in "containers":
processes that take one invocation at a time, each in a cgroup whose CPU quota is
``memory / 1769`` of a core (Lambda's CPU share; cgroup v1 ``cpu.cfs_quota_us`` or v2
``cpu.max``; without a writable cgroup the run is reported as unthrottled). A
configuration's shards are checked on ``--ticks`` ticks by the same warm containers, a
shard going to whichever container is free (as in Lambda); the first tick, where the
containers learn which sites are slow, is not measured.

A site's timing error is its measured ``response_time_ms`` minus the delay its target
really applied (the planned latency plus the target's own event-loop lag, which the
targets log per request; both hops of a redirect): what remains is the exchange on this
machine (name lookup, connect, TLS handshake, request, response and body, the checker's
wakeups; twice for a redirect) plus whatever else the cores were doing. A false timeout is
a ``timeout`` of a site that answers within 8 s.

Baselines measured in the same run: the timing error floor, the same targets checked one
at a time by an unthrottled process before and after the configurations (what this
machine adds by itself), and the first configuration given: every other one prints its
cost as a ratio against it.

Cost per check = (1/r + tail/N) x memory GB x $0.0000133334 + $0.0000002/N, with r the
starts per second, N the sites per invocation and tail the mean duration minus the spread
of the starts (arm64 prices, no free tier, durations as measured here).
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import json
import math
import os
import random
import resource
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where used: a container child loads only the checker
    from webchecker.schedule.slow_sites import SlowSiteHints

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
GB_SECOND = 0.0000133334  # arm64, USD
REQUEST = 0.20 / 1_000_000
FULL_CORE_MB = 1769
LATENCY_MEDIAN_MS = 150.0
LATENCY_SIGMA = math.log(1000.0 / 150.0) / 1.645  # p95 = 1 s
LATENCY_CLIP_MS = 8000
SITE_TIMEOUT_S = 10
CFS_PERIOD_US = 100_000


# --- the mix ----------------------------------------------------------------------------


@dataclass(frozen=True)
class MixSite:
    site: dict[str, Any]
    kind: str  # ok, error, redirect, hang
    injected_ms: float | None  # None: never answers


def make_mix(count: int, seed: int, http_port: int, https_port: int) -> list[MixSite]:
    rng = random.Random(seed)
    mix: list[MixSite] = []
    for n in range(count):
        tls = rng.random() < 0.8
        base = f"https://localhost:{https_port}" if tls else f"http://127.0.0.1:{http_port}"
        latency = int(min(rng.lognormvariate(math.log(LATENCY_MEDIAN_MS), LATENCY_SIGMA), 8000))
        size = int(min(rng.lognormvariate(math.log(16384), 1.0), 262144))
        roll = rng.random()
        regex = rng.random() < 0.1
        site: dict[str, Any] = {"id": f"r{n:06d}", "timeout": SITE_TIMEOUT_S}
        if roll < 0.01:
            kind, injected, path = "hang", None, "/hang"
        elif roll < 0.04:
            status = rng.choice((500, 503, 404))
            kind, injected, path = "error", float(latency), f"/d/{latency}/{status}/{size}"
        elif roll < 0.09:
            first = latency // 3
            kind, injected = "redirect", float(latency)
            path = f"/r/{first}/{latency - first}/{size}"
        else:
            kind, injected, path = "ok", float(latency), f"/d/{latency}/200/{size}"
        site["url"] = f"{base}{path}?id={site['id']}"  # the target logs its lag per id
        if regex:
            site["regex"] = "webchecker-ok"
        mix.append(MixSite(site=site, kind=kind, injected_ms=injected))
    return mix


# --- a CA for this run ------------------------------------------------------------------


def make_pki(directory: Path) -> tuple[Path, Path, Path]:
    """(root CA bundle, server chain, server key) as PEM files in ``directory``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC)

    def name(text: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])

    def builder(subject: str, issuer: str, key: ec.EllipticCurvePrivateKey) -> Any:
        return (
            x509.CertificateBuilder()
            .subject_name(name(subject))
            .issuer_name(name(issuer))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
        )

    def ca_usage() -> x509.KeyUsage:
        return x509.KeyUsage(
            digital_signature=True,
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=True,
            crl_sign=True,
            encipher_only=False,
            decipher_only=False,
        )

    root_key = ec.generate_private_key(ec.SECP256R1())
    root = (
        builder("bench root CA", "bench root CA", root_key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(ca_usage(), critical=True)
        .sign(root_key, hashes.SHA256())
    )
    mid_key = ec.generate_private_key(ec.SECP256R1())
    mid = (
        builder("bench intermediate CA", "bench root CA", mid_key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(ca_usage(), critical=True)
        .sign(root_key, hashes.SHA256())
    )
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        builder("localhost", "bench intermediate CA", leaf_key)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.IPv4Address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(mid_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    ca_path, chain_path, key_path = (directory / n for n in ("ca.pem", "chain.pem", "key.pem"))
    ca_path.write_bytes(root.public_bytes(pem))
    chain_path.write_bytes(leaf.public_bytes(pem) + mid.public_bytes(pem))
    key_path.write_bytes(
        leaf_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return ca_path, chain_path, key_path


# --- Lambda's CPU share -----------------------------------------------------------------


class CpuLimit:
    """A cgroup with a CPU quota (v1 or v2), or nothing when no cgroup is writable."""

    def __init__(self, memory_mb: int, label: str) -> None:
        self.memory_mb = memory_mb
        self.quota_us = int(CFS_PERIOD_US * min(memory_mb, FULL_CORE_MB * 6) / FULL_CORE_MB)
        self.path: Path | None = None
        self.version = 0
        name = f"webchecker-bench-{os.getpid()}-{label}"
        v1 = Path("/sys/fs/cgroup/cpu")
        v2 = Path("/sys/fs/cgroup")
        try:
            if (v1 / "cpu.cfs_quota_us").exists():
                path = v1 / name
                path.mkdir()
                (path / "cpu.cfs_period_us").write_text(str(CFS_PERIOD_US))
                (path / "cpu.cfs_quota_us").write_text(str(self.quota_us))
                self.path, self.version = path, 1
            elif "cpu" in (v2 / "cgroup.controllers").read_text().split():
                path = v2 / name
                path.mkdir()
                (path / "cpu.max").write_text(f"{self.quota_us} {CFS_PERIOD_US}")
                self.path, self.version = path, 2
        except OSError:  # not root, read-only, or no cpu controller: run unthrottled
            self.path = None
            for leftover in (v1 / name, v2 / name):
                with suppress(OSError):
                    leftover.rmdir()

    def join(self) -> None:
        """Moves the calling process into the cgroup (run in the child before exec)."""
        if self.path is not None:
            (self.path / "cgroup.procs").write_text(str(os.getpid()))

    def throttled(self) -> tuple[int, float]:
        """(periods throttled, seconds throttled) so far."""
        if self.path is None:
            return 0, 0.0
        stats = dict(
            line.split() for line in (self.path / "cpu.stat").read_text().splitlines() if line
        )
        if self.version == 1:
            return int(stats.get("nr_throttled", 0)), int(stats.get("throttled_time", 0)) / 1e9
        return int(stats.get("nr_throttled", 0)), int(stats.get("throttled_usec", 0)) / 1e6

    def remove(self) -> None:
        if self.path is not None:
            for _ in range(50):
                try:
                    self.path.rmdir()
                    return
                except OSError:
                    time.sleep(0.1)


# --- one container (child process) -------------------------------------------------------


def run_container() -> int:
    """Child mode: loads the checker handler, then one invocation per line of stdin."""
    out = os.fdopen(os.dup(1), "w")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # Powertools' logs and metrics (CloudWatch's in Lambda) go nowhere
    from webchecker.local.embedded.lambda_api import LocalContext, load_handler

    handler = load_handler(ROOT / "functions/checker/app.py", "lambda_handler", "checker_app")
    app = sys.modules["checker_app"]
    real = app.PUBLISHER
    kept: list[Any] = []

    class Recording:
        """The real publisher, keeping what it was given for the benchmark's accounting."""

        def prepare(self) -> None:
            real.prepare()

        def send(self, result: Any) -> None:
            kept.append(result)
            real.send(result)

        def flush(self) -> int:
            published: int = real.flush()
            return published

    app.PUBLISHER = Recording()
    reported: dict[str, float] = {}

    class Reports:
        """Stands for the slow-site queue: what the checker reports goes into the answer."""

        def send(self, slow: dict[str, float]) -> bool:
            reported.update(slow)
            return True

    app.SLOW_SITES = Reports()
    memory = int(os.environ.get("BENCH_MEMORY_MB", "1024"))
    if not os.environ.get("BENCH_REMEMBER", "1"):
        from webchecker.check import probe

        probe.RECENT.limit = 0  # every slow site is forgotten as soon as it is recorded
    print("ready", file=out, flush=True)
    for line in sys.stdin:
        event = json.loads(line)
        kept.clear()
        reported.clear()
        context = LocalContext(
            function_name="checker",
            aws_request_id=str(uuid.uuid4()),
            memory_limit_in_mb=memory,
            invoked_function_arn="arn:aws:lambda:us-east-1:000000000000:function:checker",
            deadline=time.monotonic() + 120,
        )
        usage = resource.getrusage(resource.RUSAGE_SELF)
        cpu, wall = usage.ru_utime + usage.ru_stime, time.perf_counter()
        handler(event, context)
        wall = time.perf_counter() - wall
        usage = resource.getrusage(resource.RUSAGE_SELF)
        cpu = usage.ru_utime + usage.ru_stime - cpu
        rows = [[r.site_id, r.response_time_ms, r.error, r.status_code] for r in kept]
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        answer = {
            "wall": wall,
            "cpu": cpu,
            "results": rows,
            "peak_mib": peak_mib,
            "slow": reported,
        }
        print(json.dumps(answer), file=out, flush=True)
    return 0


class Container:
    """A child process standing for one warm Lambda container of the checker."""

    def __init__(self, env: dict[str, str], limit: CpuLimit | None) -> None:
        self.limit = limit
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--container"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
            preexec_fn=None if limit is None else limit.join,
        )
        assert self.process.stdout is not None
        if self.process.stdout.readline().strip() != "ready":
            raise SystemExit("a checker container did not start")

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(json.dumps(event) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit("a checker container died")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def stop(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=60)


# --- configurations ---------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    memory_mb: int
    sites: int  # per invocation
    concurrency: int
    spread_s: float = 0.0
    limited: bool = True
    remember: bool = True  # False: the containers forget slow sites (start order by timeout)
    shared: bool = False  # the scheduler orders shards by what the checkers reported
    cpu_budget: float = 0.0  # CHECKER_CPU_BUDGET (0: no CPU-budget pacing)

    @property
    def label(self) -> str:
        spread = f", {self.sites / self.spread_s:.1f} starts/s" if self.spread_s else ""
        cpu = "" if self.limited else ", unthrottled"
        memory = "" if self.remember else ", no memory of slow sites"
        if self.shared:
            memory = ", slow sites reported to the scheduler (no container memory)"
        budget = f", CPU budget {self.cpu_budget:g}" if self.cpu_budget else ""
        return (
            f"{self.memory_mb} MB, {self.sites}/inv, conc {self.concurrency}{spread}{cpu}"
            f"{memory}{budget}"
        )


@dataclass
class Outcome:
    config: Config
    durations: list[float] = field(default_factory=list)
    cpu: float = 0.0
    checks: int = 0
    errors_ms: list[float] = field(default_factory=list)
    net_errors_ms: list[float] = field(default_factory=list)  # minus the target's own lag
    net_redirects: list[bool] = field(default_factory=list)  # net_errors_ms: two exchanges
    checked_ids: list[str] = field(default_factory=list)  # the sites of errors_ms, in order
    false_timeouts: int = 0
    wrong: int = 0
    throttled_periods: int = 0
    throttled_s: float = 0.0
    peak_mib: float = 0.0
    cgroup: str = "none"
    first_tick_s: float = math.nan  # mean duration of the learning tick (not measured)
    redirect_ids: set[str] = field(default_factory=set)

    def cost_per_million(self) -> float:
        mean = statistics.fmean(self.durations)
        per_invocation = math.ceil(mean * 1000) / 1000 * self.config.memory_mb / 1024 * GB_SECOND
        return 1e6 / self.config.sites * (per_invocation + REQUEST)


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else math.nan


def read_lateness(directory: Path) -> dict[str, float]:
    """Each site's total target lag (ms, both hops of a redirect), then the logs are emptied."""
    time.sleep(0.7)  # the targets write their logs twice a second
    lateness: dict[str, float] = {}
    for log in directory.glob("lateness-*.log"):
        for line in log.read_text().splitlines():
            site_id, _, ms = line.partition(" ")
            lateness[site_id] = lateness.get(site_id, 0.0) + float(ms)
        log.write_text("")
    return lateness


def judge(outcome: Outcome, by_id: dict[str, MixSite], rows: Sequence[Sequence[Any]]) -> None:
    for site_id, response_ms, error, status in rows:
        mix = by_id[site_id]
        outcome.checks += 1
        if mix.kind == "hang":
            outcome.wrong += error != "timeout"
            continue
        if error == "timeout":
            outcome.false_timeouts += 1
            continue
        if mix.kind == "redirect":
            outcome.redirect_ids.add(site_id)
        expected_error = "status" if mix.kind == "error" else None
        outcome.wrong += error != expected_error
        if response_ms is not None and mix.injected_ms is not None:
            outcome.errors_ms.append(response_ms - mix.injected_ms)
            outcome.checked_ids.append(site_id)
        del status


def subtract_lateness(outcome: Outcome, lateness: dict[str, float], since: int = 0) -> None:
    """The errors from index ``since`` on, net of the targets' lag (a site checked once)."""
    checked = zip(outcome.checked_ids[since:], outcome.errors_ms[since:], strict=True)
    for site_id, error in checked:
        if site_id in lateness:
            outcome.net_errors_ms.append(error - lateness[site_id])
            outcome.net_redirects.append(site_id in outcome.redirect_ids)


def run_config(
    config: Config,
    mix: Sequence[MixSite],
    base_env: dict[str, str],
    containers: int,
    invocations: int,
    ticks: int = 1,
    lateness_dir: Path | None = None,
) -> Outcome:
    """``invocations`` shards checked ``ticks`` times by the same warm containers.

    The shards stay the same from tick to tick (the scheduler cuts the same due sites the
    same way) but go to whichever container is free, as Lambda does: what a container
    remembers about the sites it checked helps only when a shard comes back to it. The
    first tick is the learning one: with more than one tick, only the later ones are
    measured (``outcome.first_tick_s`` keeps the first tick's mean duration). With
    ``lateness_dir`` each tick's errors are also taken net of the targets' lag.
    """
    by_id = {m.site["id"]: m for m in mix}
    outcome = Outcome(config=config)
    env = dict(base_env)
    env.update(
        CHECKER_CONCURRENCY=str(config.concurrency),
        # The configuration's spread as the checker's rate: a full shard over spread_s.
        CHECKER_STARTS_PER_SECOND=str(config.sites / config.spread_s if config.spread_s else 0),
        BENCH_MEMORY_MB=str(config.memory_mb),
        # As Lambda sets it: the checker's CPU share for the pacing by CPU budget.
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE=str(config.memory_mb),
        CHECKER_CPU_BUDGET=str(config.cpu_budget),
        BENCH_REMEMBER="1" if config.remember else "",
    )
    rng = random.Random(hash(config.label) & 0xFFFF)
    order = list(mix)
    rng.shuffle(order)
    shards: list[dict[str, Any]] = []
    for start in range(0, invocations * config.sites, config.sites):
        chunk = [order[(start + i) % len(order)].site for i in range(config.sites)]
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:00Z")
        shards.append({"scheduled_at": stamp, "sites": chunk})
    limits = [
        CpuLimit(config.memory_mb, f"{n}") if config.limited else None for n in range(containers)
    ]
    outcome.cgroup = (
        f"cgroup v{limits[0].version}"
        if limits[0] is not None and limits[0].path is not None
        else "none (unthrottled)"
    )
    lock = threading.Lock()
    warm = {
        "scheduled_at": shards[0]["scheduled_at"],
        "sites": [m.site for m in mix if m.kind == "ok"][:5],
    }
    first: list[float] = []
    from webchecker.schedule.slow_sites import SlowSiteHints

    hints = SlowSiteHints()  # the scheduler's memory (used in the "shared" configuration)

    def drive(container: Container, queue: Iterator[dict[str, Any]], measured: bool) -> None:
        limit = container.limit
        before = limit.throttled() if limit is not None else (0, 0.0)
        while True:
            with lock:
                event = next(queue, None)
            if event is None:
                break
            answer = container.invoke(event)
            with lock:
                hints.learn(answer["slow"], now=time.monotonic())
                if not measured:
                    first.append(answer["wall"])
                    continue
                outcome.durations.append(answer["wall"])
                outcome.cpu += answer["cpu"]
                outcome.peak_mib = max(outcome.peak_mib, answer["peak_mib"])
                judge(outcome, by_id, answer["results"])
        after = limit.throttled() if limit is not None else (0, 0.0)
        if measured:
            with lock:
                outcome.throttled_periods += after[0] - before[0]
                outcome.throttled_s += after[1] - before[1]

    started: list[Container] = []
    try:
        for limit in limits:
            started.append(Container(env, limit))
            started[-1].invoke(warm)  # the cold start and first connections: not measured
        for tick in range(ticks):
            if config.shared:
                shards = [order_by_hints(shard, hints) for shard in shards]
            queue = iter(rng.sample(shards, len(shards)))  # any shard to any free container
            measured = ticks == 1 or tick > 0
            since = len(outcome.errors_ms)
            if lateness_dir is not None:
                read_lateness(lateness_dir)  # what came before this tick
            threads = [
                threading.Thread(target=drive, args=(container, queue, measured))
                for container in started
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            if lateness_dir is not None and measured:
                subtract_lateness(outcome, read_lateness(lateness_dir), since)
    finally:  # never leave a process or a cgroup behind, even on Ctrl-C
        for container in started:
            container.stop()
        for limit in limits:
            if limit is not None:
                limit.remove()
    outcome.first_tick_s = statistics.fmean(first) if first else math.nan
    return outcome


def order_by_hints(shard: dict[str, Any], hints: SlowSiteHints) -> dict[str, Any]:
    """The shard as the scheduler plans it with its hints: the same sites, slowest first."""
    from webchecker.schedule.plan import plan_shards
    from webchecker.sites import Site

    sites = [Site.from_dict(site) for site in shard["sites"]]
    plan = plan_shards(
        sites,
        shard["scheduled_at"],
        max_sites=len(sites),
        max_bytes=1 << 30,
        slow_seconds=hints.seconds,
    )
    (planned,) = plan.shards
    ordered: dict[str, Any] = json.loads(planned.payload)
    return ordered


def spread_of(config: Config) -> float:
    """Seconds from an invocation's first start to its last (the checker's ``start_step``)."""
    from webchecker.check.probe import start_step

    rate = config.sites / config.spread_s if config.spread_s else 0.0
    return start_step(config.sites, rate) * (config.sites - 1)


def report(outcome: Outcome, baseline: Outcome | None) -> str:
    c = outcome.config
    d50, d99 = percentile(outcome.durations, 0.5), percentile(outcome.durations, 0.99)
    e50, e99 = percentile(outcome.errors_ms, 0.5), percentile(outcome.errors_ms, 0.99)
    n50, n99 = percentile(outcome.net_errors_ms, 0.5), percentile(outcome.net_errors_ms, 0.99)
    single = [e for e, r in zip(outcome.net_errors_ms, outcome.net_redirects, strict=True) if not r]
    mean = statistics.fmean(outcome.durations)
    busy = outcome.cpu / (mean * len(outcome.durations))  # cores, while invocations run
    cost = outcome.cost_per_million()
    ratio = f" ({cost / baseline.cost_per_million():.2f}x baseline)" if baseline else ""
    learning = (
        f", after a learning tick of mean {outcome.first_tick_s:.1f} s"
        if outcome.first_tick_s == outcome.first_tick_s
        else ""
    )
    return (
        f"{c.label}: load {os.getloadavg()[0]:.1f}; {len(outcome.durations)} invocations, "
        f"{outcome.checks} checks{learning}; duration p50 {d50:.2f} s, p99 {d99:.2f} s, "
        f"mean {mean:.2f} s = spread {spread_of(c):.1f} s + tail {mean - spread_of(c):.1f} s; "
        f"CPU/check {outcome.cpu / max(outcome.checks, 1) * 1000:.2f} ms "
        f"({busy / (c.memory_mb / FULL_CORE_MB) * 100:.0f}% of the quota); "
        f"timing error (measured - delay the target applied) p50 {n50:.1f} ms, p99 {n99:.1f} ms "
        f"(one exchange, no redirect: {percentile(single, 0.5):.1f} / "
        f"{percentile(single, 0.99):.1f} ms; - delay planned: {e50:.1f} / {e99:.1f} ms); "
        f"false timeouts {outcome.false_timeouts}, wrong outcomes {outcome.wrong}; "
        f"throttled {outcome.throttled_periods} periods ({outcome.throttled_s:.1f} s); "
        f"peak RSS {outcome.peak_mib:.0f} MiB; "
        f"cost ${cost:.3f}/M{ratio}"
    )


def formula(outcome: Outcome) -> str:
    """The cost per check as (1/r + tail/N) x GB x price + request price / N, with the
    measured tail (mean duration minus the spread of the starts)."""
    c = outcome.config
    mean = statistics.fmean(outcome.durations)
    step = spread_of(c) / (c.sites - 1) if c.sites > 1 else 0.0
    tail = mean - spread_of(c)
    return (
        f"  cost per check: ({step:.4f} s [1/r] + {tail:.2f} s [tail] / {c.sites} [N]) x "
        f"{c.memory_mb / 1024:.3f} GB x $0.0000133334 + $0.0000002 / {c.sites} "
        f"= ${outcome.cost_per_million():.3f} per million checks"
    )


@contextmanager
def targets(
    processes: int, chain: Path, key: Path, lateness_dir: Path | None = None
) -> Iterator[tuple[int, int]]:
    script = str(HERE / "realistic_target.py")
    common = ["--cert", str(chain), "--key", str(key), "--reuse-port"]
    if lateness_dir is not None:
        common += ["--lateness-dir", str(lateness_dir)]
    first = subprocess.Popen([sys.executable, script, *common], stdout=subprocess.PIPE, text=True)
    assert first.stdout is not None
    fields = first.stdout.readline().split()
    if len(fields) != 3 or fields[0] != "ready":
        first.kill()
        raise SystemExit(f"the targets did not start: {fields!r}")
    http_port, https_port = int(fields[1]), int(fields[2])
    started = [first]
    ports = ["--http-port", str(http_port), "--https-port", str(https_port)]
    for _ in range(processes - 1):
        more = subprocess.Popen(
            [sys.executable, script, *common, *ports], stdout=subprocess.PIPE, text=True
        )
        assert more.stdout is not None
        more.stdout.readline()
        started.append(more)
    try:
        yield http_port, https_port
    finally:
        for process in started:
            process.terminate()
        for process in started:
            process.wait()


def timing_floor(
    mix: Sequence[MixSite], env: dict[str, str], count: int, directory: Path
) -> Outcome:
    """Timing errors of ``count`` answering sites checked one at a time, unthrottled."""
    sample = [m for m in mix if m.kind == "ok"][:count]
    config = Config(1769, count, 1, limited=False)
    return run_config(config, sample, env, 1, 1, lateness_dir=directory)


def print_floor(floor: Outcome, when: str) -> None:
    net, raw = floor.net_errors_ms, floor.errors_ms
    print(
        f"timing error floor {when} ({len(net)} sites one at a time, unthrottled; load "
        f"{os.getloadavg()[0]:.1f}): measured - delay the target applied p50 "
        f"{percentile(net, 0.5):.1f} ms, p99 {percentile(net, 0.99):.1f} ms (- delay planned: "
        f"{percentile(raw, 0.5):.1f} / {percentile(raw, 0.99):.1f} ms)",
        flush=True,
    )


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def compare_blackbox(
    mix: Sequence[MixSite], ca: Path, directory: Path, count: int, scheme: str = "https"
) -> None:
    """CPU per probe of Prometheus' blackbox_exporter beside ours, on the same ``scheme`` sites.

    Both unthrottled, 20 probes at a time. Ours: ``check_sites`` in this process (no
    publishing, no logging); blackbox_exporter: its process's CPU for ``/probe`` requests,
    which includes serving the request and its metrics (that is how it is used).
    """
    import asyncio
    import urllib.parse
    import urllib.request
    from concurrent.futures import ThreadPoolExecutor

    import psutil

    from webchecker.check.probe import ProbeSettings, check_sites
    from webchecker.sites import Site

    exporter = shutil.which("prometheus-blackbox-exporter") or shutil.which("blackbox_exporter")
    sample = [
        m
        for m in mix
        if m.kind == "ok" and m.site["url"].startswith(f"{scheme}:") and "regex" not in m.site
    ][:count]
    settings = ProbeSettings(
        allow_private_targets=True, ca_bundle=str(ca), concurrency=20, starts_per_second=0.0
    )
    sites = [Site.from_dict(m.site) for m in sample]
    asyncio.run(check_sites(sites[:10], scheduled_at=dt.datetime.now(dt.UTC), settings=settings))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    before = usage.ru_utime + usage.ru_stime
    results = asyncio.run(
        check_sites(sites, scheduled_at=dt.datetime.now(dt.UTC), settings=settings)
    )
    usage = resource.getrusage(resource.RUSAGE_SELF)
    ours = (usage.ru_utime + usage.ru_stime - before) / len(sites) * 1000
    passed = sum(r.ok for r in results)
    if exporter is None:
        print(
            f"webchecker probe: {ours:.2f} ms CPU per {scheme.upper()} check "
            f"({passed}/{len(sites)} ok); "
            "blackbox_exporter not installed (apt-get install prometheus-blackbox-exporter)"
        )
        return
    config = directory / "blackbox.yml"
    config.write_text(
        "modules:\n  https:\n    prober: http\n    timeout: 10s\n    http:\n"
        "      preferred_ip_protocol: ip4\n      ip_protocol_fallback: false\n"
        f"      tls_config:\n        ca_file: {ca}\n"
    )
    port = free_port()
    process = subprocess.Popen(
        [
            exporter,
            f"--config.file={config}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=error",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def probe(site: dict[str, Any]) -> bool:
            query = urllib.parse.urlencode({"module": "https", "target": site["url"]})
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/probe?{query}", timeout=30) as r:
                return b"probe_success 1" in r.read()

        for _ in range(100):
            try:
                probe(sample[0].site)
                break
            except OSError:
                time.sleep(0.1)
        with ThreadPoolExecutor(20) as pool:
            list(pool.map(probe, [m.site for m in sample[:10]]))
            watched = psutil.Process(process.pid)
            before = sum(watched.cpu_times()[:2])
            probed = list(pool.map(probe, [m.site for m in sample]))
            theirs = (sum(watched.cpu_times()[:2]) - before) / len(sample) * 1000
    finally:
        process.terminate()
        process.wait()
    print(
        f"CPU per {scheme.upper()} check, same {len(sample)} sites, 20 at a time, unthrottled: "
        f"webchecker "
        f"probe {ours:.2f} ms ({passed} ok), blackbox_exporter {theirs:.2f} ms "
        f"({sum(probed)} ok): ratio {ours / theirs:.2f}x"
    )


DEFAULT_CONFIGS = (
    # memory MB, sites per invocation, concurrency, spread seconds (N / starts per second)
    Config(256, 500, 100, 30.0),  # the template's defaults before issue 14: the baseline
    # The template's defaults now, as at scale: no shard comes back to its container, the
    # checkers' reports order the shards (runs 19-20).
    Config(144, 800, 100, 800 / 22, remember=False, shared=True),
    Config(144, 800, 100, 800 / 22, remember=False),  # at scale without the reports
    Config(144, 800, 100, 800 / 22),  # each container's own memory only (12 shards on 4)
    Config(128, 800, 100, 800 / 22, remember=False, shared=True),  # the quota runs out
)


def parse_config(text: str) -> Config:
    fields = text.split(":")
    shared = "shared" in fields
    remember = "forget" not in fields and not shared
    budgets = [float(x[1:]) for x in fields if x.startswith("b")]
    parts = [float(x) for x in fields if x not in ("forget", "shared") and not x.startswith("b")]
    spread = parts[3] if len(parts) > 3 else 0.0
    return Config(
        int(parts[0]),
        int(parts[1]),
        int(parts[2]),
        spread,
        remember=remember,
        shared=shared,
        cpu_budget=budgets[0] if budgets else 0.0,
    )


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--container", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--sites", type=int, default=3000, help="sites in the mix")
    parser.add_argument("--checks", type=int, default=2000, help="checks per configuration")
    parser.add_argument("--containers", type=int, default=4, help="containers in parallel")
    parser.add_argument("--target-processes", type=int, default=2)
    parser.add_argument("--blackbox", type=int, default=300, help="sites compared; 0: skip")
    parser.add_argument(
        "--ticks",
        type=int,
        default=3,
        help="each configuration's shards are checked this often; the first tick not measured",
    )
    parser.add_argument(
        "--floor-sites", type=int, default=120, help="sites of the timing floor, before and after"
    )
    parser.add_argument(
        "--only-cpu",
        action="store_true",
        help="only the CPU comparison with blackbox_exporter, HTTPS then plain HTTP (~1 min)",
    )
    parser.add_argument(
        "--config",
        action="append",
        type=parse_config,
        help="MEMORY_MB:SITES_PER_INVOCATION:CONCURRENCY[:SPREAD_S][:bBUDGET][:forget|:shared], "
        "repeatable (bBUDGET: CHECKER_CPU_BUDGET, e.g. b0.6, default 0: no CPU-budget pacing; "
        "forget: the containers keep no memory of slow sites; shared: neither, but the "
        "scheduler orders each shard by the slow sites the checkers reported, as in AWS)",
    )
    args = parser.parse_args(argv)
    if args.container:
        return run_container()
    from webchecker.local.embedded.broker import EmbeddedBroker

    configs: list[Config] = args.config or list(DEFAULT_CONFIGS)
    directory = Path(tempfile.mkdtemp(prefix="bench-realistic-"))
    try:
        ca, chain, key = make_pki(directory)
        with (
            targets(args.target_processes, chain, key, directory) as (http_port, https_port),
            EmbeddedBroker() as broker,
        ):
            mix = make_mix(args.sites, args.seed, http_port, https_port)
            env = dict(os.environ)
            env.update(
                CHECKER_CA_BUNDLE=str(ca),
                CHECKER_ALLOW_PRIVATE_TARGETS="true",
                KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap_servers,
                KAFKA_TOPIC=f"bench.realistic.{uuid.uuid4().hex[:8]}",
                KAFKA_AUTH="none",
                POWERTOOLS_SERVICE_NAME="checker",
                POWERTOOLS_METRICS_NAMESPACE="Webchecker",
                POWERTOOLS_TRACE_DISABLED="true",
                AWS_REGION="us-east-1",
            )
            kinds = {k: sum(m.kind == k for m in mix) for k in ("ok", "error", "redirect", "hang")}
            https = sum(m.site["url"].startswith("https") for m in mix)
            injected = [m.injected_ms for m in mix if m.injected_ms is not None]
            print(
                f"mix (seed {args.seed}): {len(mix)} sites, {https} HTTPS; {kinds}; injected "
                f"latency p50 {percentile(injected, 0.5):.0f} ms, p95 "
                f"{percentile(injected, 0.95):.0f} ms, max {max(injected):.0f} ms"
            )
            print(
                f"machine: {os.cpu_count()} CPUs, {ssl.OPENSSL_VERSION}, "
                f"load average {os.getloadavg()[0]:.2f} at start "
                "(shared with other work: figures are noisy, compare the ratios)"
            )
            if args.only_cpu:
                for scheme in ("https", "http"):
                    compare_blackbox(mix, ca, directory, args.blackbox or 300, scheme)
                return 0
            print_floor(timing_floor(mix, env, args.floor_sites, directory), "before")
            if args.blackbox:
                compare_blackbox(mix, ca, directory, args.blackbox)
            baseline: Outcome | None = None
            for config in configs:
                invocations = max(1, math.ceil(args.checks / config.sites))
                containers = min(args.containers, invocations)
                outcome = run_config(
                    config, mix, env, containers, invocations, args.ticks, directory
                )
                print(report(outcome, baseline), flush=True)
                print(formula(outcome) + f"  [{outcome.cgroup}]", flush=True)
                if baseline is None:
                    baseline = outcome
            print_floor(timing_floor(mix, env, args.floor_sites, directory), "after")
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
