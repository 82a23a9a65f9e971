"""The consoles' policy operations, as edits of the round-trip data of policies.yaml.

Each verb edits the ``PolicyDocument`` and returns what the user should be told. None of them checks a
product rule itself: the result is validated as a whole, exactly as `imagebak policy validate` does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import yaml
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import SingleQuotedScalarString

from imagebak.config.edit.roundtrip import Key, PolicyDocument
from imagebak.config.schema import DESCRIPTION_LIMIT, Policy, RetainSettings
from imagebak.errors import ExitCode, ImagebakError
from imagebak.records import field_names

POLICY_ORDER = {key: rank for rank, key in enumerate(field_names(Policy))}
RETAIN_ORDER = {key: rank for rank, key in enumerate(field_names(RetainSettings))}
IN_FLIGHT = "images in flight still finish: each execution keeps a copy of the policy it started with"
_STR = "tag:yaml.org,2002:str"
_BOOL = "tag:yaml.org,2002:bool"
_RESOLVER = yaml.resolver.Resolver()
Node = TypeVar("Node", CommentedMap, CommentedSeq)


@dataclass(frozen=True)
class Target:
    """A policy by name; account and region pick one when the name is used in several places."""

    name: str
    account: str | None = None
    region: str | None = None


@dataclass
class Settings:
    """What `create` and `edit` set. None leaves a key alone; an empty value removes the key."""

    every: str | None = None
    start: str | None = None
    disks: Sequence[str] | None = None  # ["all"] or device names
    copy_to: Sequence[tuple[str, str | None]] | None = None  # (region, destination vault)
    description: str | None = None
    image_name: str | None = None
    retry_failed: int | None = None
    vault: str | None = None
    retain: dict[str, int | str] = field(default_factory=dict)  # RetainSettings keys; within "" removes it
    no_retain: bool = False


# -- finding policies -------------------------------------------------------------------------------


def _policies(doc: PolicyDocument) -> list[tuple[Key, dict[str, Any]]]:
    return [(key, view) for key, view in doc.policies() if isinstance(view, dict)]


def where(policy: dict[str, Any]) -> str:
    return f"{policy.get('account')}/{policy.get('region')}"


def _describe(policy: dict[str, Any]) -> str:
    return f"{policy.get('name')} ({where(policy)})"


def find(doc: PolicyDocument, target: Target) -> Key:
    """The one policy ``target`` names; a usage error (exit 2) if there is none or more than one."""
    named = [(key, policy) for key, policy in _policies(doc) if str(policy.get("name")) == target.name]
    if not named:
        names = sorted({str(policy.get("name")) for _, policy in _policies(doc)})
        raise ImagebakError(
            f"no policy named {target.name!r}; the policies are: {', '.join(names) or 'none'}", ExitCode.USAGE
        )
    chosen = [
        key
        for key, policy in named
        if target.account in (None, policy.get("account")) and target.region in (None, policy.get("region"))
    ]
    places = ", ".join(where(policy) for _, policy in named)
    if not chosen:
        wanted = f"{target.account or '*'}/{target.region or '*'}"
        raise ImagebakError(f"no policy {target.name!r} in {wanted}; it is in {places}", ExitCode.USAGE)
    if len(chosen) > 1:
        raise ImagebakError(
            f"policy {target.name!r} is in {places}: pick one with --account and/or --region", ExitCode.USAGE
        )
    return chosen[0]


# -- values and their places --------------------------------------------------------------------


def _text(value: str) -> str:
    """``value`` as a YAML string the validator (PyYAML, YAML 1.1) reads back as that string: `yes`,
    `0777` or `1:20` are quoted."""
    if _RESOLVER.resolve(yaml.ScalarNode, value, (True, False)) == _STR:
        return value
    return SingleQuotedScalarString(value)


def _put(mapping: CommentedMap, key: str, value: Any, order: dict[str, int]) -> None:
    """Set ``key``; a new key goes where the schema lists it, after the keys before it in the schema."""
    if key in mapping:
        mapping[key] = value
        return
    rank = order.get(key, len(order))
    position = 0
    for index, existing in enumerate(mapping):
        if order.get(existing, len(order)) <= rank:
            position = index + 1
    mapping.insert(position, key, value)


def _styled(node: Node, flow: bool) -> Node:
    """``node`` written in flow style (`[a, b]`, `{a: 1}`) or block style."""
    if flow:
        node.fa.set_flow_style()
    else:
        node.fa.set_block_style()
    return node


def _list(doc: PolicyDocument, policy: CommentedMap, key: str) -> CommentedSeq:
    """The list at ``key``, created (in the style the file uses for it) when missing."""
    value = policy.get(key)
    if not isinstance(value, CommentedSeq):
        value = _styled(CommentedSeq(), doc.flow_style(key))
        _put(policy, key, value, POLICY_ORDER)
    return value


def _set_list(
    doc: PolicyDocument, policy: CommentedMap, key: str, wanted: Sequence[Any], same: Callable[[Any], str] = str
) -> None:
    """Make the list at ``key`` hold ``wanted``: entries kept stay where they are (with their comments),
    new ones are appended. ``same(entry)`` gives what an existing entry is compared by."""
    seq = _list(doc, policy, key)
    wanted_keys = [same(value) for value in wanted]
    for index in reversed(range(len(seq))):
        if same(seq[index]) not in wanted_keys:
            del seq[index]
    present = {same(entry) for entry in seq}
    seq.extend(value for value, wanted_key in zip(wanted, wanted_keys, strict=True) if wanted_key not in present)


def _clone(node: Any) -> Any:
    """A copy of ``node`` with its styles and quoting but without its comments."""
    if isinstance(node, CommentedMap):
        return _styled(CommentedMap((key, _clone(value)) for key, value in node.items()), node.fa.flow_style())
    if isinstance(node, CommentedSeq):
        return _styled(CommentedSeq(_clone(value) for value in node), node.fa.flow_style())
    return node  # scalars are immutable


def _enabled(value: Any) -> bool | None:
    """The value of `enabled` as the validator reads it (YAML 1.1: yes/no/on/off too)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and _RESOLVER.resolve(yaml.ScalarNode, value, (True, False)) == _BOOL:
        return bool(yaml.constructor.SafeConstructor.bool_values[value.lower()])
    return None


