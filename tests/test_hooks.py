"""Monitoring hooks against a local HTTP server: each robot's format and signature, pings, metrics."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import urllib.parse
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from receiver import Receiver

from imagebak.hooks import PolicyResult, Summary
from imagebak.hooks.metrics import write_metrics
from imagebak.hooks.notify import Webhook, When, notify, occasions, ping

SECRET = "SEC-test-signing-secret"
TOKEN = "tok-0123456789abcdef"
NOW = 1_790_000_000.123


def summary(exit_code: int = 6, result: str = "total_failure", stalled: tuple[str, ...] = ()) -> Summary:
    failed = PolicyResult("每日备份-web", "prod", "cn-shanghai", failed=1, errors=("i-1: ImageFailed",))
    return Summary(result, exit_code, NOW - 60, NOW, (failed,), stalled=stalled, images_failed=1)


def test_dingtalk_is_signed_as_dingtalk_documents(receiver: Receiver) -> None:
    assert notify([Webhook("dingtalk", f"{receiver.url}/robot/send?access_token={TOKEN}", SECRET)], summary(),
                  now=lambda: NOW) == 0  # fmt: skip
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(receiver.requests[0]["path"]).query))
    timestamp = query["timestamp"]
    assert timestamp == str(int(NOW * 1000)) and query["access_token"] == TOKEN
    expected = hmac.new(SECRET.encode(), f"{timestamp}\n{SECRET}".encode(), hashlib.sha256).digest()
    assert base64.b64decode(query["sign"]) == expected
    body = receiver.json()
    assert body["msgtype"] == "text" and "total_failure" in body["text"]["content"]
    assert "每日备份-web" in body["text"]["content"]


def test_feishu_signs_timestamp_and_secret_as_the_key(receiver: Receiver) -> None:
    receiver.reply = {"code": 0, "msg": "success"}
    assert notify([Webhook("feishu", f"{receiver.url}/open-apis/bot/v2/hook/{TOKEN}", SECRET)], summary(),
                  now=lambda: NOW) == 0  # fmt: skip
    body = receiver.json()
    assert body["timestamp"] == str(int(NOW)) and body["msg_type"] == "text"
    key = f"{body['timestamp']}\n{SECRET}".encode()
    assert base64.b64decode(body["sign"]) == hmac.new(key, b"", hashlib.sha256).digest()


def test_wecom_and_generic_json(receiver: Receiver) -> None:
    hooks = [Webhook("wecom", f"{receiver.url}/cgi-bin/webhook/send?key={TOKEN}"), Webhook("json", receiver.url)]
    assert notify(hooks, summary()) == 0
    wecom, generic = receiver.json(0), receiver.json(1)
    assert wecom["msgtype"] == "markdown" and "ImageFailed" in wecom["markdown"]["content"]
    assert (generic["result"], generic["exit_code"]) == ("total_failure", 6)


def test_a_refusal_or_an_unreachable_robot_is_logged_without_its_token(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.reply = {"errcode": 310000, "errmsg": "sign not match"}
    caplog.set_level(logging.WARNING)
    hooks = [Webhook("dingtalk", f"{receiver.url}/robot/send?access_token={TOKEN}", SECRET),
             Webhook("json", f"http://127.0.0.1:9/hook/{TOKEN}")]  # fmt: skip
    assert notify(hooks, summary()) == 2  # counted and logged, never raised
    assert "310000" in caplog.text and "127.0.0.1" in caplog.text
    assert TOKEN not in caplog.text and SECRET not in caplog.text


def test_healthchecks_pings_start_success_and_fail(receiver: Receiver) -> None:
    base = f"{receiver.url}/ping/{TOKEN}"
    assert ping(base, "start") and ping(base, "success", summary(0, "ok")) and ping(base, "fail", summary())
    assert [r["path"] for r in receiver.requests] == [f"/ping/{TOKEN}/start", f"/ping/{TOKEN}", f"/ping/{TOKEN}/fail"]
    assert b"ImageFailed" in receiver.requests[2]["body"]


@pytest.mark.parametrize(
    ("code", "stalled", "previous_ok", "expected"),
    [
        (6, (), True, {When.FAILURE}),
        (13, ("nightly: no progress for 25 h",), False, {When.FAILURE, When.STALL}),
        (0, (), False, {When.SUCCESS, When.RECOVERY}),
        (0, (), True, {When.SUCCESS}),
        (5, (), True, set()),  # locked: nothing attempted, nothing missing
        (11, (), None, set()),  # still in flight: the next run goes on
    ],
)
def test_what_a_run_is_worth_telling(
    code: int, stalled: tuple[str, ...], previous_ok: bool | None, expected: set[When]
) -> None:
    assert occasions(summary(code, "x", stalled), previous_ok) == expected


def test_metrics_textfile_parses_and_keeps_every_policy_region(tmp_path: Path) -> None:
    path = tmp_path / "textfile" / "imagebak.prom"
    last = {("每日备份-web", "cn-shanghai"): NOW - 3600, ("每日备份-web", "cn-qingdao"): NOW - 1800}
    write_metrics(path, summary(13, "stalled", ("a",)), last)
    families = {f.name: f for f in text_string_to_metric_families(path.read_text(encoding="utf-8"))}
    samples = {s.labels["region"]: s.value for s in families["imagebak_last_success_timestamp_seconds"].samples}
    assert samples == {"cn-shanghai": NOW - 3600, "cn-qingdao": NOW - 1800}
    assert families["imagebak_stalled_executions"].samples[0].value == 1
    assert families["imagebak_last_run_exit_code"].samples[0].value == 13
    assert not list(path.parent.glob("*.tmp*"))  # written by rename
