"""The HTTP server, admin API, faults, counters and persistence, through a tiny dummy front-end."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from imagebak.emulator.cli import emulator as emulator_group
from imagebak.emulator.model import CloudError, CloudModel
from imagebak.emulator.server import (
    FRONTEND_MODULES,
    EmulatorHandle,
    check_loopback,
    default_frontends,
    serve,
    start_emulator,
)
from imagebak.emulator.wire import WireRequest, WireResponse

ACCOUNT, REGION, INSTANCE = "aliyun-demo", "cn-shanghai", "i-uf6ujzde8gxd6ncf10ep"
STATUS = {"throttled": 429, "internal": 500, "unavailable": 503, "not_found": 404}


class DummyFrontEnd:
    """Speaks a toy protocol: /dummy/<action>; enough to exercise the server around front-ends."""

    vendor = "dummy"

    def __init__(self, model: CloudModel) -> None:
        self.model = model

    def matches(self, request: WireRequest) -> bool:
        return request.path.startswith("/dummy/")

    def action(self, request: WireRequest) -> str:
        return request.path.rsplit("/", 1)[-1]

    def handle(self, request: WireRequest) -> WireResponse:
        action = self.action(request)
        if action == "create":
            name = request.json().get("name") or f"x{len(self.model.list_images(ACCOUNT, REGION))}"
            img = self.model.create_image(ACCOUNT, REGION, INSTANCE, name=name)
            return WireResponse.json(200, {"image_id": img.image_id, "request_id": request.request_id})
        if action == "image":
            img = self.model.get_image(ACCOUNT, REGION, request.param("id") or "")
            return WireResponse.json(200, {"status": img.status, "progress": img.progress})
        if action == "boom":
            raise RuntimeError("internal detail that must not leak")
        if action == "burn":  # CPU the server must charge to this action
            until = time.thread_time() + 0.05
            while time.thread_time() < until:
                pass
        return WireResponse.json(200, {"ok": True, "request_id": request.request_id})

    def error_response(self, request: WireRequest, error: CloudError) -> WireResponse:
        return WireResponse.json(
            STATUS.get(error.kind, 400),
            {
                "code": error.kind,
                "detail": error.detail,
                "message": error.message,
                "request_id": request.request_id,
            },
        )


def call(handle: EmulatorHandle, method: str, path: str, body: Any = None, timeout: float = 10) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", handle.port, timeout=timeout)
    try:
        payload = json.dumps(body).encode() if body is not None else None
        conn.request(method, path, body=payload, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        raw = resp.read()
        return resp.status, json.loads(raw) if raw else None
    finally:
        conn.close()


@pytest.fixture
def dummy(emulator_factory: Callable[..., EmulatorHandle]) -> EmulatorHandle:
    return emulator_factory(frontends=[DummyFrontEnd])


# ---- routing, counters, request log -------------------------------------------------------


def test_binds_loopback_and_serves_dummy(dummy: EmulatorHandle) -> None:
    assert dummy.host_port.startswith("127.0.0.1:") and dummy.endpoint == f"http://{dummy.host_port}"
    status, body = call(dummy, "GET", "/dummy/ping")
    assert status == 200 and body["ok"] is True
    assert dummy.counters.get("dummy", "ping") == 1


def test_refuses_non_loopback_hosts(manual_clock: Any) -> None:
    for host in ("0.0.0.0", "10.0.0.1", "::", "example.com"):
        with pytest.raises(ValueError, match=r"127\.0\.0\.1 only"):
            start_emulator(clock=manual_clock, host=host, frontends=[])
    assert check_loopback("localhost") == "127.0.0.1"


def test_unmatched_request_is_404_json_counted_and_logged_with_its_reason(dummy: EmulatorHandle) -> None:
    status, body = call(dummy, "GET", "/nothing/here")
    assert status == 404 and body["error"] == "NotFound"
    assert dummy.counters.snapshot() == {"unrouted": {"Unroutable": 1}}
    (entry,) = dummy.request_log.entries()
    assert (entry["vendor"], entry["action"], entry["status"]) == ("unrouted", "Unroutable", 404)
    assert entry["reason"].startswith("no emulated service handles GET /nothing/here")


def test_request_log_has_no_query_or_secrets(dummy: EmulatorHandle) -> None:
    _, body = call(dummy, "POST", "/dummy/ping?AccessKeyId=emulated-ali-key&Signature=c2VjcmV0")
    entries = dummy.request_log.entries()
    assert len(entries) == 1
    entry = entries[0]
    assert (entry["vendor"], entry["action"], entry["method"], entry["path"], entry["status"]) == (
        "dummy",
        "ping",
        "POST",
        "/dummy/ping",
        200,
    )
    assert entry["request_id"] == body["request_id"]
    assert "Signature" not in json.dumps(entries) and "emulated-ali-key" not in json.dumps(entries)


def test_unexpected_exception_becomes_internal_error_without_traceback(dummy: EmulatorHandle) -> None:
    status, body = call(dummy, "GET", "/dummy/boom")
    assert status == 500 and body["code"] == "internal"
    assert "must not leak" not in json.dumps(body) and "Traceback" not in json.dumps(body)


def test_model_errors_go_through_the_front_end(dummy: EmulatorHandle) -> None:
    status, body = call(dummy, "GET", "/dummy/image?id=m-missing")
    assert status == 404 and body["code"] == "not_found"


def test_lazy_status_over_http_with_manual_clock(dummy: EmulatorHandle) -> None:
    _, created = call(dummy, "POST", "/dummy/create", {"name": "web"})
    assert call(dummy, "GET", f"/dummy/image?id={created['image_id']}")[1]["status"] == "creating"
    status, clock = call(dummy, "POST", "/_emulator/clock/advance", {"seconds": 3600})
    assert status == 200 and clock["manual"] is True
    assert call(dummy, "GET", f"/dummy/image?id={created['image_id']}")[1] == {
        "status": "available",
        "progress": 100,
    }


# ---- faults -------------------------------------------------------------------------------


def test_throttle_next_is_deterministic_and_counted(dummy: EmulatorHandle) -> None:
    dummy.faults.set({"vendor": "dummy", "action": "ping", "throttle_next": 2})
    results = [call(dummy, "GET", "/dummy/ping")[0] for _ in range(3)]
    assert results == [429, 429, 200]
    assert dummy.counters.get("dummy", "ping") == 3
    assert dummy.faults.injected() == {"dummy": {"ping": {"throttled": 2}}}
    assert call(dummy, "GET", "/dummy/other")[0] == 200  # other actions untouched


@pytest.mark.parametrize(("status", "kind"), [(500, "internal"), (503, "unavailable")])
def test_error_next(dummy: EmulatorHandle, status: int, kind: str) -> None:
    dummy.faults.set({"vendor": "*", "action": "create", "error_next": 1, "error_status": status})
    got, body = call(dummy, "POST", "/dummy/create", {})
    assert (got, body["code"]) == (status, kind)
    assert dummy.model.quota(ACCOUNT, REGION, "image")[0] == 0  # the failed call did nothing
    assert call(dummy, "POST", "/dummy/create", {})[0] == 200


def test_throttle_rate_and_most_specific_rule_wins(dummy: EmulatorHandle) -> None:
    dummy.faults.set({"throttle_rate": 1.0})
    dummy.faults.set({"vendor": "dummy", "action": "ping"})  # an empty rule shields ping
    assert call(dummy, "GET", "/dummy/other")[0] == 429
    assert call(dummy, "GET", "/dummy/ping")[0] == 200
    dummy.faults.clear()
    assert call(dummy, "GET", "/dummy/other")[0] == 200


def test_delay_still_processes(dummy: EmulatorHandle) -> None:
    dummy.faults.set({"vendor": "dummy", "delay_seconds": 0.01})
    status, _ = call(dummy, "POST", "/dummy/create", {})
    assert status == 200 and dummy.model.quota(ACCOUNT, REGION, "image")[0] == 1
    assert dummy.faults.injected()["dummy"]["create"]["delayed"] == 1


def test_hang_is_bounded_and_released_by_clear(dummy: EmulatorHandle) -> None:
    dummy.faults.set({"vendor": "dummy", "action": "create", "hang": True, "hang_seconds": 60})
    result: dict[str, Any] = {}
    worker = threading.Thread(target=lambda: result.update(r=call(dummy, "POST", "/dummy/create", {})))
    worker.start()
    done = threading.Event()
    while not dummy.faults.injected() and not done.wait(0.01):
        pass  # wait until the request is hanging inside the server
    dummy.faults.clear()
    worker.join(timeout=30)
    assert not worker.is_alive()
    assert result["r"][0] == 503  # a hung request is never processed
    assert dummy.model.quota(ACCOUNT, REGION, "image")[0] == 0
    dummy.faults.set({"vendor": "dummy", "hang": True, "hang_seconds": 0})
    assert call(dummy, "GET", "/dummy/ping")[0] == 503


def test_fault_rules_validate() -> None:
    from imagebak.emulator.faults import FaultInjector

    faults = FaultInjector()
    for bad in ({"throttle_rate": 1.5}, {"error_status": 502}, {"error_next": -1}, {"nonsense": 1}):
        with pytest.raises(ValueError):
            faults.set(bad)


# ---- admin API ----------------------------------------------------------------------------


def test_admin_counters_requests_and_reset(dummy: EmulatorHandle) -> None:
    call(dummy, "GET", "/dummy/ping")
    call(dummy, "GET", "/dummy/ping")
    assert call(dummy, "GET", "/_emulator/health") == (200, {"ok": True, "vendors": ["dummy"], "in_flight": 0})
    status, counters = call(dummy, "GET", "/_emulator/counters")
    assert status == 200 and counters["counters"] == {"dummy": {"ping": 2}}
    assert len(call(dummy, "GET", "/_emulator/requests")[1]["requests"]) == 2
    assert call(dummy, "DELETE", "/_emulator/requests")[0] == 200
    assert call(dummy, "GET", "/_emulator/requests")[1]["requests"] == []
    assert call(dummy, "POST", "/_emulator/counters/reset", {})[0] == 200
    assert call(dummy, "GET", "/_emulator/counters")[1]["counters"] == {}


def test_counters_charge_each_cloud_request_its_cpu(dummy: EmulatorHandle) -> None:
    """The CPU a request thread spends is charged to the call's action, not wall time; admin calls are not charged."""
    dummy.faults.set({"vendor": "dummy", "action": "ping", "delay_seconds": 0.3})
    first = call(dummy, "GET", "/_emulator/counters")[1]
    assert first["cpu_seconds"] == {} and first["process_cpu_seconds"] > 0
    call(dummy, "GET", "/dummy/burn")
    started = time.perf_counter()
    call(dummy, "GET", "/dummy/ping")  # waits 0.3 s, spending next to no CPU
    assert time.perf_counter() - started >= 0.3
    call(dummy, "GET", "/nowhere")
    body = call(dummy, "GET", "/_emulator/counters")[1]
    cpu = body["cpu_seconds"]
    assert set(cpu) == {"dummy", "unrouted"} and set(cpu["dummy"]) == {"burn", "ping"}
    assert 0.05 <= cpu["dummy"]["burn"] < 1.0
    assert 0 < cpu["dummy"]["ping"] < 0.1 and cpu["unrouted"]["Unroutable"] > 0
    # In-process here, so the process's CPU includes this test's; it grew by at least what the calls cost.
    assert body["process_cpu_seconds"] - first["process_cpu_seconds"] >= cpu["dummy"]["burn"]
    call(dummy, "POST", "/_emulator/counters/reset", {})
    assert call(dummy, "GET", "/_emulator/counters")[1]["cpu_seconds"] == {}


