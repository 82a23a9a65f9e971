"""`imagebak run` tells its hooks: robots on failure and recovery, healthchecks pings, a metrics file."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from prometheus_client.parser import text_string_to_metric_families
from receiver import Receiver
from world import World


def configure(world: World, receiver: Receiver, monkeypatch, metrics: Path) -> None:
    document = yaml.safe_load(world.config.read_text(encoding="utf-8"))
    document["notify"] = {
        "webhooks": [
            {"type": "json", "url_env": "TEST_HOOK_URL"},
            {"type": "dingtalk", "url_env": "TEST_DING_URL", "secret_env": "TEST_DING_SECRET"},
        ],
        "healthchecks_url_env": "TEST_PING_URL",
    }
    document["metrics"] = {"textfile": str(metrics)}
    world.config.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("TEST_HOOK_URL", f"{receiver.url}/hook/json-token-123")
    monkeypatch.setenv("TEST_DING_URL", f"{receiver.url}/robot/send?access_token=ding-token-456")
    monkeypatch.setenv("TEST_DING_SECRET", "SEC-ding-secret")
    monkeypatch.setenv("TEST_PING_URL", f"{receiver.url}/ping/uuid-789")


def test_a_failure_then_a_recovery_are_told_and_measured(world_for, receiver: Receiver, monkeypatch, tmp_path):
    world = world_for("jdcloud")
    metrics = tmp_path / "textfile" / "imagebak.prom"
    world.write_policies(world.policy(copy_to=[], instances=["i-doesnotexist"]))
    configure(world, receiver, monkeypatch, metrics)
    code, _ = world.run_json("--policy", "nightly")
    assert code == 6
    paths = [r["path"] for r in receiver.requests]
    assert paths[0] == "/ping/uuid-789/start" and paths[-1] == "/ping/uuid-789/fail"
    hook = json.loads(next(r["body"] for r in receiver.requests if r["path"] == "/hook/json-token-123"))
    assert (hook["result"], hook["exit_code"]) == ("total_failure", 6) and "does not exist" in hook["details"][0]
    assert any(r["path"].startswith("/robot/send?access_token=ding-token-456&timestamp=") for r in receiver.requests)
    families = {f.name: f for f in text_string_to_metric_families(metrics.read_text(encoding="utf-8"))}
    assert families["imagebak_last_run_exit_code"].samples[0].value == 6

    receiver.requests.clear()
    world.write_policies(world.policy(name="fixed", copy_to=[]))  # the right instance now
    configure(world, receiver, monkeypatch, metrics)
    code, _ = world.run_json("--policy", "fixed")
    assert code == 0
    hook = json.loads(next(r["body"] for r in receiver.requests if r["path"] == "/hook/json-token-123"))
    assert hook["result"] == "ok"  # a recovery after a failure is told; a plain success would not be
    assert receiver.requests[-1]["path"] == "/ping/uuid-789"
    families = {f.name: f for f in text_string_to_metric_families(metrics.read_text(encoding="utf-8"))}
    success = {s.labels["policy"]: s.value for s in families["imagebak_last_success_timestamp_seconds"].samples}
    assert set(success) == {"fixed"} and families["imagebak_last_run_exit_code"].samples[0].value == 0

    receiver.requests.clear()
    assert world.run_json("--policy", "fixed", "--force")[0] == 0
    assert [r["path"] for r in receiver.requests] == ["/ping/uuid-789/start", "/ping/uuid-789"]  # no chat message


def test_an_unset_ping_variable_is_said_once_per_run(world_for, receiver: Receiver, monkeypatch, tmp_path):
    world = world_for("jdcloud")
    world.write_policies(world.policy(copy_to=[]))
    configure(world, receiver, monkeypatch, tmp_path / "imagebak.prom")
    monkeypatch.delenv("TEST_PING_URL")
    for run in range(2):  # and again in the next run of the same process
        result = world.run("--policy", "nightly", "--force")
        assert result.exit_code == 0, result.output
        assert result.output.count("TEST_PING_URL is not set") == 1, (run, result.output)
