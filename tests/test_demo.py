"""The README's main command: the shipped policies.yaml, against the embedded emulator, twice."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from click.testing import CliRunner

from imagebak.cli import cli

ROOT = Path(__file__).resolve().parents[1]


def test_the_demo_runs_a_full_cycle_for_all_three_vendors(tmp_path: Path):
    config = tmp_path / "policies.yaml"
    shutil.copy(ROOT / "policies.yaml", config)
    runner = CliRunner()
    for attempt in (1, 2):  # the second run finds the emulated cloud's saved state and adds to it
        result = runner.invoke(cli, ["-c", str(config), "run", "--all", "--force", "--format", "json"])
        report = json.loads(result.output)
        assert result.exit_code == 0, report
        works = [w for e in report["executions"] for w in e["instances"].values()]
        assert len(works) == 6 and {w["status"] for w in works} == {"done"}, attempt
        vendors = {e["policy"]["account"] for e in report["executions"]}
        assert vendors == {"aliyun-demo", "huawei-demo", "jdcloud-demo"}
        assert all(c["state"] == "available" for w in works for c in w["copies"].values())
    cloud = json.loads((tmp_path / ".imagebak" / "emulated-cloud.json").read_text())
    assert cloud  # the emulated cloud kept its images between runs
    assert (tmp_path / ".imagebak" / "execution.log").stat().st_size > 0
