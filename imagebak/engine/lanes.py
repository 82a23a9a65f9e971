"""Parallel lanes that a hung cloud call cannot hold past the run's deadline.

Jobs run on daemon threads, at most ``width`` lanes per account, so one account's hang never
delays another's work. The caller waits until every lane is done or the deadline (plus a short
grace) passes; a lane still stuck in a call then is left behind, and dies with the process. Its
artifact was journaled before the call, so the next run resumes it by adoption. A bug in a job
(any exception) is re-raised in the caller.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

Job = Callable[[], None]
INF = float("inf")
DEADLINE_GRACE_SECONDS = 2.0


class Lanes(NamedTuple):
    finished: bool  # no lane outlived the deadline
    left: int  # jobs no lane took (the deadline or ``stop_taking`` came first)


def run_in_lanes(
    jobs: Mapping[str, Sequence[Job]], width: Callable[[str], int], deadline: float, *, stop_taking: float = INF
) -> Lanes:
    """Run each account's jobs in up to ``width(account)`` lanes; after ``stop_taking`` (or the deadline)
    a lane finishes the job it is in and takes no other."""
    lanes = [
        list(items[lane :: width(account)])
        for account, items in jobs.items()
        for lane in range(min(width(account), len(items)))
    ]
    errors: list[BaseException] = []
    left: list[int] = []

    def run(lane: list[Job]) -> None:
        try:
            for taken, job in enumerate(lane):
                if time.monotonic() >= min(deadline, stop_taking):
                    left.append(len(lane) - taken)  # the next pass (or run) picks them up
                    return
                job()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(lane,), name="imagebak-lane", daemon=True) for lane in lanes]
    for thread in threads:
        thread.start()
    for thread in threads:
        remaining = deadline + DEADLINE_GRACE_SECONDS - time.monotonic()
        thread.join(None if remaining == INF else max(0.0, remaining))
    if errors:
        raise errors[0]
    return Lanes(finished=not any(thread.is_alive() for thread in threads), left=sum(left))