def test_health_counts_the_cloud_requests_being_served(dummy: EmulatorHandle) -> None:
    """A slowed call whose client is gone is still served: the reliability campaign waits for in_flight 0."""
    dummy.faults.set({"vendor": "dummy", "slow_rate": 1.0, "slow_seconds": 1.0})
    worker = threading.Thread(target=call, args=(dummy, "GET", "/dummy/ping"))
    worker.start()
    seen = 0
    for _ in range(200):
        seen = max(seen, call(dummy, "GET", "/_emulator/health")[1]["in_flight"])
        if seen:
            break
        time.sleep(0.005)
    worker.join(timeout=30)
    assert seen == 1
    assert call(dummy, "GET", "/_emulator/health")[1]["in_flight"] == 0


def test_admin_faults(dummy: EmulatorHandle) -> None:
    status, body = call(dummy, "POST", "/_emulator/faults", {"vendor": "dummy", "action": "ping", "error_next": 1})
    assert status == 200 and body["faults"][0]["error_next"] == 1
    assert call(dummy, "GET", "/dummy/ping")[0] == 500
    assert call(dummy, "GET", "/_emulator/counters")[1]["faults_injected"] == {"dummy": {"ping": {"error": 1}}}
    assert call(dummy, "POST", "/_emulator/faults", {"throttle_rate": 7})[0] == 400
    assert call(dummy, "POST", "/_emulator/faults/clear", {})[1] == {"faults": []}


