"""Every request is counted and logged, with the reason it was refused: unroutable, unsigned, faulted."""

from __future__ import annotations

import requests

from imagebak.emulator.server import EmulatorHandle


def test_refused_requests_are_counted_and_logged_with_their_reason(emulator: EmulatorHandle) -> None:
    base = emulator.endpoint
    assert requests.get(f"{base}/nowhere", timeout=5).status_code == 404
    assert requests.post(f"{base}/?Action=DescribeImages&RegionId=cn-shanghai", timeout=5).status_code == 400
    assert (
        requests.post(f"{base}/?Format=XML", headers={"x-acs-action": "DescribeImages"}, timeout=5).status_code == 400
    )
    assert requests.get(f"{base}/v2/cloudimages", timeout=5).status_code == 401
    assert requests.get(f"{base}/v1/regions/cn-north-1/images", timeout=5).status_code == 401
    emulator.faults.set({"vendor": "aliyun", "action": "DescribeRegions", "throttle_next": 1})
    assert requests.post(f"{base}/?Action=DescribeRegions", timeout=5).status_code == 400

    rows = [(e["vendor"], e["action"], e["status"], e["reason"]) for e in emulator.request_log.entries()]
    assert [row[:3] for row in rows] == [
        ("unrouted", "Unroutable", 404),
        ("aliyun", "DescribeImages", 400),
        ("aliyun", "DescribeImages", 400),
        ("huawei", "ListImages", 401),
        ("jdcloud", "describeImages", 401),
        ("aliyun", "DescribeRegions", 400),
    ]
    reasons = [row[3] for row in rows]
    assert "aliyun: an Action parameter" in reasons[0] and "jdcloud: a /v1/regions/ path" in reasons[0]
    assert reasons[1].startswith("MissingSignature:") and reasons[2].startswith("MissingSignature:")
    assert reasons[3].startswith("auth_failed/missing_signature:")
    assert reasons[4] == "auth_failed/missing_signature: missing or malformed Authorization header"
    assert reasons[5] == "Throttling: request was denied due to request throttling (injected fault)"
    assert emulator.counters.snapshot()["unrouted"] == {"Unroutable": 1}
    assert emulator.counters.get("aliyun") == 3


def test_unsigned_format_xml_request_is_refused_in_xml(emulator: EmulatorHandle) -> None:
    response = requests.post(f"{emulator.endpoint}/?Action=DescribeImages&Format=XML", timeout=5)
    assert response.status_code == 400 and response.headers["Content-Type"].startswith("application/xml")
    assert b"<Error><RequestId>" in response.content and b"<Code>MissingSignature</Code>" in response.content
