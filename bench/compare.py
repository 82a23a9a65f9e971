"""Issue #13's "How to measure", in one command: imagebak against what the emulated cloud allows.

    python bench/compare.py                 # the full figures (~9 minutes on 2 cores)
    python bench/compare.py --sizes 20 50   # a quick look while developing (~4 minutes)

It makes these runs, one after the other, each in a fresh emulated world on 127.0.0.1 (the emulator
in a process of its own, as a cloud's CPU is not its client's; imagebak in this one, instrumented;
fake credentials from the bench's fixture), every policy copying to one region:

* ``imagebak run --all`` with N = 100 and N = 500 instances, Aliyun alone and mixed (Aliyun +
  Huawei + JD, split evenly), each against the **lower bound** the model allows: the slowest image
  creation + the slowest copy, or when Huawei is in, the image + ceil(copies / 5) waves of copies its
  cap of 5 copies in flight per account forces. The bound comes from the latency model's parameters
  (``harness.slowest_seconds``), never from the run;
* the operator's **seed script** (``baseline.py``: one instance at a time, polling every 300 s) on
  the same fixture and time scale, N = 100 Aliyun, for imagebak's speed-up and API-call ratio;
* the mixed N = 100 run again in the same world once it has a **full history** (``history.py``:
  30 runs' images in the cloud, their summaries and recovery points in the state's history log, as
  imagebak leaves them), against the first, empty-history run.

Figures: wall / lower bound, API calls per instance per vendor, status calls per instance and per
100 refs polled, state bytes written per instance (journal log appends + state file rewrites + history
log appends and compactions), and
the issue's targets as MET/MISSED. A benchmark prints; it never fails on a missed target (exit 0).

The time scale: simulated seconds pass ``--time-scale`` times faster than real ones, so imagebak's
own seconds (CPU, fsync, HTTP) weigh that many times more against the cloud's minutes than they
would against a real cloud. The default x30 with an image of 19 minutes and a copy of 2.2 minutes
keeps the cloud's time dominant while the whole command fits in ~9 minutes on 2 cores: the
mixed N = 500 run alone needs 34 waves of Huawei copies. ``--poll-interval`` is imagebak's cloud
default, 15 simulated seconds. Both are printed with the figures.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from baseline import BaselineResult, run_baseline
from harness import (
    CLOUD_POLL_SECONDS,
    IMAGE_SIZE_GB,
    INSTANCE_DISKS,
    VENDORS,
    RunResult,
    Target,
    Watchdog,
    World,
    latency_of,
    machine,
    run_imagebak,
    slowest_seconds,
    split_evenly,
    vendor_figures,
    world,
)
from history import HistoryInfo, add_history

from imagebak.emulator.rules import rules_for

TIME_SCALE = 30.0
# Simulated seconds, jitter 0 so that "the slowest" is exact: a 140 GB image 19 min, its copy 2.2 min.
LATENCIES: dict[str, dict[str, dict[str, float]]] = {
    "default": {
        "snapshot": {"base_seconds": 300, "per_gb_seconds": 6.0, "jitter": 0.0},
        "image": {"base_seconds": 300, "per_gb_seconds": 6.0, "jitter": 0.0},
        "copy": {"base_seconds": 60, "per_gb_seconds": 0.5, "jitter": 0.0},
    }
}
MIXED = ("aliyun", "huawei", "jdcloud")
COPY_REGIONS = 1
HISTORY_RUNS = 30
STATUS_CALLS_LIMIT = 8.0  # per instance, every vendor
SAME_COST = 1.10  # "costs the same": full-history / empty-history within 10 %
WATCHDOG_SECONDS = 1500.0


@dataclass
class Scenario:
    name: str
    counts: dict[str, int]


@dataclass
class LowerBound:
    seconds: float  # simulated
    formula: str
    vendor: str  # whose work sets the bound


@dataclass
class CriticalPath:
    """Where one run's time went, read from its execution log (real seconds after the run began)."""

    creates: tuple[float, float]  # first and last image submission
    vendor: str  # of the last instance to finish; its milestones follow
    milestones: list[tuple[str, float]]
    refill_lag: float | None = None  # capped vendor: mean delay from a copy's end (model) to the next submission
    refills: int = 0
    capped_copies: tuple[float, float] | None = None  # capped vendor: first and last copy submission


