"""The CLI as a user meets it: no SDK import for offline commands, plan/list with state, clean errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner
from samples import ONE_POLICY

from imagebak.cli import cli

POLICIES = (
    ONE_POLICY
    + """\
  - name: paused
    account: sh
    region: cn-shanghai
    enabled: false
    start: 2026-12-01T02:00:00+08:00
    every: 12h
"""
)


def write(tmp_path: Path) -> Path:
    path = tmp_path / "policies.yaml"
    path.write_text(POLICIES, encoding="utf-8")
    return path


# Runs the CLI, then prints the top-level packages it imported (for imagebak: imagebak.<subpackage>).
PROBE = (
    "import json, sys; from imagebak.cli import main\n"
    "sys.argv = ['imagebak', '-c', sys.argv[1], *sys.argv[2:]]\n"
    "try:\n    main()\nexcept SystemExit:\n    pass\n"
    "names = {'.'.join(m.split('.')[:2 if m.startswith('imagebak.') else 1]) for m in sys.modules}\n"
    "print('LOADED', json.dumps(sorted(names)), file=sys.stderr)\n"
)


def loaded_modules(config: Path, *args: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(config), *args], capture_output=True, text=True, timeout=60, check=False
    )
    line = next(line for line in done.stderr.splitlines() if line.startswith("LOADED "))
    return set(json.loads(line.removeprefix("LOADED ")))


def test_offline_commands_import_no_vendor_sdk(tmp_path: Path):
    config = write(tmp_path)
    for args in (["--help"], ["policy", "validate"], ["plan"], ["policy", "list"], ["run", "--all", "--dry-run"]):
        loaded = loaded_modules(config, *args)
        assert not loaded & {"aliyunsdkcore", "aliyunsdkecs", "huaweicloudsdkcore", "jdcloud_sdk"}, (args, loaded)


def test_only_what_a_command_needs_is_imported(tmp_path: Path):
    config = write(tmp_path)
    assert not loaded_modules(config, "--help") & {"imagebak.commands", "imagebak.config", "pydantic", "yaml"}
    for args in (["policy", "validate"], ["plan"], ["policy", "list"]):
        loaded = loaded_modules(config, *args)
        assert not loaded & {"imagebak.emulator", "imagebak.engine", "imagebak.providers", "tenacity"}, args


def test_version_comes_from_the_package(tmp_path: Path):
    import imagebak

    result = CliRunner().invoke(cli, ["--version"])
    assert result.output == f"imagebak, version {imagebak.__version__}\n"


def test_plan_reports_due_and_next_run(tmp_path: Path, monkeypatch):
    config = write(tmp_path)
    runner = CliRunner()
    result = runner.invoke(cli, ["-c", str(config), "plan", "--at", "2026-11-30T00:00:00+08:00", "--format", "json"])
    plan = json.loads(result.output)
    assert result.exit_code == 0
    web, off = plan["policies"]
    assert web["due"] is False and web["next_run"] == "2026-11-30T18:00:00+00:00"
    assert off["reason"] == "disabled" and off["next_run"] is None
    monkeypatch.setenv("IMAGEBAK_NOW", "2026-12-01T02:00:00+08:00")
    listed = runner.invoke(cli, ["-c", str(config), "policy", "list"])
    assert listed.exit_code == 0
    assert "web" in listed.output and "sh/cn-shanghai" in listed.output and "cn-qingdao" in listed.output
    assert not (tmp_path / ".imagebak").exists()  # plan and list never write


def test_bad_arguments_and_bad_state_are_one_line_errors(tmp_path: Path):
    config = write(tmp_path)
    runner = CliRunner()
    result = runner.invoke(cli, ["-c", str(config), "plan", "--at", "tomorrow"])
    assert result.exit_code == 2 and "not an ISO 8601 time" in result.output
    result = runner.invoke(cli, ["-c", str(config), "run", "--policy", "nope"])
    assert result.exit_code == 2 and "no policy named nope" in result.output
    (tmp_path / ".imagebak").mkdir()
    (tmp_path / ".imagebak" / "state.json").write_text("{not json")
    result = runner.invoke(cli, ["-c", str(config), "plan"])
    assert result.exit_code == 4 and "state file is not valid JSON" in result.output
    assert "Traceback" not in result.output


def test_corrupt_state_is_exit_4_and_never_rewritten(tmp_path: Path):
    config = write(tmp_path)
    (tmp_path / ".imagebak").mkdir()
    state = tmp_path / ".imagebak" / "state.json"
    state.write_text('{"format": "imagebak-state", "version": 1, "policies": {"sh/cn-shanghai/web": []}}')
    before = (state.read_bytes(), state.stat().st_mtime_ns)
    for args in (["plan"], ["policy", "list"], ["run", "--all", "--dry-run"], ["run", "--all", "--no-wait"]):
        result = CliRunner().invoke(cli, ["-c", str(config), *args])
        assert result.exit_code == 4, (args, result.output)
        assert (
            result.output.count("\n") == 1
            and "policies.sh/cn-shanghai/web: expected a mapping, got a list" in result.output
        )
    assert (state.read_bytes(), state.stat().st_mtime_ns) == before


def test_an_unusable_state_location_is_exit_4(tmp_path: Path):
    config = write(tmp_path)
    folder = tmp_path / ".imagebak"
    folder.mkdir()
    (folder / "state.json.lock").mkdir()  # the lock cannot be opened
    result = CliRunner().invoke(cli, ["-c", str(config), "run", "--all", "--no-wait"])
    assert result.exit_code == 4 and "state.json.lock: cannot open the state file's lock" in result.output
    (folder / "state.json.lock").rmdir()
    (folder / "state.json").mkdir()  # the state file cannot be read
    result = CliRunner().invoke(cli, ["-c", str(config), "plan"])
    assert result.exit_code == 4 and "cannot read the state file" in result.output
    shutil.rmtree(folder)  # with the execution log the run already opened there
    folder.write_text("")  # the state folder cannot be created
    result = CliRunner().invoke(cli, ["-c", str(config), "run", "--all", "--no-wait"])
    assert result.exit_code == 4 and "cannot write the execution log" in result.output  # its folder, checked first
    assert result.output.count("\n") == 1


def test_missing_credentials_name_the_variables(tmp_path: Path, monkeypatch):
    for var in (
        "ALIBABA_CLOUD_ACCESS_KEY_ID",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
        "ALIYUN_ACCESS_KEY_ID",
        "ALIYUN_ACCESS_KEY_SECRET",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    config = write(tmp_path)
    result = CliRunner().invoke(cli, ["-c", str(config), "run", "--policy", "web"])
    assert result.exit_code == 12  # this account only: not "invalid policies.yaml"
    assert "set ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET" in result.output


def test_a_line_break_in_a_value_does_not_break_a_table_row(tmp_path: Path):
    config = tmp_path / "policies.yaml"
    odd = '"cn\\nodd"'
    config.write_text(
        ONE_POLICY.replace("{provider: aliyun}", f"{{provider: aliyun, extra_regions: [{odd}]}}").replace(
            "region: cn-shanghai", f"region: {odd}"
        ),
        encoding="utf-8",
    )
    result = CliRunner().invoke(cli, ["-c", str(config), "policy", "list"], env={"IMAGEBAK_NOW": "2026-11-30T00:00Z"})
    assert result.exit_code == 0, result.output
    assert len(result.output.splitlines()) == 2 and "sh/cn\\nodd" in result.output
