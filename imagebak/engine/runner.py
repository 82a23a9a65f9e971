"""One invocation of ``imagebak run``: pick what to start, then drive every execution forward.

Selection happens in one state transaction: schedules are reconciled, due (or requested)
policies get a new execution record, and unfinished executions from earlier runs are picked
up again, each under its policy's lock. Then a loop advances all of them: submit images
(instances in parallel, bounded per account), poll in batches, copy, poll copies, finish.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

from imagebak.actions import StepOutcome
from imagebak.actions import copy as copy_step
from imagebak.actions import create as create_step
from imagebak.actions import wait as wait_step
from imagebak.config import LoadedConfig
from imagebak.config.schema import Policy
from imagebak.engine.context import RunContext
from imagebak.engine.journal import EXECUTIONS, in_flight
from imagebak.engine.locks import PolicyLocks
from imagebak.engine.naming import ownership_tags
from imagebak.engine.naming import run_id as make_run_id
from imagebak.engine.records import (
    AVAILABLE,
    COPYING,
    CREATING,
    DONE,
    FAILED,
    NEW,
    PENDING,
    PLANNED,
    SKIPPED,
    SUBMITTING,
    Execution,
    InstanceWork,
    PolicySnapshot,
)
from imagebak.errors import ExitCode, ImagebakError
from imagebak.plan import spec_of
from imagebak.providers.base import ErrorKind, ProviderError
from imagebak.schedule import after_run, is_due, reconcile
from imagebak.state import State, policy_key


@dataclass(frozen=True)
class RunOptions:
    policies: tuple[str, ...] = ()  # run these now (manual)
    all_policies: bool = False  # run every enabled policy now (manual)
    instance: str | None = None  # narrow a manual run to one instance
    force: bool = False  # ignore the 12-hour floor of manual runs
    wait: bool = True
    deadline_seconds: float = 6 * 3600
    poll_interval: float = 15.0
    concurrency: dict[str, int] = field(default_factory=dict)  # per account

    @property
    def manual(self) -> bool:
        return bool(self.policies or self.all_policies or self.instance)


@dataclass(frozen=True)
class Note:
    """A policy that was not started, and why."""

    policy: str
    outcome: str  # "locked" | "too_soon" | "busy"
    message: str


@dataclass
class RunReport:
    executions: list[Execution]
    notes: list[Note]
    deadline_hit: bool = False

    def works(self) -> list[tuple[Execution, InstanceWork]]:
        return [(e, w) for e in self.executions for w in e.instances.values()]

    def exit_code(self) -> ExitCode:
        statuses = [w.status for _, w in self.works()]
        quota = any(
            w.status == SKIPPED and (w.error or {}).get("kind") == ErrorKind.QUOTA.value for _, w in self.works()
        )
        in_progress = any(not w.terminal for _, w in self.works())
        if FAILED in statuses:
            return ExitCode.PARTIAL_FAILURE if (DONE in statuses or in_progress) else ExitCode.TOTAL_FAILURE
        if in_progress and self.deadline_hit:
            return ExitCode.PARTIAL_FAILURE
        if quota:
            return ExitCode.QUOTA
        outcomes = {n.outcome for n in self.notes}
        if "locked" in outcomes:
            return ExitCode.LOCKED
        if "too_soon" in outcomes and not statuses:
            return ExitCode.TOO_SOON
        return ExitCode.OK


def select(
    state: State, loaded: LoadedConfig, now: datetime, options: RunOptions, locks: PolicyLocks | None
) -> tuple[list[Execution], list[Note]]:
    """Reconcile schedules, start due/requested executions and pick up unfinished ones (mutates ``state``)."""
    policies = loaded.model.policies
    wanted = selected_names(policies, options)
    executions: list[Execution] = []
    notes: list[Note] = []
    for execution in in_flight(state):
        if options.manual and execution.policy.name not in wanted:
            continue
        if locks is None or locks.acquire(execution.policy_key):
            executions.append(execution)
        else:
            notes.append(_locked(execution.policy.name))
    busy = {e.policy_key for e in executions}
    for policy in policies:
        key = policy_key(policy.account, policy.region, policy.name)
        spec = spec_of(policy)
        schedule = reconcile(state.schedule(key), spec, now)
        start = policy.name in wanted if options.manual else is_due(schedule, now)
        if start and options.manual and not options.force and schedule.not_before and now < schedule.not_before:
            floor = schedule.not_before.strftime("%Y-%m-%d %H:%MZ")
            notes.append(
                Note(
                    policy.name,
                    "too_soon",
                    f"it ran less than 12 hours ago; the next run may start at {floor} (--force overrides)",
                )
            )
        elif start and key in busy:
            notes.append(Note(policy.name, "busy", "the previous execution is still in progress and was resumed"))
        elif start and locks is not None and not locks.acquire(key):
            notes.append(_locked(policy.name))
        elif start:
            execution = _new_execution(policy, key, now, options)
            state.entry(key).setdefault(EXECUTIONS, {})[execution.run_id] = execution.to_dict()
            executions.append(execution)
            schedule = after_run(schedule, spec, now, scheduled=not options.manual)
        state.set_schedule(key, schedule)
    return executions, notes


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
    return Note(name, "locked", "another imagebak process is working on this policy; left to it")


def _new_execution(policy: Policy, key: str, now: datetime, options: RunOptions) -> Execution:
    instances = [i for i in policy.instances if options.instance in (None, i)]
    snapshot = PolicySnapshot(
        name=policy.name,
        account=policy.account,
        region=policy.region,
        disks=policy.disks if policy.disks == "all" else list(policy.disks),
        copy_to=[(t.region, t.vault) for t in policy.copy_to],
        image_name=policy.image_name,
        description=policy.description,
        retry_failed=policy.retry_failed,
    )
    return Execution(
        policy_key=key,
        run_id=make_run_id(now),
        manual=options.manual,
        started_at=now.isoformat(),
        policy=snapshot,
        instances={i: InstanceWork(i) for i in instances},
    )


class Engine:
    """Advances executions until they finish, the deadline passes, or (``--no-wait``) after one pass."""

    def __init__(
        self,
        ctx: RunContext,
        options: RunOptions,
        *,
        sleep: Callable[[float], None] = time.sleep,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.ctx = ctx
        self.options = options
        self.sleep = sleep
        self.progress = progress
        self._deadline = float("inf")

    def advance(self, executions: list[Execution]) -> bool:
        """Returns True if the deadline stopped the wait."""
        self.ctx.executions = executions
        self._deadline = time.monotonic() + self.options.deadline_seconds
        for execution in executions:
            self.ctx.event(
                execution,
                None,
                step="execution",
                outcome="started" if not any(w.status != NEW for w in execution.instances.values()) else "resumed",
                manual=execution.manual,
            )
        while True:
            self._submit_images()
            self._poll_images()
            self._submit_copies()
            self._poll_copies()
            self._finish()
            if all(e.done for e in executions) or not self.options.wait:
                return False
            if time.monotonic() >= self._deadline:
                return True
            if self.progress:
                self.progress(self._progress_line())
            self.sleep(self.options.poll_interval)

    def _works(self) -> list[tuple[Execution, InstanceWork]]:
        return [(e, w) for e in self.ctx.executions for w in e.instances.values() if not w.terminal]

    def _guarded(self, execution: Execution, work: InstanceWork, step: str, action: Callable[[], None]) -> None:
        """Run one instance step; turn its outcome or error into the instance's status."""
        try:
            action()
        except StepOutcome as outcome:
            self._end(execution, work, outcome.status, outcome.reason, outcome.code, step=step)
        except ProviderError as error:
            if error.transient or error.kind == ErrorKind.CONFLICT:
                work.reason = f"will retry: {error.describe()}"
                self.ctx.error_event(execution, work, step, error, outcome="retry-later")
            else:
                status = SKIPPED if error.kind == ErrorKind.QUOTA else FAILED
                self._end(execution, work, status, error.describe(), error.code, step=step, error=error)

    def _end(
        self,
        execution: Execution,
        work: InstanceWork,
        status: str,
        reason: str,
        code: str | None,
        *,
        step: str,
        error: ProviderError | None = None,
    ) -> None:
        work.status = status
        work.reason = reason
        kind = error.kind.value if error else (ErrorKind.QUOTA.value if (code or "").startswith("Quota") else None)
        work.error = {"code": code, "kind": kind, "request_id": error.request_id if error else None}
        self.ctx.save(execution, work)
        self.ctx.event(
            execution,
            work,
            step=step,
            outcome=status,
            error_code=code,
            request_id=error.request_id if error else None,
            message=reason,
        )

    def _submit_images(self) -> None:
        """Steps 1-4 for every instance that needs them: at most `concurrency` lanes per account."""
        todo = [
            (e, w)
            for e, w in self._works()
            if w.status == NEW or (w.status == CREATING and w.image and w.image.state in (PLANNED, SUBMITTING))
        ]
        lanes: list[list[tuple[Execution, InstanceWork]]] = []
        by_account: dict[str, list[tuple[Execution, InstanceWork]]] = {}
        for execution, work in todo:
            by_account.setdefault(execution.policy.account, []).append((execution, work))
        for account, items in by_account.items():
            width = self.options.concurrency.get(account) or self.ctx.providers.get(account).limits.default_concurrency
            lanes += [items[lane::width] for lane in range(min(width, len(items)))]
        if not lanes:
            return
        with ThreadPoolExecutor(max_workers=len(lanes), thread_name_prefix="imagebak") as pool:
            for future in [pool.submit(self._submit_lane, lane) for lane in lanes]:
                future.result()

    def _submit_lane(self, items: list[tuple[Execution, InstanceWork]]) -> None:
        for execution, work in items:
            if time.monotonic() >= self._deadline:
                return  # no new submissions after the deadline; the next run picks these up
            self._guarded(execution, work, "create", lambda e=execution, w=work: create_step.submit(self.ctx, e, w))

    def _poll_images(self) -> None:
        pending = [(e, w, w.image) for e, w in self._works() if w.status == CREATING and wait_step.is_pending(w.image)]
        self._poll(pending)
        for execution, work in self._works():
            image = work.image
            if work.status != CREATING or image is None:
                continue
            if image.state == AVAILABLE:
                self._image_ready(execution, work)
            elif image.state == FAILED:
                self._image_failed(execution, work)

    def _poll(self, pending: list[wait_step.Pending]) -> None:
        if not pending:
            return
        try:
            wait_step.poll(self.ctx, pending)
        except ProviderError as error:  # the whole batch: transient ones are polled again next pass
            execution = pending[0][0]
            if not (error.transient or error.kind == ErrorKind.CONFLICT):
                for e, w, artifact in pending:
                    artifact.state = FAILED
                    artifact.detail = error.describe()
                    self.ctx.save(e, w)
            self.ctx.error_event(execution, None, "wait", error)

    def _image_ready(self, execution: Execution, work: InstanceWork) -> None:
        if execution.policy.copy_to:
            copy_step.plan(execution, work)
            work.status = COPYING
        else:
            work.status = DONE
        self.ctx.save(execution, work)

    def _image_failed(self, execution: Execution, work: InstanceWork) -> None:
        image = work.image
        assert image is not None
        if image.attempt > execution.policy.retry_failed:
            self._end(
                execution,
                work,
                FAILED,
                f"image {image.image_id or image.ref} failed: {image.detail}",
                "ImageFailed",
                step="wait",
            )
            return
        self._discard(execution, image.region, image.image_id)
        size = image.size_gb
        work.image = create_step.new_image_artifact(self.ctx, execution, work, attempt=image.attempt + 1)
        work.image.size_gb = size
        self.ctx.save(execution, work)
        self.ctx.event(execution, work, step="create", outcome="retry", attempt=work.image.attempt)

    def _discard(self, execution: Execution, region: str, image_id: str | None) -> None:
        """Best-effort removal of a failed image imagebak itself created, before trying again."""
        if image_id is None:
            return
        try:
            self.ctx.providers.get(execution.policy.account).delete_image(region, image_id)
        except ProviderError as error:
            self.ctx.error_event(execution, None, "cleanup", error, image_id=image_id)

    def _submit_copies(self) -> None:
        planned = [
            (e, w, c)
            for e, w in self._works()
            if w.status == COPYING
            for c in w.copies.values()
            if copy_step.is_planned(c)
        ]
        if not planned:
            return
        try:
            copy_step.submit(self.ctx, planned)
        except ProviderError as error:
            self._copy_batch_error(planned, error)

    def _copy_batch_error(self, planned: list[copy_step.Planned], error: ProviderError) -> None:
        for execution, work, artifact in planned:
            if artifact.state != SUBMITTING:
                continue
            if error.kind == ErrorKind.CONFLICT:
                artifact.state = PLANNED  # refused outright (e.g. 5 copies in flight): try again later
            elif not error.transient:
                artifact.state = SKIPPED if error.kind == ErrorKind.QUOTA else FAILED
                artifact.detail = error.describe()
            self.ctx.save(execution, work)
        self.ctx.error_event(planned[0][0], None, "copy", error)

    def _poll_copies(self) -> None:
        pending = [
            (e, w, c) for e, w in self._works() if w.status == COPYING for c in w.copies.values() if c.state == PENDING
        ]
        self._poll(pending)
        for execution, work in self._works():
            if work.status != COPYING:
                continue
            for slot, artifact in list(work.copies.items()):
                if artifact.state == AVAILABLE and not artifact.tagged:
                    self._tag_copy(execution, work, slot)
                elif artifact.state == FAILED and artifact.attempt <= execution.policy.retry_failed:
                    self._discard(execution, artifact.region, artifact.image_id)
                    del work.copies[slot]
                    copy_step.plan(execution, work, attempt=artifact.attempt + 1)
                    self.ctx.save(execution, work)
            states = {c.state for c in work.copies.values()}
            if states <= {AVAILABLE, FAILED, SKIPPED}:
                bad = [f"{c.region}: {c.detail}" for c in work.copies.values() if c.state != AVAILABLE]
                if bad:
                    self._end(execution, work, FAILED, "copy failed: " + "; ".join(bad), "CopyFailed", step="copy")
                else:
                    work.status = DONE
                    self.ctx.save(execution, work)
                    self.ctx.event(
                        execution,
                        work,
                        step="done",
                        outcome="ok",
                        image_id=work.image.image_id if work.image else None,
                        copies={c.region: c.image_id for c in work.copies.values()},
                    )

    def _tag_copy(self, execution: Execution, work: InstanceWork, slot: str) -> None:
        artifact = work.copies[slot]
        tags = ownership_tags(
            policy=execution.policy.name, instance=work.instance_id, run=execution.run_id, key=artifact.key
        )
        try:
            self.ctx.providers.get(execution.policy.account).tag_image(artifact.region, artifact.image_id or "", tags)
            artifact.tagged = True
        except ProviderError as error:
            self.ctx.error_event(execution, work, "tag", error)
            return
        self.ctx.save(execution, work)

    def _finish(self) -> None:
        for execution in self.ctx.executions:
            if execution.done and execution.finished_at is None:
                execution.finished_at = self.ctx.now().isoformat()
                self.ctx.journal.finish(execution)
                self.ctx.event(execution, None, step="execution", outcome="finished")

    def _progress_line(self) -> str:
        creating = [w.image.progress or 0 for _, w in self._works() if w.status == CREATING and w.image]
        copying = sum(
            1 for _, w in self._works() if w.status == COPYING for c in w.copies.values() if c.state != AVAILABLE
        )
        images = ", ".join(f"{p}%" for p in creating[:8]) + (" ..." if len(creating) > 8 else "")
        return f"waiting: {len(creating)} image(s) creating [{images}], {copying} copy(ies) in progress"