@dataclass
class Measured:
    """One imagebak run with its bound and the figures the report prints."""

    scenario: Scenario
    bound: LowerBound
    run: RunResult
    vendors: dict[str, dict[str, Any]]
    time_scale: float
    path: CriticalPath | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def instances(self) -> int:
        return sum(self.scenario.counts.values())

    @property
    def ratio(self) -> float:
        return self.run.wall * self.time_scale / self.bound.seconds

    @property
    def bytes_per_instance(self) -> float:
        return self.run.probe.journal_bytes / self.instances


# ------------------------------------------------------------------ the model's bound


def lower_bound(counts: Mapping[str, int], latencies: Mapping[str, Any], copy_regions: int) -> LowerBound:
    """What the emulated cloud allows at best, from its latency parameters and copy caps.

    Per vendor: its slowest image + its slowest copy; with a cap of ``c`` copies in flight per
    account, no copy starts before the first image is ready and at most ``c`` run at once, so the
    last one ends no earlier than image + ceil(copies / c) x copy. The run's bound is the largest.
    """
    best: LowerBound | None = None
    for vendor, n in counts.items():
        image = slowest_seconds(latencies, vendor, "image", IMAGE_SIZE_GB)
        copy = slowest_seconds(latencies, vendor, "copy", IMAGE_SIZE_GB)
        bound = LowerBound(image + copy, f"{vendor}: image {image / 60:.1f} + copy {copy / 60:.1f} min", vendor)
        cap = rules_for(vendor).max_concurrent_copies
        if cap is not None:
            waves = math.ceil(n * copy_regions / cap)
            capped = image + waves * copy
            if capped > bound.seconds:
                bound = LowerBound(
                    capped,
                    f"{vendor}: image {image / 60:.1f} + ceil({n * copy_regions} copies / {cap}) = {waves} x copy "
                    f"{copy / 60:.1f} min",
                    vendor,
                )
        if best is None or bound.seconds > best.seconds:
            best = bound
    assert best is not None
    return best


def _events(log: Path, since: float) -> list[tuple[str, dict[str, float]]]:
    """Per instance of the runs since ``since``: its account, and when each step of the execution log happened."""
    found: dict[tuple[str, str], tuple[str, dict[str, float]]] = {}
    if not log.exists():
        return []
    for line in log.read_text(encoding="utf-8").splitlines():
        event = json.loads(line)
        at = datetime.fromisoformat(event["ts"]).timestamp() - since
        if at < 0 or "instance" not in event:
            continue
        step = f"{event['step']} {event['outcome']}"
        if event["step"] == "wait":
            step = "image seen" if event.get("region") == event.get("source_region") else "copy seen"
        _account, marks = found.setdefault((event["run"], event["instance"]), (event["account"], {}))
        marks[step] = max(at, marks.get(step, at))
    return list(found.values())


def critical_path(w: World, run: RunResult, latencies: Mapping[str, Any]) -> CriticalPath | None:
    """The last instance's way through the run against the model's durations, and the Huawei slot refills."""
    events = _events(w.folder / "execution.log", run.started_at)
    finished = [(account, m) for account, m in events if "done ok" in m]
    if not finished:
        return None
    vendor_of = {VENDORS[v].account: v for v in w.ids}
    account, last = max(finished, key=lambda am: am[1]["done ok"])
    vendor = vendor_of[account]
    image = slowest_seconds(latencies, vendor, "image", IMAGE_SIZE_GB) / w.time_scale
    copy = slowest_seconds(latencies, vendor, "copy", IMAGE_SIZE_GB) / w.time_scale
    created = [m["create submitted"] for _a, m in events if "create submitted" in m]
    milestones = [
        ("create submitted", last["create submitted"]),
        ("image ready (model)", last["create submitted"] + image),
        ("image seen", last["image seen"]),
        ("copy submitted", last["copy submitted"]),
        ("copy ready (model)", last["copy submitted"] + copy),
        ("copy seen", last["copy seen"]),
        ("done", last["done ok"]),
        ("run returned", run.wall),
    ]
    path = CriticalPath((min(created), max(created)), vendor, milestones)
    for capped in w.ids:
        cap = rules_for(capped).max_concurrent_copies
        if cap is None:
            continue
        account = VENDORS[capped].account
        submitted = sorted(m["copy submitted"] for a, m in events if a == account and "copy submitted" in m)
        k = slowest_seconds(latencies, capped, "copy", IMAGE_SIZE_GB) / w.time_scale
        lags = [max(0.0, submitted[i] - (submitted[i - cap] + k)) for i in range(cap, len(submitted))]
        if lags:
            path.refill_lag, path.refills = sum(lags) / len(lags), len(lags)
            path.capped_copies = (submitted[0], submitted[-1])
    return path


