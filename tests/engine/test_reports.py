"""`imagebak check`, `status` and `history` after real runs against the emulator."""

from __future__ import annotations

import json

from click.testing import CliRunner, Result
from world import World

from imagebak.cli import cli
from imagebak.ownership import TAG_INSTANCE


def command(world: World, *args: str) -> Result:
    return CliRunner().invoke(cli, ["-c", str(world.config), *args])


def test_check_is_ok_when_fresh_warns_when_stale_and_is_critical_when_missing(world_for, monkeypatch):
    world = world_for("aliyun")
    full, other = world.vendor.copy_to
    world.emulator.model.set_quota(world.vendor.account, full, "image", 0)  # no copy can be made there
    world.write_policies(world.policy())
    monkeypatch.setenv("IMAGEBAK_NOW", "2026-03-01T02:00:00+00:00")
    assert world.run_json("--policy", "nightly")[0] == 7
    result = command(world, "check")
    assert result.exit_code == 2, result.output  # CRITICAL: the copy region has no recovery point
    assert result.output.startswith("IMAGEBAK CRITICAL - 3 recovery point(s) checked: 2 fresh, 0 stale, 1 missing")
    assert "| fresh=2;;;0 stale=0;;;0 critical=1;;;0" in result.output
    assert f"nightly {world.vendor.web} in {full}: no recovery point" in result.output
    result = command(world, "check", "--format", "json")
    states = {p["region"]: p["state"] for p in json.loads(result.output)["points"]}
    assert states == {world.vendor.region: "OK", full: "CRITICAL", other: "OK"}

    world.emulator.model.set_quota(world.vendor.account, full, "image", 100)
    monkeypatch.setenv("IMAGEBAK_NOW", "2026-03-02T02:00:00+00:00")
    assert world.run_json("--policy", "nightly")[0] == 0
    assert command(world, "check").exit_code == 0
    monkeypatch.setenv("IMAGEBAK_NOW", "2026-03-03T09:00:00+00:00")  # 31 h later: past 1d + 6h
    result = command(world, "check")
    assert result.exit_code == 1 and result.output.startswith("IMAGEBAK WARNING")
    assert command(world, "check", "--max-age", "12h").exit_code == 2  # older than twice 12 h


def test_check_is_unknown_when_the_config_is_unreadable(tmp_path):
    config = tmp_path / "policies.yaml"
    config.write_text("version: [", encoding="utf-8")
    result = CliRunner().invoke(cli, ["-c", str(config), "check"])
    assert result.exit_code == 3 and result.output.startswith("IMAGEBAK UNKNOWN - ")


def test_status_and_history_show_the_runs(world: World, monkeypatch):
    world.write_policies(
        world.policy(copy_to=[]), world.policy(name="broken", instances=["i-nosuchinstance"], copy_to=[])
    )
    monkeypatch.setenv("IMAGEBAK_NOW", "2026-03-01T02:00:00+00:00")
    assert world.run_json("--all")[0] == 1
    status = json.loads(command(world, "status", "--format", "json").output)
    by_name = {p["policy"]: p for p in status["policies"]}
    assert by_name["nightly"]["last_outcome"] == "ok" and by_name["broken"]["last_outcome"] == "failed"
    assert by_name["nightly"]["stale"] == [] and by_name["broken"]["stale"] == [
        f"i-nosuchinstance {world.vendor.region}"
    ]
    history = json.loads(command(world, "history", "--format", "json").output)["executions"]
    assert {(h["policy"], h["done"], h["failed"]) for h in history} == {("nightly", 1, 0), ("broken", 0, 1)}
    (broken,) = [h for h in history if h["policy"] == "broken"]
    assert "does not exist" in broken["errors"][0]
    text = command(world, "history", "--policy", "nightly").output
    assert "nightly" in text and "broken" not in text


def test_images_lists_recovery_points_and_where_cloud_and_state_disagree(world_for):
    world = world_for("aliyun")
    world.write_policies(world.policy(copy_to=[world.vendor.copy_to[0]]))
    code, report = world.run_json("--policy", "nightly")
    assert code == 0
    work = report["executions"][0]["instances"][world.vendor.web]
    model, account = world.emulator.model, world.vendor.account
    stray = model.create_image(
        account, world.vendor.region, world.vendor.web, name="by-hand", tags={TAG_INSTANCE: world.vendor.web}
    ).image_id
    (copy_id,) = [c["image_id"] for c in work["copies"].values()]
    model.delete_image(account, world.vendor.copy_to[0], copy_id)
    listed = json.loads(command(world, "images", "--format", "json").output)["images"]
    by_id = {i["image_id"]: i for i in listed}
    assert by_id[work["image"]["image_id"]]["agreement"] == "ok" and by_id[work["image"]["image_id"]]["latest"]
    assert by_id[stray]["agreement"].startswith("untracked")
    assert by_id[copy_id]["agreement"].startswith("missing")
    only_copies = json.loads(command(world, "images", "--region", world.vendor.copy_to[0], "--format", "json").output)
    assert [i["image_id"] for i in only_copies["images"]] == [copy_id]
