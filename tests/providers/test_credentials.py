"""Credential chains: each vendor's order, true hints, and no secret in any message.

Everything runs on environment variables and credential files in a temporary HOME. Instance metadata
is off (IMAGEBAK_INSTANCE_METADATA=off) or only named (connect=False): no test asks a metadata service.
Key-shaped values are built at run time, so the repository holds no key-shaped literal.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from imagebak.errors import ImagebakError
from imagebak.providers.credentials import METADATA_ENV, Credentials, instance_metadata_refusal, resolve_credentials
from imagebak.vendors import key_shape, redact_keys

PREFIXES = ("ALIBABA_CLOUD_", "ALIYUN_", "HUAWEICLOUD_", "HC_CONTAINER_", "JDCLOUD_")
SECRET = "Sec" + "r3tValue" * 4  # shaped like a secret: it must never be printed


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith(PREFIXES):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv(METADATA_ENV, "off")
    return tmp_path


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def failure(vendor: str, **kwargs: str) -> str:
    with pytest.raises(ImagebakError) as caught:
        resolve_credentials(vendor, "acct", **kwargs)
    message = str(caught.value)
    assert "\n" not in message and SECRET not in message
    return message


def aliyun_cli(home: Path, current: str = "default", **profiles: dict[str, str]) -> None:
    entries = [{"name": name, **fields} for name, fields in profiles.items()]
    write(home / ".aliyun" / "config.json", json.dumps({"current": current, "profiles": entries}))


# ---- Aliyun ------------------------------------------------------------------------------------------


def test_aliyun_follows_the_vendor_order_environment_cli_profile_then_ini(home: Path, monkeypatch):
    write(
        home / ".alibabacloud" / "credentials.ini",
        f"[default]\ntype = access_key\naccess_key_id = ini-id\naccess_key_secret = {SECRET}\n",
    )
    found = resolve_credentials("aliyun", "acct")
    assert (found.access_key_id, found.secret) == ("ini-id", SECRET)
    assert found.source == f"{home}/.alibabacloud/credentials.ini [default]"
    assert found.live.get_credentials().get_access_key_id() == "ini-id"  # the vendor's provider, kept to renew

    aliyun_cli(
        home, default={"mode": "StsToken", "access_key_id": "cli-id", "access_key_secret": SECRET, "sts_token": "tok"}
    )
    found = resolve_credentials("aliyun", "acct")
    assert (found.access_key_id, found.token) == ("cli-id", "tok")
    assert found.source == f"{home}/.aliyun/config.json (its current profile)"

    monkeypatch.setenv("ALIYUN_ACCESS_KEY_ID", "sdkcore-id")
    monkeypatch.setenv("ALIYUN_ACCESS_KEY_SECRET", SECRET)
    assert resolve_credentials("aliyun", "acct").access_key_id == "sdkcore-id"

    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "env-id")
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", SECRET)
    monkeypatch.setenv("ALIBABA_CLOUD_SECURITY_TOKEN", "sts-token")
    found = resolve_credentials("aliyun", "acct")
    assert (found.access_key_id, found.token, found.live) == ("env-id", "sts-token", None)
    assert found.source == "environment ALIBABA_CLOUD_ACCESS_KEY_ID/ALIBABA_CLOUD_ACCESS_KEY_SECRET"


def test_aliyun_oidc_comes_before_the_files_and_is_only_named_without_connecting(home: Path, monkeypatch):
    aliyun_cli(home, default={"mode": "AK", "access_key_id": "cli-id", "access_key_secret": SECRET})
    token_file = write(home / "oidc-token", "header.payload.signature")
    monkeypatch.setenv("ALIBABA_CLOUD_ROLE_ARN", "acs:ram::1:role/imagebak")
    monkeypatch.setenv("ALIBABA_CLOUD_OIDC_PROVIDER_ARN", "acs:ram::1:oidc-provider/ack")
    monkeypatch.setenv("ALIBABA_CLOUD_OIDC_TOKEN_FILE", str(token_file))
    found = resolve_credentials("aliyun", "acct", connect=False)  # no STS exchange
    assert found.pending and found.source.startswith("OIDC")
    monkeypatch.delenv("ALIBABA_CLOUD_ROLE_ARN")
    assert resolve_credentials("aliyun", "acct", connect=False).access_key_id == "cli-id"


def test_aliyun_profile_env_and_the_legacy_file_without_type(home: Path, monkeypatch):
    write(home / ".alibabacloud" / "credentials", f"[prod]\naccess_key_id = legacy-id\naccess_key_secret = {SECRET}\n")
    assert resolve_credentials("aliyun", "acct", profile="prod").access_key_id == "legacy-id"
    monkeypatch.setenv("ALIBABA_CLOUD_PROFILE", "prod")  # the vendor's way to pick a section
    assert resolve_credentials("aliyun", "acct").source == f"{home}/.alibabacloud/credentials [prod]"
    write(home / ".alibabacloud" / "credentials.ini", f"[prod]\naccess_key_id = ini-id\naccess_key_secret = {SECRET}\n")
    assert resolve_credentials("aliyun", "acct").access_key_id == "ini-id"  # the library's file wins


def test_aliyun_named_profile_prefers_the_cli_profile_and_its_hint_names_files_not_variables(home: Path):
    message = failure("aliyun", profile="prod")
    assert f"{home}/.aliyun/config.json profile 'prod': no such file" in message
    assert f"{home}/.alibabacloud/credentials.ini [prod]: no such file" in message
    assert "ALIBABA_CLOUD_ACCESS_KEY_ID" not in message  # never read with a profile, so never suggested
    write(home / ".alibabacloud" / "credentials.ini", "[prod]\naccess_key_id = ini-id\n")
    aliyun_cli(home, other={"mode": "AK", "access_key_id": "x", "access_key_secret": SECRET})
    message = failure("aliyun", profile="prod")
    assert "config.json profile 'prod': no profile 'prod'" in message
    assert "credentials.ini [prod]: [prod] has no access_key_secret" in message
    aliyun_cli(home, prod={"mode": "AK", "access_key_id": "cli-id", "access_key_secret": SECRET})
    assert resolve_credentials("aliyun", "acct", profile="prod").access_key_id == "cli-id"


def test_aliyun_default_chain_failure_lists_every_source_and_the_variables(home: Path):
    message = failure("aliyun")
    for part in ("environment ALIBABA_CLOUD_ACCESS_KEY_ID", "OIDC", "config.json", "credentials.ini [default]"):
        assert part in message
    assert f"ECS RAM role (instance metadata): not asked ({METADATA_ENV}=off)" in message
    assert message.endswith(
        "set ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET, or see docs/credentials.md"
    )


# ---- instance metadata ---------------------------------------------------------------------------------


def test_instance_metadata_is_asked_only_on_that_clouds_instances(tmp_path: Path, monkeypatch):
    dmi = tmp_path / "dmi"
    monkeypatch.setenv(METADATA_ENV, "auto")
    assert "not an Alibaba Cloud ECS instance" in str(instance_metadata_refusal("aliyun", dmi))
    write(dmi / "product_name", "Alibaba Cloud ECS\n")
    write(dmi / "chassis_asset_tag", "HUAWEICLOUD\n")
    assert instance_metadata_refusal("aliyun", dmi) is None
    assert instance_metadata_refusal("huawei", dmi) is None
    monkeypatch.setenv(METADATA_ENV, "off")
    assert instance_metadata_refusal("huawei", dmi) == f"not asked ({METADATA_ENV}=off)"


def test_with_metadata_on_the_role_and_agency_are_found_but_not_asked_offline(monkeypatch):
    monkeypatch.setenv(METADATA_ENV, "on")
    assert resolve_credentials("aliyun", "acct", connect=False).source == "ECS RAM role (instance metadata)"
    assert resolve_credentials("huawei", "acct", connect=False).source == "ECS agency (instance metadata)"
    monkeypatch.setenv("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")  # the vendor's own switch
    assert "ECS RAM role" not in failure("aliyun")


# ---- Huawei ------------------------------------------------------------------------------------------


def test_huawei_follows_the_sdk_chain_oidc_environment_then_file(home: Path, monkeypatch):
    from huaweicloudsdkcore.auth.credentials import BasicCredentials

    write(home / ".huaweicloud" / "credentials", f"[basic]\nak = file-ak\nsk = {SECRET}\n")
    found = resolve_credentials("huawei", "acct")
    assert (found.access_key_id, found.source) == ("file-ak", f"{home}/.huaweicloud/credentials [basic]")
    monkeypatch.setenv("HUAWEICLOUD_SDK_AK", "env-ak")
    monkeypatch.setenv("HUAWEICLOUD_SDK_SK", SECRET)
    monkeypatch.setenv("HUAWEICLOUD_SDK_SECURITY_TOKEN", "temp-token")
    found = resolve_credentials("huawei", "acct")
    assert (found.access_key_id, found.token) == ("env-ak", "temp-token")
    assert isinstance(found.live, BasicCredentials) and found.live.security_token == "temp-token"
    monkeypatch.setenv("HUAWEICLOUD_OIDC_PROVIDER_URN", "iam::1:identity-provider:ci")
    monkeypatch.setenv("HUAWEICLOUD_OIDC_AGENCY_URN", "iam::1:agency:imagebak")
    monkeypatch.setenv("HUAWEICLOUD_OIDC_ID_TOKEN", "header.payload.signature")
    found = resolve_credentials("huawei", "acct")  # the exchange happens at the first call, by the SDK
    assert found.source.startswith("OIDC") and found.live.sts_accessor is not None


def test_huawei_named_profile_reads_any_section_with_its_token(home: Path):
    message = failure("huawei", profile="prod")
    assert message.endswith(f"in profile 'prod': {home}/.huaweicloud/credentials [prod]: no such file")
    write(home / ".huaweicloud" / "credentials", f"[prod]\nak = prod-ak\nsk = {SECRET}\nsecurity_token = t\n")
    found = resolve_credentials("huawei", "acct", profile="prod")
    assert (found.access_key_id, found.secret, found.token) == ("prod-ak", SECRET, "t")


# ---- JD Cloud and explicit variables ------------------------------------------------------------------


def test_jdcloud_environment_then_its_config_file(home: Path, monkeypatch):
    write(
        home / ".jdc" / "config",
        f"[default]\naccess_key = file-ak\nsecret_key = {SECRET}\n[ops]\naccess_key = ops-ak\n",
    )
    assert resolve_credentials("jdcloud", "acct").source == f"{home}/.jdc/config [default]"
    assert failure("jdcloud", profile="ops").endswith(f"{home}/.jdc/config [ops]: [ops] has no secret_key")
    monkeypatch.setenv("JDCLOUD_ACCESS_KEY", "env-ak")
    monkeypatch.setenv("JDCLOUD_SECRET_KEY", SECRET)
    assert resolve_credentials("jdcloud", "acct").access_key_id == "env-ak"


@pytest.mark.parametrize("vendor", ["aliyun", "huawei", "jdcloud"])
def test_named_variables_are_all_that_is_read(vendor: str, monkeypatch):
    default_id = {
        "aliyun": "ALIBABA_CLOUD_ACCESS_KEY_ID",
        "huawei": "HUAWEICLOUD_SDK_AK",
        "jdcloud": "JDCLOUD_ACCESS_KEY",
    }
    monkeypatch.setenv(default_id[vendor], "ignored")
    monkeypatch.setenv("TEAM_KEY_ID", "team-id")
    message = failure(vendor, id_env="TEAM_KEY_ID", secret_env="TEAM_KEY_SECRET")
    assert message == (
        f"account acct: no {vendor} credentials: the variables named in access_key_id_env/secret_env: "
        "TEAM_KEY_SECRET is not set"
    )
    monkeypatch.setenv("TEAM_KEY_SECRET", SECRET)
    found = resolve_credentials(vendor, "acct", id_env="TEAM_KEY_ID", secret_env="TEAM_KEY_SECRET")
    assert (found.access_key_id, found.source) == ("team-id", "environment TEAM_KEY_ID/TEAM_KEY_SECRET")


# ---- secrets stay secret -------------------------------------------------------------------------------


def test_a_name_shaped_like_a_key_is_never_echoed(capsys):
    pasted = "LTAI" + "x7" * 10
    message = failure("aliyun", id_env=pasted, secret_env=SECRET)
    assert pasted not in message and "(a name shaped like a key, not shown)" in message
    found = Credentials("an-id-0123", SECRET, "token-text")
    assert SECRET not in repr(found) and "token-text" not in repr(found) and "***0123" in repr(found)
    assert SECRET not in capsys.readouterr().out


def test_key_shapes_and_redaction():
    assert key_shape("LTAI" + "a1" * 10) and key_shape("STS." + "Ab1" * 8)
    assert key_shape("K1" * 10)  # 20 upper-case letters and digits: a Huawei AK
    assert key_shape("0f" * 16)  # 32 hex digits: a JD Cloud key
    assert key_shape(SECRET)
    for name in ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "prod", "default", "HUAWEICLOUD_SDK_SK", "TEAM_KEY_SECRET"):
        assert key_shape(name) is None
    assert (
        redact_keys(f"bad key {SECRET} in /home/u/.aliyun/config.json") == "bad key *** in /home/u/.aliyun/config.json"
    )


def test_a_missing_sdk_says_which_extra_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "alibabacloud_credentials", None)
    assert "pip install 'imagebak[aliyun]'" in failure("aliyun")
