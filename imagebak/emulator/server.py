"""The emulator's HTTP server: loopback only, routes to vendor front-ends, plus a JSON admin API.

``EmulatorApp`` holds everything that is not HTTP (routing, faults, counters, admin, persistence)
so it is plain to test; the handler only converts between http.server and WireRequest/WireResponse.
"""

from __future__ import annotations

import importlib
import ipaddress
import logging
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from imagebak.emulator.clock import Clock, ManualClock, SystemClock
from imagebak.emulator.faults import Counters, FaultInjector, RequestLog
from imagebak.emulator.fixture import FixtureSource, load_fixture, load_state, save_state
from imagebak.emulator.model import CloudError, CloudModel
from imagebak.emulator.wire import FrontEnd, WireRequest, WireResponse

log = logging.getLogger("imagebak.emulator")

FRONTEND_MODULES: tuple[str, ...] = (
    "imagebak.emulator.frontends.aliyun",
    "imagebak.emulator.frontends.huawei",
    "imagebak.emulator.frontends.jdcloud",
)
ADMIN_PREFIX = "/_emulator/"
# Counters and the request log file a request no front-end recognises under this vendor and action.
UNROUTED, UNROUTED_ACTION = "unrouted", "Unroutable"

FrontEndFactory = Callable[[CloudModel], FrontEnd]


def default_frontends() -> list[FrontEndFactory]:
    """The vendor front-end classes that exist; a module not written yet is skipped, a broken one raises."""
    found: list[FrontEndFactory] = []
    for name in FRONTEND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        found.append(module.FrontEnd)
    return found


def check_loopback(host: str) -> str:
    """Refuse to listen anywhere but IPv4 loopback: the emulator has fake auth and must not be reachable."""
    try:
        addr = ipaddress.ip_address("127.0.0.1" if host == "localhost" else host)
    except ValueError:
        raise ValueError(f"the emulator listens on 127.0.0.1 only, not {host!r}") from None
    if addr.version != 4 or not addr.is_loopback:
        raise ValueError(f"the emulator listens on 127.0.0.1 only, not {host!r}")
    return str(addr)


