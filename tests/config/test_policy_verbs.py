"""Policy management without hand-editing YAML: every verb changes only its own lines of the file.

Each test compares the file's text before and after, line by line: comments, blank lines, key order
and quoting elsewhere must not move. A result that would not validate is refused with the file
untouched (bytes and mtime), `--dry-run` writes nothing, and what is written passes `policy validate`.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from ruamel.yaml import YAML

from imagebak.cli import cli

REPO_POLICIES = Path(__file__).resolve().parents[2] / "policies.yaml"

COMMENTED = """\
# imagebak policies, hand-written, with comments everywhere
version: 1
accounts:
  sh: {provider: aliyun}   # Shanghai production
  hw:
    provider: huawei
    agency: ims-agency
    projects: {cn-north-4: p4, cn-east-3: p3}

policies:
  # the web tier, nightly
  - name: 每日备份-web          # Chinese names are fine
    description: "nightly: web tier"
    account: sh
    region: cn-shanghai
    start: 2026-12-01T02:00:00+08:00   # 2 a.m. Shanghai
    every: 1d
    instances: [i-web1, i-web2]   # both web servers
    copy_to: [cn-qingdao]

  - name: 'db-weekly'
    account: sh
    region: cn-shanghai
    enabled: false   # paused while the DB migrates
    start: 2026-12-06T01:00:00+08:00
    every: 1w
    disks:
      - vda   # system
      - vdb   # data
    instances:
      - i-db1
    retain:
      last: 4

  # Huawei: system disk only
  - name: hw-sys
    account: hw
    region: cn-north-4
    start: 2026-12-01T03:00:00+08:00
    every: 12h
    disks: [vda]
    instances: [hw-1]
    copy_to:
      - cn-east-3
