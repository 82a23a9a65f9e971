"""A key pasted where the policy file wants a name (secret_env, access_key_id_env, profile) is refused,
and the key is never printed: not by validation, not by `run`, in text or JSON.

Key-shaped values are built at run time: the repository holds no key-shaped literal.
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from imagebak.cli import cli
from imagebak.config import validate_text

ALIYUN_ID = "LTAI" + "k9" * 10
HUAWEI_AK = "HW" + "7Q" * 9
JD_KEY = "a0" * 16
SECRET = "Sec" + "r3tValue" * 4


def policy_file(**account: str) -> str:
    fields = ", ".join(f"{key}: {value}" for key, value in {"provider": "aliyun", **account}.items())
    return (
        "version: 1\n"
        f"accounts:\n  sh: {{{fields}}}\n"
        "policies:\n"
        "  - {name: web, account: sh, region: cn-shanghai, start: '2026-12-01T02:00:00+08:00', every: 1d,"
        " instances: [i-1]}\n"
    )


def diagnostics(text: str) -> list[str]:
    _, found = validate_text(text, "p.yaml")
    return [str(d) for d in found]


@pytest.mark.parametrize(
    ("key", "value", "kind"),
    [
        ("secret_env", SECRET, "a secret key or security token"),
        ("access_key_id_env", ALIYUN_ID, "an Alibaba Cloud AccessKey ID"),
        ("access_key_id_env", HUAWEI_AK, "a Huawei Cloud access key (AK)"),
        ("secret_env", JD_KEY, "a JD Cloud AccessKey or SecretKey"),
        ("profile", SECRET, "a secret key or security token"),
    ],
)
def test_a_key_where_a_name_belongs_is_refused_without_echo(key: str, value: str, kind: str):
    (found,) = diagnostics(policy_file(**{key: value}))
    assert found.startswith("p.yaml:3:") and f"accounts.sh.{key}: this looks like {kind}" in found
    assert "(the value is not shown)" in found and value not in found


def test_names_that_are_not_variable_names_are_refused_and_good_ones_pass():
    (found,) = diagnostics(policy_file(secret_env="'my secret'"))
    assert "accounts.sh.secret_env: not an environment variable name" in found and "my secret" not in found
    assert diagnostics(policy_file(access_key_id_env="SH_KEY_ID", secret_env="SH_KEY_SECRET", profile="prod")) == []


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_validate_and_run_never_print_a_pasted_secret(tmp_path, fmt: str):
    config = tmp_path / "policies.yaml"
    config.write_text(policy_file(access_key_id_env="SH_KEY_ID", secret_env=SECRET), encoding="utf-8")
    for command in (["policy", "validate", "--format", fmt], ["run", "--all", "--format", fmt]):
        result = CliRunner().invoke(cli, ["-c", str(config), *command])
        assert result.exit_code == 3, result.output
        assert "secret_env" in result.output and SECRET not in result.output
