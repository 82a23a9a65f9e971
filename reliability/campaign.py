"""Reliability campaign of issue #12: kill ``imagebak run`` at random moments, recover, check, count.

    cd /work/wt-rel && /work/main/.venv/bin/python reliability/campaign.py --trials 500 --seed 1

Each trial (``reliability/trials.py``) starts ``imagebak run --all --force`` against an emulator
subprocess with a persistent state, kills it with SIGKILL, SIGTERM or SIGINT, runs ``imagebak run``
until the execution finishes, and checks (``reliability/checker.py``) that the cloud holds no
duplicate, no image imagebak does not know about, nothing the history calls done but missing, that
the state file is readable and that nothing is stuck. Variants: fault storms, overlapping runs,
``--no-wait`` ticks. It prints a summary and always exits 0: it reports, the numbers are the verdict.

Trials are planned up front from ``--seed`` (vendor in turn, variant, signal, delays, faults) and
run in ``--lanes`` parallel lanes; each lane has one world per vendor (an emulator process, a
policies.yaml, a state folder), replaced by a fresh one every ``--segment`` trials so that the
emulator's state file, which it rewrites on every mutating call, stays small. Worlds where
something was found are kept (their folders are printed); the others are removed unless ``--keep``.
Only loopback traffic; the fixture's fake credentials only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the checkout importable (reliability.*, imagebak)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reliability.checker import Checker
from reliability.trials import SIGNALS, VARIANTS, TrialPlan, TrialResult, plan_trials, run_trial
from reliability.world import VENDORS, World

DEFAULT_TIME_SCALE = 1500.0


@dataclass
class Slot:
    """A lane's current world for one vendor, its checker, and how many trials it has served."""

    world: World
    checker: Checker = field(default_factory=Checker)
    trials: int = 0
    keep: bool = False


class Lane:
    """Runs trials one after another, in one world per vendor, replaced every ``segment`` trials."""

    def __init__(self, index: int, root: Path, options: argparse.Namespace) -> None:
        self.index = index
        self.root = root
        self.options = options
        self.slots: dict[str, Slot] = {}
        self.worlds = 0

    def run(self, plan: TrialPlan) -> TrialResult:
        slot = self._slot(plan.vendor)
        slot.trials += 1
        result = run_trial(slot.world, slot.checker, plan)
        if result.anomalies:
            slot.keep = True
        return result

    def folder(self, vendor: str) -> Path:
        return self.slots[vendor].world.folder

    def close(self) -> None:
        for vendor in list(self.slots):
            self._retire(vendor)

    def _slot(self, vendor: str) -> Slot:
        slot = self.slots.get(vendor)
        if slot is not None and slot.trials >= self.options.segment:
            self._retire(vendor)
            slot = None
        if slot is None:
            self.worlds += 1
            folder = self.root / f"lane{self.index}-{vendor}-{self.worlds:03d}"
            seed = self.options.seed * 1000 + self.index * 100 + self.worlds
            world = World(folder, vendor, seed=seed, time_scale=self.options.time_scale)
            world.start()
            slot = self.slots[vendor] = Slot(world)
        return slot

    def _retire(self, vendor: str) -> None:
        slot = self.slots.pop(vendor)
        if slot.keep or self.options.keep:
            slot.world.stop()
        else:
            slot.world.remove()


