"""deploy/: the systemd unit and timer parse (systemd-analyze verify where it exists, a structural check
everywhere), the crontab entry names imagebak by an absolute path, and the logrotate snippet is whole."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
PROGRAM = "/opt/imagebak/venv/bin/imagebak"


def unit(name: str) -> configparser.ConfigParser:
    """A unit file as sections of keys (a repeated key, like Environment=, keeps every value)."""
    parser = configparser.ConfigParser(strict=False, interpolation=None, dict_type=_Repeats)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(DEPLOY / name, encoding="utf-8")
    return parser


class _Repeats(dict):  # type: ignore[type-arg]
    def __setitem__(self, key: str, value: object) -> None:
        if isinstance(value, list) and key in self:
            self[key].extend(value)
        else:
            super().__setitem__(key, value)


def test_the_service_and_timer_have_what_production_needs():
    service, timer = unit("imagebak.service"), unit("imagebak.timer")
    run = service["Service"]
    assert run["Type"] == "oneshot"
    assert run["ExecStart"].startswith(f"{PROGRAM} run ")
    assert run["StateDirectory"] == "imagebak" and run["ConfigurationDirectory"] == "imagebak"
    assert "IMAGEBAK_CONFIG=/etc/imagebak/policies.yaml" in run["Environment"]
    assert "IMAGEBAK_STATE=/var/lib/imagebak/state.json" in run["Environment"]
    assert timer["Timer"]["Persistent"] == "true" and timer["Timer"]["OnCalendar"]
    assert timer["Install"]["WantedBy"] == "timers.target"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_verifies_the_unit_and_timer_without_a_warning(tmp_path: Path):
    installed = shutil.which("imagebak") or str(Path(sys.executable).parent / "imagebak")
    program = installed if Path(installed).exists() else "/bin/true"  # verify wants an executable there
    (tmp_path / "imagebak.service").write_text(
        (DEPLOY / "imagebak.service").read_text(encoding="utf-8").replace(PROGRAM, program), encoding="utf-8"
    )
    shutil.copy(DEPLOY / "imagebak.timer", tmp_path)
    verify = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", "imagebak.service", "imagebak.timer"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (verify.returncode, verify.stderr, verify.stdout) == (0, "", "")
    calendar = subprocess.run(
        ["systemd-analyze", "calendar", unit("imagebak.timer")["Timer"]["OnCalendar"]],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert calendar.returncode == 0 and "*-*-* *:00/10:00" in calendar.stdout, calendar.stderr


def test_the_crontab_entry_names_imagebak_by_an_absolute_path():
    lines = (DEPLOY / "crontab.example").read_text(encoding="utf-8").splitlines()
    entries = [line.split() for line in lines if line.strip() and not line.startswith("#") and "=" not in line[:12]]
    assert len(entries) == 1
    fields, command = entries[0][:5], entries[0][5:]
    assert fields == ["*/10", "*", "*", "*", "*"]
    assert command[0] == PROGRAM and command[0].startswith("/")  # cron's PATH is /usr/bin:/bin: rc 127 otherwise
    assert command[1:3] == ["-c", "/etc/imagebak/policies.yaml"] and "run" in command


def test_the_logrotate_snippet_covers_the_logs_and_is_balanced():
    text = (DEPLOY / "logrotate.imagebak").read_text(encoding="utf-8")
    body = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert body[0] == "/var/log/imagebak/*.log {" and body[-1] == "}"
    assert {"missingok", "notifempty", "compress", "delaycompress"} <= set(body)
    assert "copytruncate" not in body  # every run reopens its log


def test_operating_md_lists_every_exit_code():
    from imagebak.cli import INTERNAL_ERROR
    from imagebak.errors import ExitCode

    text = (DEPLOY.parent / "docs" / "operating.md").read_text(encoding="utf-8")
    listed = {int(code) for code in re.findall(r"^\| (\d+) \|", text, flags=re.MULTILINE)}
    assert listed == {int(code) for code in ExitCode} | {INTERNAL_ERROR}
