"""Monitoring hooks: small plug-ins told about each run after it ends (notifications, pings, metrics).

They get a ``Summary`` (plain data built by the run command from its report), never the engine.
A hook that fails is logged and never changes the run's outcome or exit code, and no hook ever
logs a secret or a full webhook address.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class PolicyResult:
    policy: str
    account: str
    region: str
    done: int = 0
    failed: int = 0
    skipped: int = 0
    in_flight: int = 0
    copies: dict[str, int] = field(default_factory=dict)  # destination region -> available copies
    last_success: float | None = None  # unix time of the newest finished image, if any
    errors: tuple[str, ...] = ()


@dataclass(frozen=True)
class Summary:
    """One run, as the hooks see it."""

    result: str  # the exit code's name: ok, partial_failure, stalled, ...
    exit_code: int
    started: float  # unix time
    finished: float
    policies: tuple[PolicyResult, ...] = ()
    stalled: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    images_created: int = 0
    images_failed: int = 0
    copies_made: int = 0
    pruned: int = 0

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    @property
    def duration(self) -> float:
        return max(0.0, self.finished - self.started)

    def headline(self) -> str:
        """One line for a chat message or a log."""
        done = sum(p.done for p in self.policies)
        failed = sum(p.failed for p in self.policies)
        return (
            f"imagebak: {self.result} (exit {self.exit_code}): {done} instance(s) done, {failed} failed, "
            f"{self.copies_made} copies, {self.pruned} pruned, in {self.duration:.0f} s"
        )

    def lines(self) -> list[str]:
        """The headline, then what needs attention."""
        out = [self.headline()]
        for policy in self.policies:
            for error in policy.errors:
                out.append(f"- {policy.policy} ({policy.account} {policy.region}): {error}")
        out += [f"- stalled: {line}" for line in self.stalled]
        out += [f"- {note}" for note in self.notes]
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "result": self.result,
            "exit_code": self.exit_code,
            "started": self.started,
            "finished": self.finished,
            "summary": self.headline(),
            "details": self.lines()[1:],
            "stalled": list(self.stalled),
        }
