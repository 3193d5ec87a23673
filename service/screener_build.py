"""Build the screening's model from the labelled training split (``bravesteps screen --train``).

A multinomial logistic regression (scikit-learn, needed only here) over the features of
``flows.risk_model.features``. Its C and thresholds are chosen from predictions made by models
that did not see the message's writer (writers held out, the split's top-level groups:
the honest estimate, since a writer's style leaks across random folds), together with the
patterns: recall first, within a false-alarm budget on everyday (``none``) messages.
The frozen test split is never read here.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from flows.risk_model import FEATURES, FORMAT, NONE, PERSON, RiskModel, features
from flows.screening import CATEGORIES, CORROBORATED, RiskPatterns, normalise, screen_patterns

CLASSES = (NONE, PERSON, *CATEGORIES)
URGENCY = {name: i for i, name in enumerate(CATEGORIES)}
# Recall first within a false-alarm budget (shares of everyday messages, patterns included):
# - each category's alert threshold is the highest that alerts ALERT_RECALL of its messages
#   (with the patterns), unless that breaks the alert budget; then the lowest within it. The
#   urgent categories share URGENT_ALERT_FALSE_ALARMS (what the patterns use of it first, the
#   rest split by URGENT_SHARES: immediate danger and child protection, which must reach the duty
#   clinician and safeguarding lead, first; self-harm left to alert below them still reaches the
#   therapist by review); the others have OTHER_ALERT_FALSE_ALARMS each.
# - the review threshold is the highest that reaches REVIEW_RECALL of all risky messages and of
#   each of REVIEW_EACH, unless everyday messages flagged (alert or review) would pass
#   REVIEW_FALSE_ALARMS; then the lowest within that budget (most reach the budget allows).
ALERT_RECALL = 0.93
# The urgent categories: they share the urgent alert budget, and their pattern alerts are the
# ones the model must corroborate (the screening's own list, so the two cannot drift apart).
URGENT = CORROBORATED
URGENT_ALERT_FALSE_ALARMS = 0.02
URGENT_SHARES = {"immediate_danger": 0.35, "child_protection": 0.5, "self_harm": 0.15}
OTHER_ALERT_FALSE_ALARMS = 0.02
REVIEW_RECALL = 0.97
REVIEW_EACH = ("immediate_danger", "child_protection")
# Recall first: no budget caps the review tier (a routine "please read" is the cheap way to put a
# person in the loop); the alerts' budgets above keep urgent escalation for what is clearly urgent.
REVIEW_FALSE_ALARMS = 1.0
PERSON_RECALL = 0.95
C_VALUES = (30.0, 100.0, 300.0)
# Cross-validation holds out whole writers: one at a time up to this many, then this many folds
# of writers (each fold's writers unseen by the model that predicts them).
WRITER_FOLDS = 8
# Where the model must bear out a pattern's urgent alert (``corroborate``): the value on this grid
# that alerts the most immediate-danger and child-protection messages, cross-validated; capped
# low so that only pattern hits the model finds plainly everyday become reviews.
CORROBORATE_VALUES = (0.0, 0.05, 0.1, 0.15, 0.2)
# What a pattern hit demoted to the review tier reads as in the figures (flagged, not alerted).
DEMOTED = "review"


@dataclass(frozen=True)
class Labelled:
    """A split as texts, labels and who wrote each (``groups``), in file order."""

    texts: list[str]
    labels: list[str]
    groups: list[str]

    @property
    def digest(self) -> str:
        """A fingerprint of the split: the model records the one it was trained on."""
        return split_digest(self.texts, self.labels)


def split_digest(texts: Sequence[str], labels: Sequence[str]) -> str:
    """sha256 over the sorted (label, text) pairs."""
    h = hashlib.sha256()
    for label, text in sorted(zip(labels, texts, strict=True)):
        h.update(f"{label}\t{text}\n".encode())
    return h.hexdigest()


def read_split(path: Path) -> Labelled:
    """A split file: label to messages, or writer to (label to messages)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if all(key in CLASSES for key in data):
        data = {path.stem: data}
    split = Labelled([], [], [])
    for group, by_label in data.items():
        for label, messages in (by_label or {}).items():
            if label not in CLASSES:
                known = ", ".join(CLASSES)
                raise ValueError(f"{path}: unknown label '{label}'; use one of {known}")
            for message in messages or []:
                split.texts.append(str(message))
                split.labels.append(label)
                split.groups.append(str(group))
    return split


