"""The screening's statistical half: a linear model over words and letter groups.

It is trained by ``bravesteps screen --train`` from the labelled training split
(``tests/data/screening/train.yaml``) and shipped as ``flows/risk/<lang>.model.json``; it runs here
with no third-party code and no network. It reads a message as the patterns do (the normaliser's
first reading), so text-speak, emoji and censored spellings reach it already spelled out.

Pure: no I/O except ``load_model``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

NONE = "none"
PERSON = "person"
FORMAT = 1


# The feature sets a model file can name (``"features"``; files without the key use 1).
# 2 adds letter groups of 4 to 6 that run across word edges ("s:"), so word pairs spelled apart
# or run together ("my dad hit", "dadhit") still meet; it cut everyday false alarms at equal
# reach in leave-one-writer-out cross-validation.
FEATURES = 2
_SPAN_SIZES = (4, 5, 6)


def features(reading: str, version: int = FEATURES) -> list[str]:
    """The features of one normalised reading: words, word pairs, letter groups of 3 to 5 within
    each word (with its edges marked) and, from version 2, letter groups of 4 to 6 across the
    whole reading (spaces included), each once."""
    return sorted(_feature_set(reading, version))


def _feature_set(reading: str, version: int) -> set[str]:
    words = reading.split()
    out: set[str] = set()
    for i, word in enumerate(words):
        out.add("w:" + word)
        if i:
            out.add("b:" + words[i - 1] + " " + word)
        padded = f"<{word}>"
        for size in (3, 4, 5):
            for start in range(len(padded) - size + 1):
                out.add("c:" + padded[start : start + size])
    if version >= 2 and words:
        spaced = " " + " ".join(words) + " "
        for size in _SPAN_SIZES:
            for start in range(len(spaced) - size + 1):
                out.add("s:" + spaced[start : start + size])
    return out


@dataclass(frozen=True)
class Thresholds:
    """Where a class's probability becomes an alert, and where any risk becomes worth a read."""

    alert: dict[str, float]  # per risk category (and ``person``)
    review: float  # the summed probability of the risk categories
    # Below this summed risk probability the model does not bear out a pattern's urgent alert
    # (immediate danger, child protection, self-harm): it becomes a review (0: every one stands).
    corroborate: float = 0.0


@dataclass(frozen=True)
class Scores:
    """One message's probabilities per class (``none``, ``person`` and the risk categories)."""

    probabilities: dict[str, float]

    def risk(self, categories: Iterable[str]) -> float:
        """The summed probability of ``categories``."""
        return sum(self.probabilities.get(c, 0.0) for c in categories)


class RiskModel:
    """A multinomial logistic regression: a weight per class for each known feature."""

    def __init__(self, data: dict[str, Any]) -> None:
        if data.get("format") != FORMAT:
            raise ValueError(f"model format {data.get('format')!r}; this code reads {FORMAT}")
        self.version: str = str(data["version"])
        self.trained_on: str = str(data["trained_on"])
        self.classes: tuple[str, ...] = tuple(data["classes"])
        self.intercept: list[float] = [float(x) for x in data["intercept"]]
        self.weights: dict[str, list[float]] = data["weights"]
        self.features: int = int(data.get("features", 1))
        if self.features not in (1, 2):
            raise ValueError(f"feature set {self.features}; this code reads 1 and 2")
        raw = data["thresholds"]
        self.thresholds = Thresholds(
            {k: float(v) for k, v in raw["alert"].items()},
            float(raw["review"]),
            float(raw.get("corroborate", 0.0)),
        )

    def score(self, reading: str) -> Scores:
        """Class probabilities for one normalised reading (binary features, scaled to unit length
        as in training)."""
        present = _feature_set(reading, self.features)
        weights = self.weights
        found = [w for f in present if (w := weights.get(f)) is not None]
        scale = 1.0 / math.sqrt(len(present)) if present else 0.0
        if found:
            columns = zip(*found, strict=True)
            logits = [b + scale * sum(col) for b, col in zip(self.intercept, columns, strict=True)]
        else:
            logits = list(self.intercept)
        top = max(logits)
        exps = [math.exp(x - top) for x in logits]
        norm = sum(exps)
        return Scores({c: e / norm for c, e in zip(self.classes, exps, strict=True)})


def load_model(path: Path) -> RiskModel | None:
    """The model stored at ``path``, or None when there is none (patterns alone then)."""
    if not path.exists():
        return None
    return RiskModel(json.loads(path.read_text(encoding="utf-8")))
