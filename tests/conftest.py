"""Session-wide safety net and shared emulator fixtures.

The loopback guard makes every test process unable to reach anything but 127.0.0.0/8 and ::1:
SDKs try the network behind your back (Aliyun's location service, Huawei IAM and the metadata
service), and a test must fail rather than talk to a real cloud. A blocked attempt raises at once
(an OSError, as a refused connection would) and is also recorded, so a test whose code swallowed
the error still fails at teardown.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any

import pytest
from receiver import Receiver

from imagebak.emulator.clock import ManualClock
from imagebak.emulator.server import EmulatorHandle, start_emulator

PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})


class LoopbackGuardError(ConnectionRefusedError):
    """Raised instead of opening a non-loopback connection or resolving a non-loopback name."""


def is_loopback(host: object) -> bool:
    if host is None:  # getaddrinfo(None, ...) means the local host
        return True
    if isinstance(host, bytes):
        host = host.decode("idna", "replace")
    if not isinstance(host, str):
        return False
    name = host.strip("[]").split("%", 1)[0].lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        addr = ipaddress.ip_address(name)
    except ValueError:
        return False
    mapped = getattr(addr, "ipv4_mapped", None)
    return addr.is_loopback or (mapped is not None and mapped.is_loopback)


class LoopbackGuard:
    """Patches socket connect/DNS entry points; keeps the blocked attempts in ``violations``."""

    def __init__(self) -> None:
        self.violations: list[str] = []
        self._saved: list[tuple[Any, str, Any]] = []

    def _refuse(self, what: str, target: object) -> None:
        self.violations.append(f"{what} {target!r}")
        raise LoopbackGuardError(f"test guard: {what} to non-loopback {target!r} blocked")

    def _check_address(self, sock: socket.socket, address: Any, what: str) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not is_loopback(address[0]):
            self._refuse(what, address)

    def _patch(self, owner: Any, name: str, make: Callable[[Any], Any]) -> None:
        original = getattr(owner, name)
        self._saved.append((owner, name, original))
        setattr(owner, name, make(original))

    def install(self) -> None:
        guard = self

        def connect(original: Any) -> Any:
            def guarded(sock: socket.socket, address: Any) -> Any:
                guard._check_address(sock, address, "connect")
                return original(sock, address)

            return guarded

        def connect_ex(original: Any) -> Any:
            def guarded(sock: socket.socket, address: Any) -> Any:
                guard._check_address(sock, address, "connect_ex")
                return original(sock, address)

            return guarded

        def by_host(what: str) -> Callable[[Any], Any]:
            def make(original: Any) -> Any:
                def guarded(host: Any, *args: Any, **kwargs: Any) -> Any:
                    target = host[0] if isinstance(host, tuple) else host
                    if not is_loopback(target):
                        guard._refuse(what, host)
                    return original(host, *args, **kwargs)

                return guarded

            return make

        self._patch(socket.socket, "connect", connect)
        self._patch(socket.socket, "connect_ex", connect_ex)
        for name in ("getaddrinfo", "gethostbyname", "gethostbyname_ex", "create_connection"):
            self._patch(socket, name, by_host(name))

    def uninstall(self) -> None:
        while self._saved:
            owner, name, original = self._saved.pop()
            setattr(owner, name, original)


_GUARD = LoopbackGuard()


def pytest_configure(config: pytest.Config) -> None:
    for var in PROXY_VARS:  # Aliyun's SDK ignores NO_PROXY, so proxies must go entirely
        os.environ.pop(var, None)
    os.environ["IMAGEBAK_INSTANCE_METADATA"] = "off"  # a CI machine that is a cloud VM must not ask its metadata
    _GUARD.install()


def pytest_unconfigure(config: pytest.Config) -> None:
    _GUARD.uninstall()


@pytest.fixture
def loopback_guard() -> LoopbackGuard:
    """The session guard, for tests about the guard itself (they must clear what they provoke)."""
    return _GUARD


@pytest.fixture(autouse=True)
def _no_network_escape() -> Iterator[None]:
    _GUARD.violations.clear()
    yield
    escaped = list(_GUARD.violations)
    _GUARD.violations.clear()
    if escaped:
        pytest.fail(f"non-loopback network access attempted: {'; '.join(escaped)}")


@pytest.fixture
def manual_clock() -> ManualClock:
    return ManualClock(datetime(2024, 1, 1, 2, 0, tzinfo=timezone.utc))


@pytest.fixture
def emulator(manual_clock: ManualClock) -> Iterator[EmulatorHandle]:
    """The emulator with the packaged demo fixture, all front-ends, on a ManualClock."""
    with start_emulator(clock=manual_clock) as handle:
        yield handle


@pytest.fixture
def emulator_factory(manual_clock: ManualClock) -> Iterator[Callable[..., EmulatorHandle]]:
    """start(fixture=None, **start_emulator kwargs) -> handle; ManualClock unless clock/time_scale given."""
    handles: list[EmulatorHandle] = []

    def start(fixture: Any = None, **kwargs: Any) -> EmulatorHandle:
        if "time_scale" not in kwargs:
            kwargs.setdefault("clock", manual_clock)
        handle = start_emulator(fixture, **kwargs)
        handles.append(handle)
        return handle

    yield start
    for handle in handles:
        handle.stop()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.server.shutdown()
