"""flows.screening against the labelled corpus in tests/data/risk_corpus.yaml, plus the loader."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from flows.screening import CATEGORIES, Screening, load_patterns, normalise, screen
from flows.yamlload import SourceError

ROOT = Path(__file__).resolve().parent.parent
CORPUS: dict[str, Any] = yaml.safe_load(
    (Path(__file__).parent / "data" / "risk_corpus.yaml").read_text(encoding="utf-8")
)
PATTERNS = load_patterns(ROOT / "flows" / "risk")
URGENCY = {name: i for i, name in enumerate((*CATEGORIES, "none"))}


def _figures(sections: list[str]) -> dict[str, tuple[int, int]]:
    """Per label: (messages, recalled); for ``none``: (messages, false alarms)."""
    out: dict[str, tuple[int, int]] = {}
    for label in (*CATEGORIES, "none"):
        total = hits = 0
        for section in sections:
            for message in CORPUS[section].get(label, []):
                got = screen(str(message), PATTERNS).category
                total += 1
                if label == "none":
                    hits += got != "none"
                else:
                    hits += URGENCY[got] <= URGENCY[label]
        out[label] = (total, hits)
    return out


def _report(name: str, figures: dict[str, tuple[int, int]]) -> str:
    lines = [f"{name}:"]
    for label in CATEGORIES:
        total, hits = figures[label]
        lines.append(f"  {label:<17} recall {hits}/{total} = {hits / total:.3f}")
    total, alarms = figures["none"]
    lines.append(f"  {'none':<17} false alarms {alarms}/{total} = {alarms / total:.3f}")
    return "\n".join(lines)


def test_corpus_bars(capsys: pytest.CaptureFixture[str]) -> None:
    dev = _figures(["development"])
    held = _figures(["heldout"])
    both = _figures(["development", "heldout"])
    with capsys.disabled():
        print(
            "\n" + "\n".join(_report(n, f) for n, f in [("development", dev), ("held-out", held)])
        )
    for label in ("immediate_danger", "child_protection"):
        total, hits = both[label]
        assert hits == total, f"{label}: recall must be 1.0, got {hits}/{total}"
    risky = sum(both[c][0] for c in CATEGORIES)
    recalled = sum(both[c][1] for c in CATEGORIES)
    assert recalled / risky >= 0.98, f"overall recall {recalled}/{risky}"
    total, alarms = both["none"]
    assert alarms / total <= 0.05, f"false alarms {alarms}/{total}"


def test_every_development_disclosure_is_recalled() -> None:
    missed = [
        (label, message)
        for label in CATEGORIES
        for message in CORPUS["development"][label]
        if URGENCY[screen(str(message), PATTERNS).category] > URGENCY[label]
    ]
    assert missed == []


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
    assert screen(text, PATTERNS).category == category


def test_screening_gives_rule_id_not_text() -> None:
    result = screen("he has a knife", PATTERNS)
    assert result == Screening("immediate_danger", "weapon-present")
    assert screen("see you tuesday", PATTERNS) == Screening("none", None)


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


def test_screening_is_fast() -> None:
    import time

    messages = [str(m) for section in CORPUS.values() for msgs in section.values() for m in msgs]
    start = time.perf_counter()
    for message in messages:
        screen(message, PATTERNS)
    per_message = (time.perf_counter() - start) / len(messages)
    assert per_message < 0.001


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