def _region_of(entry: Any) -> str:
    return str(entry.get("region")) if isinstance(entry, CommentedMap) else str(entry)


# -- the verbs --------------------------------------------------------------------------------------


def create(
    doc: PolicyDocument,
    name: str,
    account: str,
    region: str,
    settings: Settings,
    *,
    instances: Sequence[str] = (),
    enabled: bool = True,
) -> str:
    policy = _styled(CommentedMap(name=_text(name), account=_text(account), region=_text(region)), flow=False)
    if not enabled:
        _put(policy, "enabled", False, POLICY_ORDER)
    apply(doc, policy, settings)
    if instances:
        _set_list(doc, policy, "instances", [_text(instance) for instance in dict.fromkeys(instances)])
    doc.append(policy)
    return f"created policy {_describe(policy)}"


def apply(doc: PolicyDocument, policy: CommentedMap, settings: Settings) -> None:
    """Set what ``settings`` gives on ``policy``."""
    for key in ("every", "start", "description", "image_name", "vault"):
        value = getattr(settings, key)
        if value == "":
            policy.pop(key, None)
        elif value is not None:
            _put(policy, key, value if key == "start" else _text(value), POLICY_ORDER)  # start: a timestamp
    if settings.retry_failed is not None:
        _put(policy, "retry_failed", settings.retry_failed, POLICY_ORDER)
    if settings.disks is not None:
        if list(settings.disks) == ["all"]:
            _put(policy, "disks", "all", POLICY_ORDER)
        else:  # a list in place of `all` stands where `all` stood
            _set_list(doc, policy, "disks", [_text(device) for device in settings.disks])
    if settings.copy_to is not None:
        _set_copy_to(doc, policy, settings.copy_to)
    _set_retain(doc, policy, settings)


def _set_copy_to(doc: PolicyDocument, policy: CommentedMap, targets: Sequence[tuple[str, str | None]]) -> None:
    if not targets:
        policy.pop("copy_to", None)
        return
    wanted = [
        _text(region) if vault is None else _styled(CommentedMap(region=_text(region), vault=_text(vault)), flow=True)
        for region, vault in targets
    ]
    _set_list(doc, policy, "copy_to", wanted, same=_region_of)
    seq = policy["copy_to"]
    vaults = {region: vault for region, vault in targets if vault is not None}
    for index, entry in enumerate(seq):
        vault = vaults.get(_region_of(entry))
        if vault is None:
            continue
        if isinstance(entry, CommentedMap):
            _put(entry, "vault", _text(vault), {"region": 0, "retain": 1, "vault": 2})
        else:
            seq[index] = _styled(CommentedMap(region=entry, vault=_text(vault)), flow=True)


def _set_retain(doc: PolicyDocument, policy: CommentedMap, settings: Settings) -> None:
    if settings.no_retain:
        policy.pop("retain", None)
    if not settings.retain:
        return
    retain = policy.get("retain")
    if not isinstance(retain, CommentedMap):
        retain = _styled(CommentedMap(), doc.flow_style("retain"))
        _put(policy, "retain", retain, POLICY_ORDER)
    for key, value in settings.retain.items():
        if value == "":
            retain.pop(key, None)
        else:
            _put(retain, key, _text(value) if isinstance(value, str) else value, RETAIN_ORDER)
    if not retain:
        policy.pop("retain")


