"""policies.yaml edited through ruamel.yaml round-trip data, written back so that only what changed changes.

The validator's fast reader (``yamlsource``, on libyaml) finds every policy, the lines it stands on
and what it holds; ruamel.yaml parses only the policies a verb edits, each from its own lines (its
pure-Python reader would take seconds over a file of thousands of policies). The new text is the old
one with each edited policy replaced by ruamel's rendering of it, deleted ones cut out with their
own comments, and new ones appended after the last one, parted from it as the others are parted.
So comments, blank lines, order, quoting and layout outside the edit stay byte for byte. Where
ruamel would write an unchanged line of an edited policy its own way (a flow list broken over
lines), a three-way merge keeps the original line.

Each rendered policy must read back as the data that was edited, and the new text must read, with
the validator's reader, as the old one but for those policies. Where that fails, or where a
policy's lines do not stand alone (an alias to an anchor elsewhere), the file is edited as one
ruamel document instead, merged into the original text the same way; so is a file whose
`policies:` is missing, empty, a flow list or laid out otherwise.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.resolver import VersionedResolver

from imagebak.config.yamlsource import YamlDocument, load_yaml
from imagebak.errors import ConfigError

_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_DEFAULT_INDENT = (2, 4, 2)  # mapping, sequence, dash offset: the layout of the README and the demo file
_POLICIES_KEY_LINE = re.compile(r"((?:policies|'policies'|\"policies\")\s*:)([ \t]*(?:#[^\r\n]*)?)(\r?\n)")

Key = int  # a policy: its index in the file as read, or a number after those for one added
Change = Callable[["PolicyDocument"], Any]


class _NotSpliceable(Exception):
    """The edit cannot be spliced into the text exactly: edit the file as one ruamel document."""


def edit_text(text: str, file: str, change: Change) -> tuple[Any, str]:
    """What ``change`` (a verb) says, and the new text: spliced when that is exact, else through the whole file."""
    try:
        doc = PolicyDocument(text, file)
        return change(doc), doc.render()
    except _NotSpliceable:
        doc = PolicyDocument(text, file, whole=True)
        return change(doc), doc.render()


class _TextTimestamps(VersionedResolver):
    """Timestamps stay text: `start` is written back exactly as it was (the validator parses it)."""

    @property
    def versioned_resolver(self) -> Any:
        cache = self.__dict__.setdefault("_cache", {})
        version = self.processing_version
        if version not in cache:
            cache[version] = {
                first: [(tag, regexp) for tag, regexp in entries if str(tag) != _TIMESTAMP]
                for first, entries in super().versioned_resolver.items()
            }
        return cache[version]


def _yaml(indent: tuple[int, int, int]) -> YAML:
    yaml = YAML()  # round trip
    yaml.Resolver = _TextTimestamps
    yaml.preserve_quotes = True
    yaml.allow_unicode = True
    yaml.width = 1 << 16  # never fold a long line
    mapping, sequence, offset = indent
    yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
    return yaml


def _is_blank(line: str) -> bool:
    return not line.strip()


def _is_comment(line: str) -> bool:
    return line.lstrip().startswith("#")


def _is_content(line: str) -> bool:
    return not _is_blank(line) and not _is_comment(line)


@dataclass(frozen=True)
class _Layout:
    """Where each policy of a block-style `policies:` list stands in the text (0-based lines)."""

    key_line: int  # the line of `policies:`
    starts: list[int]  # the line of each item's dash
    ends: list[int]  # each item's last line of content (trailing comments and blank lines are not in it)
    owned: list[int]  # first of the comment lines directly above each item (its own comments), else its start
    indent: tuple[int, int, int]


def _layout(lines: Sequence[str], index: YamlDocument) -> _Layout | None:
    """None when the list is missing, empty, flow style, or laid out unlike `  - key: value` items."""
    policies = index.data.get("policies")
    where = index.positions.values.get(("policies",))
    if not isinstance(policies, list) or not policies or where is None:
        return None
    if lines[where[0] - 1][where[1] - 1 : where[1]] != "-":
        return None  # a flow list
    starts, dash = [], None
    for number in range(len(policies)):
        position = index.positions.values.get(("policies", number))
        if position is None:
            return None
        prefix = lines[position[0] - 1][: position[1] - 1]
        if prefix.strip() != "-" or dash not in (None, prefix.index("-")):
            return None
        dash = prefix.index("-")
        starts.append(position[0] - 1)
    assert dash is not None
    end = starts[-1] + 1
    while end < len(lines):
        line = lines[end]
        depth = len(line) - len(line.lstrip(" "))
        item = line.lstrip(" ").startswith("-") and line.lstrip(" ")[1:2] in ("", " ", "\r", "\n")
        if _is_content(line) and (depth < dash or (depth == dash and not item)):
            break
        end += 1
    key_line = index.positions.keys[("policies",)][0] - 1
    ends, owned, floor = [], [], key_line
    for number, start in enumerate(starts):
        limit = starts[number + 1] if number + 1 < len(starts) else end
        ends.append(max(line for line in range(start, limit) if _is_content(lines[line])))
        first = start
        while first - 1 > floor and _is_comment(lines[first - 1]):
            first -= 1
        owned.append(first)
        floor = ends[-1]
    content_column = index.positions.values[("policies", 0)][1] - 1
    return _Layout(key_line, starts, ends, owned, (_mapping_indent(index) or 2, content_column, dash))


def _mapping_indent(index: YamlDocument) -> int | None:
    """How far the file indents the first block mapping nested under a key."""
    keys = index.positions.keys
    for path, (line, column) in keys.items():
        parent = keys.get(path[:-1]) if len(path) > 1 else None
        if parent is not None and line > parent[0] and column > parent[1]:
            return column - parent[1]
    return None


def merge3(original: list[str], before: list[str], after: list[str]) -> list[str]:
    """Apply the change ``before`` -> ``after`` to ``original``, of which ``before`` is a rewrite.

    A changed run of lines goes where it stands in ``original``, or next to its unchanged neighbour;
    a change to lines that ``before`` wrote differently (a flow list broken over lines in
    ``original``) replaces the original lines of those (they change anyway).
    """
    if before == original:
        return after
    anchor = {-1: -1, len(before): len(original)}
    for first, other, size in SequenceMatcher(None, before, original, autojunk=False).get_matching_blocks():
        anchor.update((first + offset, other + offset) for offset in range(size))
    hunks: list[tuple[int, int, int, int, int, int]] = []  # before i1:i2, original o1:o2, after j1:j2
    opcodes = SequenceMatcher(None, before, after, autojunk=False).get_opcodes()
    for i1, i2, j1, j2 in ((i1, i2, j1, j2) for tag, i1, i2, j1, j2 in opcodes if tag != "equal"):
        place = _place(anchor, i1, i2)
        if place is None:
            while i1 - 1 not in anchor:
                i1, j1 = i1 - 1, j1 - 1
            while i2 not in anchor:
                i2, j2 = i2 + 1, j2 + 1
            place = (anchor[i1 - 1] + 1, anchor[i2])
        if hunks and place[0] < hunks[-1][3]:  # overlaps the previous change: one change over both
            i1, _, o1, _, j1, _ = hunks.pop()
            place = (o1, max(place[1], anchor[i2 - 1] + 1 if i2 - 1 in anchor else place[1]))
        hunks.append((i1, i2, *place, j1, j2))
    result = list(original)
    for _, _, o1, o2, j1, j2 in reversed(hunks):
        result[o1:o2] = after[j1:j2]
    return result


def _place(anchor: dict[int, int], i1: int, i2: int) -> tuple[int, int] | None:
    """Where lines ``i1:i2`` of the rewrite stand in the original, if they all stand there in a row."""
    if i1 == i2:  # an insertion: after the line before it, else before the line after it
        for position in (anchor.get(i1 - 1, -2) + 1, anchor.get(i2, -1)):
            if position >= 0:
                return position, position
        return None
    lines = range(i1, i2)
    if all(line in anchor for line in lines) and all(anchor[line + 1] == anchor[line] + 1 for line in lines[:-1]):
        return anchor[i1], anchor[i2 - 1] + 1
    return None


class PolicyDocument:
    """The file's text and its policies. Look with ``policies()``; edit what ``editable(key)`` gives,
    ``append`` and ``delete``; then ``render()`` the new text."""

    def __init__(self, text: str, file: str, *, whole: bool = False) -> None:
        self.text = text
        self.file = file
        index = load_yaml(text, file)
        data = index.data
        if index.errors or not isinstance(data, dict) or not isinstance(data.get("policies", []), (list, type(None))):
            raise ConfigError(self._unreadable())
        self._newline = "\r\n" if "\r\n" in text else "\n"
        self._lines = text.splitlines(keepends=True)
        if self._lines and not self._lines[-1].endswith(("\n", "\r")):
            self._lines[-1] += self._newline
        self._index = index
        layout = _layout(self._lines, index)
        self.indent = layout.indent if layout else (_mapping_indent(index) or 2, *_DEFAULT_INDENT[1:])
        self._layout = None if whole else layout  # None: the whole file goes through ruamel
        self._whole: CommentedMap | None = None  # the whole file as ruamel data, when it is not spliced
        views: Any = data.get("policies") or []
        if self._layout is None:
            self._whole = self._parse(text)
            views = self._whole.get("policies") or []
        self._views: list[Any] = list(views)  # what each policy holds: plain data, or ruamel's once edited
        self._originals = len(self._views)
        self._live = list(range(self._originals))
        self._edited: dict[Key, CommentedMap] = {}
        self._before: dict[Key, tuple[Any, list[str]]] = {}  # data and rendering of an edited policy as read
        self._rendering: dict[Key, list[str]] = {}  # the lines written for each edited policy

    def _unreadable(self) -> str:
        from imagebak.config.loader import validate_text

        diagnostics = validate_text(self.text, self.file)[1]
        return "\n".join(str(d) for d in diagnostics) or f"{self.file}:1:1: (root): cannot edit this file"

    def _parse(self, text: str) -> Any:
        try:
            return _yaml(self.indent).load(text)
        except Exception as exc:  # ruamel raises many kinds; the validator's reader accepted the file
            if self._layout is not None:  # one policy's lines alone (an alias to an anchor elsewhere)
                raise _NotSpliceable from None
            reason = " ".join(str(getattr(exc, "problem", None) or exc).split())
            raise ConfigError(f"{self.file}:1:1: (root): cannot edit this file ({reason}); edit it by hand") from None

    # -- looking and editing ---------------------------------------------------------------------

    def policies(self) -> list[tuple[Key, Any]]:
        return [(key, self._views[key]) for key in self._live]

    def editable(self, key: Key) -> CommentedMap:
        """The policy as ruamel data, to change in place."""
        if key not in self._edited:
            if self._layout is None:
                item = self._views[key]
            else:
                start, end = self._layout.starts[key], self._layout.ends[key]
                text = "policies:\n" + "".join(self._lines[start : end + 1])
                if _read(text, self.file) != self._index.data["policies"][key]:
                    raise _NotSpliceable  # its lines alone say something else (a block scalar ends in `# ...`)
                item = self._parse(text)["policies"][0]
                self._before[key] = (_plain(item), self._item_lines(item))
            if not isinstance(item, CommentedMap):
                raise ConfigError(f"{self.file}: policies[{key}] is not a mapping")
            self._edited[key] = self._views[key] = item
        return self._edited[key]

    def append(self, policy: CommentedMap) -> None:
        self._live.append(len(self._views))
        self._edited[len(self._views)] = policy
        self._views.append(policy)

    def delete(self, key: Key) -> None:
        self._live.remove(key)

    def flow_style(self, name: str, default: bool = True) -> bool:
        """Whether the file writes the lists (or mappings) at `name` of its policies in flow style."""
        for key, view in self.policies():
            value = view.get(name) if isinstance(view, dict) else None
            if isinstance(value, (CommentedMap, CommentedSeq)) and value:
                return bool(value.fa.flow_style())
            position = self._index.positions.values.get(("policies", key, name))
            if isinstance(value, (list, dict)) and value and key < self._originals and position:
                return self._lines[position[0] - 1][position[1] - 1 : position[1]] in ("[", "{")
        return default

    # -- rendering -----------------------------------------------------------------------------

    def render(self) -> str:
        """The new text; raises ConfigError if it would not load back to the edited data."""
        if self._whole is not None:
            text = "".join(self._whole_file())
        else:
            text = "".join(self._spliced())
            self._check_splice(text)
        if self.text and not self.text.endswith(("\n", "\r")) and text.endswith(self._newline):
            text = text[: -len(self._newline)]  # the file ended without a line break: it still does
        return text

    def _dump(self, node: Any) -> list[str]:
        buffer = io.StringIO()
        _yaml(self.indent).dump(node, buffer)
        return [line.replace("\r\n", "\n").replace("\n", self._newline) for line in buffer.getvalue().splitlines(True)]

    def _item_lines(self, item: Any) -> list[str]:
        """``item`` as it stands in the list, without what ruamel hangs after its last line."""
        seq = CommentedSeq([item])
        seq.fa.set_block_style()
        lines = self._dump(CommentedMap(policies=seq))[1:]
        while lines and not _is_content(lines[-1]):
            lines.pop()
        return lines

    def _spliced(self) -> list[str]:
        layout = self._layout
        assert layout is not None
        if not self._live:
            return self._emptied(layout)
        edits: list[tuple[int, int, list[str]]] = []
        for key in range(self._originals):
            if key not in self._live:
                edits.append((*self._cut(layout, key), []))
            elif key in self._edited and _plain(self._edited[key]) != self._before[key][0]:
                original = self._lines[layout.starts[key] : layout.ends[key] + 1]
                edits.append((layout.starts[key], layout.ends[key] + 1, self._rendered(key, original)))
        added = [key for key in self._live if key >= self._originals]
        if added:
            separator = self._separator(layout)
            lines = [line for key in added for line in [*separator, *self._rendered(key, None)]]
            edits.append((layout.ends[-1] + 1, layout.ends[-1] + 1, lines))
        text = list(self._lines)
        for first, end, lines in sorted(edits, key=lambda edit: edit[0], reverse=True):
            text[first:end] = lines
        return text

    def _rendered(self, key: Key, original: list[str] | None) -> list[str]:
        """The edited policy's lines: ruamel's, merged into its original lines; checked by loading them."""
        item = self._edited[key]
        after = self._item_lines(item)
        tries = [after] if original is None else [merge3(original, self._before[key][1], after), after]
        lines = self._faithful(tries, item, "policies:\n")
        if lines is None:
            raise _NotSpliceable
        self._rendering[key] = lines
        return lines

    def _faithful(self, candidates: list[list[str]], expected: Any, prefix: str = "") -> list[str] | None:
        """The first of ``candidates`` that ruamel reads back as ``expected`` (with ``prefix``: as its policy)."""
        for lines in candidates:
            try:
                data = _yaml(self.indent).load(prefix + "".join(lines))
                if _plain(data["policies"][0] if prefix else data) == _plain(expected):
                    return lines
            except Exception:  # a rendering that does not parse is not the one
                continue
        return None

    def _check_splice(self, text: str) -> None:
        """The validator's reading of the new text: all but the edited policies as before, those as rendered."""
        before = self._index.data
        expected = {key: value for key, value in before.items() if key != "policies"}
        policies = [
            _read("policies:\n" + "".join(self._rendering[key]), self.file)
            if key in self._rendering
            else before["policies"][key]
            for key in self._live
        ]
        after = load_yaml(text, self.file)
        data = after.data if isinstance(after.data, dict) else {}
        rest = {key: value for key, value in data.items() if key != "policies"}
        if after.errors or list(rest.items()) != list(expected.items()) or data.get("policies") != (policies or []):
            raise _NotSpliceable

    def _emptied(self, layout: _Layout) -> list[str]:
        """The text without its policies: `policies: []`."""
        match = _POLICIES_KEY_LINE.fullmatch(self._lines[layout.key_line])
        if match is None:
            raise _NotSpliceable
        lines = list(self._lines)
        del lines[layout.owned[0] : layout.ends[-1] + 1]
        lines[layout.key_line] = f"{match[1]} []{match[2]}{match[3]}"
        return lines

    def _cut(self, layout: _Layout, key: Key) -> tuple[int, int]:
        """Lines to remove with a policy: its own comments, itself, and one separator."""
        first, end = layout.owned[key], layout.ends[key] + 1
        if key + 1 < len(layout.starts):
            while end < layout.owned[key + 1] and _is_blank(self._lines[end]):
                end += 1
        elif key > 0:
            while first - 1 > layout.ends[key - 1] and _is_blank(self._lines[first - 1]):
                first -= 1
        return first, end

    def _separator(self, layout: _Layout) -> list[str]:
        """The blank lines that part the last two policies, to part a new one from the last."""
        if len(layout.starts) < 2:
            return []
        blanks, line = [], layout.ends[-2] + 1
        while line < layout.owned[-1] and _is_blank(self._lines[line]):
            blanks.append(self._newline)
            line += 1
        return blanks

    def _whole_file(self) -> list[str]:
        """The whole file through ruamel, merged into the original text."""
        doc = self._whole
        assert doc is not None
        before = self._dump(self._parse(self.text))
        seq = doc.get("policies")
        wanted = [self._views[key] for key in self._live]
        if wanted and isinstance(seq, CommentedSeq) and (seq or not seq.fa.flow_style()):
            for index in reversed(range(len(seq))):
                if not any(seq[index] is item for item in wanted):
                    del seq[index]
            seq.extend(item for item in wanted if not any(item is old for old in seq))
        elif wanted:  # no list, or `policies: []`: a block list from now on
            seq = CommentedSeq(wanted)
            seq.fa.set_block_style()
            doc["policies"] = seq
        elif isinstance(seq, CommentedSeq) and seq:  # the last policy went
            doc["policies"] = CommentedSeq()
            doc["policies"].fa.set_flow_style()
        after = self._dump(doc)
        lines = self._faithful([merge3(self._lines, before, after), after], doc)
        if lines is None:
            raise ConfigError(f"{self.file}: cannot write the file back as edited; edit it by hand")
        return lines


def _read(text: str, file: str) -> Any:
    """The one policy in ``text`` (`policies:` and its lines), as the validator reads it."""
    document = load_yaml(text, file)
    data = document.data
    if document.errors or not isinstance(data, dict) or not isinstance(data.get("policies"), list):
        return None
    return data["policies"][0] if data["policies"] else None


def _plain(node: Any) -> Any:
    """Data without ruamel's comments and styles, for comparing what two texts mean (1 is not true)."""
    if isinstance(node, dict):
        return [(_plain(key), _plain(value)) for key, value in node.items()]
    if isinstance(node, list):
        return [_plain(value) for value in node]
    for kind in (bool, int, float, str):
        if isinstance(node, kind):
            return (kind.__name__, kind(node))
    return (type(node).__name__, repr(node))