def test_admin_model_hooks(dummy: EmulatorHandle) -> None:
    status, body = call(
        dummy,
        "POST",
        "/_emulator/set-quota",
        {"account": ACCOUNT, "region": REGION, "resource": "image", "limit": 1},
    )
    assert (status, body) == (200, {"resource": "image", "used": 0, "limit": 1})
    _, created = call(dummy, "POST", "/dummy/create", {})
    status, err = call(dummy, "POST", "/dummy/create", {})
    assert (status, err["code"], err["detail"]) == (400, "quota_exceeded", "image")
    status, failed = call(
        dummy,
        "POST",
        "/_emulator/fail-image",
        {"account": ACCOUNT, "region": REGION, "image_id": created["image_id"], "reason": "disk lost"},
    )
    assert (status, failed["status"]) == (200, "failed")
    assert call(dummy, "POST", "/_emulator/fail-next-creations", {"n": 2})[1] == {"pending_failures": 2}
    state = call(dummy, "GET", "/_emulator/state")[1]
    assert state[ACCOUNT]["regions"][REGION]["images"][0]["status"] == "failed"
    assert set(state) == {"aliyun-demo", "huawei-demo", "jdcloud-demo"}


def test_admin_errors(dummy: EmulatorHandle) -> None:
    assert call(dummy, "GET", "/_emulator/nope")[0] == 404
    assert call(dummy, "GET", "/_emulator/fail-image")[0] == 405
    assert call(dummy, "POST", "/_emulator/fail-image", {"account": ACCOUNT})[0] == 400
    status, body = call(
        dummy, "POST", "/_emulator/fail-image", {"account": ACCOUNT, "region": REGION, "image_id": "m-x"}
    )
    assert status == 400 and "does not exist" in body["error"]
    assert call(dummy, "POST", "/_emulator/clock/advance", {"seconds": "soon"})[0] == 400
    assert (
        call(
            dummy,
            "POST",
            "/_emulator/set-quota",
            {"account": ACCOUNT, "region": REGION, "resource": "x", "limit": 1},
        )[0]
        == 400
    )


