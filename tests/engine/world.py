"""The test world of end-to-end runs: a real emulator (sped-up clock) and a policy file pointing at it."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from imagebak.cli import cli
from imagebak.emulator.server import EmulatorHandle, start_emulator
from imagebak.state import StateStore

TIME_SCALE = 3000.0  # a 10-minute image takes 0.2 s


@dataclass(frozen=True)
class Vendor:
    name: str
    account: str
    region: str
    web: str  # cloud system disk + one cloud data disk (vdb)
    local_system: str
    local_data: str  # cloud vda + local data disks
    copy_to: tuple[Any, ...]
    create_action: str
    status_action: str


VENDORS = {
    "aliyun": Vendor(
        "aliyun",
        "aliyun-demo",
        "cn-shanghai",
        "i-uf6ujzde8gxd6ncf10ep",
        "i-uf6ht9lgmxg9edn581u3",
        "i-uf63xtplpft75v2seh60",
        ("cn-qingdao", "cn-beijing"),
        "CreateImage",
        "DescribeImages",
    ),
    "huawei": Vendor(
        "huawei",
        "huawei-demo",
        "cn-north-4",
        "6aa8b9e0-231b-4e14-b291-35bdd70a39d1",
        "77bd891f-f7b1-43df-a323-1e1ee2015522",
        "29acf1a5-7cbd-4f5a-a28a-f60465f42986",
        ({"region": "cn-east-3", "vault": "vault-e3"}, {"region": "cn-south-1", "vault": "vault-s1"}),
        "CreateWholeImage",
        "ListImages",  # images in the making are seen in one listing of the region
    ),
    "jdcloud": Vendor(
        "jdcloud",
        "jdcloud-demo",
        "cn-north-1",
        "i-l1erbfqfoe",
        "i-qh3av90ric",
        "i-7phkqdlmtt",
        ("cn-east-2", "cn-south-1"),
        "createImage",
        "describeImages",
    ),
}
ENV_ID, ENV_SECRET = "IMAGEBAK_TEST_KEY_ID", "IMAGEBAK_TEST_KEY_SECRET"


@dataclass
class World:
    """One emulated cloud, one policy file, and helpers to run the CLI and inspect the cloud."""

    emulator: EmulatorHandle
    vendor: Vendor
    folder: Path

    @property
    def config(self) -> Path:
        return self.folder / "policies.yaml"

    @property
    def state_file(self) -> Path:
        return self.folder / "state.json"

    def write_policies(self, *policies: dict[str, Any], **account_extra: Any) -> None:
        account = {
            "provider": self.vendor.name,
            "endpoint": self.emulator.endpoint,
            "access_key_id_env": ENV_ID,
            "secret_env": ENV_SECRET,
            **account_extra,
        }
        if self.vendor.name == "huawei":
            account["projects"] = self.emulator.model.account(self.vendor.account).projects
            account["agency"] = "ims_admin_agency"
        document = {
            "version": 1,
            "state": "state.json",
            "log": "execution.log",
            "retry": {"attempts": 6, "initial_wait": 0.01, "max_wait": 0.05, "deadline": 30},
            "accounts": {self.vendor.account: account},
            "policies": [self.policy(**p) for p in policies],
        }
        self.config.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")

    def policy(self, **overrides: Any) -> dict[str, Any]:
        base = {
            "name": "nightly",
            "account": self.vendor.account,
            "region": self.vendor.region,
            "start": "2026-01-01T02:00:00+08:00",
            "every": "1d",
            "disks": "all",
            "instances": [self.vendor.web],
            "copy_to": list(self.vendor.copy_to),
        }
        if self.vendor.name == "huawei":  # whole-machine images keep their backup in a CBR vault
            base["vault"] = "vault-n4"
        return {**base, **overrides}

    def command_line(self, *args: str) -> list[str]:
        """``imagebak run`` as a separate process would be started (for kills and time bounds)."""
        return [sys.executable, "-m", "imagebak", "-c", str(self.config), "run", "--poll-interval", "0.02", *args]

    def run(self, *args: str) -> Result:
        return CliRunner().invoke(cli, ["-c", str(self.config), "run", "--poll-interval", "0.02", *args])

    def run_json(self, *args: str) -> tuple[int, dict[str, Any]]:
        result = self.run("--format", "json", *args)
        return result.exit_code, json.loads(result.output)

    def images(self, region: str | None = None) -> list[Any]:
        return self.emulator.model.list_images(self.vendor.account, region or self.vendor.region)

    def calls(self, action: str) -> int:
        return self.emulator.counters.get(self.vendor.name, action)

    def state(self) -> dict[str, Any]:
        """The state as imagebak reads it from disk: ``state.json`` with its history log replayed."""
        return StateStore(self.state_file).read().data

    def log_events(self) -> list[dict[str, Any]]:
        path = self.folder / "execution.log"
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def open_world(vendor: Vendor, folder: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    folder.mkdir(parents=True, exist_ok=True)
    with start_emulator(time_scale=TIME_SCALE) as handle:
        account = handle.model.account(vendor.account)
        monkeypatch.setenv(ENV_ID, account.access_key_id)
        monkeypatch.setenv(ENV_SECRET, account.secret)
        yield World(handle, vendor, folder)
