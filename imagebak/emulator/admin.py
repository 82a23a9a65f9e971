"""A client of the emulator's admin API (``/_emulator/...``), for the tools that drive an emulator in
another process: the benchmarks and the reliability campaign."""

from __future__ import annotations

import http.client
import json
from typing import Any


def admin_call(host: str, port: int, method: str, path: str, body: Any = None, *, timeout: float = 30) -> Any:
    """One call of ``/_emulator/PATH`` with a JSON body; the decoded answer, or RuntimeError on a non-200."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        payload = json.dumps(body) if body is not None else None
        conn.request(method, f"/_emulator/{path}", body=payload, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        answer = json.loads(resp.read() or b"null")
    finally:
        conn.close()
    if resp.status != 200:
        raise RuntimeError(f"emulator admin {method} {path}: {resp.status} {answer}")
    return answer