def test_clock_advance_moves_a_scaled_system_clock_ahead(emulator_factory: Callable[..., EmulatorHandle]) -> None:
    """A client that would sleep skips ahead instead (the benchmarks' sequential script); the clock runs on."""
    handle = emulator_factory(frontends=[DummyFrontEnd], time_scale=600)
    before = handle.clock.now()
    status, body = call(handle, "POST", "/_emulator/clock/advance", {"seconds": 86400})
    assert status == 200 and body["manual"] is False and body["time_scale"] == 600
    ahead = datetime.fromisoformat(body["now"]) - before
    assert timedelta(days=1) <= ahead < timedelta(days=1, minutes=10)
    assert handle.clock.now() > datetime.fromisoformat(body["now"])
    assert call(handle, "POST", "/_emulator/clock/advance", {"seconds": -1})[0] == 400


def test_dynamic_state_is_read_and_replaced_over_http(dummy: EmulatorHandle) -> None:
    """What a state file holds, read and rewritten by a client in another process (bench/history.py)."""
    kept = call(dummy, "POST", "/dummy/create", {"name": "kept"})[1]["image_id"]
    dropped = call(dummy, "POST", "/dummy/create", {"name": "dropped"})[1]["image_id"]
    status, data = call(dummy, "GET", "/_emulator/dynamic-state")
    assert status == 200 and {kept, dropped} <= {i["image_id"] for i in data["images"]}
    data["images"] = [i for i in data["images"] if i["image_id"] != dropped]
    status, body = call(dummy, "POST", "/_emulator/dynamic-state", data)
    assert status == 200 and body["images"] == len(data["images"])
    assert call(dummy, "GET", f"/dummy/image?id={dropped}")[0] == 404
    assert call(dummy, "GET", f"/dummy/image?id={kept}")[0] == 200
    status, body = call(dummy, "POST", "/_emulator/dynamic-state", {"version": 99})
    assert status == 400 and "unsupported state version" in body["error"]
    assert call(dummy, "GET", f"/dummy/image?id={kept}")[0] == 200  # a refused state changes nothing