# ------------------------------------------------------------------ the runs


@contextmanager
def _folder() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="imagebak-compare-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


class Comparison:
    """Runs the scenarios in order and keeps what they measured (the watchdog reads it too)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.scale: float = args.time_scale
        self.poll = CLOUD_POLL_SECONDS / self.scale
        self.measured: list[Measured] = []
        self.baseline: BaselineResult | None = None
        self.baseline_peer: Measured | None = None
        self.history: tuple[Measured, Measured, HistoryInfo] | None = None
        self.current = ""

    def _world(self, counts: Mapping[str, int], folder: Path) -> Any:
        return world(
            counts,
            folder,
            seed=self.args.seed,
            time_scale=self.scale,
            latencies=LATENCIES,
            copy_regions=COPY_REGIONS,
        )

    def _measure(self, w: World, scenario: Scenario, *, force: bool = False) -> Measured:
        self.current = scenario.name
        bound = lower_bound(scenario.counts, LATENCIES, COPY_REGIONS)
        deadline = 3 * bound.seconds / self.scale + 60  # seconds; imagebak stops submitting after it
        run = run_imagebak(w, poll_interval=self.poll, deadline=deadline, extra=["--force"] if force else [])
        measured = Measured(scenario, bound, run, vendor_figures(w.ids, run), self.scale)
        measured.path = critical_path(w, run, LATENCIES)
        done = run.statuses.get("done", 0)
        if run.error or done < measured.instances:
            measured.notes.append(f"{scenario.name}: {done} of {measured.instances} done; {run.error or ''}")
        self.measured.append(measured)
        print(f"  measured {scenario.name}: wall {run.wall:.1f} s", file=sys.stderr, flush=True)
        return measured

    def run_all(self) -> None:
        small, large = self.args.sizes
        aliyun_small = Scenario(f"aliyun N={small}", {"aliyun": small})
        with _folder() as folder, self._world(aliyun_small.counts, folder) as w:
            self.current = f"seed-style baseline N={small}"
            dest = VENDORS["aliyun"].copy_to[0]
            self.baseline = run_baseline(w, dest)
        with _folder() as folder, self._world(aliyun_small.counts, folder) as w:
            self.baseline_peer = self._measure(w, aliyun_small)
        mixed_small = Scenario(f"mixed N={small}", split_evenly(small, MIXED))
        with _folder() as folder, self._world(mixed_small.counts, folder) as w:
            empty = self._measure(w, mixed_small, force=True)
            info = add_history(w, HISTORY_RUNS, seed=self.args.seed)
            full = self._measure(w, Scenario(f"mixed N={small}, full history", mixed_small.counts), force=True)
            self.history = (empty, full, info)
        for scenario in (
            Scenario(f"aliyun N={large}", {"aliyun": large}),
            Scenario(f"mixed N={large}", split_evenly(large, MIXED)),
        ):
            with _folder() as folder, self._world(scenario.counts, folder) as w:
                self._measure(w, scenario)
        self.current = ""


# ------------------------------------------------------------------ report


def _by_name(c: Comparison, name: str) -> Measured | None:
    return next((m for m in c.measured if m.scenario.name == name), None)


def targets(c: Comparison) -> list[tuple[Target, str]]:
    """The issue's targets, each with the figure it was judged on."""
    small, large = c.args.sizes
    out: list[tuple[Target, str]] = []
    for name, limit in ((f"aliyun N={small}", 1.05), (f"aliyun N={large}", 1.10), (f"mixed N={large}", 1.10)):
        m = _by_name(c, name)
        if m is not None:
            out.append((Target(f"wall / lower bound, {name}", m.ratio, limit, "x"), ""))
    for vendor in MIXED:
        worst = max(
            (m for m in c.measured if vendor in m.vendors),
            key=lambda m, v=vendor: m.vendors[v]["status_calls_per_instance"],
            default=None,
        )
        if worst is not None:
            figure = worst.vendors[vendor]["status_calls_per_instance"]
            target = Target(f"status calls per instance, {vendor}", figure, STATUS_CALLS_LIMIT, "calls")
            out.append((target, f"worst run: {worst.scenario.name}"))
    if c.history is not None:
        empty, full, _info = c.history
        out.append((Target("full / empty history: wall", full.run.wall / empty.run.wall, SAME_COST, "x"), ""))
        bytes_ratio = full.run.probe.journal_bytes / max(1, empty.run.probe.journal_bytes)
        out.append((Target("full / empty history: bytes written", bytes_ratio, SAME_COST, "x"), ""))
    return out


