"""The tiny condition language of ``branch`` steps: ``worry >= 7``, ``consent == yes``.

Clinicians write conditions, so the language is deliberately small: a variable, a comparison and
a number or a word, joined by ``and``/``or``. Anything else is refused when the flow is loaded.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_COMPARISON = re.compile(
    r"^\s*([a-z][a-z0-9_]*)\s*(==|!=|>=|<=|>|<)\s*(\"[^\"]*\"|'[^']*'|[^\s\"']+)\s*$"
)
_PRESENCE = re.compile(r"^\s*([a-z][a-z0-9_]*)\s+is\s+(set|empty)\s*$")


@dataclass(frozen=True)
class Comparison:
    """One ``variable op value`` test."""

    variable: str
    op: str
    value: str

    def holds(self, variables: Mapping[str, Any]) -> bool:
        """Compare numerically when both sides are numbers, else as lower-case words."""
        if self.op == "set":
            return variables.get(self.variable) not in (None, "")
        if self.op == "empty":
            return variables.get(self.variable) in (None, "")
        left = variables.get(self.variable)
        if left is None:
            return self.op == "!="
        left_number, right_number = _number(left), _number(self.value)
        if left_number is not None and right_number is not None:
            a: Any = left_number
            b: Any = right_number
        else:
            a, b = str(left).strip().lower(), self.value.strip().lower()
            if self.op not in ("==", "!="):
                return False
        return bool(
            {
                "==": a == b,
                "!=": a != b,
                ">=": a >= b,
                "<=": a <= b,
                ">": a > b,
                "<": a < b,
            }[self.op]
        )


@dataclass(frozen=True)
class Condition:
    """Comparisons joined by ``or`` of ``and`` groups."""

    any_of: tuple[tuple[Comparison, ...], ...]

    def holds(self, variables: Mapping[str, Any]) -> bool:
        """True when every comparison of at least one ``and`` group holds."""
        return any(all(c.holds(variables) for c in group) for group in self.any_of)

    @property
    def variables(self) -> set[str]:
        """The variables the condition reads."""
        return {c.variable for group in self.any_of for c in group}


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def parse_condition(text: str) -> Condition:
    """Parse a condition or raise ``ValueError`` saying how to write one."""
    groups = []
    for part in re.split(r"\s+or\s+", str(text).strip()):
        comparisons = []
        for piece in re.split(r"\s+and\s+", part):
            presence = _PRESENCE.match(piece)
            if presence:
                comparisons.append(Comparison(presence.group(1), presence.group(2), ""))
                continue
            match = _COMPARISON.match(piece)
            if not match:
                raise ValueError(
                    f"cannot read the condition '{piece.strip()}'; write it like 'worry >= 7', "
                    "'consent == yes' or 'goal_2 is set'"
                )
            value = match.group(3).strip("\"'")
            comparisons.append(Comparison(match.group(1), match.group(2), value))
        groups.append(tuple(comparisons))
    return Condition(tuple(groups))