def _reading(text: str, patterns: RiskPatterns) -> str:
    return normalise(text, patterns)[0]


def _matrix(readings: Sequence[str], vocabulary: dict[str, int]) -> Any:
    from scipy.sparse import csr_matrix

    rows, cols, values = [], [], []
    for i, reading in enumerate(readings):
        present = features(reading)
        scale = 1.0 / len(present) ** 0.5 if present else 0.0
        for f in present:
            j = vocabulary.get(f)
            if j is not None:
                rows.append(i)
                cols.append(j)
                values.append(scale)
    return csr_matrix((values, (rows, cols)), shape=(len(readings), len(vocabulary)))


def _vocabulary(readings: Sequence[str], min_count: int = 2) -> dict[str, int]:
    counts: dict[str, int] = {}
    for reading in readings:
        for f in features(reading):
            counts[f] = counts.get(f, 0) + 1
    kept = sorted(f for f, n in counts.items() if n >= min_count)
    return {f: i for i, f in enumerate(kept)}


def _fit(readings: Sequence[str], labels: Sequence[str], c: float) -> tuple[Any, dict[str, int]]:
    from sklearn.linear_model import LogisticRegression

    vocabulary = _vocabulary(readings)
    model = LogisticRegression(C=c, class_weight="balanced", max_iter=5000)
    model.fit(_matrix(readings, vocabulary), [CLASSES.index(label) for label in labels])
    return model, vocabulary


def _out_of_fold(
    readings: Sequence[str], labels: Sequence[str], groups: Sequence[str], c: float
) -> list[list[float]]:
    """Each message's probabilities from a model trained on the other writers' messages."""
    from sklearn.model_selection import GroupKFold

    writers = len(set(groups))
    if writers < 2:
        raise ValueError("cross-validation needs at least two writers (top-level groups)")
    folds = GroupKFold(n_splits=min(writers, WRITER_FOLDS))
    out: list[list[float]] = [[] for _ in readings]
    for train, held in folds.split(list(readings), list(labels), list(groups)):
        model, vocabulary = _fit([readings[i] for i in train], [labels[i] for i in train], c)
        probabilities = model.predict_proba(_matrix([readings[i] for i in held], vocabulary))
        for i, row in zip(held, probabilities, strict=True):
            full = [0.0] * len(CLASSES)
            for k, p in zip(model.classes_, row, strict=True):
                full[int(k)] = float(p)
            out[int(i)] = full
    return out


def _log_loss(probabilities: list[list[float]], labels: Sequence[str]) -> float:
    import math

    return -sum(
        math.log(max(p[CLASSES.index(label)], 1e-9))
        for p, label in zip(probabilities, labels, strict=True)
    ) / len(labels)


def _highest(grid: Sequence[float], ok: Any) -> float:
    """The highest threshold on ``grid`` for which ``ok`` holds (the lowest if none does)."""
    for t in sorted(grid, reverse=True):
        if ok(t):
            return t
    return min(grid)


def _lowest(grid: Sequence[float], ok: Any) -> float | None:
    """The lowest threshold on ``grid`` for which ``ok`` holds (None if none does)."""
    for t in sorted(grid):
        if ok(t):
            return t
    return None


def _urgent_at(category: str, t: float, p: list[float], by_patterns: str) -> bool:
    """Whether a message alerts at ``category`` or more urgent (patterns, or the model at t)."""
    k = CLASSES.index(category)
    pattern = by_patterns in URGENCY and URGENCY[by_patterns] <= URGENCY[category]
    return pattern or p[k] >= t