def _latency_line(vendor: str) -> str:
    image, copy = latency_of(LATENCIES, vendor, "image"), latency_of(LATENCIES, vendor, "copy")
    return (
        f"image {image.base_seconds:g} s + {image.per_gb_seconds:g} s/GB, copy {copy.base_seconds:g} s + "
        f"{copy.per_gb_seconds:g} s/GB, jitter {image.jitter:g}/{copy.jitter:g}"
    )


def report(c: Comparison, elapsed: float) -> str:
    """Everything measured so far, as text (also what the watchdog prints if it has to stop the run)."""
    m0 = machine()
    disks = " + ".join(f"{d['size_gb']} GB" for d in INSTANCE_DISKS)
    image = slowest_seconds(LATENCIES, "aliyun", "image", IMAGE_SIZE_GB)
    copy = slowest_seconds(LATENCIES, "aliyun", "copy", IMAGE_SIZE_GB)
    lines = [
        'imagebak vs. the emulated cloud (issue #13, "How to measure"): python bench/compare.py',
        f"machine      {m0['nproc']} CPUs ({m0['cpu']}), Python {m0['python']}; imagebak {m0['imagebak']} "
        f"@ {m0['commit']}",
        f"time scale   x{c.scale:g}: 1 real second = {c.scale:g} simulated seconds; imagebak --poll-interval "
        f"{c.poll:.3g} s = {CLOUD_POLL_SECONDS:g} simulated s (its cloud default)",
        f"latencies    (simulated) {_latency_line('aliyun')}, the same for every vendor;",
        f"             instances of {disks} = {IMAGE_SIZE_GB} GB: an image takes {image / 60:.1f} min "
        f"({image / c.scale:.1f} s real), its copy {copy / 60:.1f} min ({copy / c.scale:.1f} s real)",
        f"policies     copy_to {COPY_REGIONS} region, 10 policies per vendor, default concurrency; "
        "Huawei: at most 5 copies in flight per account",
        "",
        f"{'run':<30} {'N':>4} {'wall s':>7} {'= sim min':>9} {'lower bound (model)':<52} {'LB min':>6} "
        f"{'wall/LB':>7} {'done':>8} {'CPU s':>6} {'emu CPU':>7}",
    ]
    for m in c.measured:
        lines.append(
            f"{m.scenario.name:<30} {m.instances:>4} {m.run.wall:>7.1f} {m.run.wall * c.scale / 60:>9.1f} "
            f"{m.bound.formula:<52} {m.bound.seconds / 60:>6.1f} {m.ratio:>7.3f} "
            f"{m.run.statuses.get('done', 0):>4}/{m.instances:<3} {m.run.cpu:>6.1f} {m.run.probe.emulator_cpu:>7.1f}"
        )
    lines += [
        "",
        f"{'per vendor':<30} {'vendor':<8} {'calls/inst':>10} {'status/inst':>11} {'status/100 refs':>15} "
        f"{'refs polled':>11}  calls by action",
    ]
    for m in c.measured:
        for vendor, v in m.vendors.items():
            per_100 = v["status_calls_per_100_refs"]
            actions = ", ".join(f"{a} {k}" for a, k in v["by_action"].items())
            lines.append(
                f"{m.scenario.name:<30} {vendor:<8} {v['calls_per_instance']:>10.2f} "
                f"{v['status_calls_per_instance']:>11.2f} {per_100 if per_100 is not None else 0:>15.1f} "
                f"{v['refs_polled']:>11}  {actions}"
            )
    lines += ["", f"{'state bytes written':<30} {'per inst':>9} {'log appends':>11} {'log bytes':>11} "
              f"{'state rewrites':>14} {'state bytes':>11} {'largest state':>13} {'history +/rw':>12} "
              f"{'history bytes':>13}"]  # fmt: skip
    for m in c.measured:
        p = m.run.probe
        lines.append(
            f"{m.scenario.name:<30} {m.bytes_per_instance:>9,.0f} {p.wal_appends:>11} {p.wal_bytes:>11,} "
            f"{p.writes:>14} {p.bytes_written:>11,} {p.max_state_bytes:>13,} "
            f"{f'{p.history_appends}/{p.history_rewrites}':>12} {p.history_bytes:>13,}"
        )
    lines += ["", "where the time goes: real seconds after the run began, for the last instance to finish"]
    for m in c.measured:
        if m.path is None:
            continue
        p = m.path
        steps = ", ".join(f"{label} +{at:.1f}" for label, at in p.milestones)
        lines.append(
            f"  {m.scenario.name:<28} creates submitted +{p.creates[0]:.1f}..+{p.creates[1]:.1f} "
            f"({1000 * (p.creates[1] - p.creates[0]) / m.instances:.0f} ms/instance); {p.vendor}: {steps}"
        )
        if p.refill_lag is not None and p.capped_copies is not None:
            first, last = p.capped_copies
            lines.append(
                f"  {'':<28} Huawei copies submitted +{first:.1f}..+{last:.1f}; a freed slot was refilled "
                f"{p.refill_lag:.2f} s after its copy ended (mean of {p.refills})"
            )
        top = sorted(m.run.probe.emulator_cpu_by_action.items(), key=lambda kv: -kv[1])[:3]
        lines.append(
            f"  {'':<28} CPU: {m.run.cpu:.1f} s in all, emulator {m.run.probe.emulator_cpu:.1f} s, of which "
            + ", ".join(f"{v} {a} {sec:.1f} s" for (v, a), sec in top)
        )
    b, peer = c.baseline, c.baseline_peer
    if b is not None:
        lines += [
            "",
            f"seed-style baseline, aliyun N={b.instances}, copy to 1 region, one instance at a time, polling every "
            "300 simulated s (sleeps fast-forwarded on the emulator clock)",
            f"  simulated {b.simulated_seconds / 60:,.0f} min (= {b.simulated_seconds / c.scale:,.0f} s real at "
            f"x{c.scale:g}); {b.calls} API calls ({b.calls / b.instances:.1f}/instance): "
            + ", ".join(f"{a} {k}" for a, k in sorted(b.by_action.items())),
        ]
        if peer is not None:
            sim = peer.run.wall * c.scale
            calls = sum(v["calls"] for v in peer.vendors.values())
            lines.append(
                f"  imagebak, same world and scale: {sim / 60:.1f} min, {calls} calls "
                f"({calls / peer.instances:.1f}/instance) -> speed-up x{b.simulated_seconds / sim:.1f}, "
                f"API calls x{calls / b.calls:.2f} of the baseline's"
            )
    if c.history is not None:
        empty, full, info = c.history
        e_calls = sum(v["calls"] for v in empty.vendors.values())
        f_calls = sum(v["calls"] for v in full.vendors.values())
        e_other = e_calls - sum(v["status_calls"] for v in empty.vendors.values())
        f_other = f_calls - sum(v["status_calls"] for v in full.vendors.values())
        lines += [
            "",
            f"history: {empty.scenario.name} with an empty history vs the same world after {info.runs} runs "
            f"({info.images_after:,} images and {info.snapshots_after:,} snapshots in the cloud, "
            f"{info.history_per_policy} runs and up to {info.points_per_policy} recovery points kept per policy: "
            f"a {info.state_bytes:,}-byte state file and a {info.history_bytes:,}-byte history log)",
            f"  {'':<12} {'wall s':>7} {'bytes written':>13} {'per inst':>9} {'API calls':>9} {'non-status':>10} "
            f"{'CPU s':>6} {'emu CPU':>7}",
        ]
        for label, m, calls, other in (("empty", empty, e_calls, e_other), ("full", full, f_calls, f_other)):
            lines.append(
                f"  {label:<12} {m.run.wall:>7.1f} {m.run.probe.journal_bytes:>13,} {m.bytes_per_instance:>9,.0f} "
                f"{calls:>9} {other:>10} {m.run.cpu:>6.1f} {m.run.probe.emulator_cpu:>7.1f}"
            )
        lines.append(
            f"  {'full/empty':<12} {full.run.wall / empty.run.wall:>7.3f} "
            f"{full.run.probe.journal_bytes / max(1, empty.run.probe.journal_bytes):>13.3f} {'':>9} "
            f"{f_calls / max(1, e_calls):>9.3f} {f_other / max(1, e_other):>10.3f} "
            f"{full.run.cpu / empty.run.cpu:>6.3f} "
            f"{full.run.probe.emulator_cpu / max(1e-9, empty.run.probe.emulator_cpu):>7.3f}"
        )
    lines += ["", "targets (issue #13)"]
    for t, where in targets(c):
        verdict = "MET   " if t.met else "MISSED"
        lines.append(f"  {verdict} {t.name:<44} {t.measured:8.3f} {t.unit:<6} <= {t.limit:g}  {where}".rstrip())
    for m in c.measured:
        lines += [f"  note: {n}" for n in m.notes]
    if c.current:
        lines.append(f"  (stopped during: {c.current})")
    lines.append(f"elapsed {elapsed:.0f} s")
    return "\n".join(lines)


