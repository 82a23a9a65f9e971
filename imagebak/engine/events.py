"""The execution log: one JSON line per event, appended to a file (the product's policy execution log).

Events carry ids, regions, outcomes, durations, error codes and request ids, never credentials:
nothing that reaches this module holds a secret.
"""

from __future__ import annotations

import json
import os
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any


class EventLog:
    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self.events: list[dict[str, Any]] = []  # this run's events, for the summary

    def emit(self, **fields: Any) -> None:
        event = {
            "ts": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
            **{k: v for k, v in fields.items() if v is not None},
        }
        with self._lock:
            self.events.append(event)
            if self.path is None:
                return
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            with os.fdopen(fd, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(event, ensure_ascii=False) + "\n")
