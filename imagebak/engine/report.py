"""The result of one invocation, and the exit-code rules that summarise it for cron and monitors."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from imagebak.engine.selection import Note
from imagebak.errors import ExitCode
from imagebak.execution.records import Execution, InstanceWork
from imagebak.execution.states import NoteKind, Outcome, WorkStatus

# An execution with no progress for its policy's interval (within these bounds) is stalled.
STALL_FLOOR, STALL_CEILING = timedelta(hours=12), timedelta(hours=24)


@dataclass
class RunReport:
    executions: list[Execution]
    notes: list[Note]
    deadline_hit: bool = False
    stalled: list[str] = field(default_factory=list)  # one line per stalled execution

    def works(self) -> list[tuple[Execution, InstanceWork]]:
        return [(e, w) for e in self.executions for w in e.instances.values()]

    def exit_code(self) -> ExitCode:
        """Failures first, then stalls, an unfinished wait, skips, unusable accounts, locks, a refused manual run."""
        works = [w for _, w in self.works()]
        statuses = {w.status for w in works}
        in_progress = any(not w.terminal for w in works)
        if WorkStatus.FAILED in statuses:
            return ExitCode.PARTIAL_FAILURE if (WorkStatus.DONE in statuses or in_progress) else ExitCode.TOTAL_FAILURE
        if self.stalled:
            return ExitCode.STALLED
        if in_progress and self.deadline_hit:
            return ExitCode.IN_FLIGHT
        outcomes = {(w.error or {}).get("outcome") for w in works}
        outcomes |= {c.outcome for w in works for c in w.copies.values()}
        if Outcome.QUOTA_SKIP.value in outcomes:
            return ExitCode.QUOTA
        if Outcome.COPY_IMPOSSIBLE.value in outcomes:
            return ExitCode.NO_DR_COPY
        kinds = {n.kind for n in self.notes}
        if NoteKind.ACCOUNT in kinds:
            return ExitCode.ACCOUNT
        if NoteKind.LOCKED in kinds:
            return ExitCode.LOCKED
        if NoteKind.TOO_SOON in kinds and not works:
            return ExitCode.TOO_SOON
        return ExitCode.OK


def stalled(executions: list[Execution], intervals: Mapping[str, timedelta], now: datetime) -> list[str]:
    """Unfinished executions whose last progress (started, accepted by the cloud, or finished) is older
    than their policy's interval, bounded to 12-24 h: the cloud is unreachable or refusing, and the
    next slot is being missed. Reported on every run until they move again."""
    found = []
    for execution in executions:
        if execution.done:
            continue
        moments = [execution.started_at]
        for work in execution.instances.values():
            for artifact in ([work.image] if work.image else []) + list(work.copies.values()):
                moments += [m for m in (artifact.submitted_at, artifact.finished_at) if m]
        last = max(_moment(m) for m in moments)
        bound = min(max(intervals.get(execution.policy_key, STALL_CEILING), STALL_FLOOR), STALL_CEILING)
        if now - last > bound:
            hours = (now - last).total_seconds() / 3600
            found.append(f"{execution.policy.name} (run {execution.run_id}): no progress for {hours:.0f} h")
    return found


def _moment(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return datetime.min.replace(tzinfo=timezone.utc)  # unreadable: counts as long ago