# ---- persistence --------------------------------------------------------------------------


def test_state_file_written_after_mutations_and_reloaded(
    tmp_path: Path, emulator_factory: Callable[..., EmulatorHandle]
) -> None:
    state = tmp_path / "cloud-state.json"
    first = emulator_factory(frontends=[DummyFrontEnd], state_path=state)
    call(first, "GET", "/dummy/ping")
    assert not state.exists()  # a GET changes nothing worth saving
    _, created = call(first, "POST", "/dummy/create", {"name": "kept"})
    saved = json.loads(state.read_text())
    assert created["image_id"] in [i["image_id"] for i in saved["images"]]
    first.stop()
    second = emulator_factory(frontends=[DummyFrontEnd], state_path=state)
    assert [i.name for i in second.model.list_images(ACCOUNT, REGION)] == ["kept"]


def test_stop_is_idempotent_and_frees_the_port(manual_clock: Any) -> None:
    with start_emulator(clock=manual_clock, frontends=[DummyFrontEnd]) as handle:
        port = handle.port
        assert call(handle, "GET", "/dummy/ping")[0] == 200
    handle.stop()
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0


# ---- front-end registry, wire types -------------------------------------------------------


def test_default_frontends_skip_missing_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    import imagebak.emulator.server as server

    monkeypatch.setattr(server, "FRONTEND_MODULES", ("imagebak.emulator.frontends.not_written_yet",))
    assert server.default_frontends() == []
    monkeypatch.setattr(server, "FRONTEND_MODULES", FRONTEND_MODULES)
    vendors = {factory.vendor for factory in default_frontends()}
    assert vendors <= {"aliyun", "huawei", "jdcloud"}


def test_wire_request_helpers() -> None:
    req = WireRequest("POST", "/", "a=1&a=2&b=", [("a", "1"), ("a", "2"), ("b", "")], {}, b"")
    assert (req.param("a"), req.param("b"), req.param("c", "d")) == ("2", "", "d")
    assert req.json() == {} and len(req.request_id) == 36
    bad = WireRequest("POST", "/", "", [], {}, b"{oops")
    with pytest.raises(CloudError) as info:
        bad.json()
    assert info.value.kind == "invalid_parameter"
    with pytest.raises(CloudError):
        WireRequest("POST", "/", "", [], {}, b"[1]").json()
    resp = WireResponse.json(201, {"k": "v"}, {"X-Request-Id": "r"})
    assert (resp.status, json.loads(resp.body), resp.headers["X-Request-Id"]) == (201, {"k": "v"}, "r")
    assert resp.headers["Content-Type"].startswith("application/json")


# ---- serve / CLI --------------------------------------------------------------------------