class AdminError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class EmulatorApp:
    """Request dispatch independent of HTTP."""

    model: CloudModel
    frontends: list[FrontEnd]
    faults: FaultInjector = field(default_factory=FaultInjector)
    counters: Counters = field(default_factory=Counters)
    request_log: RequestLog = field(default_factory=RequestLog)
    state_path: Path | None = None
    _persist_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _in_flight: int = field(default=0, init=False, repr=False)  # cloud requests being served now
    _in_flight_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def dispatch(self, req: WireRequest) -> WireResponse:
        if req.path.startswith(ADMIN_PREFIX):
            return self._admin(req)
        with self._in_flight_lock:
            self._in_flight += 1
        try:
            return self._dispatch_cloud(req)
        finally:
            with self._in_flight_lock:
                self._in_flight -= 1

    def _dispatch_cloud(self, req: WireRequest) -> WireResponse:
        """A cloud API request: routed, counted, logged; a slowed or hung one is still served, as a cloud
        serves what it accepted after its client has gone."""
        started = time.monotonic()
        fe = next((f for f in self.frontends if f.matches(req)), None)
        if fe is None:
            vendor, action, resp = UNROUTED, UNROUTED_ACTION, self._unroutable(req)
            self.counters.increment(vendor, action)
        else:
            vendor, action = fe.vendor, self._action(fe, req)
            self.counters.increment(vendor, action)
            resp = self._serve(fe, action, req)
        resp.counted_as = (vendor, action)
        elapsed_ms = (time.monotonic() - started) * 1000
        log_args = (vendor, action, req.method, req.path, resp.status, req.request_id, elapsed_ms, resp.reason)
        self.request_log.record(*log_args)
        if fe is not None and req.method != "GET":
            self.persist()
        return resp

    def _serve(self, fe: FrontEnd, action: str, req: WireRequest) -> WireResponse:
        try:
            lost = self.faults.before(fe.vendor, action)
            resp = fe.handle(req)
            resp.drop = lost
            return resp
        except CloudError as exc:
            return self._error(fe, req, exc)
        except Exception:
            log.exception("front-end %s failed on %s", fe.vendor, action)
            return self._error(fe, req, CloudError("internal", "the emulator hit an internal error"))

    def _unroutable(self, req: WireRequest) -> WireResponse:
        """No front-end speaks this request: say what each one looks for, so a client's mistake shows."""
        reason = f"no emulated service handles {req.method} {req.path}: " + "; ".join(
            getattr(fe, "recognises", fe.vendor) for fe in self.frontends
        )
        resp = WireResponse.json(404, {"error": "NotFound", "message": reason})
        resp.reason = reason
        return resp

    def persist(self) -> None:
        """Save the state file if one is configured; a write failure is logged, never sent to clients."""
        if self.state_path is None:
            return
        with self._persist_lock:
            try:
                save_state(self.model, self.state_path)
            except OSError as exc:
                log.error("cannot write emulator state %s: %s", self.state_path, exc)

    @staticmethod
    def _action(fe: FrontEnd, req: WireRequest) -> str:
        try:
            return fe.action(req) or "unknown"
        except Exception:
            return "unknown"

    @staticmethod
    def _error(fe: FrontEnd, req: WireRequest, error: CloudError) -> WireResponse:
        try:
            return fe.error_response(req, error)
        except Exception:
            log.exception("front-end %s failed to format an error", fe.vendor)
            resp = WireResponse.json(500, {"error": error.kind, "message": error.message})
            resp.reason = f"{error.kind}: {error.message}"
            return resp

    # ---- admin API -------------------------------------------------------------------------

    def _admin(self, req: WireRequest) -> WireResponse:
        route = (req.method, req.path[len(ADMIN_PREFIX) :].strip("/"))
        handler = self._admin_routes().get(route)
        if handler is None:
            known = {path for _, path in self._admin_routes()}
            status = 405 if route[1] in known else 404
            return WireResponse.json(status, {"error": f"no admin endpoint {req.method} {req.path}"})
        try:
            result = handler(req.json() if req.method == "POST" else {})
        except AdminError as exc:
            return WireResponse.json(exc.status, {"error": str(exc)})
        except (CloudError, ValueError, TypeError, KeyError) as exc:
            return WireResponse.json(400, {"error": getattr(exc, "message", None) or str(exc)})
        if req.method != "GET":
            self.persist()
        return WireResponse.json(200, result)

    def _admin_routes(self) -> dict[tuple[str, str], Callable[[dict[str, Any]], Any]]:
        return {
            ("GET", "health"): self._health,
            ("GET", "counters"): self._counters,
            ("POST", "counters/reset"): self._reset_counters,
            ("GET", "requests"): self._requests,
            ("DELETE", "requests"): self._clear_requests,
            ("GET", "faults"): self._faults,
            ("POST", "faults"): self._set_fault,
            ("POST", "faults/clear"): self._clear_faults,
            ("GET", "clock"): self._clock_info,
            ("POST", "clock/advance"): self._advance_clock,
            ("POST", "fail-next-creations"): self._fail_next_creations,
            ("POST", "fail-image"): self._fail_image,
            ("POST", "set-quota"): self._set_quota,
            ("POST", "hide-new"): self._hide_new,
            ("POST", "instance-state"): self._instance_state,
            ("POST", "quirks"): self._set_quirks,
            ("GET", "state"): self._state,
            ("GET", "dynamic-state"): self._dynamic_state,
            ("POST", "dynamic-state"): self._load_dynamic_state,
        }

    def _health(self, _: dict[str, Any]) -> dict[str, Any]:
        """``in_flight``: cloud requests being served now (a killed client's slowed call is among them)."""
        with self._in_flight_lock:
            in_flight = self._in_flight
        return {"ok": True, "vendors": [fe.vendor for fe in self.frontends], "in_flight": in_flight}

    def _counters(self, _: dict[str, Any]) -> dict[str, Any]:
        """Calls, and the CPU the emulator spent: per call served, and the whole process's (threads, GC, accepts),
        so that a benchmark running its client in another process can tell the cloud's cost from the client's."""
        return {
            "counters": self.counters.snapshot(),
            "faults_injected": self.faults.injected(),
            "cpu_seconds": self.counters.cpu_snapshot(),
            "process_cpu_seconds": time.process_time(),
        }

    def _reset_counters(self, _: dict[str, Any]) -> dict[str, Any]:
        self.counters.reset()
        self.faults.reset_counts()
        return {"ok": True}

    def _requests(self, _: dict[str, Any]) -> dict[str, Any]:
        return {"requests": self.request_log.entries()}

    def _clear_requests(self, _: dict[str, Any]) -> dict[str, Any]:
        self.request_log.clear()
        return {"ok": True}

    def _faults(self, _: dict[str, Any]) -> dict[str, Any]:
        return {"faults": self.faults.rules()}

    def _set_fault(self, body: dict[str, Any]) -> dict[str, Any]:
        self.faults.set(body)
        return self._faults(body)

    def _clear_faults(self, body: dict[str, Any]) -> dict[str, Any]:
        self.faults.clear(body.get("vendor"), body.get("action"))
        return self._faults(body)

    def _clock_info(self, _: dict[str, Any] | None = None) -> dict[str, Any]:
        clock = self.model.clock
        info: dict[str, Any] = {"now": clock.now().isoformat(), "manual": isinstance(clock, ManualClock)}
        if isinstance(clock, SystemClock):
            info["time_scale"] = clock.time_scale
        return info

    def _advance_clock(self, body: dict[str, Any]) -> dict[str, Any]:
        """A ManualClock moves by ``seconds``; a SystemClock jumps that far ahead and runs on at its time scale
        (a client that would sleep, e.g. a benchmark's sequential script, skips its sleep instead)."""
        clock = self.model.clock
        seconds = body.get("seconds")
        if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or seconds < 0:
            raise AdminError(400, "'seconds' must be a number >= 0")
        if isinstance(clock, ManualClock):
            clock.advance(float(seconds))
        else:
            clock.ensure_not_before(clock.now() + timedelta(seconds=seconds))
        return self._clock_info()

    def _fail_next_creations(self, body: dict[str, Any]) -> dict[str, Any]:
        self.model.fail_next_creations(_int(body, "n"), str(body.get("reason", "injected creation failure")))
        return {"pending_failures": self.model.pending_failures()}

    def _fail_image(self, body: dict[str, Any]) -> dict[str, Any]:
        account, region, image_id = _str(body, "account"), _str(body, "region"), _str(body, "image_id")
        self.model.fail_image(account, region, image_id, str(body.get("reason", "injected failure")))
        return {"image_id": image_id, "status": self.model.get_image(account, region, image_id).status}

    def _set_quota(self, body: dict[str, Any]) -> dict[str, Any]:
        account, region, resource = _str(body, "account"), _str(body, "region"), _str(body, "resource")
        self.model.set_quota(account, region, resource, _int(body, "limit"))
        used, limit = self.model.quota(account, region, resource)
        return {"resource": resource, "used": used, "limit": limit}

    def _hide_new(self, body: dict[str, Any]) -> dict[str, Any]:
        seconds = body.get("seconds")
        if not isinstance(seconds, (int, float)) or isinstance(seconds, bool):
            raise AdminError(400, "'seconds' must be a number")
        vendor = body.get("vendor")
        self.model.hide_new(float(seconds), None if vendor in (None, "*") else str(vendor))
        return {"vendor": vendor or "*", "seconds": seconds}

    def _instance_state(self, body: dict[str, Any]) -> dict[str, Any]:
        account, region, instance_id = _str(body, "account"), _str(body, "region"), _str(body, "instance_id")
        status, task = body.get("status"), body.get("task")
        inst = self.model.set_instance_state(
            account, region, instance_id, status=str(status) if status else None, task=str(task) if task else None
        )
        return {"instance_id": inst.instance_id, "status": inst.status, "task": inst.task}

    def _set_quirks(self, body: dict[str, Any]) -> dict[str, Any]:
        for name, on in body.items():
            self.model.set_quirk(str(name), bool(on))
        return {"quirks": {name: self.model.quirk(name) for name in body}}

    def _state(self, _: dict[str, Any]) -> dict[str, Any]:
        return self.model.summary()

    def _dynamic_state(self, _: dict[str, Any]) -> dict[str, Any]:
        """The model as a state file holds it: what a client in another process reads to rewrite the cloud's past."""
        return self.model.to_dict()

    def _load_dynamic_state(self, body: dict[str, Any]) -> dict[str, Any]:
        """Replace what happened (images, snapshots, tasks, ...) as loading a state file does; the world stays."""
        self.model.load_dynamic_state(body)
        return {"images": len(body.get("images", [])), "snapshots": len(body.get("snapshots", []))}


