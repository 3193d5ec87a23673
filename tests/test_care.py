"""flows.care: the care rules that decide from measures, tested as data without a database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from flows.care import is_getting_worse

CASES: list[dict[str, Any]] = yaml.safe_load(
    (Path(__file__).parent / "data" / "care" / "getting_worse.yaml").read_text(encoding="utf-8")
)


def _name(case: dict[str, Any]) -> str:
    return f"{case['measure']}:{case['previous']}->{case['value']}"


@pytest.mark.parametrize("case", CASES, ids=_name)
def test_getting_worse(case: dict[str, Any]) -> None:
    assert is_getting_worse(case["measure"], case["previous"], case["value"]) is case["worse"]
