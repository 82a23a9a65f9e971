"""imagebak.records: what the policy and state schemas rely on, on small records of its own."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated, Literal

import jsonschema
import pytest

from imagebak.records import Rules, check, field_names, json_schema, record, spec


class Colour(str, Enum):
    RED = "red"
    BLUE = "blue"


@record
class Leaf:
    """A leaf."""

    name: str = spec(min_length=1, max_length=4)
    size: int = spec(1, ge=1, le=9)


@record
class Tree:
    """A tree."""

    when: datetime
    kind: Literal["oak"] | list[Annotated[str, Rules(pattern=r"[a-z]+", pattern_message="lower-case letters")]] = spec(
        "oak", type_message="'oak' or a list of names"
    )
    leaves: list[Leaf] = spec(default_factory=list)
    colour: Colour | None = None
    pair: tuple[str, int | None] | None = None
    ratio: float = spec(0.5, gt=0)


def problems(data: object) -> list[tuple[tuple[object, ...], str]]:
    return [(p.path, p.message) for p in check(Tree, data, strip=True)[1]]


def test_a_valid_document_becomes_records_with_defaults():
    document = {"when": "2026-12-01T02:00:00+08:00", "leaves": [{"name": " ab "}], "pair": ["x", 3]}
    tree, found = check(Tree, document, strip=True)
    assert found == [] and tree is not None
    assert tree.when.utcoffset() is not None and tree.kind == "oak" and tree.ratio == 0.5
    assert tree.leaves == [Leaf(name="ab", size=1)] and tree.pair == ("x", 3)
    assert field_names(Tree) == ["when", "kind", "leaves", "colour", "pair", "ratio"]


def test_every_problem_at_once_with_its_path():
    found = problems({"kind": 5, "leaves": [{"name": "", "size": 0}, "x"], "colour": "green", "extra": 1})
    assert found == [
        (("when",), "required key 'when' is missing"),
        (("kind",), "'oak' or a list of names"),
        (("leaves", 0, "name"), "must not be empty"),
        (("leaves", 0, "size"), "must be at least 1"),
        (("leaves", 1), "expected a mapping, got text"),
        (("colour",), "must be one of 'red', 'blue'"),
        (("extra",), "unknown key 'extra'; expected one of: when, kind, leaves, colour, pair, ratio"),
    ]


def test_a_union_reports_the_branch_that_got_inside_the_value():
    assert problems({"when": "2026-12-01T02:00:00Z", "kind": ["ok", "BAD"]}) == [(("kind", 1), "lower-case letters")]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2026-12-01T02:00:00", "needs an explicit timezone offset"),
        ("tomorrow", "is not a date and time in ISO 8601"),
        (True, "expected a date and time, got true/false"),
    ],
)
def test_times_need_an_offset(value: object, message: str):
    assert message in problems({"when": value})[0][1]


def test_no_conversions_between_types():
    found = problems({"when": "2026-12-01T02:00:00Z", "ratio": True, "leaves": [{"name": "a", "size": 2.0}]})
    assert found == [
        (("leaves", 0, "size"), "expected a whole number, got a number"),
        (("ratio",), "expected a number, got true/false"),
    ]


def test_a_record_with_problems_keeps_its_valid_fields():
    tree, found = check(Tree, {"when": "2026-12-01T02:00:00Z", "leaves": [{"name": "toolong"}, 3], "ratio": -1})
    assert tree is not None and len(found) == 3
    assert tree.ratio is None and tree.leaves[0].name is None and tree.leaves[0].size == 1 and tree.leaves[1] is None


def test_the_json_schema_accepts_what_check_accepts():
    schema = json_schema(Tree)
    document = {"when": "2026-12-01T02:00:00Z", "kind": ["a"], "leaves": [{"name": "ab"}], "pair": ["x", None]}
    assert check(Tree, document)[1] == []
    jsonschema.Draft202012Validator.check_schema(schema)
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(document)) == []
    assert list(jsonschema.Draft202012Validator(schema).iter_errors({**document, "extra": 1}))
    assert schema["$defs"]["Leaf"]["properties"]["size"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 9,
        "default": 1,
    }


def test_records_compare_and_show_like_dataclasses():
    assert Leaf(name="a") == Leaf(name="a", size=1) != Leaf(name="a", size=2)
    assert repr(Leaf(name="a")) == "Leaf(name='a', size=1)"
    with pytest.raises(TypeError):
        Leaf()  # type: ignore[call-arg]
