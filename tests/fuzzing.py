"""Mutated policy and state files, and what the CLI must do with them (issue #12).

Shared by ``tests/test_fuzz_inputs.py`` (a few hundred examples in every test run) and
``reliability/fuzz_inputs.py`` (thousands, by hand, with counts). Every input goes through the
CLI in this process, as a user meets it:

- a policy file: ``policy validate`` exits 0 or 3, each problem on one ``FILE:LINE:COL: path: message``
  line; a file that validates also plans and lists (exit 0);
- a state file and its history log (either or both mutated): ``plan`` and ``policy list`` exit 0 or
  4; ``run`` exits with a documented code; when they do not validate, neither file is rewritten, by
  any of them.

Never: exit 70 (an exception escaping the command), a traceback, an input taking over 2 s.
"""

from __future__ import annotations

import json
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner
from hypothesis import strategies as st
from samples import KEY, finish, full_state

from imagebak.cli import cli
from imagebak.engine.journal import Journal
from imagebak.errors import ExitCode, StateError
from imagebak.state import StateStore

ROOT = Path(__file__).resolve().parents[1]
NOW = "2026-12-01T12:00:00+08:00"
SLOW_SECONDS = 2.0
DIAGNOSTIC = re.compile(r"^[^\n]+:\d+:\d+: [^\n]+: [^\n]+$")
ACCOUNT, REGION, NAME = KEY.split("/")
SMALL_POLICY = f"""\
version: 1
state: state.json
accounts:
  {ACCOUNT}: {{provider: aliyun, policy_quota: 5}}
  hw: {{provider: huawei, agency: agency, projects: {{cn-north-4: p4, cn-east-3: p3}}}}
policies:
  - name: {NAME}
    description: the web tier
    account: {ACCOUNT}
    region: {REGION}
    enabled: true
    start: 2026-12-01T02:00:00+08:00
    every: 1d
    disks: [vda, vdb]
    instances: [i-1, i-2]
    copy_to: [cn-qingdao]
    image_name: "{{policy}}-{{instance}}-{{time}}"
    retry_failed: 1
  - name: whole
    account: hw
    region: cn-north-4
    start: 2026-12-01T03:00:00+08:00
    every: 12h
    instances: [6aa8b9e0]
    vault: v4
    copy_to:
      - {{region: cn-east-3, vault: v3}}
"""
POLICY_SEEDS = [SMALL_POLICY.encode(), (ROOT / "policies.yaml").read_bytes()]
# Fragments that have crashed YAML loaders, or might: control characters, line breaks YAML and
# Python disagree about, tags with bad values, anchors and aliases, deep nesting, huge numbers.
FRAGMENTS = [
    *(bytes([c]) for c in [*range(0, 32), 127]),
    "\u0085".encode(),
    "\u2028".encode(),
    "\ufeff".encode(),
    b"\xff",
    b"\xc3",
    b": ",
    b"- ",
    b"\n",
    b"\n  ",
    b"{",
    b"}",
    b"[",
    b"]",
    b"'",
    b'"',
    b"#",
    b"---\n",
    b"...\n",
    b"? ",
    b"<<: ",
    b"&a ",
    b"*a",
    b"&a [*a]",
    b"!!int ",
    b"!!bool ",
    b"!!float ",
    b"!!timestamp ",
    b"!!binary ",
    b"!!set ",
    b"!!python/object:os.system ",
    b"!local ",
    b"!!int abc",
    b"!!bool maybe",
    b"9999-12-31T23:59:59-12:00",
    b"0001-01-01T00:00:00+14:00",
    b"2026-13-45",
    b"99999999999999999999999w",
    b"9" * 5000,
    b"0x" + b"f" * 5000,
    b"1e999",
    b".nan",
    b"[" * 3000,
    b"- " * 500,
    b'"\\N\\L\\P\\r\\n\\t\\x00"',
    b'a: &a ["x","x","x","x","x","x","x","x","x"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n'
    b"c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n",
    "每日备份".encode(),
    b"LTAI" + b"0123456789abcdef",  # key-shaped, built here so no key-like literal is in the repo
]
JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**18, max_value=10**4000),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    st.sampled_from(["\n", "\u2028", "\u0085", "9999-12-31T23:59:59.000000Z", "2026-12-01T00:00:00Z", "all"]),
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


# -- byte-level mutations ------------------------------------------------------------------------


def _flip(draw: Callable[..., Any], data: bytes) -> bytes:
    at = draw(st.integers(0, max(0, len(data) - 1)))
    return data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1 :] if data else data


