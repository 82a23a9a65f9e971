"""One trial: start ``imagebak run --all --force``, kill it at a random moment, finish with plain runs, check.

Variants (drawn per trial from the campaign's seed):

- ``kill``: the run is killed, follow-up ``imagebak run --wait`` invocations finish the execution;
- ``storm``: the same under a fault storm set through the admin API (30 % throttling, 10 % 5xx, a
  share of slow calls; sometimes a window in which one action hangs, sometimes a creation that fails
  half-way); the storm lasts through the killed run and the first follow-up;
- ``overlap``: a second ``run --all --force`` starts while the first is inside the engine (every
  call made slow, so the first is still running when the second looks): the second must report the
  policies locked (exit 5); then the first is killed;
- ``nowait``: the run uses ``--no-wait`` (and may be killed); plain ``imagebak run`` cron ticks
  (``--no-wait`` by default) advance the work.

A kill is either *early* (a blind delay from the start: start-up, selection, first calls) or *late*
(a delay after the process's first journal write, so that it lands among the cloud calls).
"""

from __future__ import annotations

import random
import signal
import subprocess
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from reliability.checker import Checker, CheckReport, read_known
from reliability.world import World

SIGNALS = {"SIGKILL": signal.SIGKILL, "SIGTERM": signal.SIGTERM, "SIGINT": signal.SIGINT}
VARIANTS = {"kill": 0.4, "storm": 0.3, "overlap": 0.15, "nowait": 0.15}  # variant -> share of trials
POLL = "0.1"  # seconds between status polls of imagebak runs
MAX_FOLLOWUPS = 3  # --wait runs after the kill before the execution counts as stuck
MAX_TICKS = 15  # --no-wait cron ticks before the execution counts as stuck
TICK_PAUSE = 0.3  # real seconds between two cron ticks
RUN_TIMEOUT = 120.0  # a process alive after this is killed and counted as hung
EXIT_GRACE = 20.0  # after SIGTERM/SIGINT: a process still alive then is SIGKILLed and counted as slow to exit
LOCKED = 5  # imagebak's exit code when another process holds a policy's lock


@dataclass(frozen=True)
class TrialPlan:
    """Everything random about one trial, drawn up front from the seed, so a trial can be replayed."""

    number: int
    vendor: str
    variant: str
    signal: str
    early: bool  # kill after a blind delay from the start, not after the first journal write
    kill_after: float  # seconds
    storm: dict[str, Any] | None = None  # a fault rule for the vendor (admin API), during the storm
    hang: tuple[float, float, float] | None = None  # (which action, start, duration) of a hang window
    fail_creations: int = 0  # image creations/copies that fail half-way (retry_failed re-makes them)


def plan_trials(count: int, seed: int, vendors: Sequence[str]) -> list[TrialPlan]:
    """``count`` trials, vendors in turn, each variant with its share."""
    rng = random.Random(seed)
    plans = []
    for number in range(1, count + 1):
        vendor = vendors[(number - 1) % len(vendors)]
        variant = rng.choices(list(VARIANTS), weights=list(VARIANTS.values()))[0]
        early = variant != "overlap" and rng.random() < 0.2
        # Late kills land among the cloud calls: a --no-wait run makes one pass and ends, a storm drags on.
        late_window = {"nowait": 0.5, "storm": 3.0}.get(variant, 1.5)
        kill_after = rng.uniform(0.2, 3.0) if early else rng.uniform(0.0, late_window)
        plan = TrialPlan(number, vendor, variant, rng.choice(list(SIGNALS)), early, round(kill_after, 3))
        if variant == "overlap":
            plan = _with(plan, storm={"vendor": vendor, "slow_rate": 1.0, "slow_seconds": 0.3})
        if variant == "storm":
            storm = {
                "vendor": vendor,
                "throttle_rate": 0.3,
                "error_rate": 0.1,
                "error_status": rng.choice([500, 503]),
                "slow_rate": 0.1,
                "slow_seconds": round(rng.uniform(0.2, 1.0), 3),
            }
            hang = (rng.random(), rng.uniform(0.0, 2.0), rng.uniform(0.3, 1.5)) if rng.random() < 0.5 else None
            plan = _with(plan, storm=storm, hang=hang, fail_creations=int(rng.random() < 0.3))
        plans.append(plan)
    return plans