def test_serve_prints_endpoint_and_stops_on_sigterm(tmp_path: Path) -> None:
    lines: list[str] = []

    def echo(line: str) -> None:
        lines.append(line)
        if line.startswith("press Ctrl-C"):
            os.kill(os.getpid(), signal.SIGTERM)

    before = signal.getsignal(signal.SIGTERM)
    serve(state_path=tmp_path / "s.json", time_scale=600, echo=echo)
    assert lines[0].startswith("imagebak emulator listening on http://127.0.0.1:")
    assert any("emulated-ali-key" in line for line in lines)
    assert lines[-1] == "emulator stopped"
    assert signal.getsignal(signal.SIGTERM) is before
    assert (tmp_path / "s.json").exists()  # saved on stop


def test_cli_reports_bad_fixture_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("accounts: []\n")
    result = CliRunner().invoke(emulator_group, ["serve", "--fixture", str(bad)])
    assert result.exit_code == 3
    assert "bad.yaml: accounts:" in result.output and "Traceback" not in result.output


def test_cli_reports_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(emulator_group, ["serve", "--port", str(port)])
    assert result.exit_code == 8
    assert f"cannot listen on 127.0.0.1:{port}" in result.output


# ---- the test session's loopback guard (tests/conftest.py) --------------------------------


@pytest.mark.parametrize("target", ["10.0.0.1", "8.8.8.8"])
def test_loopback_guard_blocks_before_the_syscall(loopback_guard: Any, target: str) -> None:
    with socket.socket() as sock:
        # Non-blocking: had connect() reached the kernel it would raise BlockingIOError (SYN sent).
        sock.setblocking(False)
        with pytest.raises(ConnectionRefusedError, match="test guard"):
            sock.connect((target, 80))
        with pytest.raises(ConnectionRefusedError, match="test guard"):
            sock.connect_ex((target, 443))
        with pytest.raises(OSError):
            sock.getpeername()  # never connected
    with pytest.raises(ConnectionRefusedError, match="test guard"):
        socket.create_connection((target, 53), timeout=1)
    assert len(loopback_guard.violations) == 3
    loopback_guard.violations.clear()  # provoked on purpose


def test_loopback_guard_blocks_dns_but_not_loopback(loopback_guard: Any) -> None:
    for resolve in (
        lambda: socket.getaddrinfo("example.com", 443),
        lambda: socket.gethostbyname("ecs.aliyuncs.com"),
        lambda: socket.getaddrinfo("::ffff:8.8.8.8", 53),
    ):
        with pytest.raises(ConnectionRefusedError, match="test guard"):
            resolve()
    loopback_guard.violations.clear()
    assert socket.getaddrinfo("127.0.0.1", 80)
    assert socket.getaddrinfo("localhost", 80)
    assert socket.getaddrinfo("::ffff:127.0.0.1", 80)
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        assert var not in os.environ


def test_admin_conformance_switches(dummy: EmulatorHandle) -> None:
    """Eventual consistency (hide-new) and an instance that cannot be imaged right now (instance-state)."""
    status, body = call(dummy, "POST", "/_emulator/hide-new", {"seconds": 30, "vendor": "aliyun"})
    assert (status, body) == (200, {"vendor": "aliyun", "seconds": 30})
    assert call(dummy, "POST", "/_emulator/hide-new", {"seconds": "soon"})[0] == 400
    assert call(dummy, "POST", "/_emulator/hide-new", {"seconds": 0})[0] == 200
    instance = dummy.model.list_instances(ACCOUNT, REGION)[0].instance_id
    target = {"account": ACCOUNT, "region": REGION, "instance_id": instance}
    status, body = call(dummy, "POST", "/_emulator/instance-state", {**target, "status": "stopping", "task": "resize"})
    assert (status, body) == (200, {"instance_id": instance, "status": "stopping", "task": "resize"})
    assert call(dummy, "POST", "/_emulator/instance-state", {**target, "status": "melting"})[0] == 400
    assert call(dummy, "POST", "/_emulator/instance-state", {**target, "status": "running"})[1]["task"] is None
