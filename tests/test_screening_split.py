"""The screening's data: a frozen test split nothing is tuned on, a training split the model is
built from, and the bars the service promises, measured on the frozen split only."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import yaml

from flows.screening import ALERT, CATEGORIES, REVIEW, load_patterns, screen

DATA = Path(__file__).parent / "data" / "screening"
ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "flows" / "risk" / "en.model.json"
# The frozen split's sha256, as written on 2026-12-02 (also in bench/README.md). Never change it:
# a test split that is edited after a look at its misses is tuned on.
FROZEN = "50086898085ff4ab796dcb524bd2a967d490ba256d9886ad87d10777886351a1"
URGENCY = {name: i for i, name in enumerate((*CATEGORIES, "none"))}


def _messages(data: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, text) for a split, whether grouped by writer or not."""
    if all(isinstance(v, list) for v in data.values()):
        data = {"": data}
    return [(label, str(m)) for group in data.values() for label, ms in group.items() for m in ms]


def _key(text: str) -> str:
    """A message as compared: case, spacing and ASCII punctuation do not make it another."""
    return " ".join(re.sub(r"[!-/:-@\[-`{-~]", " ", text.lower()).split())


TRAIN = _messages(yaml.safe_load((DATA / "train.yaml").read_text(encoding="utf-8")))
TEST = _messages(yaml.safe_load((DATA / "test.yaml").read_text(encoding="utf-8")))
VALIDATION = _messages(yaml.safe_load((DATA / "validation.yaml").read_text(encoding="utf-8")))


def test_the_test_split_is_frozen() -> None:
    assert hashlib.sha256((DATA / "test.yaml").read_bytes()).hexdigest() == FROZEN


def test_training_and_test_share_no_message() -> None:
    shared = {_key(t) for _, t in TRAIN} & {_key(t) for _, t in TEST}
    assert shared == set(), sorted(shared)[:5]


def test_the_validation_split_shares_no_message_with_training_or_test() -> None:
    """Held apart from the model it measures (folding it into train.yaml ends its use)."""
    kept = {_key(t) for _, t in VALIDATION}
    for other in (TRAIN, TEST):
        shared = kept & {_key(t) for _, t in other}
        assert shared == set(), sorted(shared)[:5]


def test_the_model_is_built_from_the_training_split_as_it_is() -> None:
    from service.screener_build import read_split, split_digest

    model = json.loads(MODEL.read_text(encoding="utf-8"))
    train = read_split(DATA / "train.yaml")
    assert model["trained_on"] == split_digest(train.texts, train.labels), (
        "train.yaml changed since the model was built: run `bravesteps screen --train`"
    )
    assert model["messages"] == len(train.texts)


def test_the_splits_are_big_and_varied_enough() -> None:
    both = TRAIN + TEST
    risky = [t for label, t in both if label in CATEGORIES]
    everyday = [t for label, t in both if label == "none"]
    assert len(both) >= 1500 and len(risky) >= 600 and len(everyday) >= 800
    for label in CATEGORIES:
        assert sum(1 for lab, _ in TEST if lab == label) >= 50, label


def _rate(hits: int, total: int) -> float:
    return hits / total if total else 0.0


def test_the_frozen_split_meets_the_screening_bars() -> None:
    """Issue 14's bars, on words the screening was never tuned on (figures: bench/README.md):
    risky messages reach a person (alert or review) >= 0.97, immediate danger and child
    protection each >= 0.97 and an urgent alert >= 0.90; everyday messages flagged <= 8 %, an
    urgent alert <= 2 %; a request for a person reaches the therapist >= 0.95."""
    patterns = load_patterns(ROOT / "flows" / "risk")
    got = [(label, screen(text, patterns)) for label, text in TEST]
    risky = [(lab, s) for lab, s in got if lab in CATEGORIES]
    reached = [s.tier in (ALERT, REVIEW) for _, s in risky]
    assert _rate(sum(reached), len(reached)) >= 0.97
    for label in ("immediate_danger", "child_protection"):
        mine = [s for lab, s in risky if lab == label]
        assert _rate(sum(s.tier in (ALERT, REVIEW) for s in mine), len(mine)) >= 0.97, label
        urgent = sum(s.tier == ALERT and URGENCY[s.category] <= URGENCY[label] for s in mine)
        assert _rate(urgent, len(mine)) >= 0.90, label
    people = [s for lab, s in got if lab == "person"]
    assert _rate(sum(s.person or s.tier != "none" for s in people), len(people)) >= 0.95
    none = [s for lab, s in got if lab == "none"]
    assert _rate(sum(s.tier in (ALERT, REVIEW) for s in none), len(none)) <= 0.08
    urgent_alarms = sum(s.tier == ALERT and URGENCY[s.category] <= 2 for s in none)
    assert _rate(urgent_alarms, len(none)) <= 0.02
