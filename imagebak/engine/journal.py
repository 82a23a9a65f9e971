"""Writes execution records into the state file, one small atomic transaction per change.

Called before and after every mutating cloud call, so that at any moment the state on disk
says what may exist in the cloud. Threads of one run share a lock; other processes are kept
out by the state file's own lock.
"""

from __future__ import annotations

import threading
from dataclasses import asdict
from typing import Any

from imagebak.errors import StateError
from imagebak.execution.records import Execution, InstanceWork
from imagebak.state import State, StateStore

EXECUTIONS = "executions"
HISTORY = "history"
HISTORY_LENGTH = 20


class Journal:
    def __init__(self, store: StateStore) -> None:
        self.store = store
        self._lock = threading.Lock()

    def save_instance(self, execution: Execution, work: InstanceWork) -> None:
        """Persist one instance's record (the unit that changes with each cloud call)."""
        with self._lock, self.store.update() as state:
            record = self._record(state, execution)
            record["instances"][work.instance_id] = asdict(work)

    def finish(self, execution: Execution) -> None:
        """Move a finished execution out of the in-flight table into a short history."""
        with self._lock, self.store.update() as state:
            entry = state.entry(execution.policy_key)
            entry.get(EXECUTIONS, {}).pop(execution.run_id, None)
            history = entry.setdefault(HISTORY, [])
            history.append(_summary(execution))
            del history[:-HISTORY_LENGTH]

    @staticmethod
    def _record(state: State, execution: Execution) -> dict[str, Any]:
        executions = state.entry(execution.policy_key).setdefault(EXECUTIONS, {})
        return executions.setdefault(execution.run_id, execution.to_dict())


def in_flight(state: State) -> list[Execution]:
    """Every unfinished execution in the state, whatever the policy file says now."""
    found = []
    for key, entry in state.policies.items():
        for run_id, raw in entry.get(EXECUTIONS, {}).items():
            try:
                found.append(Execution.from_dict(raw))
            except (KeyError, TypeError, ValueError) as exc:
                raise StateError(
                    f"{state.path}: policies.{key}.{EXECUTIONS}.{run_id}: unreadable record ({exc}); fix or remove it"
                ) from None
    return found


def _summary(execution: Execution) -> dict[str, Any]:
    return {
        "run_id": execution.run_id,
        "manual": execution.manual,
        "started_at": execution.started_at,
        "finished_at": execution.finished_at,
        "instances": {
            iid: {
                "status": w.status.value,
                "reason": w.reason,
                "image_id": w.image.image_id if w.image else None,
                "copies": {k: c.image_id for k, c in w.copies.items() if c.image_id},
            }
            for iid, w in execution.instances.items()
        },
    }