def _insert(draw: Callable[..., Any], data: bytes) -> bytes:
    at = draw(st.integers(0, len(data)))
    return data[:at] + draw(st.sampled_from(FRAGMENTS)) + data[at:]


def _delete(draw: Callable[..., Any], data: bytes) -> bytes:
    at = draw(st.integers(0, len(data)))
    return data[:at] + data[at + draw(st.integers(1, 40)) :]


def _duplicate_line(draw: Callable[..., Any], data: bytes) -> bytes:
    lines = data.split(b"\n")
    at = draw(st.integers(0, len(lines) - 1))
    return b"\n".join([*lines[: at + 1], lines[at], *lines[at + 1 :]])


def _graft(draw: Callable[..., Any], data: bytes, value: bytes) -> bytes:
    """Put ``value`` in place of what follows one ': ', up to the end of its line."""
    spots = [m.end() for m in re.finditer(rb": ", data)]
    if not spots:
        return value
    at = draw(st.sampled_from(spots))
    end = data.find(b"\n", at)
    return data[:at] + value + (data[end:] if end >= 0 else b"")


def _replace_value(draw: Callable[..., Any], data: bytes) -> bytes:
    return _graft(draw, data, draw(st.sampled_from(FRAGMENTS)))


def _yaml_structure(draw: Callable[..., Any], data: bytes) -> bytes:
    """A random YAML structure as the whole file, or (in flow style, on one line) in place of one value."""
    whole = draw(st.booleans())
    value = yaml.safe_dump(
        draw(JSON_VALUES), allow_unicode=True, default_flow_style=draw(st.booleans()) or not whole, width=10**6
    ).encode()
    return value if whole else _graft(draw, data, value.strip())


BYTE_MUTATIONS = [_flip, _insert, _delete, _duplicate_line, _replace_value]


@st.composite
def policy_files(draw: Callable[..., Any]) -> bytes:
    data = draw(st.sampled_from(POLICY_SEEDS))
    for _ in range(draw(st.integers(1, 4))):
        mutate = draw(st.sampled_from([*BYTE_MUTATIONS, _yaml_structure]))
        data = mutate(draw, data)
    return data


# -- state files -----------------------------------------------------------------------------------


StateFiles = tuple[bytes, bytes]  # state.json and its history log


def _state_seed() -> StateFiles:
    """As imagebak leaves them: an execution in flight; a log with a replace line, an add line and a drop line."""
    with tempfile.TemporaryDirectory() as folder:
        store = StateStore(full_state(Path(folder) / "state.json"))
        finish(store, 1)
        journal = Journal(store)
        journal.pruned(KEY, store.read().policies[KEY]["points"][0])
        journal.close()
        return store.path.read_bytes(), store.history.path.read_bytes()


STATE_SEED = _state_seed()


def _paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*path, index))
    return found


def _json_mutation(draw: Callable[..., Any], data: bytes) -> bytes:
    try:
        tree = json.loads(data)
    except (ValueError, RecursionError):
        return data
    path = draw(st.sampled_from(_paths(tree)))
    if not path:
        return json.dumps(draw(JSON_VALUES)).encode()
    parent = tree
    for part in path[:-1]:
        parent = parent[part]
    action = draw(st.sampled_from(["replace", "delete", "add key", "rename", "nest"]))
    if action == "replace":
        parent[path[-1]] = draw(JSON_VALUES)
    elif action == "delete":
        del parent[path[-1]]
    elif action == "add key" and isinstance(parent[path[-1]], dict):
        parent[path[-1]][draw(st.text(max_size=8))] = draw(JSON_VALUES)
    elif action == "rename" and isinstance(parent, dict):
        parent[str(path[-1]) + draw(st.sampled_from(["x", "_", "\n", " "]))] = parent.pop(path[-1])
    elif action == "nest":  # deeper than json and pydantic read: spliced in as text
        parent[path[-1]] = _DEEP
    text = json.dumps(tree, ensure_ascii=draw(st.booleans()))
    depth = draw(st.sampled_from([300, 5000]))  # past pydantic's JSON limit; past Python's recursion limit
    return text.replace(json.dumps(_DEEP), "[" * depth + "]" * depth).encode()


_DEEP = "\x00deep\x00"


def _line_mutation(draw: Callable[..., Any], data: bytes) -> bytes:
    """A JSON mutation of one line of the history log."""
    lines = data.split(b"\n")
    at = draw(st.integers(0, len(lines) - 1))
    return b"\n".join([*lines[:at], _json_mutation(draw, lines[at]), *lines[at + 1 :]])


