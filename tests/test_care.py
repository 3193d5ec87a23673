"""flows.care: the care rules that decide from measures, tested as data without a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from flows.care import (
    CALL_WEEKS,
    RULES,
    check_silence,
    is_getting_worse,
    missed_check_in,
    prompts_a_call,
    respond_to_alert,
    respond_to_media,
    respond_to_review,
    rule_for,
)
from flows.screening import Screening

DATA = Path(__file__).parent / "data" / "care"


def _cases(name: str) -> list[dict[str, Any]]:
    return yaml.safe_load((DATA / name).read_text(encoding="utf-8"))


CASES = _cases("getting_worse.yaml")
DAY0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _day(n: float | None) -> datetime | None:
    return None if n is None else DAY0 + timedelta(days=n)


def _name(case: dict[str, Any]) -> str:
    return f"{case['measure']}:{case['previous']}->{case['value']}"


@pytest.mark.parametrize("case", CASES, ids=_name)
def test_getting_worse(case: dict[str, Any]) -> None:
    assert is_getting_worse(case["measure"], case["previous"], case["value"]) is case["worse"]


@pytest.mark.parametrize("case", _cases("silence.yaml"), ids=lambda c: c["case"])
def test_silence(case: dict[str, Any]) -> None:
    decided = check_silence(
        last_heard=_day(case["last_heard"]),
        consented_at=_day(case["consented"]),
        held=case["held"],
        nudged=case["nudged"],
        now=_day(case["now"]) or DAY0,
    )
    assert (decided.nudge, decided.check_again_at) == (case["nudge"], _day(case["check_again"]))


@pytest.mark.parametrize("case", _cases("missed_check_ins.yaml"), ids=lambda c: str(c["before"]))
def test_missed_check_ins(case: dict[str, Any]) -> None:
    decided = missed_check_in(case["before"], nudged=case["nudged"])
    assert (decided.in_a_row, decided.nudge) == (case["in_a_row"], case["nudge"])


def test_the_therapist_is_asked_to_call_in_the_programme_s_weeks() -> None:
    assert [w for w in range(0, 10) if prompts_a_call(w)] == sorted(CALL_WEEKS) == [1, 2, 4, 6, 8]
    assert not prompts_a_call(None) and not prompts_a_call("1")


def test_every_risk_category_has_a_rule_and_unknown_kinds_are_routine() -> None:
    for kind in ("immediate_danger", "child_protection", "self_harm"):
        assert RULES[kind].urgency == "urgent" and RULES[kind].pauses_programme
    assert RULES["immediate_danger"].within == "15 minutes"
    assert rule_for("a_kind_a_flow_made_up").urgency == "routine"


@pytest.mark.parametrize(
    "case", _cases("risk_response.yaml"), ids=lambda c: f"{c['tier']}:{c['category']}:{c['about']}"
)
def test_risk_response(case: dict[str, Any]) -> None:
    found = Screening(case["category"], "a-rule", case["tier"], about=case["about"])
    if case["tier"] == "alert":
        got = respond_to_alert(found, staffed=case["staffed"])
    else:
        got = respond_to_review(found)
    assert (list(got.replies), got.alert, got.holds_programme) == (
        case["replies"],
        case["alert"],
        case["holds"],
    )


def test_media_the_screening_cannot_read_asks_a_person_to_listen_or_look() -> None:
    assert respond_to_media(["audio/ogg"]).alert == "please_listen"
    assert respond_to_media(["image/jpeg", "audio/amr"]).alert == "please_listen"
    assert respond_to_media(["image/png"]).alert == "please_look"
    assert respond_to_media(["video/mp4", ""]).alert == "please_look"
    assert respond_to_media([]).replies == ()