def choose_thresholds(
    probabilities: list[list[float]], labels: Sequence[str], by_patterns: Sequence[str]
) -> dict[str, Any]:
    """Alert thresholds per category and the review threshold: recall first, within the
    false-alarm budgets (see the constants at the top)."""
    grid = [i / 1000 for i in range(20, 1000)]
    everyday = [i for i, label in enumerate(labels) if label == NONE]
    n_everyday = max(len(everyday), 1)
    urgent_by_patterns = sum(by_patterns[i] in URGENT for i in everyday) / n_everyday
    urgent_left = max(URGENT_ALERT_FALSE_ALARMS - urgent_by_patterns, 0.0)
    alert: dict[str, float] = {}
    for category in CATEGORIES:
        k = CLASSES.index(category)
        mine = [i for i, label in enumerate(labels) if label == category]
        budget = (
            urgent_left * URGENT_SHARES[category]
            if category in URGENT
            else OTHER_ALERT_FALSE_ALARMS
        )

        def recalled(t: float, c: str = category, mine: list[int] = mine) -> bool:
            hits = sum(_urgent_at(c, t, probabilities[i], by_patterns[i]) for i in mine)
            return hits >= ALERT_RECALL * len(mine)

        def within(t: float, k: int = k, budget: float = budget) -> bool:
            return sum(probabilities[i][k] >= t for i in everyday) <= budget * n_everyday

        wanted = _highest(grid, recalled)
        allowed = _lowest(grid, within)
        alert[category] = max(wanted, allowed if allowed is not None else 1.0)
    people = [i for i, label in enumerate(labels) if label == PERSON]
    k_person = CLASSES.index(PERSON)
    alert[PERSON] = _highest(
        grid,
        lambda t: (
            sum(probabilities[i][k_person] >= t for i in people) >= PERSON_RECALL * len(people)
        ),
    )
    risk_ks = [CLASSES.index(c) for c in CATEGORIES]

    def flagged(i: int, t: float) -> bool:
        p = probabilities[i]
        return (
            by_patterns[i] != NONE
            or sum(p[k] for k in risk_ks) >= t
            or any(p[CLASSES.index(c)] >= alert[c] for c in CATEGORIES)
        )

    risky = [i for i, label in enumerate(labels) if label in URGENCY]
    each = {c: [i for i, label in enumerate(labels) if label == c] for c in REVIEW_EACH}

    def reached(t: float) -> bool:
        groups = [risky, *(g for g in each.values() if g)]
        return all(sum(flagged(i, t) for i in g) >= REVIEW_RECALL * len(g) for g in groups)

    def affordable(t: float) -> bool:
        return sum(flagged(i, t) for i in everyday) <= REVIEW_FALSE_ALARMS * n_everyday

    review = _highest(grid, reached)
    if not affordable(review):
        cheapest = _lowest(grid, affordable)
        review = cheapest if cheapest is not None else max(grid)
    return {"alert": alert, "review": review}


def cross_validated(
    probabilities: list[list[float]],
    labels: Sequence[str],
    by_patterns: Sequence[str],
    thresholds: dict[str, Any],
) -> dict[str, float]:
    """What the thresholds do on the out-of-fold predictions: everyday messages flagged and
    urgently alerted, risky messages reached, and ID/CP alerted at their urgency or more."""
    alert, review = thresholds["alert"], thresholds["review"]
    risk_ks = [CLASSES.index(c) for c in CATEGORIES]

    def alerted(i: int) -> str:
        best = by_patterns[i] if by_patterns[i] in URGENCY else NONE
        for c in CATEGORIES:
            if probabilities[i][CLASSES.index(c)] >= alert[c]:
                if best == NONE or URGENCY[c] < URGENCY[best]:
                    best = c
                break
        return best

    def share(rows: list[int], ok: Any) -> float:
        return round(sum(bool(ok(i)) for i in rows) / len(rows), 4) if rows else 0.0

    def flagged(i: int) -> bool:
        return (
            alerted(i) != NONE
            or by_patterns[i] == DEMOTED
            or sum(probabilities[i][k] for k in risk_ks) >= review
        )

    def of(label: str) -> list[int]:
        return [i for i, x in enumerate(labels) if x == label]

    risky = [i for i, x in enumerate(labels) if x in URGENCY]
    return {
        "everyday_flagged": share(of(NONE), flagged),
        "everyday_urgent_alerts": share(of(NONE), lambda i: alerted(i) in URGENT),
        "risky_reached": share(risky, flagged),
        **{f"{c}_reached": share(of(c), flagged) for c in REVIEW_EACH},
        **{
            f"{c}_alerted": share(
                of(c), lambda i, c=c: alerted(i) != NONE and URGENCY[alerted(i)] <= URGENCY[c]
            )
            for c in REVIEW_EACH
        },
    }


