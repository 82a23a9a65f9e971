"""The execution log: one JSON line per event, appended to a file (the product's policy execution log).

Events carry ids, regions, outcomes, durations, error codes and request ids, never credentials:
nothing that reaches this module holds a secret.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from imagebak.errors import StateError

log = logging.getLogger(__name__)


class EventLog:
    """Checked once at the start (an unusable log stops the run before any cloud call); a log that
    fails later is reported (``problem``) and the backup goes on: the state journal, not this log,
    is what resumption relies on."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self.events: list[dict[str, Any]] = []  # this run's events, for the summary
        self.problem: str | None = None  # why lines could not be written, once that happened
        if path is not None:
            try:
                self._append(b"")
            except OSError as exc:
                raise StateError(f"{path}: cannot write the execution log: {exc.strerror or exc}") from None

    def emit(self, **fields: Any) -> None:
        event = {
            "ts": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
            **{k: v for k, v in fields.items() if v is not None},
        }
        with self._lock:
            self.events.append(event)
            if self.path is None or self.problem is not None:
                return
            try:
                self._append((json.dumps(event, ensure_ascii=False) + "\n").encode("utf-8"))
            except OSError as exc:
                self.problem = f"{self.path}: cannot write the execution log: {exc.strerror or exc}"
                log.error("%s; the backup goes on, its events are in the state file and the run's output", self.problem)

    def _append(self, data: bytes) -> None:
        """Open, append, close: another process's lines interleave whole, and a rotated log is followed.
        The folder is made only when it is missing (a syscall and a path walk saved on every event)."""
        assert self.path is not None
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
        try:
            fd = os.open(self.path, flags, 0o600)
        except FileNotFoundError:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self.path, flags, 0o600)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
