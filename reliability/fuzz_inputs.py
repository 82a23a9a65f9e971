"""By-hand fuzz run of the two files imagebak reads (issue #12): thousands of mutated inputs, counted.

The test suite runs a few hundred of these on every run (``tests/test_fuzz_inputs.py``); this runs
the same strategies and checks (``tests/fuzzing.py``) on many more, in this process, through the
CLI as a user meets it, and prints what happened instead of stopping at the first problem:

    python reliability/fuzz_inputs.py                          # 10,000 policy files, 1,500 state files and logs
    python reliability/fuzz_inputs.py --policies 500 --states 100 --seed 7

Counted: exit codes per command; internal errors (an exception escaping a command: exit 70);
tracebacks in the output; inputs that took over 2 s (and hangs, cut off after --timeout s); policy
diagnostics that were not one ``FILE:LINE:COL: path: message`` line; state files that did not
validate and were rewritten all the same. Exit status 1 if any of those is not zero.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # this checkout's imagebak, and the shared strategies

from fuzzing import Outcome, check_policy_file, check_state_file, policy_files, state_files  # noqa: E402
from hypothesis import HealthCheck, Phase, given, seed, settings  # noqa: E402


class Hang(Exception):
    pass


class Tally:
    def __init__(self, label: str) -> None:
        self.label = label
        self.inputs = 0
        self.exits: dict[str, Counter[int]] = {}
        self.kinds: Counter[str] = Counter()
        self.examples: list[str] = []
        self.seconds = 0.0

    def add(self, outcome: Outcome) -> None:
        self.inputs += 1
        for command, code in outcome.exits.items():
            self.exits.setdefault(command, Counter())[code] += 1
        for problem in outcome.problems:
            self.kinds[_kind(problem)] += 1
            if len(self.examples) < 10:
                self.examples.append(problem)
        self.kinds["rewritten although invalid"] += outcome.rewritten
        self.kinds["over 2 s"] += outcome.slow

    def print(self) -> int:
        print(f"{self.label}: {self.inputs} inputs in {self.seconds:.0f} s ({self.inputs / self.seconds:.0f}/s)")
        for command, codes in self.exits.items():
            print(f"  {command:<9} exit codes: {dict(sorted(codes.items()))}")
        wrong = 0
        for kind in (
            "internal error (exit 70)",
            "traceback",
            "over 2 s",
            "hang",
            "not one per line",
            "rewritten although invalid",
            "undocumented exit code",
        ):
            print(f"  {kind:<27} {self.kinds[kind]}")
            wrong += self.kinds[kind]
        for example in self.examples:
            print(f"    e.g. {example[:200]!r}")
        return wrong


def _kind(problem: str) -> str:
    if "rewrote" in problem:
        return "rewritten although invalid"
    if "took" in problem:
        return "slow-detail"
    if "hang" in problem:
        return "hang"
    if "traceback" in problem:
        return "traceback"
    if "not one diagnostic per line" in problem:
        return "not one per line"
    if ": exit " in problem:
        return "undocumented exit code"
    return "internal error (exit 70)"


def fuzz(tally: Tally, strategy: Any, check: Callable[[Any], Outcome], count: int, timeout: int, rng: int) -> None:
    def one(data: Any) -> None:
        signal.alarm(timeout)
        try:
            outcome = check(data)
        except Hang:
            outcome = Outcome(problems=[f"hang: no answer within {timeout} s"], slow=True)
        finally:
            signal.alarm(0)
        tally.add(outcome)

    run = settings(
        max_examples=count,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )(seed(rng)(given(strategy)(one)))
    started = time.monotonic()
    run()
    tally.seconds = time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--policies", type=int, default=10_000, help="mutated policy files")
    parser.add_argument("--states", type=int, default=1_500, help="mutated state files")
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--timeout", type=int, default=20, help="seconds before one input counts as a hang")
    options = parser.parse_args()

    def hang(signum: int, frame: Any) -> None:
        raise Hang

    signal.signal(signal.SIGALRM, hang)
    wrong = 0
    for label, strategy, check, count in (
        ("policy files", policy_files(), check_policy_file, options.policies),
        ("state files", state_files(), check_state_file, options.states),
    ):
        if count:
            tally = Tally(label)
            fuzz(tally, strategy, check, count, options.timeout, options.seed)
            wrong += tally.print()
    print("result:", "ok" if not wrong else f"{wrong} problem(s)")
    sys.exit(1 if wrong else 0)


if __name__ == "__main__":
    main()