@dataclass(frozen=True)
class Built:
    """What ``build`` made: the model's data and the cross-validated predictions it chose from."""

    data: dict[str, Any]
    out_of_fold: list[list[float]]
    split: Labelled


def corroborated(
    probabilities: list[list[float]], by_patterns: Sequence[str], corroborate: float
) -> list[str]:
    """The patterns' findings as the screening uses them: an urgent one the model does not bear
    out (summed risk below ``corroborate``) becomes ``DEMOTED`` (a review)."""
    risk_ks = [CLASSES.index(c) for c in CATEGORIES]
    return [
        DEMOTED if found in URGENT and sum(p[k] for k in risk_ks) < corroborate else found
        for p, found in zip(probabilities, by_patterns, strict=True)
    ]


def _choose(
    oof: list[list[float]], labels: Sequence[str], by_patterns: Sequence[str]
) -> tuple[dict[str, Any], dict[str, float], list[str]]:
    """Thresholds with the ``corroborate`` value that alerts the most immediate-danger and
    child-protection messages (the smaller value breaks ties)."""
    best: tuple[float, dict[str, Any], dict[str, float], list[str]] | None = None
    for value in CORROBORATE_VALUES:
        found = corroborated(oof, by_patterns, value)
        chosen = {**choose_thresholds(oof, labels, found), "corroborate": value}
        figures = cross_validated(oof, labels, found, chosen)
        alerted = sum(figures[f"{c}_alerted"] for c in REVIEW_EACH)
        if best is None or alerted > best[0]:
            best = (alerted, chosen, figures, found)
    assert best is not None
    return best[1], best[2], best[3]


def build(train: Labelled, patterns: RiskPatterns, language: str = "en") -> Built:
    """Train on the whole split, with C and thresholds chosen by writers-held-out
    cross-validation: the C whose thresholds flag the fewest everyday messages for the most
    reach (log loss breaks ties)."""
    readings = [_reading(t, patterns) for t in train.texts]
    by_patterns = [screen_patterns(t, patterns, language).category for t in train.texts]
    best: tuple[tuple[float, ...], float, list[list[float]], dict[str, Any], list[str]] | None
    best = None
    for c in C_VALUES:
        oof = _out_of_fold(readings, train.labels, train.groups, c)
        chosen, figures, found = _choose(oof, train.labels, by_patterns)
        rank = (
            figures["risky_reached"] < REVIEW_RECALL,
            figures["everyday_flagged"],
            _log_loss(oof, train.labels),
        )
        if best is None or rank < best[0]:
            best = (rank, c, oof, chosen, found)
    assert best is not None
    _, c, oof, thresholds, by_patterns = best
    model, vocabulary = _fit(readings, train.labels, c)
    order = [int(k) for k in model.classes_]
    weights = {
        f: [round(float(model.coef_[order.index(k)][j]), 4) for k in range(len(CLASSES))]
        for f, j in vocabulary.items()
    }
    intercept = [round(float(model.intercept_[order.index(k)]), 4) for k in range(len(CLASSES))]
    digest = train.digest
    data = {
        "format": FORMAT,
        "version": f"{language}-{digest[:10]}",
        "trained_on": digest,
        "messages": len(train.texts),
        "c": c,
        "features": FEATURES,
        "cross_validation": cross_validated(oof, train.labels, by_patterns, thresholds),
        "classes": list(CLASSES),
        "intercept": intercept,
        "thresholds": thresholds,
        "weights": weights,
    }
    RiskModel(data)  # the file must read back
    return Built(data, oof, train)


def write_model(data: dict[str, Any], path: Path) -> None:
    """The model as JSON, one feature a line (readable diffs)."""
    head = {k: v for k, v in data.items() if k != "weights"}
    lines = [json.dumps(head, sort_keys=True)[:-1] + ', "weights": {']
    items = sorted(data["weights"].items())
    for i, (f, w) in enumerate(items):
        comma = "," if i < len(items) - 1 else ""
        lines.append(f"{json.dumps(f, ensure_ascii=False)}: {json.dumps(w)}{comma}")
    lines.append("}}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