def edit(doc: PolicyDocument, target: Target, settings: Settings) -> str:
    policy = doc.editable(find(doc, target))
    apply(doc, policy, settings)
    return f"edited policy {_describe(policy)}"


def set_enabled(doc: PolicyDocument, target: Target, enabled: bool) -> str:
    policy = doc.editable(find(doc, target))
    current = _enabled(policy.get("enabled", True))
    if current is enabled:
        return f"policy {_describe(policy)} is already {'enabled' if enabled else 'disabled'}"
    _put(policy, "enabled", enabled, POLICY_ORDER)
    if enabled:
        return f"enabled policy {_describe(policy)}: it runs from its next slot on; missed slots are not caught up"
    return f"disabled policy {_describe(policy)}: it no longer runs on schedule; {IN_FLIGHT}"


def attach(doc: PolicyDocument, target: Target, instances: Sequence[str]) -> list[str]:
    """Add instances; one that is in another policy moves here, as on the consoles."""
    key = find(doc, target)
    policy = doc.editable(key)
    notes = []
    for instance in dict.fromkeys(instances):
        for other_key, other in _policies(doc):
            listed = other.get("instances")
            if other_key == key or not isinstance(listed, list) or instance not in map(str, listed):
                continue
            listed = doc.editable(other_key)["instances"]
            del listed[[str(entry) for entry in listed].index(instance)]
            notes.append(
                f"moved {instance} from policy {_describe(other)}: an instance belongs to one image policy at most"
            )
        seq = _list(doc, policy, "instances")
        if instance in map(str, seq):
            notes.append(f"{instance} is already in policy {_describe(policy)}")
        else:
            seq.append(_text(instance))
    return [*notes, f"attached to policy {_describe(policy)}: {', '.join(dict.fromkeys(instances))}"]


def detach(doc: PolicyDocument, target: Target, instances: Sequence[str]) -> str:
    policy = doc.editable(find(doc, target))
    listed = policy.get("instances")
    if not isinstance(listed, list):
        listed = []
    present = [str(entry) for entry in listed]
    missing = [instance for instance in dict.fromkeys(instances) if instance not in present]
    if missing:
        raise ImagebakError(
            f"not in policy {_describe(policy)}: {', '.join(missing)} (it has: {', '.join(present) or 'none'})",
            ExitCode.USAGE,
        )
    for instance in dict.fromkeys(instances):
        del listed[[str(entry) for entry in listed].index(instance)]
    return f"detached from policy {_describe(policy)}: {', '.join(dict.fromkeys(instances))}"


def copy(
    doc: PolicyDocument, target: Target, to_region: str, instances: Sequence[str] | None, vault: str | None
) -> list[str]:
    """JD's "replicate policy to region": the same settings and name in ``to_region`` of the same account."""
    source = doc.editable(find(doc, target))
    policy = _clone(source)
    policy["region"] = _text(to_region)
    origin = f"copied from {source.get('region')}"
    description = str(source.get("description") or "")
    limit = DESCRIPTION_LIMIT
    policy_description = f"{description} ({origin})" if description else origin
    if len(policy_description) > limit:
        keep = limit - len(origin) - 4
        policy_description = f"{description[:keep]}… ({origin})"
    _put(policy, "description", _text(policy_description), POLICY_ORDER)
    notes = []
    if instances or "instances" in policy:  # instances are regional: none unless given
        _set_list(doc, policy, "instances", [_text(instance) for instance in dict.fromkeys(instances or ())])
    if isinstance(policy.get("copy_to"), CommentedSeq):
        kept = [entry for entry in policy["copy_to"] if _region_of(entry) != to_region]
        if kept:
            _set_list(doc, policy, "copy_to", kept, same=_region_of)
        else:
            policy.pop("copy_to")
    if vault:
        _put(policy, "vault", _text(vault), POLICY_ORDER)
    elif "vault" in policy:
        del policy["vault"]
        notes.append(f"the source vault {source['vault']} is in {source.get('region')}: give --vault for {to_region}")
    doc.append(policy)
    return [*notes, f"copied policy {_describe(source)} to {where(policy)}"]


def delete(doc: PolicyDocument, target: Target) -> str:
    key = find(doc, target)
    policy = dict(doc.policies())[key]
    doc.delete(key)
    return f"deleted policy {_describe(policy)}; {IN_FLIGHT}"