def _with(plan: TrialPlan, **changes: Any) -> TrialPlan:
    return TrialPlan(**{**plan.__dict__, **changes})


@dataclass
class TrialResult:
    plan: TrialPlan
    landed: bool = False  # a signal reached a live process
    interrupted: bool = False  # ... and left an execution in flight
    exit_codes: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))  # role -> codes
    followups: int = 0
    stuck: bool = False
    lock: str | None = None  # overlap: "locked" (one exited 5), "both-ran" or "inconclusive"
    slow_exits: int = 0  # processes that needed a SIGKILL after a polite signal or a timeout
    faults: Counter[str] = field(default_factory=Counter)  # injected faults that struck, by kind
    report: CheckReport = field(default_factory=CheckReport)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """One line of ``--results``: the plan (to replay it with ``--only``), what happened, what was found."""
        return {
            "plan": asdict(self.plan),
            "landed": self.landed,
            "interrupted": self.interrupted,
            "exit_codes": {role: list(codes) for role, codes in self.exit_codes.items()},
            "followups": self.followups,
            "stuck": self.stuck,
            "lock": self.lock,
            "slow_exits": self.slow_exits,
            "faults": dict(self.faults),
            "anomalies": self.anomalies,
            "failed": self.report.failed,
            "new_images": self.report.new_images,
            "new_copies": self.report.new_copies,
            "seconds": round(self.seconds, 2),
        }

    @property
    def anomalies(self) -> list[str]:
        found = [*self.report.duplicates, *self.report.untracked, *self.report.missing, *self.report.unreadable]
        if self.stuck:
            found.append(f"stuck: in flight after the follow-ups: {', '.join(self.report.in_flight) or 'journals'}")
        if self.lock == "both-ran":
            found.append("overlap: neither process reported the lock")
        return found


def run_trial(world: World, checker: Checker, plan: TrialPlan) -> TrialResult:
    """Kill, recover, check: see the module docstring."""
    started = time.monotonic()
    result = TrialResult(plan)
    try:
        if plan.storm:
            world.admin("POST", "faults", plan.storm)
        if plan.fail_creations:
            world.admin("POST", "fail-next-creations", {"n": plan.fail_creations, "reason": "reliability campaign"})
        hang = _hang_window(world, plan)
        if plan.variant == "overlap":
            _overlap(world, plan, result)
            world.admin("POST", "faults/clear", {})  # the slow calls were only there to make the overlap sure
        else:
            _killed_run(world, plan, result)
        hang.join()
        result.interrupted = result.landed and bool(_pending(world))
        _follow_up(world, plan, result)
    finally:
        world.admin("POST", "faults/clear", {})
        result.faults = world.faults_struck()
    result.report = check(world, checker)
    result.seconds = time.monotonic() - started
    return result


def check(world: World, checker: Checker) -> CheckReport:
    """The checker on this world now: the cloud, the state (and journals), the read-only commands."""
    exits = {" ".join(cmd): world.cli(cmd)[0] for cmd in (["policy", "list"], ["run", "--dry-run"])}
    return checker.check(world.cloud(), read_known(world.state, world.journals()), exits)


def _first_command(plan: TrialPlan) -> list[str]:
    args = ["run", "--all", "--force", "--poll-interval", POLL, "--deadline", "60"]
    return [*args, "--no-wait"] if plan.variant == "nowait" else args


def _killed_run(world: World, plan: TrialPlan, result: TrialResult) -> None:
    launched = time.monotonic()
    proc = world.imagebak(_first_command(plan), f"t{plan.number:04d}-first")
    if plan.early:
        _sleep_until(proc, launched + plan.kill_after)
    else:
        _await_journal(world, proc)
        _sleep_until(proc, time.monotonic() + plan.kill_after)
    _kill(proc, plan, result)