def to_json(c: Comparison) -> dict[str, Any]:
    return {
        "machine": machine(),
        "time_scale": c.scale,
        "poll_interval": c.poll,
        "latencies": LATENCIES,
        "runs": [
            {
                "name": m.scenario.name,
                "counts": m.scenario.counts,
                "wall_seconds": round(m.run.wall, 3),
                "cpu_seconds": round(m.run.cpu, 3),
                "emulator_cpu_seconds": round(m.run.probe.emulator_cpu, 3),
                "lower_bound_seconds": m.bound.seconds,
                "lower_bound": m.bound.formula,
                "wall_over_lower_bound": round(m.ratio, 4),
                "done": m.run.statuses.get("done", 0),
                "vendors": m.vendors,
                "journal_appends": m.run.probe.wal_appends,
                "journal_log_bytes": m.run.probe.wal_bytes,
                "state_rewrites": m.run.probe.writes,
                "state_bytes_written": m.run.probe.bytes_written,
                "history_appends": m.run.probe.history_appends,
                "history_rewrites": m.run.probe.history_rewrites,
                "history_bytes_written": m.run.probe.history_bytes,
                "bytes_per_instance": round(m.bytes_per_instance),
            }
            for m in c.measured
        ],
        "baseline": vars(c.baseline) if c.baseline else None,
        "targets": [{**t.to_json(), "met": t.met, "where": w} for t, w in targets(c)],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--sizes", type=int, nargs=2, default=(100, 500), metavar=("SMALL", "LARGE"), help="N (default: 100 500)"
    )
    parser.add_argument("--time-scale", type=float, default=TIME_SCALE, help=f"default: {TIME_SCALE:g}")
    parser.add_argument("--seed", type=int, default=20240101)
    parser.add_argument("--json", dest="json_out", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    if min(args.sizes) < len(MIXED):
        parser.error(f"--sizes must be at least {len(MIXED)} (the mixed runs split N over the vendors)")

    comparison = Comparison(args)
    started = time.perf_counter()

    def stop_report(elapsed: float) -> str:
        return f"compare: WATCHDOG: still running after {elapsed:.0f} s; partial figures\n" + report(
            comparison, elapsed
        )

    with Watchdog(WATCHDOG_SECONDS, stop_report):
        comparison.run_all()
    print(report(comparison, time.perf_counter() - started))
    if args.json_out:
        args.json_out.write_text(json.dumps(to_json(comparison), indent=1, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
