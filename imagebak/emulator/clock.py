"""Injectable clocks: the model reads time only through these, so tests and demos control it."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Protocol, runtime_checkable


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _aware_utc(dt: datetime) -> datetime:
    """Naive datetimes are taken as UTC; aware ones are converted."""
    return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt.astimezone(timezone.utc)


@runtime_checkable
class Clock(Protocol):
    def now(self) -> datetime:
        """The simulated current time, an aware UTC datetime."""
        ...

    def ensure_not_before(self, dt: datetime) -> None:
        """Move the clock forward to ``dt`` if it is behind (a reloaded state must not be in the future)."""
        ...


class SystemClock:
    """Real time, optionally sped up: simulated now = start + real elapsed × time_scale.

    A time scale of 600 makes a 10-minute image creation take one real second.
    """

    def __init__(self, time_scale: float = 1.0, start: datetime | None = None) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self.time_scale = time_scale
        self._lock = threading.Lock()
        self._start = _aware_utc(start) if start else utcnow()
        self._mono = time.monotonic()

    def now(self) -> datetime:
        with self._lock:
            elapsed = time.monotonic() - self._mono
            return self._start + timedelta(seconds=elapsed * self.time_scale)

    def ensure_not_before(self, dt: datetime) -> None:
        dt = _aware_utc(dt)
        with self._lock:
            elapsed = time.monotonic() - self._mono
            current = self._start + timedelta(seconds=elapsed * self.time_scale)
            if current < dt:
                self._start += dt - current


class ManualClock:
    """A clock that moves only when told to: tests advance it instead of sleeping."""

    def __init__(self, start: datetime | None = None) -> None:
        self._lock = threading.Lock()
        self._now = _aware_utc(start) if start else datetime(2024, 1, 1, tzinfo=timezone.utc)

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> datetime:
        if seconds < 0:
            raise ValueError("a ManualClock cannot go backwards")
        with self._lock:
            self._now += timedelta(seconds=seconds)
            return self._now

    def set(self, dt: datetime) -> None:
        with self._lock:
            self._now = _aware_utc(dt)

    def ensure_not_before(self, dt: datetime) -> None:
        dt = _aware_utc(dt)
        with self._lock:
            self._now = max(self._now, dt)