def _str(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise AdminError(400, f"'{key}' must be a non-empty string")
    return value


def _int(body: dict[str, Any], key: str) -> int:
    value = body.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise AdminError(400, f"'{key}' must be an integer")
    return value


# ---- HTTP ----------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out separately: without this, ~40 ms per call
    server: _Server
    _counted_as: tuple[str, str] | None = None  # of the request being handled, when it is a cloud call

    def handle_one_request(self) -> None:
        """Serve one request and charge the CPU its thread spent (parsing, the call, the answer) to its action.

        Two clock reads per request; waiting for the next request on a kept-alive connection costs no CPU.
        """
        self._counted_as = None
        started = time.thread_time()
        try:
            super().handle_one_request()
        finally:
            if self._counted_as is not None:
                self.server.app.counters.add_cpu(*self._counted_as, time.thread_time() - started)

    def _serve(self) -> None:
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        req = WireRequest(
            method=self.command,
            path=split.path or "/",
            raw_query=split.query,
            query=parse_qsl(split.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        resp = self.server.app.dispatch(req)
        self._counted_as = resp.counted_as
        if resp.drop:  # the call was processed; the client never hears so
            self.close_connection = True
            return
        self.send_response(resp.status)
        for key, value in resp.headers.items():
            if key.lower() != "content-length":
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(resp.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(resp.body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _serve

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the request log records requests without their (signed) query strings."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, host: str, port: int, app: EmulatorApp) -> None:
        self.app = app
        super().__init__((check_loopback(host), port), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (timeout, hang fault) is normal here; anything else is logged."""
        log.debug("connection from %s ended abnormally", client_address, exc_info=True)


@dataclass
class EmulatorHandle:
    """A running emulator: its endpoint and the knobs tests turn."""

    app: EmulatorApp
    _server: _Server = field(repr=False)
    _thread: threading.Thread = field(repr=False)

    @property
    def host_port(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{host!s}:{port}"

    @property
    def endpoint(self) -> str:
        return f"http://{self.host_port}"

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def model(self) -> CloudModel:
        return self.app.model

    @property
    def clock(self) -> Clock:
        return self.app.model.clock

    @property
    def faults(self) -> FaultInjector:
        return self.app.faults

    @property
    def counters(self) -> Counters:
        return self.app.counters

    @property
    def request_log(self) -> RequestLog:
        return self.app.request_log

    @property
    def state_path(self) -> Path | None:
        return self.app.state_path

    def stop(self) -> None:
        """Stop serving, end hung requests and save the state file one last time."""
        if not self._thread.is_alive():
            return
        self.app.faults.release()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        self.app.persist()

    def __enter__(self) -> EmulatorHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_emulator(
    fixture: FixtureSource = None,
    *,
    port: int = 0,
    clock: Clock | None = None,
    state_path: str | Path | None = None,
    time_scale: float = 1.0,
    host: str = "127.0.0.1",
    frontends: Sequence[FrontEndFactory] | None = None,
) -> EmulatorHandle:
    """Start on 127.0.0.1 (port 0 = ephemeral) in a daemon thread.

    ``clock`` wins over ``time_scale``; ``frontends`` replaces the vendor front-ends (tests).
    A state file, when it exists, overlays the fixture's images, snapshots and tasks.
    """
    if clock is not None and time_scale != 1.0:
        raise ValueError("pass either a clock or a time_scale, not both")
    clock = clock or SystemClock(time_scale)
    loaded = load_fixture(fixture, clock=clock)
    path = Path(state_path) if state_path is not None else None
    if path is not None:
        load_state(loaded.model, path)
    faults = FaultInjector(seed=loaded.seed)
    for rule in loaded.faults:
        faults.set(rule)
    factories = default_frontends() if frontends is None else list(frontends)
    app = EmulatorApp(loaded.model, [make(loaded.model) for make in factories], faults, state_path=path)
    server = _Server(host, port, app)
    # A short poll interval keeps stop() quick: tests start and stop many emulators.
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.02}, name="imagebak-emulator", daemon=True
    )
    thread.start()
    return EmulatorHandle(app, server, thread)


def serve(
    fixture: FixtureSource = None,
    *,
    port: int = 0,
    state_path: str | Path | None = None,
    time_scale: float = 1.0,
    echo: Callable[[str], None] = print,
) -> None:
    """Run in the foreground until SIGINT/SIGTERM, printing the endpoint and the fixture's fake keys."""
    handle = start_emulator(fixture, port=port, state_path=state_path, time_scale=time_scale)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        vendors = ", ".join(fe.vendor for fe in handle.app.frontends) or "none"
        echo(f"imagebak emulator listening on {handle.endpoint} (vendors: {vendors}; time x{time_scale:g})")
        if handle.state_path is not None:
            echo(f"state file: {handle.state_path}")
        for acc in handle.model.accounts():
            echo(
                f"  {acc.provider:<8} {acc.name}: key {acc.access_key_id} secret {acc.secret} "
                f"regions {','.join(acc.regions)}"
            )
        echo("press Ctrl-C to stop")
        while not stop.wait(0.5):
            pass
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
        handle.stop()
        echo("emulator stopped")