def _overlap(world: World, plan: TrialPlan, result: TrialResult) -> None:
    """The second run starts once the first journals (it holds the locks then); it must exit 5.

    Conclusive only if the first is still running when the second exits: then the second looked
    while the locks were held, and anything but exit 5 means two processes worked on one policy.
    """
    label = f"t{plan.number:04d}"
    first = world.imagebak(_first_command(plan), f"{label}-first")
    inside = _await_journal(world, first)
    second = world.imagebak(_first_command(plan), f"{label}-second")
    code = _reap(second, result, RUN_TIMEOUT)
    overlapped = inside and first.poll() is None
    result.exit_codes["second"].append(code)
    result.lock = "locked" if code == LOCKED else "both-ran" if overlapped else "inconclusive"
    _sleep_until(first, time.monotonic() + plan.kill_after)
    _kill(first, plan, result)


def _kill(proc: subprocess.Popen[bytes], plan: TrialPlan, result: TrialResult) -> None:
    """Send the trial's signal if the process still runs, then reap it (role "first")."""
    if proc.poll() is None:
        proc.send_signal(SIGNALS[plan.signal])
        result.landed = True
    result.exit_codes["first"].append(_reap(proc, result, EXIT_GRACE if result.landed else RUN_TIMEOUT))


def _follow_up(world: World, plan: TrialPlan, result: TrialResult) -> None:
    """Plain runs until nothing is in flight, bounded; the storm ends after the first of them."""
    waiting = plan.variant != "nowait"
    for attempt in range(MAX_FOLLOWUPS if waiting else MAX_TICKS):
        if not _pending(world):
            return
        if attempt == 1 and plan.storm:
            world.admin("POST", "faults/clear", {})
        args = ["run", "--wait", "--poll-interval", POLL, "--deadline", "45"] if waiting else ["run"]
        world.settle()  # what the previous run left in the emulator is served, as two virtual minutes allow
        proc = world.imagebak(args, f"t{plan.number:04d}-follow{attempt + 1}")
        result.exit_codes["follow-up"].append(_reap(proc, result, RUN_TIMEOUT))
        result.followups += 1
        if not waiting:
            time.sleep(TICK_PAUSE)
    result.stuck = bool(_pending(world))


def _pending(world: World) -> list[str]:
    """Executions in flight (state file and unfolded journals), or journals left: work for a next run."""
    known = read_known(world.state, world.journals())
    return known.in_flight + [str(p) for p in world.journals()]


def _await_journal(world: World, proc: subprocess.Popen[bytes]) -> bool:
    """Wait until the process has written its journal (it is in the engine, holding its policies' locks).

    False if it ended (or ``RUN_TIMEOUT`` passed) first. The journal is ``<state>.wal.<pid>-<token>``.
    """
    pattern = f"{world.state.name}.wal.{proc.pid}-*"
    deadline = time.monotonic() + RUN_TIMEOUT
    while proc.poll() is None and time.monotonic() < deadline:
        if any(world.state.parent.glob(pattern)):
            return True
        time.sleep(0.01)
    return False


def _sleep_until(proc: subprocess.Popen[bytes], moment: float) -> None:
    """Sleep until ``moment`` (monotonic), or until the process ends if sooner."""
    while proc.poll() is None and time.monotonic() < moment:
        time.sleep(min(0.01, max(0.0, moment - time.monotonic())))


def _reap(proc: subprocess.Popen[bytes], result: TrialResult, timeout: float) -> int:
    """The exit code; a process still alive after ``timeout`` is SIGKILLed and counted in ``slow_exits``."""
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        result.slow_exits += 1
        proc.kill()
        return proc.wait()


def _hang_window(world: World, plan: TrialPlan) -> threading.Thread:
    """During a storm, make one action the vendor's runs use hang for a while, then release it."""

    def window() -> None:
        if plan.hang is None:
            return
        actions = sorted(world.admin("GET", "counters")["counters"].get(world.vendor, {}))
        if not actions:
            return  # nothing called yet in this world: no action to pick
        pick, start, duration = plan.hang
        target = {"vendor": world.vendor, "action": actions[int(pick * len(actions))]}
        time.sleep(start)
        world.admin("POST", "faults", {**target, "hang": True, "hang_seconds": 1.0})
        time.sleep(duration)
        world.admin("POST", "faults/clear", target)

    thread = threading.Thread(target=window, name=f"hang-{plan.number}", daemon=True)
    thread.start()
    return thread
