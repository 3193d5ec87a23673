"""flows.screening: the normaliser, the patterns against their own messages, the loader."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from flows.screening import CATEGORIES, load_patterns, normalise, screen, screen_patterns
from flows.yamlload import SourceError

ROOT = Path(__file__).resolve().parent.parent
TRAIN: dict[str, Any] = yaml.safe_load(
    (Path(__file__).parent / "data" / "screening" / "train.yaml").read_text(encoding="utf-8")
)
PATTERNS = load_patterns(ROOT / "flows" / "risk")
RULES_ONLY = load_patterns(ROOT / "flows" / "risk", models=False)
URGENCY = {name: i for i, name in enumerate((*CATEGORIES, "none"))}


def test_the_patterns_alone_recall_every_disclosure_they_were_written_against() -> None:
    earlier = TRAIN["earlier_corpus"]
    missed = [
        (label, message)
        for label in CATEGORIES
        for message in earlier[label]
        if URGENCY[screen_patterns(str(message), RULES_ONLY).category] > URGENCY[label]
    ]
    assert len(missed) <= 0.01 * sum(len(earlier[label]) for label in CATEGORIES), missed
    alarms = [m for m in earlier["none"] if screen_patterns(str(m), RULES_ONLY).category != "none"]
    assert len(alarms) <= 0.05 * len(earlier["none"])


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("she is scared of dying and he hit her again tonight", "child_protection"),
        ("she's scared of dying", "none"),
        ("i nearly killed myself laughing, then i thought i want to kill myself", "self_harm"),
        ("this is killing me lol", "none"),
        ("she keeps hitting her brother right now", "none"),
        ("the dog bit me lol", "none"),
        ("dead tired but i want to die", "self_harm"),
        ("he has a k n i f e", "immediate_danger"),
        ("I'VE TAKEN ALL MY TABLETS", "immediate_danger"),
        ("Im g0nna k1ll mys3lf", "self_harm"),
        ("i want to kiiiill myself", "self_harm"),
        ("s.u.i.c.i.d.e", "self_harm"),
        ("suicidle", "self_harm"),
        ("sewerslide", "self_harm"),
        ("kys", "self_harm"),
        ("he's got a 🔪", "immediate_danger"),
        ("sui\u0301cide", "self_harm"),
        ("ｓｕｉｃｉｄｅ", "self_harm"),
    ],
)
def test_screen_examples(text: str, category: str) -> None:
    assert screen_patterns(text, RULES_ONLY).category == category


def test_screening_gives_rule_id_not_text() -> None:
    result = screen("he has a knife", PATTERNS)
    assert result.category == "immediate_danger" and result.rule == "weapon-present"
    assert result.tier == "alert"
    nothing = screen("see you tuesday", PATTERNS)
    assert (nothing.category, nothing.rule, nothing.tier) == ("none", None, "none")


def test_unknown_language_uses_english() -> None:
    assert screen("i want to die", PATTERNS, language="pl").category == "self_harm"


@pytest.mark.parametrize(
    ("text", "reading"),
    [
        ("Don't", "do not"),
        ("k1ll1ng", "killing"),
        ("k i l l myself", "kill myself"),
        ("s.u.i.c.i.d.e", "suicide"),
        ("Café", "cafe"),
        ("he’s", "hes"),
        ("10pm", "10pm"),
        ("$uicide", "suicide"),
        ("kms", "kill myself"),
        ("💊💊", "pills pills"),
        ("n e more", "anymore"),
    ],
)
def test_normalise(text: str, reading: str) -> None:
    assert reading in normalise(text, PATTERNS)


def test_stretched_letters_give_both_readings() -> None:
    assert normalise("soooo good", PATTERNS) == ["so good", "soo good"]


GOOD_RULE = """
categories:
  self_harm:
    rules:
      - id: a
        note: n
        phrases: ["want to die"]
