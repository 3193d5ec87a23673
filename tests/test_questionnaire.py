"""A licensed questionnaire can be added as a flow file: items, ranges, a total and subscales.

Shown with made-up items (no real questionnaire's words are in this repository)."""

from __future__ import annotations

from pathlib import Path

from flows.conversation import SYSTEM_KEYS
from flows.loader import load_flow_dir
from flows.scripts import load_script, run_script

DATA = Path(__file__).parent / "data" / "questionnaire"
KEYS = {"t.item_1", "t.item_2", "t.item_3", "t.item_4", *SYSTEM_KEYS}


def test_a_questionnaire_is_scored_into_a_total_and_subscales() -> None:
    flowset = load_flow_dir(DATA / "flows", KEYS)
    result = run_script(
        flowset, lambda key, variables, language: key, load_script(DATA / "scripts" / "scored.yaml")
    )
    assert result.failures == []


def test_a_wrong_score_fails_the_script(tmp_path: Path) -> None:
    flowset = load_flow_dir(DATA / "flows", KEYS)
    wrong = (
        (DATA / "scripts" / "scored.yaml")
        .read_text()
        .replace("made_up_total: 14", "made_up_total: 13")
    )
    script = tmp_path / "wrong.yaml"
    script.write_text(wrong)
    result = run_script(flowset, lambda key, variables, language: key, load_script(script))
    assert any("made_up_total = 13" in failure for failure in result.failures)
