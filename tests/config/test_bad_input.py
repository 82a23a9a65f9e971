"""Issue #12: no policy file, however mangled, is an internal error (exit 70) or a traceback.

Each case goes through the CLI as a user meets it: ``policy validate``, ``plan`` and ``policy list``
exit 3 with one ``FILE:LINE:COL: path: message`` line per problem.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from samples import ONE_POLICY

from imagebak.cli import cli

VALID = ONE_POLICY
LINE = re.compile(r"^p\.yaml:\d+:\d+: \S.*: .+$")
LAUGHS = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(9)
)


def run(tmp_path: Path, text: str | bytes, *args: str) -> tuple[int, list[str]]:
    path = tmp_path / "p.yaml"
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    result = CliRunner().invoke(cli, ["-c", str(path), *args], env={"IMAGEBAK_NOW": "2026-11-30T00:00:00Z"})
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    lines = [line.replace(str(tmp_path) + "/", "") for line in result.output.splitlines()]
    return result.exit_code, [line for line in lines if not line.endswith("problem(s)")]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (VALID.replace("web", "w\x01eb"), "p.yaml:5:12: (root): YAML syntax: the character U+0001 is not allowed"),
        (VALID.replace("i-1", "i-\x7f1"), "the character U+007F is not allowed"),
        ("a: " + "[" * 5000 + "]" * 5000, "(root): YAML: nested more than 100 levels deep"),
        ("".join("  " * i + "-\n" for i in range(2000)), "nested more than 100 levels deep"),
        ("a: &x [*x]\n", "p.yaml:1:8: (root): YAML: alias *x refers to a value that contains it"),
        ("a: &x {b: {c: *x}}\n", "alias *x refers to a value that contains it"),
        (LAUGHS, "(root): YAML: aliases expand to more than 100000 values"),
        (
            VALID.replace("{provider: aliyun}", "{provider: aliyun, policy_quota: " + "9" * 5000 + "}"),
            "p.yaml:3:40: accounts.sh.policy_quota: number too large (5000 digits)",
        ),
        (
            VALID.replace("{provider: aliyun}", "{provider: aliyun, policy_quota: 0x" + "f" * 5000 + "}"),
            "accounts.sh.policy_quota: number too large",
        ),
        (
            VALID.replace("every: 1d", "every: 99999999999999999999999w"),
            "p.yaml:9:12: policies[0].every: 99999999999999999999999w is longer than the one-year (365d) maximum",
        ),
        (VALID.replace("every: 1d", "every: " + "9" * 5000 + "h"), "policies[0].every: "),
        (
            VALID.replace("2026-12-01T02:00:00+08:00", "9999-12-31T23:00:00-05:00"),
            "p.yaml:8:12: policies[0].start: 9999-12-31T23:00:00-05:00 is out of range; start must be from 1970 up "
            "to 8999",
        ),
        (VALID.replace("2026-12-01T02:00:00+08:00", "0001-01-01T00:00:00+08:00"), "policies[0].start: 0001-01-01"),
        (
            VALID.replace("2026-12-01T02:00:00+08:00", "2026-13-45"),
            "policies[0].start: '2026-13-45' is not a valid timestamp (month must be in 1..12)",
        ),
        (VALID + "    enabled: !!bool maybe\n", "p.yaml:12:14: policies[0].enabled: 'maybe' is not a valid bool"),
        (
            VALID.replace("{provider: aliyun}", "{provider: aliyun, policy_quota: !!int abc}"),
            "accounts.sh.policy_quota: 'abc' is not a valid int",
        ),
        (VALID + "    retry_failed: !!float x\n", "policies[0].retry_failed: 'x' is not a valid float"),
        (VALID + "    description: !custom thing\n", "could not determine a constructor for the tag '!custom'"),
        (VALID + "    <<: {enabled: false}\n", "policies[0]: YAML merge keys (<<) are not supported"),
        (VALID + "---\nversion: 1\n", "p.yaml:12:1: (root): YAML: expected a single document"),
        ("a: *nowhere\n", "alias *nowhere refers to no anchor"),
        ("a: &x 1\nb: &x 2\n", "anchor &x is defined twice"),
        (b"version: 1\naccounts: {sh: {provider: \xff}}\n", "p.yaml:1:1: (root): not UTF-8 text"),
    ],
)
@pytest.mark.parametrize("command", [["policy", "validate"], ["plan"], ["policy", "list"]])
def test_mangled_files_are_diagnostics_with_exit_3(tmp_path: Path, text: str | bytes, expected: str, command):
    started = time.monotonic()
    code, lines = run(tmp_path, text, *command)
    assert code == 3, lines
    assert any(expected in line for line in lines), lines
    assert all(LINE.match(line) for line in lines), lines
    assert time.monotonic() - started < 5  # the alias bomb is refused, not expanded


def test_a_bad_value_is_reported_once_not_again_by_the_schema(tmp_path: Path):
    code, lines = run(tmp_path, VALID.replace("every: 1d", "every: !!int abc"), "policy", "validate")
    assert (code, lines) == (
        3,
        ["p.yaml:9:12: policies[0].every: 'abc' is not a valid int (invalid literal for int() with base 10: 'abc')"],
    )


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ('"cn\\nshanghai"', "cn\\nshanghai"),
        ('"cn\\u2028shanghai"', "cn\\u2028shanghai"),
        ('"cn\\Nshanghai"', "cn\\x85shanghai"),
        ('"cn\\rshanghai"', "cn\\rshanghai"),
    ],
)
def test_line_breaks_in_values_and_keys_are_escaped(tmp_path: Path, value: str, shown: str):
    text = VALID.replace("region: cn-shanghai", f"region: {value}") + f"    {value}: 1\n"
    code, lines = run(tmp_path, text, "policy", "validate")
    assert code == 3
    assert all(LINE.match(line) for line in lines), lines
    assert any(f"policies[0].region: {shown} is not a known aliyun region" in line for line in lines), lines
    assert any(f"policies[0].{shown}: unknown key 'cn" in line for line in lines), lines


def test_json_output_keeps_the_real_value(tmp_path: Path):
    path = tmp_path / "p.yaml"
    path.write_text(VALID.replace("region: cn-shanghai", 'region: "cn\\u2028x"'), encoding="utf-8")
    result = CliRunner().invoke(cli, ["policy", "validate", str(path), "--format", "json"])
    assert result.exit_code == 3 and "cn\u2028x is not a known aliyun region" in result.output


@pytest.mark.parametrize("moment", ["9999-12-31T23:59:00+00:00", "1900-01-01T00:00:00Z"])
def test_a_time_out_of_range_on_the_command_line_is_a_usage_error(tmp_path: Path, moment: str):
    path = tmp_path / "p.yaml"
    path.write_text(VALID, encoding="utf-8")
    result = CliRunner().invoke(cli, ["-c", str(path), "plan", "--at", moment])
    assert result.exit_code == 2 and "is out of range (1970 to 8999)" in result.output
    result = CliRunner().invoke(cli, ["-c", str(path), "plan"], env={"IMAGEBAK_NOW": moment})
    assert result.exit_code == 2 and "IMAGEBAK_NOW" in result.output


def test_the_latest_start_still_plans(tmp_path: Path):
    code, lines = run(tmp_path, VALID.replace("2026-12-01T02:00:00+08:00", "8999-12-31T00:00:00+00:00"), "plan")
    assert code == 0, lines


@pytest.mark.parametrize(
    "text",
    [
        (Path(__file__).resolve().parents[2] / "policies.yaml").read_text(encoding="utf-8"),
        VALID + "    enabled: !!bool maybe\n    <<: {a: 1}\n    every: 2d\n",
        "a: &x [1, {b: *x}]\n",
        LAUGHS,
        "a: " + "[" * 500,
        VALID.replace("web", "w\x01eb"),
    ],
)
def test_pure_python_yaml_gives_the_same_answers(text: str, monkeypatch):
    from imagebak.config import validate_text, yamlsource

    with_libyaml = validate_text(text, "p.yaml")
    monkeypatch.setattr(yamlsource, "_Loader", yamlsource.yaml.SafeLoader)
    monkeypatch.setattr(yamlsource, "_ENCODE", False)
    assert validate_text(text, "p.yaml") == with_libyaml