"""


def _write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "en.yaml").write_text(text, encoding="utf-8")
    return tmp_path


def _error(tmp_path: Path, text: str) -> SourceError:
    with pytest.raises(SourceError) as info:
        load_patterns(_write(tmp_path, text))
    return info.value


def test_loader_accepts_a_small_file(tmp_path: Path) -> None:
    patterns = load_patterns(_write(tmp_path, GOOD_RULE))
    assert screen("i want to die", patterns).category == "self_harm"


def test_loader_unknown_category(tmp_path: Path) -> None:
    error = _error(tmp_path, GOOD_RULE.replace("self_harm", "selfharm"))
    assert error.line == 3 and "unknown category 'selfharm'" in error.message


def test_loader_bad_regex(tmp_path: Path) -> None:
    text = GOOD_RULE + "      - id: b\n        note: n\n        regex: 'kill(('\n"
    error = _error(tmp_path, text)
    assert error.line == 10 and "not valid" in error.message


def test_loader_empty_phrase(tmp_path: Path) -> None:
    error = _error(tmp_path, GOOD_RULE.replace('["want to die"]', '["want to die", ""]'))
    assert error.line == 7 and "empty" in error.message


def test_loader_unknown_set_and_bad_syntax(tmp_path: Path) -> None:
    error = _error(tmp_path, GOOD_RULE.replace("want to die", "want to <nothing>"))
    assert error.line == 7 and "<nothing>" in error.message
    error = _error(tmp_path, GOOD_RULE.replace("want to die", "want {to die"))
    assert error.line == 7 and "bracket" in error.message


def test_loader_duplicate_id_and_missing_note(tmp_path: Path) -> None:
    text = GOOD_RULE + "      - id: a\n        note: n\n        phrases: [x]\n"
    assert "twice" in _error(tmp_path, text).message
    assert "note" in _error(tmp_path, GOOD_RULE.replace("note: n", "note: ''")).message


def test_loader_needs_english(tmp_path: Path) -> None:
    (tmp_path / "pl.yaml").write_text(GOOD_RULE, encoding="utf-8")
    with pytest.raises(SourceError):
        load_patterns(tmp_path)


def test_other_language_adds_to_english(tmp_path: Path) -> None:
    _write(tmp_path, GOOD_RULE)
    pl = GOOD_RULE.replace("want to die", "chce umrzec").replace("id: a", "id: pl-a")
    (tmp_path / "pl.yaml").write_text(pl, encoding="utf-8")
    patterns = load_patterns(tmp_path)
    assert screen("chcę umrzeć", patterns, "pl").category == "self_harm"
    assert screen("i want to die", patterns, "pl").category == "self_harm"
    assert screen("chcę umrzeć", patterns, "en").category == "none"


def _model_finding_everyday(word: str, corroborate: float) -> Any:
    """A model sure that any message with ``word`` is everyday and unsure of the rest."""
    from flows.risk_model import RiskModel

    classes = ["none", "person", *CATEGORIES]
    return RiskModel(
        {
            "format": 1,
            "version": "en-test",
            "trained_on": "-",
            "classes": classes,
            "intercept": [0.0] * len(classes),
            "weights": {f"w:{word}": [400.0, 0, 0, 0, 0, 0, 0]},
            "thresholds": {
                "alert": {c: 0.99 for c in classes[1:]},
                "review": 0.99,
                "corroborate": corroborate,
            },
        }
    )


@pytest.mark.parametrize(
    ("corroborate", "tier"),
    [(0.0, "alert"), (0.2, "review")],
)
def test_an_urgent_pattern_the_model_finds_plainly_everyday_goes_to_review(
    corroborate: float, tier: str
) -> None:
    patterns = RULES_ONLY.with_models({"en": _model_finding_everyday("dishwasher", corroborate)})
    found = screen("he is holding a knife, found it in the dishwasher", patterns)
    assert found.category == "immediate_danger" and found.rule == "weapon-present"
    assert found.tier == tier
    # Without the everyday word the model is unsure (risk 5/7), so the pattern's alert stands.
    unsure = screen("he is holding a knife in the kitchen", patterns)
    assert (unsure.category, unsure.tier) == ("immediate_danger", "alert")


def test_corroboration_leaves_the_less_urgent_categories_and_short_messages_alone() -> None:
    patterns = RULES_ONLY.with_models({"en": _model_finding_everyday("dishwasher", 0.2)})
    # domestic abuse is not an urgent category: its pattern's alert stands
    found = screen("he checks my phone every night and the dishwasher", patterns)
    assert (found.category, found.tier) == ("domestic_abuse", "alert")
    # under three words the model does not read the message at all
    assert screen("999", patterns).tier == "alert"
