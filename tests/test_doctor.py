"""`imagebak doctor`: offline checks, `--connect` against the emulator, exit codes, and no secret printed."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from imagebak import cli as cli_module
from imagebak.cli import cli
from imagebak.commands.doctor_cmd import PERMISSIONS
from imagebak.emulator.server import EmulatorHandle
from imagebak.providers.credentials import METADATA_ENV

# The packaged demo fixture: account, region, one instance, a copy region (tests/engine/world.py has the same).
VENDORS = {
    "aliyun": ("aliyun-demo", "cn-shanghai", "i-uf6ujzde8gxd6ncf10ep", "cn-qingdao"),
    "huawei": ("huawei-demo", "cn-north-4", "6aa8b9e0-231b-4e14-b291-35bdd70a39d1", "cn-east-3"),
    "jdcloud": ("jdcloud-demo", "cn-north-1", "i-l1erbfqfoe", "cn-east-2"),
}
ID_ENV, SECRET_ENV = "DOCTOR_TEST_KEY_ID", "DOCTOR_TEST_KEY_SECRET"


@pytest.fixture(autouse=True)
def registered(monkeypatch: pytest.MonkeyPatch) -> None:
    """`doctor` as cli.COMMANDS will list it (cli.py registers commands; this branch does not edit it)."""
    entry = ("imagebak.commands.doctor_cmd:doctor", "Check files, SDKs, credentials; with --connect, the clouds.")
    monkeypatch.setitem(cli_module.COMMANDS, "doctor", entry)
    monkeypatch.setenv(METADATA_ENV, "off")


def write_config(folder: Path, emulator: EmulatorHandle, vendor: str, **changes: Any) -> Path:
    account_name, region, instance, copy_region = VENDORS[vendor]
    account: dict[str, Any] = {
        "provider": vendor,
        "endpoint": emulator.endpoint,
        "access_key_id_env": ID_ENV,
        "secret_env": SECRET_ENV,
    }
    policy: dict[str, Any] = {
        "name": "nightly",
        "account": account_name,
        "region": region,
        "start": "2026-01-01T02:00:00+08:00",
        "every": "1d",
        "instances": [instance],
        "copy_to": [copy_region],
    }
    if vendor == "huawei":
        account.update(projects=emulator.model.account(account_name).projects, agency="ims_admin_agency")
        policy.update(vault="vault-n4", copy_to=[{"region": copy_region, "vault": "vault-e3"}])
    account.update(changes.pop("account", {}))
    policy.update(changes)
    document = {
        "version": 1,
        "state": "state/state.json",
        "retry": {"attempts": 2, "initial_wait": 0.01, "max_wait": 0.02, "deadline": 5},
        "accounts": {account_name: account},
        "policies": [policy],
    }
    path = folder / "policies.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    return path


def doctor(config: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["-c", str(config), "doctor", *args])


def use_keys(emulator: EmulatorHandle, vendor: str, monkeypatch: pytest.MonkeyPatch) -> str:
    account = emulator.model.account(VENDORS[vendor][0])
    monkeypatch.setenv(ID_ENV, account.access_key_id)
    monkeypatch.setenv(SECRET_ENV, account.secret)
    return account.secret


@pytest.mark.parametrize("vendor", sorted(VENDORS))
def test_everything_in_place_passes_offline_and_connected(vendor, emulator, tmp_path, monkeypatch):
    secret = use_keys(emulator, vendor, monkeypatch)
    config = write_config(tmp_path, emulator, vendor)
    offline = doctor(config)
    assert offline.exit_code == 0, offline.output
    assert f"from environment {ID_ENV}/{SECRET_ENV}" in offline.output and "all checks passed" in offline.output
    assert "no cloud was called" in offline.output and secret not in offline.output
    assert emulator.counters.get(vendor) == 0  # offline: not one call
    connected = doctor(config, "--connect")
    assert connected.exit_code == 0, connected.output
    account, region, instance, copy_region = VENDORS[vendor]
    for subject in (f"{account}/{region}", f"{account}/{copy_region}", f"{account}/{region}/{instance}"):
        assert re.search(rf"{re.escape(subject)}\s+ok", connected.output), connected.output
    assert secret not in connected.output


def test_permissions_are_listed_per_vendor_in_text_and_json(emulator, tmp_path, monkeypatch):
    use_keys(emulator, "aliyun", monkeypatch)
    config = write_config(tmp_path, emulator, "aliyun")
    assert "aliyun: ecs:DescribeInstances, ecs:DescribeDisks" in doctor(config).output
    report = json.loads(doctor(config, "--format", "json").output)
    assert report["ok"] and report["exit_code"] == 0 and not report["connected"]
    assert {"operation": "CopyImage", "action": "ecs:CopyImage"} in report["permissions"]["aliyun"]
    assert {c["check"] for c in report["checks"]} == {"config", "state", "log", "sdk", "credentials"}


def test_a_missing_instance_is_exit_1(emulator, tmp_path, monkeypatch):
    use_keys(emulator, "jdcloud", monkeypatch)
    config = write_config(tmp_path, emulator, "jdcloud", instances=["i-l1erbfqfoe", "i-doesnotexist"])
    result = doctor(config, "--connect")
    assert result.exit_code == 1, result.output
    assert re.search(r"jdcloud-demo/cn-north-1/i-doesnotexist\s+FAILED\s+no such instance", result.output)


def test_missing_credentials_are_exit_12_and_the_cloud_is_not_asked(emulator, tmp_path, monkeypatch):
    monkeypatch.delenv(ID_ENV, raising=False)
    monkeypatch.delenv(SECRET_ENV, raising=False)
    config = write_config(tmp_path, emulator, "aliyun")
    result = doctor(config, "--connect")
    assert result.exit_code == 12, result.output
    assert f"{ID_ENV} and {SECRET_ENV} are not set" in result.output
    assert "aliyun-demo/cn-shanghai" not in result.output  # an account without credentials is not called


def test_refused_credentials_and_unreachable_endpoints_are_exit_8(emulator, tmp_path, monkeypatch):
    use_keys(emulator, "huawei", monkeypatch)
    monkeypatch.setenv(SECRET_ENV, "not-the-secret")
    config = write_config(tmp_path, emulator, "huawei")
    result = doctor(config, "--connect")
    assert result.exit_code == 8, result.output
    assert re.search(r"huawei-demo/cn-north-4\s+FAILED\s+refused: ", result.output)
    assert "not-the-secret" not in result.output
    use_keys(emulator, "aliyun", monkeypatch)
    config = write_config(tmp_path, emulator, "aliyun", account={"endpoint": "http://127.0.0.1:9"})
    result = doctor(config, "--connect")
    assert result.exit_code == 8, result.output
    assert re.search(r"aliyun-demo/cn-shanghai\s+FAILED\s+no answer: ", result.output)


def test_an_unwritable_state_folder_is_exit_4(emulator, tmp_path, monkeypatch):
    use_keys(emulator, "aliyun", monkeypatch)
    config = write_config(tmp_path, emulator, "aliyun")
    (tmp_path / "state").write_text("a file where the state folder should be", encoding="utf-8")
    result = doctor(config)
    assert result.exit_code == 4, result.output
    assert f"{tmp_path / 'state'} is not a folder" in result.output


def test_an_invalid_policy_file_is_exit_3(tmp_path):
    config = tmp_path / "policies.yaml"
    config.write_text("version: 1\naccounts: {}\npolicies: [{name: x}]\n", encoding="utf-8")
    assert doctor(config).exit_code == 3


def _operations(vendor: str) -> set[str]:
    """The API operations an adapter's source imports requests for: what it calls."""
    source = (Path(cli_module.__file__).parent / "providers" / f"{vendor}.py").read_text(encoding="utf-8")
    if vendor == "aliyun":
        return set(re.findall(r"from aliyunsdkecs\.request\.v20140526\.(\w+)Request import", source))
    if vendor == "jdcloud":
        found = re.findall(r"from jdcloud_sdk\.services\.\w+\.apis\.(\w+)Request import", source)
        return {name[0].lower() + name[1:] for name in found}
    names = re.findall(r"\b(\w+)Request\b", source.split("from imagebak", 1)[0])
    return {n for n in names if n not in ("", "CreateImageRequestBody")}


@pytest.mark.parametrize("vendor", sorted(PERMISSIONS))
def test_the_permission_list_covers_every_call_the_adapter_makes(vendor):
    assert {operation for operation, _ in PERMISSIONS[vendor]} == _operations(vendor)
