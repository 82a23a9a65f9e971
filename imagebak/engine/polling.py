"""When to poll each group of pending artifacts: every poll interval, or when they can have ended.

A group (step, account, region) is polled with one batched call. When every artifact in a group has
an expected end, the group's next poll is at the earliest of them (once that has passed, after as
long again as it is overdue): no sooner than a fifth of the poll interval, and no later than
``MAX_INTERVALS`` intervals (a failure is still seen soon). So a
Huawei copy slot is refilled as soon as its copy can have finished, and a 20-minute image costs a
few status calls instead of one per interval. Without an estimate, the group is polled every interval.

The expected end comes from the shortest time the same step took for the same account in this run
(submission to seen available; each one seen at its expected end makes the next estimate closer),
or else from the progress the cloud reports, extrapolated linearly from 10 % on (from the top of the
reported whole percent, as of when it was reported, so that it errs early), or else from the
shortest duration another artifact's progress implies for the same step and account: a vendor whose
listing carries no progress (Huawei) reports one job's progress now and then, and the whole group
has an estimate from it.

Once an artifact has an expected end, a poll asks for it only when it can have ended
(``worth_asking``), or when it was not asked for a tenth of its expected duration (at least
``MAX_INTERVALS`` intervals), so that a failure is still seen in good time: while 500 twenty-minute
images are being made, a poll describes the few that can be ready instead of all 500 every other
interval.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from imagebak.execution.records import Artifact, WorkItem
from imagebak.execution.states import ArtifactState

Group = tuple[str, str, str]  # step, account, region
MAX_INTERVALS = 2.0  # never wait longer than this many poll intervals while something is pending
MIN_FRACTION = 0.2  # nor poll again sooner than this share of the interval
MIN_PROGRESS = 10  # below this, a reported progress says too little to extrapolate from
SLACK = 0.001  # seconds: a poll due within this is due now (float round-off must not make a zero-length sleep)
REFRESH_SHARE = 0.1  # an artifact not expected to have ended is asked for again after this share of its duration


def _epoch(text: str | None) -> float | None:
    return datetime.fromisoformat(text).timestamp() if text else None


class PollSchedule:
    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._next: dict[Group, float] = {}  # monotonic time of each group's next poll
        self._took: dict[tuple[str, str], float] = {}  # (step, account) -> shortest seconds to available
        self._asked: dict[str, float] = {}  # artifact key -> when (epoch) a status call last asked for it
        # artifact key -> its last reported progress, and the duration that implies (from when it was asked for)
        self._reported: dict[str, tuple[int, float]] = {}
        self._implied: dict[tuple[str, str], float] = {}  # (step, account) -> shortest duration a progress implies

    def due(self, step: str, groups: Mapping[Group, Sequence[WorkItem]], now: float, wall: float) -> list[Group]:
        """The step's groups to poll now. A group seen for the first time is polled once its oldest
        artifact was submitted an interval ago: at once for what a resumed run finds in flight."""
        for group in [g for g in self._next if g[0] == step and g not in groups]:
            del self._next[group]  # nothing of it is pending any more
        for group, items in groups.items():
            if group not in self._next:
                submitted = [_epoch(item.artifact.submitted_at) for item in items]
                oldest = min((t for t in submitted if t is not None), default=None)
                if oldest is None or None in submitted:
                    self._next[group] = now
                else:
                    self._next[group] = now + max(0.0, oldest + self.interval - wall)
        return [group for group in groups if now + SLACK >= self._next[group]]

    def worth_asking(self, group: Group, items: Sequence[WorkItem], wall: float) -> list[WorkItem]:
        """Of a due group's artifacts, those a status call can tell something new now (every one without an
        expected end among them)."""
        step, account, _ = group
        asked = [item for item in items if self._can_have_changed(step, account, item.artifact, wall)]
        self._asked.update((item.artifact.key, wall) for item in asked)
        return asked

    def _can_have_changed(self, step: str, account: str, artifact: Artifact, wall: float) -> bool:
        """Expected to have ended by now, or not asked for long (a failure, or an estimate gone stale)."""
        end = self._expected_end(step, account, artifact)
        submitted = _epoch(artifact.submitted_at)
        if end is None or end <= wall or submitted is None:  # without a submission time there is no end
            return True
        last = self._asked.get(artifact.key, submitted)
        return wall - last >= max(self.interval * MAX_INTERVALS, (end - submitted) * REFRESH_SHARE)

    def polled(self, group: Group, items: Sequence[WorkItem], now: float, wall: float) -> None:
        """Learn how long the artifacts that just became available took; schedule the group's next poll."""
        step, account, _ = group
        for item in items:
            submitted, finished = _epoch(item.artifact.submitted_at), _epoch(item.artifact.finished_at)
            if item.artifact.state is ArtifactState.AVAILABLE and submitted and finished and finished > submitted:
                took = finished - submitted
                self._took[(step, account)] = min(took, self._took.get((step, account), took))
        pending = [item.artifact for item in items if item.artifact.state is ArtifactState.PENDING]
        for artifact in pending:
            self._learn_progress(step, account, artifact, wall)
        for item in items:
            if item.artifact.state is not ArtifactState.PENDING:
                self._asked.pop(item.artifact.key, None)
                self._reported.pop(item.artifact.key, None)
        ends = [self._expected_end(step, account, artifact) for artifact in pending]
        if not pending or any(end is None for end in ends):
            self._next[group] = now + self.interval
            return
        soonest = min(end for end in ends if end is not None)
        # Past its expected end (the estimate was a little early, or the artifact is slow), look again after as
        # long as it is already late: an estimate a few milliseconds early costs a fifth of an interval, not one.
        wait = soonest - wall if soonest > wall else wall - soonest
        self._next[group] = now + min(max(wait, self.interval * MIN_FRACTION), self.interval * MAX_INTERVALS)

    def _learn_progress(self, step: str, account: str, artifact: Artifact, wall: float) -> None:
        """Remember a newly reported progress with the time it was asked for (a later call that reports no
        progress must not make it look more recent), and the duration it implies for the group."""
        progress, submitted = artifact.progress, _epoch(artifact.submitted_at)
        if progress is None or not MIN_PROGRESS <= progress < 100 or submitted is None:
            return
        if self._reported.get(artifact.key, (None, 0.0))[0] == progress:
            return
        seen = self._asked.get(artifact.key, wall)
        # Clouds report whole percents, rounded down: 10 % may be 10.9 %. Extrapolating from the next
        # percent makes the estimate early rather than late (a late one is a late poll).
        duration = (seen - submitted) * 100 / (progress + 1)
        self._reported[artifact.key] = (progress, duration)
        self._implied[(step, account)] = min(duration, self._implied.get((step, account), duration))

    def wait(self, now: float) -> float:
        """Seconds until the next poll of any pending group (at most one interval)."""
        soonest = min(self._next.values(), default=now + self.interval)
        wait = min(self.interval, soonest - now)
        return wait if wait > SLACK else 0.0

    def _expected_end(self, step: str, account: str, artifact: Artifact) -> float | None:
        submitted = _epoch(artifact.submitted_at)
        if submitted is None:
            return None
        took = self._took.get((step, account))
        if took is not None:
            return submitted + took
        _, duration = self._reported.get(artifact.key, (None, self._implied.get((step, account))))
        return None if duration is None else submitted + duration
