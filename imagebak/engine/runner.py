"""The loop that drives executions forward: submit images, poll, copy, poll copies, finish.

The engine orchestrates and decides states through the transition tables in
``execution.states``; every cloud call is a step in ``actions`` that gets the narrow
``StepContext``. Instances are submitted in parallel lanes, bounded per account.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from functools import partial

from imagebak.actions import StepEnded, outcome_of
from imagebak.actions import cleanup as cleanup_step
from imagebak.actions import copy as copy_step
from imagebak.actions import create as create_step
from imagebak.actions import wait as wait_step
from imagebak.engine.context import RunContext
from imagebak.engine.lanes import INF, run_in_lanes
from imagebak.engine.options import RunOptions
from imagebak.engine.polling import MIN_FRACTION, Group, PollSchedule
from imagebak.execution.records import Artifact, Execution, InstanceWork, WorkItem
from imagebak.execution.states import ArtifactState, Outcome, WorkEvent, WorkStatus
from imagebak.providers import retry
from imagebak.providers.base import ProviderError

DELETE_PASSES = 5  # passes a refused delete of a failed image is tried before it is kept on record instead


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
        self.executions: list[Execution] = []
        self._deadline = INF
        self._stranded = False  # a lane was still in a cloud call when the deadline passed
        self._copies_waiting = False  # the last pass left copies to submit for want of time: no sleep
        self._schedule = PollSchedule(options.poll_interval)
        self._delete_tries: Counter[str] = Counter()  # failed artifact key -> passes its delete was refused

    def advance(self, executions: list[Execution]) -> bool:
        """Returns True if the deadline stopped the wait."""
        self.executions = executions
        self._deadline = time.monotonic() + self.options.deadline_seconds
        with retry.until(self._deadline):
            return self._loop(executions)

    def _loop(self, executions: list[Execution]) -> bool:
        for execution in executions:
            fresh = all(w.status is WorkStatus.NEW for w in execution.instances.values())
            self.ctx.event(execution, None, step="execution", outcome="started" if fresh else "resumed",
                           manual=execution.manual)  # fmt: skip
        while True:
            self._submit_images()
            self._poll_images()
            self._poll_copies()  # before submitting: a copy that just finished frees its slot at once
            self._submit_copies()
            self._finish()
            self.ctx.journal.compact(unless_small=True)
            if all(e.done for e in executions):
                return False
            if self._stranded:
                return True
            if not self.options.wait:
                return False
            if time.monotonic() >= self._deadline:
                return True
            if self.progress:
                self.progress(self._progress_line())
            if not self._copies_waiting:
                self.sleep(max(0.0, min(self._schedule.wait(time.monotonic()), self._deadline - time.monotonic())))

    # -- what is live ----------------------------------------------------------------------------

    def _works(self, status: WorkStatus | None = None) -> list[tuple[Execution, InstanceWork]]:
        return [
            (e, w)
            for e in self.executions
            for w in e.instances.values()
            if not w.terminal and status in (None, w.status)
        ]

    def _images(self) -> list[WorkItem]:
        return [WorkItem(e, w, w.image) for e, w in self._works(WorkStatus.CREATING) if w.image is not None]

    def _copies(self) -> list[WorkItem]:
        return [WorkItem(e, w, c) for e, w in self._works(WorkStatus.COPYING) for c in w.copies.values()]

    def _copies_in_flight(self, account: str) -> int:
        return sum(
            1 for item in self._copies() if item.account == account and item.artifact.state is ArtifactState.PENDING
        )

    # -- outcomes --------------------------------------------------------------------------------

    def _guarded(self, execution: Execution, work: InstanceWork, step: str, action: Callable[[], None]) -> None:
        """Run one instance step; turn its end or its cloud error into the instance's next state."""
        try:
            action()
        except StepEnded as ended:
            self._end(execution, work, ended.outcome, ended.reason, ended.code, step=step)
        except ProviderError as error:
            outcome = outcome_of(error)
            if outcome is Outcome.RETRY_LATER:
                work.reason = f"will retry: {error.describe()}"
                self.ctx.error_event(execution, work, step, error, outcome=outcome.value)
            else:
                self._end(execution, work, outcome, error.describe(), error.code, step=step, error=error)

    def _end(
        self,
        execution: Execution,
        work: InstanceWork,
        outcome: Outcome,
        reason: str,
        code: str | None,
        *,
        step: str,
        error: ProviderError | None = None,
    ) -> None:
        """The instance's work ends in this execution: skipped or failed, with the reason."""
        skipped = outcome in (Outcome.SKIPPED, Outcome.QUOTA_SKIP)
        work.fire(WorkEvent.SKIPPED if skipped else WorkEvent.FAILED)
        work.reason = reason
        request_id = error.request_id if error else None
        work.error = {
            "code": code,
            "kind": error.kind.value if error else None,
            "outcome": outcome.value,
            "request_id": request_id,
        }
        self.ctx.save(execution, work)
        self.ctx.event(execution, work, step=step, outcome=work.status.value, error_code=code,
                       request_id=request_id, message=reason)  # fmt: skip

    # -- passes ----------------------------------------------------------------------------------

    def _in_lanes(self, jobs: list[tuple[str, Callable[[], None]]], *, budget: float | None = None) -> bool:
        """Run (account, job) pairs in parallel lanes, at most `concurrency` per account, none after the
        deadline, nor any new one after ``budget`` seconds; True if every job was taken."""
        by_account: dict[str, list[Callable[[], None]]] = {}
        for account, job in jobs:
            by_account.setdefault(account, []).append(job)
        stop_taking = time.monotonic() + budget if budget is not None else INF
        lanes = run_in_lanes(by_account, self._width, self._deadline, stop_taking=stop_taking)
        if not lanes.finished:
            self._stranded = True
        return lanes.left == 0

    def _width(self, account: str) -> int:
        return self.options.concurrency.get(account) or self.ctx.provider(account).limits.default_concurrency

    def _submit_images(self) -> None:
        """Steps 1-4 for every instance that needs them."""
        todo = [(e, w) for e, w in self._works() if w.status is WorkStatus.NEW or (w.image and w.image.open)]
        self._describe_instances([(e, w) for e, w in todo if w.status is WorkStatus.NEW])
        self._in_lanes(
            [
                (e.policy.account, partial(self._guarded, e, w, "create", partial(create_step.submit, self.ctx, e, w)))
                for e, w in todo
            ]
        )

    def _describe_instances(self, todo: list[tuple[Execution, InstanceWork]]) -> None:
        """Step 1's look-ups for a whole pass, per account and region, before the lanes take one each."""
        groups: dict[tuple[str, str], list[str]] = {}
        for execution, work in todo:
            if self.ctx.provider(execution.policy.account).limits.instances_per_describe <= 1:
                continue  # one call per instance anyway: each lane asks for its own, in parallel
            groups.setdefault((execution.policy.account, execution.policy.region), []).append(work.instance_id)
        describe = self.ctx.describe_instances
        self._in_lanes([(acc, partial(describe, acc, region, ids)) for (acc, region), ids in groups.items()])

    def _poll(self, items: list[WorkItem], step: str) -> None:
        """Poll pending artifacts, each account and region in its own lane (one batched call each),
        each group when ``polling.PollSchedule`` says it is due."""
        groups: dict[Group, list[WorkItem]] = {}
        for item in items:
            if item.artifact.state is ArtifactState.PENDING:
                groups.setdefault((step, item.account, item.artifact.region), []).append(item)
        # The artifacts' times are the run's clock (``--now`` / IMAGEBAK_NOW may move it): compare with it.
        wall = self.ctx.now().timestamp()
        due = self._schedule.due(step, groups, time.monotonic(), wall)
        asked = {group: self._schedule.worth_asking(group, groups[group], wall) for group in due}
        self._in_lanes([(group[1], partial(self._poll_group, asked[group], step)) for group in due if asked[group]])
        for group in due:
            self._schedule.polled(group, groups[group], time.monotonic(), self.ctx.now().timestamp())

    def _poll_group(self, pending: list[WorkItem], step: str) -> None:
        """A batch-wide error ends the batch only if retrying cannot help."""
        try:
            wait_step.poll(self.ctx, pending)
        except ProviderError as error:
            if outcome_of(error) is not Outcome.RETRY_LATER:
                wait_step.broken(self.ctx, pending, error.describe())
            self.ctx.error_event(pending[0].execution, None, step, error)

    def _poll_images(self) -> None:
        self._poll(self._images(), "wait")
        for execution, work, image in self._images():
            if image.state is ArtifactState.AVAILABLE:
                copy_step.plan(execution, work)
                work.fire(WorkEvent.IMAGE_READY)
                self.ctx.save(execution, work, durable=False)  # the copies' own records come before their calls
            elif image.state is ArtifactState.FAILED:
                self._image_failed(execution, work)

    def _image_failed(self, execution: Execution, work: InstanceWork) -> None:
        image = work.image
        assert image is not None
        if image.attempt > execution.policy.retry_failed:
            reason = f"image {image.image_id or image.ref} failed: {image.detail}"
            self._end(execution, work, Outcome.FAILED, reason, "ImageFailed", step="wait")
            return
        if not self._discarded(execution, work, image):
            return  # it stays recorded as failed; deleting it is tried again on the next pass
        work.image = create_step.new_image_artifact(self.ctx, execution, work, attempt=image.attempt + 1)
        work.image.size_gb, work.image.encrypted = image.size_gb, image.encrypted
        work.fire(WorkEvent.IMAGE_RETRY)
        self.ctx.save(execution, work)
        self.ctx.event(execution, work, step="create", outcome="retry", attempt=work.image.attempt)

    def _discarded(self, execution: Execution, work: InstanceWork, failed: Artifact) -> bool:
        """Whether a failed image is out of the way of its retry: deleted, or, when the cloud keeps
        refusing, kept on record (``leftovers``) so it is never forgotten."""
        if cleanup_step.discard(self.ctx, execution, failed):
            return True
        self._delete_tries[failed.key] += 1
        if self._delete_tries[failed.key] < DELETE_PASSES:
            return False
        work.leftovers += [i for i in (failed.image_id, *failed.extra_image_ids) if i and i not in work.leftovers]
        self.ctx.event(execution, work, step="cleanup", outcome="left-on-record", image_ids=work.leftovers)
        return True

    def _submit_copies(self) -> None:
        planned = [item for item in self._copies() if item.artifact.open]
        calls = copy_step.batches(self.ctx, planned, self._copies_in_flight) if planned else []
        # At most a fifth of a poll interval of submitting (the shortest wait between two polls), then the
        # pass goes on and polls again at once: images that became ready meanwhile are seen then, instead of
        # after every copy of a wave is submitted.
        jobs: list[tuple[str, Callable[[], None]]] = [
            (batch[0].account, partial(copy_step.submit_batch, self.ctx, batch)) for batch in calls
        ]
        self._copies_waiting = not self._in_lanes(jobs, budget=self.options.poll_interval * MIN_FRACTION)

    def _poll_copies(self) -> None:
        self._poll(self._copies(), "copy")
        for execution, work, copy in self._copies():
            if _needs_tags(copy):
                copy_step.tag(self.ctx, WorkItem(execution, work, copy))
            elif copy.state is ArtifactState.FAILED and copy.attempt <= execution.policy.retry_failed:
                if not self._discarded(execution, work, copy):
                    continue  # stays recorded as failed until the cloud lets it be deleted
                copy_step.replan_failed(execution, work, f"{copy.region}/{copy.source_image_id}")
                self.ctx.save(execution, work)
        for execution, work in self._works(WorkStatus.COPYING):
            self._settle_copies(execution, work)

    def _settle_copies(self, execution: Execution, work: InstanceWork) -> None:
        """Once no copy is still being made: failed if a copy failed, else done (skipped copies say why)."""
        copies = list(work.copies.values())
        settled = (ArtifactState.AVAILABLE, ArtifactState.FAILED, ArtifactState.SKIPPED)
        if any(c.state not in settled or _needs_tags(c) for c in copies):
            return
        failed = [f"{c.region}: {c.detail}" for c in copies if c.state is ArtifactState.FAILED]
        if failed:
            self._end(execution, work, Outcome.FAILED, "copy failed: " + "; ".join(failed), "CopyFailed", step="copy")
            return
        skipped = [f"{c.region}: {c.detail}" for c in copies if c.state is ArtifactState.SKIPPED]
        work.reason = "copy skipped: " + "; ".join(skipped) if skipped else ""
        work.fire(WorkEvent.COPIES_SETTLED)
        self.ctx.save(execution, work)
        self.ctx.event(
            execution,
            work,
            step="done",
            outcome=Outcome.OK.value,
            image_id=work.image.image_id if work.image else None,
            copies={f"{c.region}/{c.source_image_id}": c.image_id for c in copies if c.image_id},
            skipped={c.region: c.outcome for c in copies if c.state is ArtifactState.SKIPPED} or None,
            message=work.reason or None,
        )

    def _finish(self) -> None:
        for execution in self.executions:
            if execution.done and execution.finished_at is None:
                execution.finished_at = self.ctx.now().isoformat()
                self.ctx.journal.finish(execution)
                self.ctx.event(execution, None, step="execution", outcome="finished")

    def _progress_line(self) -> str:
        creating = [item.artifact.progress or 0 for item in self._images()]
        copying = sum(1 for item in self._copies() if item.artifact.state is not ArtifactState.AVAILABLE)
        images = ", ".join(f"{p}%" for p in creating[:8]) + (" ..." if len(creating) > 8 else "")
        names = sorted({e.policy.name for e, _ in self._works()})
        policies = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        return f"{policies}: {len(creating)} image(s) creating [{images}], {copying} copy(ies) in progress"


def _needs_tags(copy: Artifact) -> bool:
    """Available, but its ownership tags are not set yet (and setting them has not failed for good)."""
    return copy.state is ArtifactState.AVAILABLE and not copy.tagged and copy.outcome is None
