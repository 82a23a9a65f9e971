"""Probabilistic faults: ``error_rate`` (5xx) and ``slow_rate`` + ``slow_seconds`` (random slow calls).

They are what a reliability campaign turns up into a storm, so they must be exact shares of the
calls, reproducible from the seed, validated like the other settings, and reachable over HTTP.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections import Counter
from typing import Any

import pytest

from imagebak.emulator.faults import FaultInjector, FaultRule
from imagebak.emulator.model import CloudError
from imagebak.emulator.server import EmulatorHandle

CALLS = 2000


def outcomes(faults: FaultInjector, calls: int = CALLS) -> list[str]:
    """What each of ``calls`` calls to (aliyun, DescribeImages) got: ok or the CloudError kind."""
    seen = []
    for _ in range(calls):
        try:
            faults.before("aliyun", "DescribeImages")
        except CloudError as exc:
            seen.append(exc.kind)
        else:
            seen.append("ok")
    return seen


def injector(seed: int = 7, **rule: Any) -> FaultInjector:
    faults = FaultInjector(seed=seed)
    faults.set({"vendor": "aliyun", **rule})
    return faults


def record_waits(monkeypatch: pytest.MonkeyPatch) -> list[float | None]:
    """Slow calls wait on an Event (so clearing faults ends them): record the waits instead of sleeping."""
    waits: list[float | None] = []
    monkeypatch.setattr(threading.Event, "wait", lambda self, timeout=None: waits.append(timeout) or False)
    return waits


@pytest.mark.parametrize(("status", "kind"), [(500, "internal"), (503, "unavailable")])
def test_error_rate_is_a_share_of_calls_with_the_given_status(status: int, kind: str) -> None:
    counts = Counter(outcomes(injector(error_rate=0.1, error_status=status)))
    assert set(counts) == {"ok", kind}
    assert 0.08 * CALLS < counts[kind] < 0.12 * CALLS


def test_throttle_and_error_rates_split_one_draw() -> None:
    """30 % throttled and 10 % 5xx of the calls, not 10 % of the 70 % left over by throttling."""
    faults = injector(throttle_rate=0.3, error_rate=0.1)
    counts = Counter(outcomes(faults))
    assert 0.27 * CALLS < counts["throttled"] < 0.33 * CALLS
    assert 0.08 * CALLS < counts["internal"] < 0.12 * CALLS
    injected = faults.injected()["aliyun"]["DescribeImages"]
    assert (injected["throttled"], injected["error"]) == (counts["throttled"], counts["internal"])


def test_rates_are_reproducible_from_the_seed() -> None:
    rule = {"throttle_rate": 0.3, "error_rate": 0.1, "slow_rate": 0.2, "slow_seconds": 1e-6}
    first, again, other = (outcomes(injector(seed, **rule), 300) for seed in (1, 1, 2))
    assert first == again
    assert first != other


def test_only_throttle_rate_keeps_its_former_sequence() -> None:
    """A rule without the new settings draws exactly as before: old seeded fixtures behave the same."""
    import random

    rng = random.Random(11)
    expected = ["throttled" if rng.random() < 0.25 else "ok" for _ in range(500)]
    assert outcomes(injector(11, throttle_rate=0.25), 500) == expected


def test_slow_rate_delays_a_share_of_calls_which_are_then_processed(monkeypatch: pytest.MonkeyPatch) -> None:
    faults = injector(slow_rate=0.25, slow_seconds=4.0)
    waits = record_waits(monkeypatch)
    assert set(outcomes(faults, 1000)) == {"ok"}  # slowed, never refused
    assert 200 < len(waits) < 300 and set(waits) == {4.0}
    assert faults.injected()["aliyun"]["DescribeImages"]["slowed"] == len(waits)


def test_slow_adds_to_delay_and_precedes_a_refusal(monkeypatch: pytest.MonkeyPatch) -> None:
    faults = injector(slow_rate=1.0, slow_seconds=2.0, delay_seconds=0.5, throttle_next=1)
    waits = record_waits(monkeypatch)
    assert outcomes(faults, 2) == ["throttled", "ok"]
    assert waits == [2.5, 2.5]
    assert faults.injected()["aliyun"]["DescribeImages"] == {"throttled": 1, "delayed": 2, "slowed": 2}


def test_a_hung_call_is_not_also_slowed() -> None:
    faults = injector(hang=True, hang_seconds=0, slow_rate=1.0, slow_seconds=30)
    assert outcomes(faults, 3) == ["unavailable"] * 3
    assert faults.injected()["aliyun"]["DescribeImages"] == {"hung": 3}


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"error_rate": 1.5}, "error_rate must be between 0 and 1"),
        ({"error_rate": -0.1}, "error_rate must be between 0 and 1"),
        ({"slow_rate": 2, "slow_seconds": 1}, "slow_rate must be between 0 and 1"),
        ({"throttle_rate": 0.7, "error_rate": 0.4}, "throttle_rate + error_rate must not exceed 1"),
        ({"slow_seconds": -1}, "slow_seconds must be >= 0"),
        ({"slow_rate": 0.5}, "slow_rate needs slow_seconds > 0"),
        ({"error_rate": "often"}, "invalid fault setting"),
        ({"slow_rate": 0.5, "slow_seconds": "long"}, "invalid fault setting"),
    ],
)
def test_new_settings_are_validated(bad: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("+", r"\+")):
        FaultRule.from_dict(bad)


def test_numbers_from_json_become_floats() -> None:
    rule = FaultRule.from_dict({"error_rate": 1, "slow_rate": 0, "slow_seconds": 3})
    assert (rule.error_rate, rule.slow_seconds) == (1.0, 3.0)
    assert isinstance(rule.error_rate, float) and isinstance(rule.slow_seconds, float)


def admin(emu: EmulatorHandle, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    conn = http.client.HTTPConnection(emu.host_port, timeout=10)
    try:
        conn.request(method, path, body=json.dumps(body) if body is not None else None)
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"null")
    finally:
        conn.close()


def test_error_rate_over_the_admin_api_answers_in_the_vendors_shape(emulator: EmulatorHandle) -> None:
    """Set over HTTP, the fault strikes before the front-end (so before its signature check)."""
    status, body = admin(
        emulator, "POST", "/_emulator/faults", {"vendor": "aliyun", "error_rate": 1.0, "error_status": 503}
    )
    assert status == 200 and body["faults"][0]["error_rate"] == 1.0
    status, answer = admin(emulator, "POST", "/?Action=DescribeImages&RegionId=cn-shanghai")
    assert status == 503 and answer["Code"] == "ServiceUnavailable"
    assert admin(emulator, "GET", "/_emulator/counters")[1]["faults_injected"] == {
        "aliyun": {"DescribeImages": {"error": 1}}
    }
    assert admin(emulator, "POST", "/_emulator/faults", {"slow_rate": 0.5})[0] == 400
    assert admin(emulator, "POST", "/_emulator/faults", {"error_rate": 0.6, "throttle_rate": 0.6})[0] == 400


def test_pass_next_lets_calls_through_before_the_rule_strikes() -> None:
    faults = injector(pass_next=2, throttle_next=1, action="DescribeImages")
    assert outcomes(faults, 4) == ["ok", "ok", "throttled", "ok"]
    lost = injector(pass_next=1, lose_reply_next=1, action="DescribeImages")
    assert [lost.before("aliyun", "DescribeImages") for _ in range(3)] == [False, True, False]
    with pytest.raises(ValueError, match="pass_next must be >= 0"):
        FaultRule.from_dict({"pass_next": -1})
