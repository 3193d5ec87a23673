"""flows.matching against the table of real replies in tests/data/matching.yaml."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from flows import matching
from flows.matching import Choice

DATA = Path(__file__).parent / "data" / "matching.yaml"
TABLE: dict[str, Any] = yaml.safe_load(DATA.read_text(encoding="utf-8"))
CHOICE_SETS: dict[str, list[list[Any]]] = TABLE.pop("choice_sets")


def _choices(spec: str | list[list[Any]]) -> list[Choice]:
    rows = CHOICE_SETS[spec] if isinstance(spec, str) else spec
    return [Choice(str(value), tuple(str(w) for w in words)) for value, words in rows]


def _call(function: str, case: dict[str, Any]) -> Any:
    if function == "parse_number":
        return matching.parse_number(case["text"], case["low"], case["high"])
    if function == "match_choice":
        return matching.match_choice(case["text"], _choices(case["choices"]))
    if function == "parse_time":
        result = matching.parse_time(case["text"])
        return list(result) if result is not None else None
    if function == "parse_list":
        return matching.parse_list(
            case["text"], case.get("min_items", 1), case.get("max_items", 20)
        )
    if function == "similarity_distance":
        return matching.similarity_distance(case["a"], case["b"])
    return getattr(matching, function)(case["text"])


def _case_id(function: str, case: dict[str, Any]) -> str:
    said = case.get("text", f"{case.get('a')}|{case.get('b')}")
    shown = said.encode("ascii", "backslashreplace").decode("ascii").replace("\n", "\\n")
    return f"{function}:{shown!s}->{case['expect']}"


RAW_CASES = [(function, case) for function, cases in TABLE.items() for case in cases]
CASES = [pytest.param(function, case, id=_case_id(function, case)) for function, case in RAW_CASES]


@pytest.mark.parametrize(("function", "case"), CASES)
def test_table(function: str, case: dict[str, Any]) -> None:
    assert _call(function, case) == case["expect"]


def test_table_is_broad() -> None:
    assert len(CASES) >= 120
    nones = [case for _, case in RAW_CASES if case["expect"] is None]
    assert len(nones) >= 40, "keep plenty of replies that must NOT match"
    assert set(TABLE) >= {
        "normalise",
        "parse_number",
        "parse_yes_no",
        "match_choice",
        "parse_time",
        "parse_weekday",
        "parse_list",
        "similarity_distance",
    }


def test_choice_is_frozen() -> None:
    choice = Choice("tue", ("tuesday",))
    with pytest.raises(dataclasses.FrozenInstanceError):
        choice.value = "mon"  # type: ignore[misc]


def test_match_choice_without_choices() -> None:
    assert matching.match_choice("1", []) is None


def test_typo_needs_a_single_closest_choice() -> None:
    # "tusday" is one edit from tuesday and two from thursday: the closer one wins.
    days = [Choice("tue", ("tuesday",)), Choice("thu", ("thursday",))]
    assert matching.match_choice("tusday", days) == "tue"
    # Short words get no typo allowance at all.
    assert matching.match_choice("ta", [Choice("tea", ("tea",))]) is None


@pytest.mark.parametrize(
    "junk",
    ["9" * 5000, "7" * 300, "👍" * 400, "\u20e3" * 10, "\x00", "1.\n" * 50, "a;" * 100],
)
def test_junk_never_raises(junk: str) -> None:
    matching.normalise(junk)
    assert matching.parse_number(junk, 0, 10) in (None, *range(11))
    matching.parse_yes_no(junk)
    matching.match_choice(junk, [Choice("a", ("walk",)), Choice("b", ("👍",))])
    matching.parse_time(junk)
    matching.parse_weekday(junk)
    matching.parse_list(junk)


def test_public_functions_are_typed_and_documented() -> None:
    for name in matching.__all__:
        obj = getattr(matching, name)
        assert inspect.getdoc(obj), f"{name} needs a docstring saying why it exists"
        if inspect.isfunction(obj):
            signature = inspect.signature(obj)
            assert signature.return_annotation is not inspect.Signature.empty, name
            for parameter in signature.parameters.values():
                assert parameter.annotation is not inspect.Parameter.empty, (name, parameter)


def test_engine_module_is_stdlib_only() -> None:
    tree = ast.parse(Path(matching.__file__).read_text(encoding="utf-8"))
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0 and node.module, "no relative imports"
            imported.add(node.module.split(".")[0])
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}, imported
