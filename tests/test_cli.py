"""The CLI as a user meets it: no SDK import for offline commands, plan/list with state, clean errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from imagebak.cli import cli

POLICIES = """\
version: 1
accounts:
  sh: {provider: aliyun}
policies:
  - name: web
    account: sh
    region: cn-shanghai
    start: 2026-12-01T02:00:00+08:00
    every: 1d
    instances: [i-1, i-2]
    copy_to: [cn-qingdao]
  - name: paused
    account: sh
    region: cn-shanghai
    enabled: false
    start: 2026-12-01T02:00:00+08:00
    every: 12h
"""


def write(tmp_path: Path) -> Path:
    path = tmp_path / "policies.yaml"
    path.write_text(POLICIES, encoding="utf-8")
    return path


def test_offline_commands_import_no_vendor_sdk(tmp_path: Path):
    config = write(tmp_path)
    probe = (
        "import sys; from imagebak.cli import main\n"
        "sys.argv = ['imagebak', '-c', sys.argv[1], sys.argv[2], *sys.argv[3:]]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "loaded = [m for m in sys.modules if m.startswith(('aliyunsdk', 'huaweicloudsdk', 'jdcloud_sdk'))]\n"
        "print('SDKS', loaded, file=sys.stderr)\n"
    )
    for args in (["--help"], ["policy", "validate"], ["plan"], ["policy", "list"], ["run", "--all", "--dry-run"]):
        done = subprocess.run([sys.executable, "-c", probe, str(config), *args], capture_output=True, text=True,
                              timeout=60, check=False)
        assert "SDKS []" in done.stderr, (args, done.stderr)


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


def test_missing_credentials_name_the_variables(tmp_path: Path, monkeypatch):
    for var in ("ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ALIYUN_ACCESS_KEY_ID",
                "ALIYUN_ACCESS_KEY_SECRET"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    config = write(tmp_path)
    result = CliRunner().invoke(cli, ["-c", str(config), "run", "--policy", "web"])
    assert result.exit_code == 12  # this account only: not "invalid policies.yaml"
    assert "set ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET" in result.output
