"""Notifications: a generic JSON webhook, the chat robots these users use, and healthchecks-style pings.

Robots and their signatures, as their vendors document them:
- DingTalk custom robot: POST ``{"msgtype": "text", ...}``; with a signing secret, the URL gains
  ``timestamp`` (ms) and ``sign`` = base64(HMAC-SHA256(key=secret, msg="{timestamp}\\n{secret}")).
- WeCom (企业微信) group robot: POST ``{"msgtype": "markdown", ...}`` to the URL with its key.
- Feishu/Lark custom bot: POST ``{"timestamp", "sign", "msg_type": "text", ...}``; ``sign`` =
  base64(HMAC-SHA256(key="{timestamp}\\n{secret}", msg="")), timestamp in seconds.
- healthchecks.io-style pings: ``URL/start`` when a run starts, ``URL`` on success, ``URL/fail`` else.

A delivery that fails (network, HTTP status, the robot's own error code) is logged with the
address reduced to scheme and host, and never fails the backup.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from imagebak.hooks import Summary

log = logging.getLogger(__name__)
TIMEOUT_SECONDS = 5.0
# Exit codes that mean nothing new was attempted, not that a backup is missing: no "failure" for them.
QUIET_CODES = frozenset({0, 5, 9, 11})


class When(str, Enum):
    FAILURE = "failure"
    STALL = "stall"
    RECOVERY = "recovery"
    SUCCESS = "success"


@dataclass(frozen=True)
class Webhook:
    kind: str  # json | dingtalk | wecom | feishu
    url: str
    secret: str | None = None


def occasions(summary: Summary, previous_ok: bool | None) -> set[When]:
    """What this run is worth telling: a stall, a failure, a recovery after a failure, or a success."""
    found = set()
    if summary.stalled:
        found.add(When.STALL)
    if summary.exit_code not in QUIET_CODES:
        found.add(When.FAILURE)
    if summary.exit_code == 0:
        found.add(When.SUCCESS)
        if previous_ok is False:
            found.add(When.RECOVERY)
    return found


def notify(webhooks: list[Webhook], summary: Summary, *, now: Callable[[], float] = time.time) -> int:
    """Send the summary to every webhook; returns how many deliveries failed (each one logged)."""
    failures = 0
    for hook in webhooks:
        url, body = FORMATS[hook.kind](hook, summary, now)
        if not _post(url, body, hook.kind):
            failures += 1
    return failures


def ping(base_url: str, event: str, summary: Summary | None = None) -> bool:
    """A healthchecks-style ping: ``start``, ``success`` (the bare URL) or ``fail``, with the summary as body."""
    url = base_url.rstrip("/") + ("" if event == "success" else f"/{event}")
    body = "\n".join(summary.lines()).encode("utf-8") if summary else b""
    return _send(urllib.request.Request(url, data=body, method="POST"), "ping")


def redact(url: str) -> str:
    """scheme://host only: webhook paths and queries carry tokens."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}/…"


def _json_body(hook: Webhook, summary: Summary, now: Callable[[], float]) -> tuple[str, dict[str, Any]]:
    return hook.url, summary.to_json()


def _dingtalk(hook: Webhook, summary: Summary, now: Callable[[], float]) -> tuple[str, dict[str, Any]]:
    url = hook.url
    if hook.secret:
        timestamp = str(int(now() * 1000))
        digest = hmac.new(hook.secret.encode(), f"{timestamp}\n{hook.secret}".encode(), hashlib.sha256).digest()
        query = urllib.parse.urlencode({"timestamp": timestamp, "sign": base64.b64encode(digest).decode()})
        url += ("&" if "?" in url else "?") + query
    return url, {"msgtype": "text", "text": {"content": "\n".join(summary.lines())}}


def _wecom(hook: Webhook, summary: Summary, now: Callable[[], float]) -> tuple[str, dict[str, Any]]:
    content = "\n".join(summary.lines()).encode("utf-8")[:4000].decode("utf-8", "ignore")  # 4096-byte limit
    return hook.url, {"msgtype": "markdown", "markdown": {"content": content}}


def _feishu(hook: Webhook, summary: Summary, now: Callable[[], float]) -> tuple[str, dict[str, Any]]:
    body: dict[str, Any] = {"msg_type": "text", "content": {"text": "\n".join(summary.lines())}}
    if hook.secret:
        timestamp = str(int(now()))
        digest = hmac.new(f"{timestamp}\n{hook.secret}".encode(), b"", hashlib.sha256).digest()
        body = {"timestamp": timestamp, "sign": base64.b64encode(digest).decode(), **body}
    return hook.url, body


FORMATS: Mapping[str, Callable[[Webhook, Summary, Callable[[], float]], tuple[str, dict[str, Any]]]] = {
    "json": _json_body,
    "dingtalk": _dingtalk,
    "wecom": _wecom,
    "feishu": _feishu,
}


def _post(url: str, body: dict[str, Any], kind: str) -> bool:
    data = json.dumps(body, ensure_ascii=False).encode("utf-8")
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json; charset=utf-8"})
    return _send(request, kind)


def _send(request: urllib.request.Request, kind: str) -> bool:
    where = redact(request.full_url)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            answer = response.read(65536)
    except Exception as exc:  # any failure to deliver is logged, never raised
        log.warning("%s notification to %s failed: %s", kind, where, type(exc).__name__)
        return False
    code = _robot_error(answer)
    if code is not None:
        log.warning("%s notification to %s refused: error %s", kind, where, code)
        return False
    return True


def _robot_error(answer: bytes) -> str | None:
    """The robots answer HTTP 200 with their own error code (DingTalk/WeCom ``errcode``, Feishu ``code``)."""
    try:
        reply = json.loads(answer or b"{}")
    except ValueError:
        return None
    if not isinstance(reply, dict):
        return None
    for key in ("errcode", "code", "StatusCode"):
        if reply.get(key) not in (None, 0):
            return str(reply[key])
    return None
