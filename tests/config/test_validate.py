"""Policy file validation: every rule, at its boundary, reported as FILE:LINE:COL: path: message."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from imagebak.cli import cli
from imagebak.config import validate_file, validate_text

ACCOUNTS = """\
version: 1
accounts:
  sh: {provider: aliyun}
  hw: {provider: huawei, agency: ims-agency, projects: {cn-north-4: p4, cn-east-3: p3, ap-southeast-1: pa}}
policies:
"""


def policy_yaml(**fields: str) -> str:
    base = {
        "name": "web",
        "account": "sh",
        "region": "cn-shanghai",
        "start": "2026-12-01T02:00:00+08:00",
        "every": "1d",
        "instances": "[i-1]",
    }
    base.update(fields)
    lines = [f"  - {k}: {v}" if i == 0 else f"    {k}: {v}" for i, (k, v) in enumerate(base.items())]
    return "\n".join(lines) + "\n"


def errors(text: str) -> list[str]:
    model, diagnostics = validate_text(text, "p.yaml")
    assert (model is None) == bool(diagnostics)
    return [str(d) for d in diagnostics]


def only_error(text: str) -> str:
    found = errors(text)
    assert len(found) == 1, found
    return found[0]


def test_a_valid_file_gives_a_model():
    model, diagnostics = validate_text(ACCOUNTS + policy_yaml(copy_to="[cn-qingdao]"), "p.yaml")
    assert diagnostics == []
    assert model is not None
    assert model.policies[0].copy_to[0].region == "cn-qingdao"
    assert model.policies[0].interval.total_seconds() == 86400


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("每" * 32, True),
        ("每" * 33, False),
        ("a" * 32, True),
        ("a" * 33, False),
        ("每日备份-web_2", True),
        ("has space", False),
        ("dot.name", False),
        ("''", False),
    ],
)
def test_name_length_and_characters(name, ok):
    found = errors(ACCOUNTS + policy_yaml(name=name))
    assert (found == []) is ok, found
    if not ok:
        assert found[0].startswith("p.yaml:6:11: policies[0].name: ")


def test_name_too_long_says_how_long():
    assert only_error(ACCOUNTS + policy_yaml(name="每" * 33)).endswith("is 33 characters long; at most 32 allowed")


def test_description_at_most_256_characters():
    assert errors(ACCOUNTS + policy_yaml(description="x" * 256)) == []
    assert "policies[0].description: is 257 characters long" in only_error(
        ACCOUNTS + policy_yaml(description="x" * 257)
    )


@pytest.mark.parametrize(
    ("every", "message"),
    [
        ("11h", "11h is shorter than the 12-hour minimum interval"),
        ("12h", None),
        ("1d", None),
        ("1w", None),
        ("365d", None),
        ("8760h", None),
        ("52w", None),
        ("366d", "366d is longer than the one-year (365d) maximum interval"),
        ("8761h", "longer than the one-year"),
        ("53w", "longer than the one-year"),
        ("1y", "must be a whole number with unit h, d or w"),
        ("0d", "must be a whole number"),
        ("1.5d", "must be a whole number"),
    ],
)
def test_interval_bounds(every, message):
    found = errors(ACCOUNTS + policy_yaml(every=every))
    if message is None:
        assert found == []
    else:
        assert len(found) == 1 and "p.yaml:10:12: policies[0].every: " in found[0] and message in found[0], found


def test_disks_must_include_vda_and_no_duplicates():
    assert errors(ACCOUNTS + policy_yaml(disks="[vda, vdb]")) == []
    assert only_error(ACCOUNTS + policy_yaml(disks="[vdb, vdc]")).endswith(
        "policies[0].disks: the system disk vda must be included in a disk list"
    )
    assert only_error(ACCOUNTS + policy_yaml(disks="[vda, vdb, vdb]")).endswith("device vdb is listed more than once")
    assert "must be 'all' or a list of device names" in only_error(ACCOUNTS + policy_yaml(disks="some"))
    assert "device names look like vda" in only_error(ACCOUNTS + policy_yaml(disks="[vda, /dev/sdb]"))


def test_an_instance_belongs_to_one_policy_only():
    text = ACCOUNTS + policy_yaml(name="a", instances="[i-1, i-2]") + policy_yaml(name="b", instances="[i-3, i-2]")
    assert only_error(text) == (
        "p.yaml:17:22: policies[1].instances[1]: instance i-2 is already in policy 'a'; "
        "an instance belongs to at most one image policy"
    )


def test_names_unique_per_account_and_region_only():
    same = ACCOUNTS + policy_yaml(instances="[i-1]") + policy_yaml(instances="[i-2]")
    assert "policy name 'web' is already used in sh/cn-shanghai" in only_error(same)
    other_region = ACCOUNTS + policy_yaml(instances="[i-1]") + policy_yaml(instances="[i-2]", region="cn-beijing")
    assert errors(other_region) == []


def test_twenty_policies_per_region_and_the_twenty_first_is_refused():
    twenty = ACCOUNTS + "".join(policy_yaml(name=f"p{i}", instances=f"[i-{i}]") for i in range(20))
    assert errors(twenty) == []
    found = only_error(twenty + policy_yaml(name="p20", instances="[i-20]"))
    assert "policies[20]: more than 20 policies in sh/cn-shanghai" in found
    raised = twenty.replace("sh: {provider: aliyun}", "sh: {provider: aliyun, policy_quota: 21}")
    assert errors(raised + policy_yaml(name="p20", instances="[i-20]")) == []


def test_inline_secrets_are_refused_wherever_they_are():
    text = ACCOUNTS.replace("sh: {provider: aliyun}", "sh: {provider: aliyun, access_key_secret: hunter2}")
    found = only_error(text + policy_yaml())
    assert found.startswith("p.yaml:3:26: accounts.sh.access_key_secret: credentials must not be written")
    assert "hunter2" not in found
    fake_key_id = "LTAI" + "q7" * 8  # built at run time: no key-shaped literal in the repository
    found = only_error(ACCOUNTS + policy_yaml(description=fake_key_id))
    assert "looks like an access key" in found and fake_key_id not in found


def test_unknown_keys_are_errors_with_a_suggestion():
    found = only_error(ACCOUNTS + policy_yaml(copy_too="[cn-qingdao]"))
    assert found == "p.yaml:12:5: policies[0].copy_too: unknown key 'copy_too'; did you mean 'copy_to'?"
    found = only_error(ACCOUNTS.replace("version: 1", "version: 1\nfrobnicate: true") + policy_yaml())
    assert found.startswith("p.yaml:2:1: frobnicate: unknown key 'frobnicate'; expected one of: version")


def test_syntax_error_reports_its_line():
    found = only_error(ACCOUNTS + "  - name: [unclosed\n    account: sh\n")
    assert found.startswith("p.yaml:7:") and "YAML syntax" in found


def test_duplicate_keys_are_errors_and_other_errors_still_reported():
    found = errors(ACCOUNTS + policy_yaml(every="11h") + "    name: again\n")
    assert any(
        f.startswith("p.yaml:12:5: policies[0].name: duplicate key 'name' (first defined on line 6)") for f in found
    )
    assert any("11h is shorter" in f for f in found)


def test_empty_and_non_mapping_files():
    assert only_error("") == "p.yaml:1:1: (root): file is empty; expected version, accounts and policies"
    assert only_error("# just a comment\n").endswith("file is empty; expected version, accounts and policies")
    assert only_error("- a\n- b\n").endswith("expected a mapping at the top, got a list")


def test_wrong_types_and_missing_keys():
    found = errors(ACCOUNTS + policy_yaml(instances="i-1", enabled="maybe"))
    assert any("policies[0].instances: expected a list, got text" in f for f in found)
    assert any("policies[0].enabled: expected true or false, got text" in f for f in found)
    text = ACCOUNTS + "  - name: x\n    account: sh\n"
    found = errors(text)
    for key in ("region", "start", "every"):
        assert f"p.yaml:6:5: policies[0].{key}: required key '{key}' is missing" in found
    assert only_error("version: 2\naccounts: {}\n").startswith("p.yaml:1:10: version: must be 1")


def test_start_needs_a_timezone():
    assert "needs an explicit timezone offset" in only_error(ACCOUNTS + policy_yaml(start="2026-12-01T02:00:00"))
    assert errors(ACCOUNTS + policy_yaml(start='"2026-12-01T02:00:00Z"')) == []


def test_copy_destinations():
    assert "must differ from the source region" in only_error(ACCOUNTS + policy_yaml(copy_to="[cn-shanghai]"))
    assert "cn-nowhere is not a known aliyun region" in only_error(ACCOUNTS + policy_yaml(copy_to="[cn-nowhere]"))
    assert "listed more than once" in only_error(ACCOUNTS + policy_yaml(copy_to="[cn-qingdao, cn-qingdao]"))
    assert "only Huawei whole-machine image copies take a vault" in only_error(
        ACCOUNTS + policy_yaml(copy_to="[{region: cn-qingdao, vault: v-1}]")
    )
    extra = ACCOUNTS.replace("sh: {provider: aliyun}", "sh: {provider: aliyun, extra_regions: [cn-new-1]}")
    assert errors(extra + policy_yaml(copy_to="[cn-new-1]")) == []


def test_huawei_whole_image_copy_rules():
    hw = {"account": "hw", "region": "cn-north-4", "vault": "vault-n4"}
    assert errors(ACCOUNTS + policy_yaml(**hw, copy_to="[{region: cn-east-3, vault: vault-1}]")) == []
    assert "need a destination vault" in only_error(ACCOUNTS + policy_yaml(**hw, copy_to="[cn-east-3]"))
    found = only_error(ACCOUNTS + policy_yaml(**hw, copy_to="[{region: ap-southeast-1, vault: v}]"))
    assert "copy only between cn-east-2, cn-east-3, cn-north-1, cn-north-4, cn-south-1" in found
    # a disk list makes system + data images instead, which copy anywhere without a vault
    assert errors(ACCOUNTS + policy_yaml(**hw, disks="[vda, vdb]", copy_to="[ap-southeast-1]")) == []
    found = only_error(ACCOUNTS + policy_yaml(**hw, copy_to="[{region: cn-south-1, vault: v}]"))
    assert "accounts.hw.projects: no project id for region cn-south-1 (used by policy 'web')" in found
    # a whole image keeps its backup in a CBR vault of the source region
    found = only_error(ACCOUNTS + policy_yaml(account="hw", region="cn-north-4", copy_to="[]"))
    assert found.endswith(
        "policies[0]: Huawei whole-machine images (disks: all) need the CBR vault of the source "
        "region: add vault: <id> (or list the disks to make a system image and data images instead)"
    )
    assert errors(ACCOUNTS + policy_yaml(account="hw", region="cn-north-4", disks="[vda, vdb]")) == []
    assert "only Huawei whole-machine images take a source vault" in only_error(ACCOUNTS + policy_yaml(vault="v"))


def test_every_problem_is_reported_at_once_in_file_order():
    text = ACCOUNTS + policy_yaml(name="bad name", every="11h", disks="[vdb]", copy_to="[cn-shanghai]", colour="red")
    found = errors(text)
    assert len(found) == 5, found
    lines = [int(f.split(":")[1]) for f in found]
    assert lines == sorted(lines)


def test_validate_command_exit_codes_and_json(tmp_path: Path):
    good = tmp_path / "good.yaml"
    good.write_text(ACCOUNTS + policy_yaml(), encoding="utf-8")
    bad = tmp_path / "bad.yaml"
    bad.write_text(ACCOUNTS + policy_yaml(every="11h"), encoding="utf-8")
    runner = CliRunner()
    result = runner.invoke(cli, ["policy", "validate", str(good)])
    assert result.exit_code == 0 and "OK (2 accounts, 1 policies)" in result.output
    result = runner.invoke(cli, ["-c", str(bad), "policy", "validate"])
    assert result.exit_code == 3
    assert f"{bad}:10:12: policies[0].every: 11h is shorter" in result.output
    result = runner.invoke(cli, ["policy", "validate", "--format", "json", str(bad)])
    payload = json.loads(result.output)
    assert result.exit_code == 3 and payload["valid"] is False
    assert payload["errors"][0] | {"file": ""} == {
        "file": "",
        "line": 10,
        "column": 12,
        "path": "policies[0].every",
        "message": "11h is shorter than the 12-hour minimum interval",
    }
    result = runner.invoke(cli, ["policy", "validate", str(tmp_path / "missing.yaml")])
    assert result.exit_code == 3 and "missing.yaml:1:1: (root): file not found" in result.output


def test_not_utf8_is_reported(tmp_path: Path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"version: 1\nname: caf\xe9\n")
    model, found = validate_file(path)
    assert model is None and "not UTF-8 text" in str(found[0])


def test_schema_command_prints_json_schema():
    result = CliRunner().invoke(cli, ["policy", "schema"])
    schema = json.loads(result.output)
    assert result.exit_code == 0
    policy = schema["$defs"]["Policy"]
    assert policy["additionalProperties"] is False
    assert policy["properties"]["name"]["maxLength"] == 32
    assert {"accounts", "policies", "version"} <= set(schema["properties"])


def test_shipped_examples_validate():
    root = Path(__file__).resolve().parents[2]
    for path in [root / "policies.yaml", *sorted((root / "examples").glob("policies*.yaml"))]:
        _, found = validate_file(path)
        assert found == [], (path, [str(f) for f in found])


def test_yaml_indentation_matters_in_messages():
    text = textwrap.dedent("""\
        version: 1
        accounts:
          sh:
            provider: gcp
        policies: []
        """)
    assert only_error(text).startswith("p.yaml:4:15: accounts.sh.provider: must be one of 'aliyun', 'huawei'")


def test_yaml_booleans_in_text_fields_get_a_hint():
    found = only_error(ACCOUNTS + policy_yaml(name="off"))
    assert found == "p.yaml:6:11: policies[0].name: YAML reads this as false, not text; put the value in quotes"


def test_huawei_copies_need_an_agency():
    text = ACCOUNTS.replace("agency: ims-agency, ", "") + policy_yaml(
        account="hw", region="cn-north-4", vault="v4", copy_to="[{region: cn-east-3, vault: v}]"
    )
    assert only_error(text).endswith(
        "accounts.hw: Huawei cross-region copies need an IAM agency: add agency: <name> (policy 'web' copies)"
    )


def test_the_vendor_list_has_one_home():
    from imagebak.config.regions import KNOWN_REGIONS
    from imagebak.config.schema import json_schema
    from imagebak.vendors import VENDORS

    assert set(KNOWN_REGIONS) == set(VENDORS)
    assert json_schema()["$defs"]["Account"]["properties"]["provider"]["enum"] == list(VENDORS)


def test_the_shipped_policy_files_pass_the_exported_json_schema():
    """`imagebak policy schema` accepts what validation accepts: the demo file and the README's example."""
    import re

    import jsonschema
    import yaml

    from imagebak.config.schema import json_schema

    class JsonLikeLoader(yaml.SafeLoader):
        """As editors' YAML language servers read it: a timestamp stays a string (JSON has no dates)."""

    JsonLikeLoader.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    root = Path(__file__).resolve().parents[2]
    readme = (root / "README.md").read_text(encoding="utf-8")
    example = re.search(r"```yaml\n(version: 1\n.*?)```", readme, re.S)
    assert example is not None
    texts = [(root / "policies.yaml").read_text(encoding="utf-8"), example[1]]
    documents = [yaml.load(text, Loader=JsonLikeLoader) for text in texts]
    validator = jsonschema.Draft202012Validator(json_schema())
    for document in documents:
        assert [e.message for e in validator.iter_errors(document)] == []
    assert list(validator.iter_errors({**documents[0], "colour": "red"}))  # unknown keys stay errors
    assert validate_text(example[1], "README.md")[1] == []  # and imagebak itself accepts the README's example


def test_a_file_path_with_a_nul_character_is_refused(tmp_path: Path):
    """Found by reliability/fuzz_inputs.py: `state: "a\\0b"` validated, then `plan` crashed opening it (exit 70)."""
    text = 'version: 1\nstate: "state\\0.json"\naccounts: {}\n'
    assert only_error(text) == "p.yaml:2:8: state: a file path cannot contain a NUL character (\\0)"
    path = tmp_path / "policies.yaml"
    path.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(cli, ["-c", str(path), "plan"])
    assert result.exit_code == 3 and "state: a file path cannot contain a NUL character" in result.output


def test_a_quoted_number_gets_a_hint():
    text = ACCOUNTS + policy_yaml(retry_failed='"2"')
    found = only_error(text)
    assert found.endswith("policies[0].retry_failed: expected a whole number, got text; write 2 without quotes")
