"""The result of one invocation, and the exit-code rules that summarise it for cron and monitors."""

from __future__ import annotations

from dataclasses import dataclass

from imagebak.engine.selection import Note
from imagebak.errors import ExitCode
from imagebak.execution.records import Execution, InstanceWork
from imagebak.execution.states import NoteKind, Outcome, WorkStatus


@dataclass
class RunReport:
    executions: list[Execution]
    notes: list[Note]
    deadline_hit: bool = False

    def works(self) -> list[tuple[Execution, InstanceWork]]:
        return [(e, w) for e in self.executions for w in e.instances.values()]

    def exit_code(self) -> ExitCode:
        """Failures first, then an unfinished wait, quota skips, locks, and a refused manual run."""
        works = [w for _, w in self.works()]
        statuses = {w.status for w in works}
        in_progress = any(not w.terminal for w in works)
        if WorkStatus.FAILED in statuses:
            return ExitCode.PARTIAL_FAILURE if (WorkStatus.DONE in statuses or in_progress) else ExitCode.TOTAL_FAILURE
        if in_progress and self.deadline_hit:
            return ExitCode.PARTIAL_FAILURE
        outcomes = {(w.error or {}).get("outcome") for w in works} | {
            c.outcome for w in works for c in w.copies.values()
        }
        if Outcome.QUOTA_SKIP.value in outcomes:
            return ExitCode.QUOTA
        if Outcome.COPY_IMPOSSIBLE.value in outcomes:
            return ExitCode.NO_DR_COPY
        kinds = {n.kind for n in self.notes}
        if NoteKind.LOCKED in kinds:
            return ExitCode.LOCKED
        if NoteKind.TOO_SOON in kinds and not works:
            return ExitCode.TOO_SOON
        return ExitCode.OK