# end of file
"""

HEAD = "version: 1\naccounts:\n  sh: {provider: aliyun}\n"


def policy_text(name: str, *, region: str = "cn-shanghai", extra: str = "") -> str:
    return (
        f"  - name: {name}\n    account: sh\n    region: {region}\n"
        f"    start: 2026-12-01T02:00:00+08:00\n    every: 1d\n{extra}"
    )


def write(tmp_path: Path, text: str, name: str = "policies.yaml") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


def run(path: Path, *args: str) -> Result:
    """`imagebak -c PATH policy ARGS...`; never a traceback."""
    result = CliRunner().invoke(cli, ["-c", str(path), "policy", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result


def changed_lines(before: str, after: str) -> list[str]:
    """The lines an edit removed (-) and added (+), in file order."""
    diff = difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
    return [line for line in diff if line[:1] in "+-" and not line.startswith(("+++", "---"))]


def assert_valid(path: Path) -> None:
    result = run(path, "validate", str(path))
    assert result.exit_code == 0, result.output


def edited(tmp_path: Path, text: str, *args: str) -> tuple[str, Result]:
    """Apply one verb to a file holding ``text``; it must succeed and leave a valid file."""
    path = write(tmp_path, text)
    result = run(path, *args)
    assert result.exit_code == 0, result.output
    after = path.read_bytes().decode("utf-8")
    for line in changed_lines(text, after):  # the printed diff is the diff of the file
        assert line in result.stdout.splitlines()
    assert_valid(path)
    return after, result


# -- each verb, on a file with comments everywhere ---------------------------------------------------

VERBS_ON_COMMENTED = {
    "enable": (
        ["enable", "db-weekly"],
        [
            "-    enabled: false   # paused while the DB migrates",
            "+    enabled: true    # paused while the DB migrates",
        ],
    ),
    "disable": (["disable", "每日备份-web"], ["+    enabled: false"]),
    "attach": (["attach", "hw-sys", "hw-2"], ["-    instances: [hw-1]", "+    instances: [hw-1, hw-2]"]),
    "attach to a block list": (["attach", "db-weekly", "i-db2"], ["+      - i-db2"]),
    "detach": (
        ["detach", "每日备份-web", "i-web1"],
        [
            "-    instances: [i-web1, i-web2]   # both web servers",
            "+    instances: [i-web2]           # both web servers",
        ],
    ),
    "delete the first": (
        ["delete", "每日备份-web"],
        [
            "-  # the web tier, nightly",
            "-  - name: 每日备份-web          # Chinese names are fine",
            '-    description: "nightly: web tier"',
            "-    account: sh",
            "-    region: cn-shanghai",
            "-    start: 2026-12-01T02:00:00+08:00   # 2 a.m. Shanghai",
            "-    every: 1d",
            "-    instances: [i-web1, i-web2]   # both web servers",
            "-    copy_to: [cn-qingdao]",
            "-",
        ],
    ),
    "delete one in the middle": (
        ["delete", "db-weekly"],
        [
            "-  - name: 'db-weekly'",
            "-    account: sh",
            "-    region: cn-shanghai",
            "-    enabled: false   # paused while the DB migrates",
            "-    start: 2026-12-06T01:00:00+08:00",
            "-    every: 1w",
            "-    disks:",
            "-      - vda   # system",
            "-      - vdb   # data",
            "-    instances:",
            "-      - i-db1",
            "-    retain:",
            "-      last: 4",
            "-",
        ],
    ),
    "delete the last": (
        ["delete", "hw-sys"],
        [
            "-",
            "-  # Huawei: system disk only",
            "-  - name: hw-sys",
            "-    account: hw",
            "-    region: cn-north-4",
            "-    start: 2026-12-01T03:00:00+08:00",
            "-    every: 12h",
            "-    disks: [vda]",
            "-    instances: [hw-1]",
            "-    copy_to:",
            "-      - cn-east-3",
        ],
    ),
    "copy": (
        ["copy", "hw-sys", "--to-region", "cn-east-3"],
        [
            "+",
            "+  - name: hw-sys",
            "+    description: copied from cn-north-4",
            "+    account: hw",
            "+    region: cn-east-3",
            "+    start: 2026-12-01T03:00:00+08:00",
            "+    every: 12h",
            "+    disks: [vda]",
            "+    instances: []",
        ],
    ),
    "edit": (
        ["edit", "每日备份-web", "--every", "2d", "--retain-last", "7", "--copy-to", "cn-qingdao,cn-beijing"],
        [
            "-    every: 1d",
            "+    every: 2d",
            "-    copy_to: [cn-qingdao]",
            "+    copy_to: [cn-qingdao, cn-beijing]",
            "+    retain:",
            "+      last: 7",
        ],
    ),
    "edit a block list away": (
        ["edit", "db-weekly", "--disks", "all", "--retain-daily", "7"],
        ["-    disks:", "-      - vda   # system", "-      - vdb   # data", "+    disks: all", "+      daily: 7"],
    ),
    "edit removes keys": (
        ["edit", "每日备份-web", "--description", "", "--copy-to", ""],
        ['-    description: "nightly: web tier"', "-    copy_to: [cn-qingdao]"],
    ),
    "create": (
        [
            "create",
            "每周备份-db",
            "--account",
            "sh",
            "--region",
            "cn-hangzhou",
            "--every",
            "1w",
            "--start",
            "2026-12-06T01:00+08:00",
            "--instances",
            "i-db2,i-db3",
            "--copy-to",
            "cn-qingdao",
            "--description",
            "yes",
        ],
        [
            "+",
            "+  - name: 每周备份-db",
            "+    description: 'yes'",
            "+    account: sh",
            "+    region: cn-hangzhou",
            "+    start: 2026-12-06T01:00:00+08:00",
            "+    every: 1w",
            "+    instances: [i-db2, i-db3]",  # as the first policy writes its instances
            "+    copy_to: [cn-qingdao]",
        ],
    ),
}


@pytest.mark.parametrize("case", VERBS_ON_COMMENTED, ids=str)
def test_each_verb_changes_only_its_own_lines(tmp_path: Path, case: str):
    args, expected = VERBS_ON_COMMENTED[case]
    after, _ = edited(tmp_path, COMMENTED, *args)
    assert changed_lines(COMMENTED, after) == expected


def test_the_diff_is_printed_before_what_happened(tmp_path: Path):
    _, result = edited(tmp_path, COMMENTED, "disable", "hw-sys")
    lines = result.stdout.splitlines()
    assert lines[0].startswith("--- ") and lines[1].startswith("+++ ") and lines[2].startswith("@@ ")
    assert "+    enabled: false" in lines
    assert "disabled policy hw-sys (hw/cn-north-4)" in result.stdout
    assert lines[-1].endswith(": written")


def test_delete_says_that_images_in_flight_finish(tmp_path: Path):
    _, result = edited(tmp_path, COMMENTED, "delete", "db-weekly")
    assert "images in flight still finish" in result.stdout


def test_attach_moves_an_instance_out_of_its_other_policy(tmp_path: Path):
    after, result = edited(tmp_path, COMMENTED, "attach", "db-weekly", "i-web2")
    assert changed_lines(COMMENTED, after) == [
        "-    instances: [i-web1, i-web2]   # both web servers",
        "+    instances: [i-web1]           # both web servers",
        "+      - i-web2",
    ]
    assert "moved i-web2 from policy 每日备份-web (sh/cn-shanghai)" in result.stdout


def test_a_verb_that_changes_nothing_writes_nothing(tmp_path: Path):
    path = write(tmp_path, COMMENTED)
    before = path.stat().st_mtime_ns
    result = run(path, "enable", "hw-sys")
    assert result.exit_code == 0
    assert "already enabled" in result.stdout and "nothing to change" in result.stdout
    assert path.stat().st_mtime_ns == before


# -- the repository's own policy file -----------------------------------------------------------------

VERBS_ON_THE_REPO_FILE = {
    "disable": (["disable", "jd-weekly"], ["+    enabled: false"]),
    "attach moves": (
        ["attach", "hw-system-and-vdb", "6aa8b9e0-231b-4e14-b291-35bdd70a39d1"],
        [
            "-    instances: [6aa8b9e0-231b-4e14-b291-35bdd70a39d1]",
            "+    instances: []",
            "-    instances: [4d82feac-ab62-46cd-b672-d6ae12b80aed]",
            "+    instances: [4d82feac-ab62-46cd-b672-d6ae12b80aed, 6aa8b9e0-231b-4e14-b291-35bdd70a39d1]",
        ],
    ),
    "detach": (
        ["detach", "jd-weekly", "i-7phkqdlmtt"],
        ["-    instances: [i-l1erbfqfoe, i-7phkqdlmtt]", "+    instances: [i-l1erbfqfoe]"],
    ),
    "edit": (["edit", "每日备份-web", "--retry-failed", "2"], ["+    retry_failed: 2"]),
    "edit vaults": (
        ["edit", "hw-whole-machine", "--copy-to", "cn-east-3:vault-new,cn-north-1:vault-n1", "--vault", "v-src"],
        [
            "-    vault: vault-n4                      # the CBR vault behind whole-machine images (required on the "
            "real cloud)",
            "+    vault: v-src                         # the CBR vault behind whole-machine images (required on the "
            "real cloud)",
            "-      - {region: cn-east-3, vault: vault-dr-east-3, retain: {last: 5}}   # the DR region keeps more",
            "-      - {region: cn-south-1, vault: vault-dr-south-1}",
            "+      - {region: cn-east-3, vault: vault-new, retain: {last: 5}}         # the DR region keeps more",
            "+      - {region: cn-north-1, vault: vault-n1}",
        ],
    ),
    "copy": (
        ["copy", "jd-weekly", "--to-region", "cn-east-2", "--instances", "i-east1"],
        [
            "+",
            "+  - name: jd-weekly",
            "+    description: weekly images of the JD Beijing web server, copied to Shanghai and Guangzhou "
            "(copied from cn-north-1)",
            "+    account: jdcloud-demo",
            "+    region: cn-east-2",
            "+    start: 2026-12-06T01:00:00+08:00",
            "+    every: 1w",
            "+    disks: all",
            "+    instances: [i-east1]",
            "+    copy_to: [cn-south-1]",
        ],
    ),
}


@pytest.mark.parametrize("case", VERBS_ON_THE_REPO_FILE, ids=str)
def test_the_repository_policy_file(tmp_path: Path, case: str):
    text = REPO_POLICIES.read_text(encoding="utf-8")
    args, expected = VERBS_ON_THE_REPO_FILE[case]
    after, _ = edited(tmp_path, text, *args)
    assert changed_lines(text, after) == expected


def test_the_repository_policy_file_after_delete_and_create(tmp_path: Path):
    text = REPO_POLICIES.read_text(encoding="utf-8")
    path = write(tmp_path, text)
    assert run(path, "delete", "hw-whole-machine").exit_code == 0
    created = run(
        path, *["create", "每周备份-db", "--account", "huawei-demo", "--region", "cn-north-4"],
        *["--every", "1w", "--start", "2026-12-06T01:00+08:00", "--disks", "vda", "--copy-to", "cn-east-3"],
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    after = path.read_text(encoding="utf-8")
    removed = [line for line in changed_lines(text, after) if line.startswith("-")]
    added = [line for line in changed_lines(text, after) if line.startswith("+")]
    assert removed == ["-  - name: hw-whole-machine", *removed[1:]] and len(removed) == 13
    assert added == [
        "+",
        "+  - name: 每周备份-db",
        "+    account: huawei-demo",
        "+    region: cn-north-4",
        "+    start: 2026-12-06T01:00:00+08:00",
        "+    every: 1w",
        "+    disks: [vda]",
        "+    copy_to: [cn-east-3]",
    ]
    assert "每周备份-db".encode() in path.read_bytes()  # not escaped as \\u...
    assert_valid(path)


# -- refusals ------------------------------------------------------------------------------------

REFUSED = {
    "interval below 12h": (["edit", "hw-sys", "--every", "1h"], "12-hour minimum"),
    "name taken in the region": (
        [
            "create",
            "hw-sys",
            "--account",
            "hw",
            "--region",
            "cn-north-4",
            "--every",
            "1d",
            "--start",
            "2026-12-01T00:00Z",
        ],
        "already used",
    ),
    "instance in another policy": (
        ["create", "web2", "--account", "sh", "--region", "cn-shanghai", "--every", "1d"],
        "at most one image policy",
    ),
    "unknown region": (["copy", "db-weekly", "--to-region", "cn-nowhere"], "not a known aliyun region"),
    "copy to its own region": (["edit", "hw-sys", "--copy-to", "cn-north-4"], "differ from the source region"),
    "bad name": (
        ["create", "bad name!", "--account", "sh", "--region", "cn-shanghai", "--every", "1d"],
        "may contain only",
    ),
    "unknown template field": (["edit", "hw-sys", "--image-name", "{host}"], "unknown template field"),
    "retry_failed above 5": (["edit", "hw-sys", "--retry-failed", "9"], "must be at most 5"),
}


@pytest.mark.parametrize("case", REFUSED, ids=str)
def test_an_invalid_result_is_refused_and_the_file_left_alone(tmp_path: Path, case: str):
    args, message = REFUSED[case]
    if args[0] == "create" and "--start" not in args:
        args = [*args, "--start", "2026-12-01T02:00+08:00"]
    if case == "instance in another policy":
        args = [*args, "--instances", "i-web2"]
    path = write(tmp_path, COMMENTED)
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    result = run(path, *args)
    assert result.exit_code == 3, result.output
    assert message in result.stderr
    assert f"{path}: not written" in result.stderr
    assert all(line.startswith(str(path)) for line in result.stderr.splitlines())  # FILE:LINE:COL: ... lines
    assert path.read_bytes() == COMMENTED.encode("utf-8")
    assert path.stat().st_mtime_ns == 1_000_000_000
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_create_refuses_the_21st_policy_in_a_region(tmp_path: Path):
    text = HEAD + "policies:\n" + "".join(policy_text(f"p{n}") for n in range(20))
    path = write(tmp_path, text)
    assert_valid(path)
    args = ["--account", "sh", "--every", "1d", "--start", "2026-12-01T02:00+08:00"]
    refused = run(path, "create", "p20", "--region", "cn-shanghai", *args)
    assert refused.exit_code == 3
    assert "more than 20 policies in sh/cn-shanghai" in refused.stderr
    assert path.read_text(encoding="utf-8") == text
    assert run(path, "create", "p20", "--region", "cn-hangzhou", *args).exit_code == 0  # another region
    assert run(path, "copy", "p20", "--to-region", "cn-shanghai").exit_code == 3


@pytest.mark.parametrize(
    "args",
    [
        ["enable", "db-weekly"],
        ["disable", "hw-sys"],
        ["attach", "hw-sys", "hw-2"],
        ["detach", "hw-sys", "hw-1"],
        ["copy", "hw-sys", "--to-region", "cn-east-3"],
        ["delete", "hw-sys"],
        ["edit", "hw-sys", "--every", "1d"],
        ["create", "x", "--account", "sh", "--region", "cn-shanghai", "--every", "1d", "--start", "2026-12-01T02:00Z"],
    ],
    ids=lambda args: args[0],
)
def test_dry_run_prints_the_diff_and_writes_nothing(tmp_path: Path, args: list[str]):
    path = write(tmp_path, COMMENTED)
    before, mtime = path.read_bytes(), path.stat().st_mtime_ns
    result = run(path, *args, "--dry-run")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"--- {path}\n+++ {path}\n@@ ")
    assert result.stdout.splitlines()[-1] == f"{path}: dry run, nothing written"
    assert path.read_bytes() == before and path.stat().st_mtime_ns == mtime


# -- usage errors: exit 2, one line, no traceback --------------------------------------------------------


def test_an_unknown_name_lists_the_names(tmp_path: Path):
    path = write(tmp_path, COMMENTED)
    result = run(path, "disable", "web")
    assert result.exit_code == 2
    assert result.stderr == "imagebak: no policy named 'web'; the policies are: db-weekly, hw-sys, 每日备份-web\n"


def test_a_name_in_several_regions_needs_account_or_region(tmp_path: Path):
    path = write(tmp_path, COMMENTED)
    assert run(path, "copy", "每日备份-web", "--to-region", "cn-hangzhou").exit_code == 0
    ambiguous = run(path, "disable", "每日备份-web")
    assert ambiguous.exit_code == 2
    assert "sh/cn-shanghai, sh/cn-hangzhou: pick one with --account and/or --region" in ambiguous.stderr
    assert run(path, "disable", "每日备份-web", "--region", "cn-beijing").exit_code == 2
    picked = run(path, "disable", "每日备份-web", "--region", "cn-hangzhou")
    assert picked.exit_code == 0
    assert "disabled policy 每日备份-web (sh/cn-hangzhou)" in picked.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["detach", "hw-sys", "hw-9"], "not in policy hw-sys (hw/cn-north-4): hw-9 (it has: hw-1)"),
        (["edit", "hw-sys", "--start", "tomorrow"], "is not an ISO 8601 time"),
        (["edit", "hw-sys", "--start", "2026-12-01T02:00"], "needs a timezone offset"),
        (["edit", "hw-sys", "--copy-to", "cn-east-3:"], "expected REGION or REGION:VAULT"),
        (["edit", "hw-sys", "--disks", ","], "give 'all' or device names"),
        (["edit", "hw-sys"], "nothing to change"),
        (["edit", "hw-sys", "--no-retain", "--retain-last", "3"], "cannot be combined"),
        (["edit", "hw-sys", "--retry-failed", "many"], "is not a valid integer"),
        (["create", "x", "--account", "sh", "--region", "cn-shanghai", "--every", "1d"], "Missing option '--start'"),
        (["copy", "hw-sys"], "Missing option '--to-region'"),
        (["attach", "hw-sys"], "Missing argument 'INSTANCES...'"),
    ],
)
def test_bad_arguments_exit_2(tmp_path: Path, args: list[str], message: str):
    path = write(tmp_path, COMMENTED)
    result = run(path, *args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert path.read_text(encoding="utf-8") == COMMENTED


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "file not found"),
        ("version: 1\naccounts: {sh: {provider: aliyun}\n", "policies.yaml:3:1"),
        ("version: 1\nversion: 1\n", "duplicate key"),
        ("- just\n- a list\n", "expected a mapping at the top"),
        ("version: 1\naccounts: {}\npolicies: {a: 1}\n", "policies"),
    ],
)
def test_an_unreadable_file_exits_3(tmp_path: Path, text: str | None, message: str):
    path = tmp_path / "policies.yaml"
    if text is not None:
        write(tmp_path, text)
    result = run(path, "disable", "x")
    assert result.exit_code == 3, result.output
    assert message in result.stderr


# -- layouts ---------------------------------------------------------------------------------------


def test_the_file_mode_and_a_symlink_are_kept(tmp_path: Path):
    target = write(tmp_path, COMMENTED, "real.yaml")
    target.chmod(0o640)
    link = tmp_path / "policies.yaml"
    link.symlink_to(target.name)
    assert run(link, "disable", "hw-sys").exit_code == 0
    assert link.is_symlink()
    assert "enabled: false" in target.read_text(encoding="utf-8")
    assert target.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["policies.yaml", "real.yaml"]


def test_a_new_policy_in_an_empty_list_is_block_style(tmp_path: Path):
    args = ["create", "a", "--account", "sh", "--region", "cn-shanghai", "--every", "1d"]
    after, _ = edited(tmp_path, HEAD + "policies: []\n", *args, "--start", "2026-12-01T02:00+08:00")
    assert after == HEAD + "policies:\n" + policy_text("a")


def test_a_new_policy_in_a_flow_list_is_flow_style(tmp_path: Path):
    text = (
        HEAD + "policies: [{name: a, account: sh, region: cn-shanghai, start: 2026-12-01T02:00:00+08:00, every: 1d}]\n"
    )
    args = ["create", "b", "--account", "sh", "--region", "cn-shanghai", "--every", "2d"]
    after, _ = edited(tmp_path, text, *args, "--start", "2026-12-01T02:00+08:00")
    line = text.splitlines()[-1]
    new = f"{line[:-1]}, {{name: b, account: sh, region: cn-shanghai, start: 2026-12-01T02:00:00+08:00, every: 2d}}]"
    assert changed_lines(text, after) == [f"-{line}", f"+{new}"]


def test_deleting_the_only_policy_leaves_an_empty_list(tmp_path: Path):
    text = HEAD + "policies:   # all of them\n  # the only one\n" + policy_text("a") + "retain: {last: 3}\n"
    after, _ = edited(tmp_path, text, "delete", "a")
    assert after == HEAD + "policies: []   # all of them\nretain: {last: 3}\n"


def test_a_file_without_a_final_line_break(tmp_path: Path):
    text = HEAD + "policies:\n" + policy_text("a", extra="    instances: [i-1]")
    after, _ = edited(tmp_path, text, "attach", "a", "i-2")
    assert after == text.replace("[i-1]", "[i-1, i-2]")


def test_a_file_with_crlf_line_breaks(tmp_path: Path):
    text = (HEAD + "policies:\n" + policy_text("a") + "\n" + policy_text("b")).replace("\n", "\r\n")
    after, _ = edited(tmp_path, text, "disable", "a")
    assert changed_lines(text, after) == ["+    enabled: false"]
    assert after.count("\r\n") == after.count("\n")


def test_a_file_indented_its_own_way_keeps_its_indentation(tmp_path: Path):
    text = "version: 1\naccounts:\n    sh:\n        provider: aliyun\npolicies:\n" + policy_text(
        "a", extra="    instances:\n    - i-1\n"
    ).replace("\n    ", "\n  ").replace("  - name", "- name")
    assert text.splitlines()[5:] == [
        "- name: a",
        "  account: sh",
        "  region: cn-shanghai",
        "  start: 2026-12-01T02:00:00+08:00",
        "  every: 1d",
        "  instances:",
        "  - i-1",
    ]
    path = write(tmp_path, text)
    assert run(path, "attach", "a", "i-2").exit_code == 0
    create = ["create", "b", "--account", "sh", "--region", "cn-shanghai", "--every", "1d", "--retain-weekly", "4"]
    assert run(path, *create, "--start", "2026-12-01T02:00+08:00").exit_code == 0
    assert changed_lines(text, path.read_text(encoding="utf-8")) == [
        "+  - i-2",
        "+- name: b",
        "+  account: sh",
        "+  region: cn-shanghai",
        "+  start: 2026-12-01T02:00:00+08:00",
        "+  every: 1d",
        "+  retain: {weekly: 4}",
    ]


def test_a_flow_list_over_several_lines_is_left_alone_unless_it_changes(tmp_path: Path):
    text = HEAD + "policies:\n" + policy_text("a", extra="    instances: [\n      i-1,\n      i-2,\n    ]\n")
    after, _ = edited(tmp_path, text, "edit", "a", "--every", "2d")
    assert changed_lines(text, after) == ["-    every: 1d", "+    every: 2d"]
    after, _ = edited(tmp_path, text, "attach", "a", "i-3")
    assert changed_lines(text, after) == [
        "-    instances: [",
        "-      i-1,",
        "-      i-2,",
        "-    ]",
        "+    instances: [i-1, i-2, i-3]",
    ]


def test_comments_after_a_policy_stay_between_the_policies(tmp_path: Path):
    text = (
        HEAD
        + "policies:\n"
        + policy_text("a", extra="    instances:\n      - i-1   # one\n    # a's last words\n\n  # b below\n")
        + policy_text("b")
        + "\n# the end\n"
    )
    path = write(tmp_path, text)
    assert run(path, "attach", "a", "i-2").exit_code == 0
    assert run(path, "edit", "a", "--retry-failed", "2").exit_code == 0
    assert run(path, "edit", "b", "--retain-within", "30d").exit_code == 0
    assert changed_lines(text, path.read_text(encoding="utf-8")) == [
        "+      - i-2",
        "+    retry_failed: 2",
        "+    retain: {within: 30d}",
    ]
    assert run(path, "delete", "b").exit_code == 0
    assert path.read_text(encoding="utf-8").endswith("    # a's last words\n\n# the end\n")
    assert_valid(path)


def test_timestamps_and_yaml_11_words_survive(tmp_path: Path):
    text = HEAD + "policies:\n" + policy_text("a", extra="    enabled: yes\n    description: 'on'\n")
    path = write(tmp_path, text)
    assert "already enabled" in run(path, "enable", "a").stdout  # `yes` is true for the validator
    assert run(path, "edit", "a", "--description", "no", "--image-name", "0777").exit_code == 0
    after = path.read_text(encoding="utf-8")
    assert changed_lines(text, after) == [
        "-    description: 'on'",
        "+    description: 'no'",
        "+    image_name: '0777'",
    ]
    assert "start: 2026-12-01T02:00:00+08:00" in after
    assert_valid(path)


def test_a_policy_whose_lines_do_not_stand_alone_is_edited_through_the_whole_file(tmp_path: Path):
    """A block scalar that ends in a `#` line, an alias to an anchor in another policy: still exact."""
    scalar = policy_text("a", extra="    description: |\n      line one\n\n      # not a comment\n")
    text = HEAD + "policies:\n" + scalar
    after, _ = edited(tmp_path, text, "attach", "a", "i-9")
    assert changed_lines(text, after) == ["+    instances: [i-9]"]
    after, _ = edited(tmp_path, text, *["create", "b", "--account", "sh", "--region", "cn-beijing", "--every", "1d"],
                      "--start", "2026-12-01T02:00+08:00")  # fmt: skip
    assert after.startswith(text) and "      # not a comment\n  - name: b\n" in after

    text = (
        HEAD
        + "policies:\n"
        + policy_text("a").replace("start: 2026", "start: &s 2026")
        + "\n"
        + policy_text("b").replace("start: 2026-12-01T02:00:00+08:00", "start: *s")
    )
    after, _ = edited(tmp_path, text, "edit", "b", "--every", "2d")
    assert changed_lines(text, after) == ["-    every: 1d", "+    every: 2d"]
    after, _ = edited(tmp_path, text, "delete", "a")
    assert "start: &s 2026-12-01T02:00:00+08:00" in after and "*s" not in after  # the anchor moved to b


def test_ruamel_reads_only_the_policies_it_edits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Its pure-Python reader takes seconds over a file of a thousand policies; libyaml finds them."""
    read: list[int] = []
    load = YAML.load
    monkeypatch.setattr(YAML, "load", lambda self, text: read.append(len(text)) or load(self, text))
    text = HEAD.replace("aliyun}", "aliyun, policy_quota: 1000}") + "policies:\n"
    text += "".join(policy_text(f"p{n}", extra=f"    instances: [i-{n}]\n\n") for n in range(1000))
    path = write(tmp_path, text)
    assert run(path, "attach", "p5", "i-77").exit_code == 0
    assert read and max(read) < 200
    assert changed_lines(text, path.read_text(encoding="utf-8")) == [
        "-    instances: [i-5]",
        "+    instances: [i-5, i-77]",
        "-    instances: [i-77]",
        "+    instances: []",
    ]
