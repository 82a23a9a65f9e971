"""Human output: one time format with its zone (--tz), and the completion scripts."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from imagebak.cli import cli
from imagebak.output import set_zone, show_time

MOMENT = datetime(2026, 11, 30, 18, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("zone", "shown"),
    [
        ("Asia/Shanghai", "2026-12-01 02:00 +08:00"),
        ("UTC", "2026-11-30 18:00 +00:00"),
        ("America/St_Johns", "2026-11-30 14:30 -03:30"),
    ],
)
def test_one_time_format_with_the_zone(zone: str, shown: str) -> None:
    set_zone(zone)
    try:
        assert show_time(MOMENT) == shown and show_time(MOMENT.isoformat()) == shown
        assert show_time(None) == "-"
    finally:
        set_zone(None)


def test_plan_shows_times_in_the_tz_zone_and_refuses_an_unknown_one(tmp_path: Path) -> None:
    config = tmp_path / "policies.yaml"
    config.write_text(
        "version: 1\naccounts: {a: {provider: aliyun}}\npolicies:\n  - {name: web, account: a, region: cn-shanghai,"
        " start: 2026-12-01T02:00:00+08:00, every: 1d, instances: [i-1]}\n",
        encoding="utf-8",
    )
    runner = CliRunner()
    env = {"IMAGEBAK_NOW": "2026-11-20T00:00:00Z"}
    shanghai = runner.invoke(cli, ["--tz", "Asia/Shanghai", "-c", str(config), "plan"], env=env)
    assert "2026-12-01 02:00 +08:00" in shanghai.output
    utc = runner.invoke(cli, ["--tz", "UTC", "-c", str(config), "plan"], env=env)
    assert "2026-11-30 18:00 +00:00" in utc.output
    bad = runner.invoke(cli, ["--tz", "Nowhere/Land", "-c", str(config), "plan"])
    assert bad.exit_code == 2 and "is not a time zone" in bad.output


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts(shell: str) -> None:
    result = CliRunner().invoke(cli, ["completion", shell])
    assert result.exit_code == 0 and "_IMAGEBAK_COMPLETE" in result.output