def run_campaign(
    options: argparse.Namespace, root: Path, report: Callable[[str], None] = print
) -> tuple[list[TrialResult], float]:
    """Run the planned trials in lanes until done or out of time; results in trial order, and seconds."""
    plans = plan_trials(options.trials, options.seed, options.vendors)
    if options.only:
        plans = [plan for plan in plans if plan.number in options.only]
    todo: queue.Queue[TrialPlan] = queue.Queue()
    for plan in plans:
        todo.put(plan)
    results: list[TrialResult] = []
    lock = threading.Lock()
    started = time.monotonic()
    stop_at = started + options.time_limit * 60 if options.time_limit else float("inf")

    def lane_main(lane: Lane) -> None:
        try:
            while time.monotonic() < stop_at:
                try:
                    plan = todo.get_nowait()
                except queue.Empty:
                    return
                result = lane.run(plan)
                with lock:
                    results.append(result)
                    if options.results:
                        line = {**result.to_json(), "world": str(lane.folder(plan.vendor))}
                        with options.results.open("a", encoding="utf-8") as sink:
                            sink.write(json.dumps(line) + "\n")
                    for anomaly in result.anomalies:
                        report(f"trial {_describe(plan)}: {anomaly} (world kept: {lane.folder(plan.vendor)})")
                    for failed in result.report.failed:
                        report(f"trial {_describe(plan)}: note: {failed}")
                    if len(results) % options.progress == 0:
                        report(_progress(results, time.monotonic() - started))
        finally:
            lane.close()

    lanes = [Lane(i + 1, root, options) for i in range(options.lanes)]
    threads = [threading.Thread(target=lane_main, args=(lane,), name=f"lane{lane.index}") for lane in lanes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(results, key=lambda r: r.plan.number), time.monotonic() - started


def _describe(plan: TrialPlan) -> str:
    timing = f"{'early' if plan.early else 'late'} +{plan.kill_after:.2f}s"
    return f"#{plan.number} {plan.vendor} {plan.variant} {plan.signal} {timing}"


def _progress(results: Sequence[TrialResult], elapsed: float) -> str:
    found = sum(len(r.anomalies) for r in results)
    return f"[{len(results)} trials, {elapsed / 60:.1f} min] anomalies so far: {found}"


def summary(results: Sequence[TrialResult], elapsed: float, options: argparse.Namespace) -> str:
    """The figures: trials per vendor / variant / signal, the checker's counts, exit codes seen."""

    def count(key: Callable[[TrialResult], str], names: Sequence[str]) -> str:
        tally = Counter(key(r) for r in results)
        return ", ".join(f"{name} {tally[name]}" for name in names)

    total = len(results)
    reports = [r.report for r in results]
    landed = sum(r.landed for r in results)
    interrupted = sum(r.interrupted for r in results)
    locks = Counter(r.lock for r in results if r.lock)
    lines = [
        f"reliability campaign: {total} of {len(options.only) or options.trials} trials in {elapsed / 60:.1f} min "
        f"(seed {options.seed}, time scale {options.time_scale:g}, {options.lanes} lane(s))",
        f"  per vendor:   {count(lambda r: r.plan.vendor, options.vendors)}",
        f"  per variant:  {count(lambda r: r.plan.variant, list(VARIANTS))}",
        f"  per signal:   {count(lambda r: r.plan.signal, list(SIGNALS))}",
        f"  kills:        {landed} landed on a live process, {interrupted} left an execution in flight; "
        f"{sum(r.plan.early for r in results)} early (blind delay), the rest after the first journal write",
        f"  overlap:      {locks['locked']} reported locked (exit 5), {locks['both-ran']} both ran, "
        f"{locks['inconclusive']} inconclusive",
        f"  faults:       {_faults(results)}",
        f"  follow-ups:   {sum(r.followups for r in results)} runs; "
        f"most for one trial {max((r.followups for r in results), default=0)}; "
        f"slow exits (SIGKILLed after grace) {sum(r.slow_exits for r in results)}",
        f"  images:       {sum(x.new_images for x in reports)} made, {sum(x.new_copies for x in reports)} copies; "
        f"instances that finished failed: {sum(len(x.failed) for x in reports)}",
        "  checker:      "
        f"duplicates {sum(len(x.duplicates) for x in reports)}, "
        f"untracked {sum(len(x.untracked) for x in reports)}, "
        f"missing {sum(len(x.missing) for x in reports)}, "
        f"unreadable {sum(len(x.unreadable) for x in reports)}, "
        f"stuck {sum(r.stuck for r in results)}",
        "  exit codes:",
    ]
    for role in ("first", "second", "follow-up"):
        codes = Counter(code for r in results for code in r.exit_codes.get(role, []))
        if codes:
            listed = ", ".join(f"{_code_name(code)}: {n}" for code, n in sorted(codes.items()))
            lines.append(f"    {role:<10} {listed}")
    lines.append(f"  machine:      {machine()}")
    return "\n".join(lines)


def _faults(results: Sequence[TrialResult]) -> str:
    """Injected faults that struck imagebak's calls, by kind, over all trials."""
    total: Counter[str] = Counter()
    for result in results:
        total.update(result.faults)
    storms = sum(1 for r in results if r.plan.variant == "storm")
    hangs = sum(1 for r in results if r.plan.hang)
    kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(total.items())) or "none"
    return f"{kinds} (storms {storms}, of which {hangs} with a hang window)"


def _code_name(code: int) -> str:
    """Negative codes are deaths by signal (Popen's convention)."""
    if code < 0:
        return f"killed by {_signal_name(-code)}"
    return str(code)


def _signal_name(number: int) -> str:
    names = {int(sig): name for name, sig in SIGNALS.items()}
    return names.get(number, f"signal {number}")


def machine() -> str:
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{platform.system()} {platform.release()} {platform.machine()}, {os.cpu_count()} CPU(s), "
        f"Python {platform.python_version()}, load average at the end {load}"
    )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=500, help="trials to plan (default 500)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the trial plan and the emulators (default 1)")
    parser.add_argument(
        "--vendors",
        type=lambda text: [v.strip() for v in text.split(",") if v.strip()],
        default=list(VENDORS),
        help="comma-separated vendors, in turn (default aliyun,huawei,jdcloud)",
    )
    parser.add_argument("--lanes", type=int, default=3, help="trials run in parallel (default 3)")
    parser.add_argument(
        "--time-scale",
        type=float,
        default=DEFAULT_TIME_SCALE,
        help=f"emulator seconds per real second (default {DEFAULT_TIME_SCALE:g})",
    )
    parser.add_argument("--segment", type=int, default=25, help="trials per world before a fresh one (default 25)")
    parser.add_argument("--time-limit", type=float, default=0, help="minutes; start no trial after (0: none)")
    parser.add_argument("--workdir", type=Path, help="where worlds live (default: a new temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep every world's folder, not only those with findings")
    parser.add_argument("--progress", type=int, default=25, help="print a progress line every N trials")
    parser.add_argument(
        "--only",
        type=lambda text: {int(n) for n in text.split(",") if n.strip()},
        default=set(),
        help="run only these trial numbers of the plan (e.g. 93,477: replay trials with the same plan)",
    )
    parser.add_argument("--results", type=Path, help="append one JSON line per trial to this file")
    options = parser.parse_args(argv)
    unknown = sorted(set(options.vendors) - set(VENDORS))
    if unknown or not options.vendors:
        parser.error(f"--vendors: unknown {', '.join(unknown) or '(none given)'}; choose from {', '.join(VENDORS)}")
    if min(options.trials, options.lanes, options.segment, options.progress) < 1:
        parser.error("--trials, --lanes, --segment and --progress must be at least 1")
    return options


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    root = options.workdir or Path(tempfile.mkdtemp(prefix="imagebak-reliability-"))
    root.mkdir(parents=True, exist_ok=True)
    print(f"worlds in {root}", flush=True)
    results, elapsed = run_campaign(options, root, report=lambda line: print(line, flush=True))
    print(summary(results, elapsed, options), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