def _truncate(draw: Callable[..., Any], data: bytes) -> bytes:
    """A crash in the middle of an append: a torn last line."""
    return data[: draw(st.integers(0, len(data)))]


@st.composite
def state_files(draw: Callable[..., Any]) -> StateFiles:
    state, log = STATE_SEED
    for _ in range(draw(st.integers(1, 3))):
        if draw(st.booleans()):
            mutate = draw(st.sampled_from([_json_mutation, _json_mutation, _json_mutation, _flip, _insert, _delete]))
            state = mutate(draw, state)
        else:
            mutate = draw(st.sampled_from([_line_mutation, _line_mutation, _truncate, *BYTE_MUTATIONS]))
            log = mutate(draw, log)
    return state, log


# -- running them --------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What the CLI did with one input: per command, its exit code; and everything that is wrong."""

    exits: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    rewritten: bool = False
    slow: bool = False

    def ok(self) -> bool:
        return not self.problems


def _invoke(outcome: Outcome, name: str, args: list[str], allowed: set[int], env: dict[str, str]) -> list[str]:
    started = time.monotonic()
    result = CliRunner().invoke(cli, args, env=env)
    if time.monotonic() - started > SLOW_SECONDS:
        outcome.slow = True
        outcome.problems.append(f"{name}: took {time.monotonic() - started:.1f} s")
    code = int(result.exit_code)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        code = 70
        outcome.problems.append(f"{name}: {type(result.exception).__name__}: {result.exception}"[:300])
    elif "Traceback" in result.output:
        outcome.problems.append(f"{name}: traceback in the output")
    elif code not in allowed:
        outcome.problems.append(f"{name}: exit {code}: {result.output[:300]}")
    outcome.exits[name] = code
    return result.output.splitlines()


def _env(folder: Path) -> dict[str, str]:
    return {
        "IMAGEBAK_NOW": NOW,
        "HOME": str(folder),  # no credential files: nothing reaches a cloud
        "ALIBABA_CLOUD_ACCESS_KEY_ID": "",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "",
        "ALIYUN_ACCESS_KEY_ID": "",
        "ALIYUN_ACCESS_KEY_SECRET": "",
        "HUAWEICLOUD_SDK_AK": "",
        "HUAWEICLOUD_SDK_SK": "",
        "IMAGEBAK_CONFIG": "",
        "IMAGEBAK_STATE": "",
    }


def check_policy_file(data: bytes) -> Outcome:
    outcome = Outcome()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "policies.yaml"
        path.write_bytes(data)
        env = _env(Path(folder))
        lines = _invoke(outcome, "validate", ["policy", "validate", str(path)], {0, 3}, env)
        if outcome.exits["validate"] == 3:
            bad = [line for line in lines if not line.endswith("problem(s)") and not DIAGNOSTIC.match(line)]
            if bad:
                outcome.problems.append(f"validate: not one diagnostic per line: {bad[:3]}")
        if outcome.exits["validate"] == 0:  # 4: its `state:` names something that is no state file
            for name, args in (("plan", ["plan"]), ("list", ["policy", "list"])):
                _invoke(outcome, name, ["-c", str(path), *args], {0, 4}, env)
    return outcome


def check_state_file(files: StateFiles) -> Outcome:
    outcome = Outcome()
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "policies.yaml"
        config.write_text(SMALL_POLICY, encoding="utf-8")
        store = StateStore(Path(folder) / "state.json")
        paths = (store.path, store.history.path)
        for path, data in zip(paths, files, strict=True):
            path.write_bytes(data)
        try:
            store.read()
            valid = True
        except StateError:
            valid = False
        except Exception as exc:  # what the CLI would report as an internal error
            valid = False
            outcome.problems.append(f"read: {type(exc).__name__}: {exc}"[:300])
        before = [(path.read_bytes(), path.stat().st_mtime_ns) for path in paths]
        env = _env(Path(folder))
        documented = {int(code) for code in ExitCode}
        for name, args, allowed in (
            ("plan", ["plan"], {0, 4}),
            ("list", ["policy", "list"], {0, 4}),
            ("dry-run", ["run", "--all", "--dry-run"], {0, 4}),
            ("run", ["run", "--all", "--no-wait", "--force"], documented),
        ):
            _invoke(outcome, name, ["-c", str(config), *args], allowed, env)
            if not valid and [(path.read_bytes(), path.stat().st_mtime_ns) for path in paths] != before:
                outcome.rewritten = True
                outcome.problems.append(f"{name}: rewrote a state file or history log that did not validate")
                break
    return outcome
