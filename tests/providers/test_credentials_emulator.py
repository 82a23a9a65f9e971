"""Credentials found by the chains, through the real SDKs, against the emulator on 127.0.0.1.

Temporary keys carry their token on the wire (Aliyun ``SecurityToken``, Huawei ``X-Security-Token``),
and a refreshing source's current keys sign each request, whatever keys it had when first asked.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from imagebak.cli import cli
from imagebak.emulator.server import EmulatorHandle
from imagebak.emulator.wire import WireRequest
from imagebak.providers import ProviderSettings, make_provider
from imagebak.providers.credentials import METADATA_ENV, Credentials, resolve_credentials

# The packaged demo fixture's accounts, one instance each (tests/engine/world.py uses the same).
INSTANCES = {
    "aliyun": ("aliyun-demo", "cn-shanghai", "i-uf6ujzde8gxd6ncf10ep"),
    "huawei": ("huawei-demo", "cn-north-4", "6aa8b9e0-231b-4e14-b291-35bdd70a39d1"),
    "jdcloud": ("jdcloud-demo", "cn-north-1", "i-l1erbfqfoe"),
}
TOKEN = "emulated-sts-token"


@pytest.fixture(autouse=True)
def clean(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("ALIBABA_CLOUD_", "ALIYUN_", "HUAWEICLOUD_", "HC_CONTAINER_", "JDCLOUD_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv(METADATA_ENV, "off")


@pytest.fixture
def seen(emulator: EmulatorHandle) -> Iterator[list[WireRequest]]:
    """Every request the emulator's front-ends handle, as they saw it."""
    requests: list[WireRequest] = []
    for frontend in emulator.app.frontends:
        handle = frontend.handle

        def recording(request: WireRequest, handle: Any = handle) -> Any:
            requests.append(request)
            return handle(request)

        frontend.handle = recording  # type: ignore[method-assign]
    yield requests


def instance_via(emulator: EmulatorHandle, vendor: str, credentials: Credentials) -> Any:
    account, region, instance_id = INSTANCES[vendor]
    projects = emulator.model.account(account).projects if vendor == "huawei" else {}
    settings = ProviderSettings(account, credentials, endpoint=emulator.endpoint, projects=projects, timeout_seconds=10)
    return make_provider(vendor, settings).get_instance(region, instance_id)


def keys(emulator: EmulatorHandle, vendor: str) -> tuple[str, str]:
    account = emulator.model.account(INSTANCES[vendor][0])
    return account.access_key_id, account.secret


def test_aliyun_environment_sts_keys_sign_with_their_token(emulator, seen, monkeypatch):
    key_id, secret = keys(emulator, "aliyun")
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", key_id)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", secret)
    monkeypatch.setenv("ALIBABA_CLOUD_SECURITY_TOKEN", TOKEN)
    assert instance_via(emulator, "aliyun", resolve_credentials("aliyun", "acct")) is not None
    assert {r.param("SecurityToken") for r in seen} == {TOKEN}


@dataclass
class Renewing:
    """An alibabacloud_credentials provider whose keys were renewed since the client was built."""

    key_id: str
    secret: str
    asked: int = 0

    def get_credentials(self) -> Any:
        from alibabacloud_credentials.provider.refreshable import Credentials as Current

        self.asked += 1
        return Current(access_key_id=self.key_id, access_key_secret=self.secret, security_token=TOKEN)


def test_aliyun_signs_with_the_keys_of_the_moment(emulator, seen):
    renewing = Renewing(*keys(emulator, "aliyun"))
    stale = Credentials("expired-id", "expired-secret", "expired-token", source="test", live=renewing)
    assert instance_via(emulator, "aliyun", stale) is not None
    assert renewing.asked >= 1 and {r.param("SecurityToken") for r in seen} == {TOKEN}


def test_huawei_chain_credentials_carry_their_security_token(emulator, seen, monkeypatch):
    key_id, secret = keys(emulator, "huawei")
    monkeypatch.setenv("HUAWEICLOUD_SDK_AK", key_id)
    monkeypatch.setenv("HUAWEICLOUD_SDK_SK", secret)
    monkeypatch.setenv("HUAWEICLOUD_SDK_SECURITY_TOKEN", TOKEN)
    found = resolve_credentials("huawei", "acct")
    assert instance_via(emulator, "huawei", found) is not None
    assert seen and {r.headers.get("x-security-token") for r in seen} == {TOKEN}
    assert found.live.project_id is None  # each client got a copy with its region's project id


def test_profiles_of_the_credential_files_reach_the_cloud(emulator, tmp_path: Path):
    for vendor, path, text in (
        ("aliyun", ".alibabacloud/credentials.ini", "[ops]\naccess_key_id = {}\naccess_key_secret = {}\n"),
        ("huawei", ".huaweicloud/credentials", "[ops]\nak = {}\nsk = {}\n"),
        ("jdcloud", ".jdc/config", "[ops]\naccess_key = {}\nsecret_key = {}\n"),
    ):
        (tmp_path / path).parent.mkdir(parents=True)
        (tmp_path / path).write_text(text.format(*keys(emulator, vendor)), encoding="utf-8")
        found = resolve_credentials(vendor, "acct", profile="ops")
        assert found.source == f"{tmp_path / path} [ops]"
        assert instance_via(emulator, vendor, found) is not None


@pytest.mark.parametrize("vendor", sorted(INSTANCES))
def test_a_run_writes_no_secret_anywhere(vendor, emulator, tmp_path, monkeypatch, capfd, caplog):
    account, region, instance = INSTANCES[vendor]
    key_id, secret = keys(emulator, vendor)
    variables = {"aliyun": "ALIBABA_CLOUD", "huawei": "HUAWEICLOUD_SDK", "jdcloud": "JDCLOUD"}[vendor]
    names = {"aliyun": ("_ACCESS_KEY_ID", "_ACCESS_KEY_SECRET"), "huawei": ("_AK", "_SK")}
    id_name, secret_name = names.get(vendor, ("_ACCESS_KEY", "_SECRET_KEY"))
    monkeypatch.setenv(variables + id_name, key_id)
    monkeypatch.setenv(variables + secret_name, secret)
    settings: dict[str, Any] = {"provider": vendor, "endpoint": emulator.endpoint}
    policy: dict[str, Any] = {"name": "p", "account": account, "region": region, "every": "1d"}
    policy.update(start="2026-01-01T02:00:00+08:00", instances=[instance, "i-missing"])
    if vendor == "huawei":
        settings["projects"] = emulator.model.account(account).projects
        policy["vault"] = "vault-n4"
    config = tmp_path / "policies.yaml"
    document = {"version": 1, "accounts": {account: settings}, "policies": [policy]}
    config.write_text(yaml.safe_dump(document), encoding="utf-8")
    result = CliRunner().invoke(cli, ["-c", str(config), "run", "--all", "--no-wait", "--format", "json"])
    assert result.exit_code in (0, 1), result.output
    written = [p.read_text(encoding="utf-8") for p in (tmp_path / ".imagebak").iterdir() if p.is_file()]
    captured = capfd.readouterr()
    for text in (result.output, captured.out, captured.err, caplog.text, *written):
        assert secret not in text
