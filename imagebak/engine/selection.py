"""Which executions one invocation works on: due or requested policies, plus unfinished ones.

Runs inside one state transaction: the plan (``plan.build_plan``) says what is due, each
policy's schedule is persisted as reconciled, a started policy gets a new execution record,
and executions left unfinished by earlier runs are picked up again, each under its policy's lock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from imagebak.config import LoadedConfig
from imagebak.config.schema import Policy
from imagebak.engine.journal import EXECUTIONS, in_flight
from imagebak.engine.locks import PolicyLocks
from imagebak.engine.options import RunOptions
from imagebak.errors import ExitCode, ImagebakError
from imagebak.execution.records import Execution, InstanceWork, PolicySnapshot
from imagebak.execution.states import NoteKind
from imagebak.ownership import run_id
from imagebak.plan import PlanEntry, build_plan, spec_of
from imagebak.schedule import after_run, manual_floor
from imagebak.state import State


@dataclass(frozen=True)
class Note:
    """A policy that was not started, and why."""

    policy: str
    kind: NoteKind
    message: str

    def to_json(self) -> dict[str, str]:
        return {"policy": self.policy, "outcome": self.kind.value, "message": self.message}


AccountProblem = Callable[[str], "str | None"]  # why an account cannot be used now, or None


def select(
    state: State,
    loaded: LoadedConfig,
    now: datetime,
    options: RunOptions,
    locks: PolicyLocks | None,
    account_problem: AccountProblem = lambda account: None,
) -> tuple[list[Execution], list[Note]]:
    """Reconcile schedules, start due/requested executions and pick up unfinished ones (mutates ``state``).

    The caller has folded the journals of dead processes into ``state`` (``journal.recover``). A
    policy whose account cannot be used is neither started nor resumed, and its slot is not used up.
    """
    wanted = selected_names(loaded.model.policies, options)
    executions: list[Execution] = []
    notes: list[Note] = []
    for execution in in_flight(state):
        if options.manual and execution.policy.name not in wanted:
            continue
        problem = account_problem(execution.policy.account)
        if problem is not None:
            notes.append(Note(execution.policy.name, NoteKind.ACCOUNT, f"in-flight work waits: {problem}"))
        elif locks is None or locks.acquire(execution.policy_key):
            executions.append(execution)
        else:
            notes.append(_locked(execution.policy.name))
    busy = {e.policy_key for e in executions}
    for entry in build_plan(loaded.model, state, now):
        schedule = entry.schedule
        start = entry.policy.name in wanted if options.manual else entry.due
        note = _why_not(entry, now, options, busy, locks, account_problem) if start else None
        if note is not None:
            notes.append(note)
        elif start:
            execution = _new_execution(entry, now, options)
            state.entry(entry.key).setdefault(EXECUTIONS, {})[execution.run_id] = execution.to_dict()
            executions.append(execution)
            schedule = after_run(schedule, spec_of(entry.policy), now, scheduled=not options.manual)
        state.set_schedule(entry.key, schedule)
    return executions, list(dict.fromkeys(notes))  # a blocked in-flight policy that is also due: one note


def _why_not(
    entry: PlanEntry,
    now: datetime,
    options: RunOptions,
    busy: set[str],
    locks: PolicyLocks | None,
    account_problem: AccountProblem,
) -> Note | None:
    """Why a policy that should start does not (12-hour floor, still running, account, locked), or None."""
    floor = manual_floor(entry.schedule, now) if options.manual and not options.force else None
    if floor is not None:
        return Note(
            entry.policy.name,
            NoteKind.TOO_SOON,
            f"it ran less than 12 hours ago; the next run may start at {floor.strftime('%Y-%m-%d %H:%MZ')} "
            "(--force overrides)",
        )
    if entry.key in busy:
        return Note(entry.policy.name, NoteKind.BUSY, "the previous execution is still in progress and was resumed")
    problem = account_problem(entry.policy.account)
    if problem is not None:
        return Note(entry.policy.name, NoteKind.ACCOUNT, problem)
    if locks is not None and not locks.acquire(entry.key):
        return _locked(entry.policy.name)
    return None


def selected_names(policies: list[Policy], options: RunOptions) -> set[str]:
    """Names of the policies a manual run asks for; a usage error for unknown names or instances."""
    names = {p.name for p in policies}
    unknown = [n for n in options.policies if n not in names]
    if unknown:
        raise ImagebakError(
            f"no policy named {', '.join(unknown)} (policies: {', '.join(sorted(names))})", ExitCode.USAGE
        )
    wanted = set(options.policies) | ({p.name for p in policies if p.enabled} if options.all_policies else set())
    if options.instance:
        owners = {p.name for p in policies if options.instance in p.instances}
        if not owners:
            raise ImagebakError(f"instance {options.instance} is in no policy", ExitCode.USAGE)
        wanted = (wanted & owners) if wanted else owners
        if not wanted:
            raise ImagebakError(f"instance {options.instance} is not in the selected policies", ExitCode.USAGE)
    return wanted


def _locked(name: str) -> Note:
    return Note(name, NoteKind.LOCKED, "another imagebak process is working on this policy; left to it")


def _new_execution(entry: PlanEntry, now: datetime, options: RunOptions) -> Execution:
    policy = entry.policy
    snapshot = PolicySnapshot(
        name=policy.name,
        account=policy.account,
        region=policy.region,
        disks=policy.disks if policy.disks == "all" else list(policy.disks),
        copy_to=[(t.region, t.vault) for t in policy.copy_to],
        image_name=policy.image_name,
        description=policy.description,
        retry_failed=policy.retry_failed,
        vault=policy.vault,
    )
    return Execution(
        policy_key=entry.key,
        run_id=run_id(now),
        manual=options.manual,
        started_at=now.isoformat(),
        policy=snapshot,
        instances={i: InstanceWork(i) for i in policy.instances if options.instance in (None, i)},
    )
