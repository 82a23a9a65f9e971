"""Fault injection applied before a front-end sees a request, plus call counters and a request log.

Faults target (vendor, action) with "*" wildcards; the most specific rule wins, so a test can put
a background throttle rate on everything and still script one action exactly.
"""

from __future__ import annotations

import random
import threading
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from typing import Any, TypeVar

from imagebak.emulator.model import CloudError

WILDCARD = "*"
DEFAULT_HANG_SECONDS = 30.0  # long enough for any client timeout, short enough to free the thread
ERROR_STATUSES = {500: "internal", 503: "unavailable"}
RATES = ("throttle_rate", "error_rate", "slow_rate")  # probabilities per call, drawn from the seeded RNG


@dataclass
class FaultRule:
    """What to do to matching calls. Counts of ``*_next`` go down as they strike."""

    vendor: str = WILDCARD
    action: str = WILDCARD
    throttle_rate: float = 0.0  # probability 0..1 per call
    throttle_next: int = 0  # the next N calls are throttled
    error_next: int = 0  # the next N calls fail with error_status
    error_rate: float = 0.0  # probability 0..1 per call of failing with error_status
    error_status: int = 500  # 500 (internal) or 503 (unavailable)
    delay_seconds: float = 0.0  # every call is slowed by this much, then processed
    slow_rate: float = 0.0  # probability 0..1 per call of being slowed by slow_seconds, then processed
    slow_seconds: float = 0.0
    hang: bool = False  # every call hangs (up to hang_seconds) and is never processed
    hang_seconds: float = DEFAULT_HANG_SECONDS
    lose_reply_next: int = 0  # the next N calls are processed, then the connection closes without an answer
    pass_next: int = 0  # the next N calls pass untouched before the rule strikes (to hit the 2nd call of a run)

    def validate(self) -> None:
        for name in RATES:
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        # One draw per call decides between throttling and an error, so the two rates are exact
        # shares of the calls; they cannot add up to more than every call.
        if self.throttle_rate + self.error_rate > 1.0:
            raise ValueError("throttle_rate + error_rate must not exceed 1")
        if self.error_status not in ERROR_STATUSES:
            raise ValueError("error_status must be 500 or 503")
        for name in (
            "throttle_next",
            "error_next",
            "lose_reply_next",
            "pass_next",
            "delay_seconds",
            "slow_seconds",
            "hang_seconds",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        if self.slow_rate and not self.slow_seconds:
            raise ValueError("slow_rate needs slow_seconds > 0")  # else it would silently do nothing

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FaultRule:
        """Build from fixture/admin JSON, refusing unknown keys so typos do not pass silently."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown fault setting(s): {', '.join(unknown)}")
        try:
            rule = cls(**data)
            for name in (*RATES, "delay_seconds", "slow_seconds", "hang_seconds"):
                setattr(rule, name, float(getattr(rule, name)))
            rule.throttle_next, rule.error_next = int(rule.throttle_next), int(rule.error_next)
            rule.lose_reply_next, rule.pass_next = int(rule.lose_reply_next), int(rule.pass_next)
            rule.error_status, rule.hang = int(rule.error_status), bool(rule.hang)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"invalid fault setting: {exc}") from None
        rule.validate()
        return rule


class FaultInjector:
    """Per-(vendor, action) fault rules, changeable while the server runs."""

    def __init__(self, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._rules: dict[tuple[str, str], FaultRule] = {}
        self._injected: Counter[tuple[str, str, str]] = Counter()  # (vendor, action, fault kind)
        self._release = threading.Event()  # set to end every hang at once (clear / shutdown)

    def set(self, rule: FaultRule | dict[str, Any]) -> FaultRule:
        """Install (replace) the rule for its (vendor, action)."""
        rule = FaultRule.from_dict(rule) if isinstance(rule, dict) else rule
        rule.validate()
        with self._lock:
            self._rules[(rule.vendor, rule.action)] = rule
        return rule

    def clear(self, vendor: str | None = None, action: str | None = None) -> None:
        """Remove matching rules (None matches any) and release hung requests."""
        with self._lock:
            for key in [k for k in self._rules if vendor in (None, k[0]) and action in (None, k[1])]:
                del self._rules[key]
            released, self._release = self._release, threading.Event()
        released.set()

    def release(self) -> None:
        """End every hang now (server shutdown)."""
        self._release.set()

    def rules(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(r) for r in self._rules.values()]

    def injected(self) -> dict[str, dict[str, dict[str, int]]]:
        """{vendor: {action: {fault kind: count}}} of faults that struck."""
        out: dict[str, dict[str, dict[str, int]]] = {}
        with self._lock:
            for (vendor, action, kind), n in self._injected.items():
                out.setdefault(vendor, {}).setdefault(action, {})[kind] = n
        return out

    def reset_counts(self) -> None:
        with self._lock:
            self._injected.clear()

    def before(self, vendor: str, action: str) -> bool:
        """Apply the matching rule: sleep, hang, or raise a throttled/internal/unavailable CloudError.
        True when the call is to be processed and its answer then lost (``lose_reply_next``).

        A slowed call (``slow_rate``) waits like a delayed one, then goes on to its throttle or error
        decision, if any: a slow answer can still be a refusal, as on a congested cloud.
        """
        with self._lock:
            rule = self._match(vendor, action)
            if rule is None:
                return False
            decision = self._decide(rule)
            if decision:
                self._injected[(vendor, action, decision)] += 1
            if rule.delay_seconds:
                self._injected[(vendor, action, "delayed")] += 1
            slow = decision != "hung" and self._slowed(rule)
            if slow:
                self._injected[(vendor, action, "slowed")] += 1
            delay = rule.delay_seconds + (rule.slow_seconds if slow else 0.0)
            hang_for, status = rule.hang_seconds, rule.error_status
            release = self._release
        if decision == "hung":
            release.wait(hang_for)
            raise CloudError("unavailable", "the request hung (injected fault)")
        if delay:
            release.wait(delay)
        if decision == "throttled":
            raise CloudError("throttled", "request was denied due to request throttling (injected fault)")
        if decision == "error":
            raise CloudError(ERROR_STATUSES[status], f"injected HTTP {status} fault")
        return decision == "reply-lost"

    def _match(self, vendor: str, action: str) -> FaultRule | None:
        for key in ((vendor, action), (vendor, WILDCARD), (WILDCARD, action), (WILDCARD, WILDCARD)):
            rule = self._rules.get(key)
            if rule is not None:
                return rule
        return None

    def _decide(self, rule: FaultRule) -> str | None:
        """Which fault strikes this call, consuming one deterministic count if any."""
        if rule.pass_next:
            rule.pass_next -= 1
            return None
        if rule.hang:
            return "hung"
        if rule.throttle_next:
            rule.throttle_next -= 1
            return "throttled"
        if rule.error_next:
            rule.error_next -= 1
            return "error"
        if rule.lose_reply_next:
            rule.lose_reply_next -= 1
            return "reply-lost"
        if rule.throttle_rate or rule.error_rate:
            draw = self._rng.random()  # one draw for both rates: each is an exact share of the calls
            if draw < rule.throttle_rate:
                return "throttled"
            if draw < rule.throttle_rate + rule.error_rate:
                return "error"
        return None

    def _slowed(self, rule: FaultRule) -> bool:
        """Whether this call is one of the ``slow_rate`` share that waits ``slow_seconds`` first."""
        return bool(rule.slow_rate) and self._rng.random() < rule.slow_rate


N = TypeVar("N", int, float)


def _by_vendor(amounts: Mapping[tuple[str, str], N]) -> dict[str, dict[str, N]]:
    out: dict[str, dict[str, N]] = {}
    for (vendor, action), amount in sorted(amounts.items()):
        out.setdefault(vendor, {})[action] = amount
    return out


class Counters:
    """Calls and CPU seconds per (vendor, action); benchmarks count API calls and the cloud's cost with these."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str]] = Counter()
        self._cpu: dict[tuple[str, str], float] = {}

    def increment(self, vendor: str, action: str) -> None:
        with self._lock:
            self._counts[(vendor, action)] += 1

    def add_cpu(self, vendor: str, action: str, seconds: float) -> None:
        """CPU seconds a request thread spent serving one call, its HTTP parsing and writing included."""
        with self._lock:
            self._cpu[(vendor, action)] = self._cpu.get((vendor, action), 0.0) + seconds

    def get(self, vendor: str, action: str | None = None) -> int:
        """Calls of one action, or of every action of the vendor when action is None."""
        with self._lock:
            return sum(n for (v, a), n in self._counts.items() if v == vendor and action in (None, a))

    def snapshot(self) -> dict[str, dict[str, int]]:
        """Calls per vendor and action."""
        with self._lock:
            return _by_vendor(self._counts)

    def cpu_snapshot(self) -> dict[str, dict[str, float]]:
        """CPU seconds per vendor and action."""
        with self._lock:
            return _by_vendor(self._cpu)

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()
            self._cpu.clear()


@dataclass
class LogEntry:
    """One request: no query string, headers or body, so no signature or key ever lands here."""

    time: str
    vendor: str
    action: str
    method: str
    path: str
    status: int
    request_id: str
    duration_ms: float = 0.0
    reason: str | None = None  # why it was refused (unroutable, unsigned, the vendor error), None on success


class RequestLog:
    """The last ``maxlen`` requests, oldest first."""

    def __init__(self, maxlen: int = 1000) -> None:
        self._lock = threading.Lock()
        self._entries: deque[LogEntry] = deque(maxlen=maxlen)

    def record(
        self,
        vendor: str,
        action: str,
        method: str,
        path: str,
        status: int,
        request_id: str,
        duration_ms: float = 0.0,
        reason: str | None = None,
    ) -> None:
        entry = LogEntry(
            datetime.now(timezone.utc).isoformat(),
            vendor,
            action,
            method,
            path,
            status,
            request_id,
            round(duration_ms, 3),
            reason,
        )
        with self._lock:
            self._entries.append(entry)

    def entries(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(e) for e in self._entries]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
