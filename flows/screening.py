"""Risk screening of every free-text message, before anything else reads it.

The patterns live in ``flows/risk/<lang>.yaml`` (the phrase syntax is documented at the top of
``en.yaml``); this module normalises a message (case, accents, leetspeak, letters spaced out,
stretched letters, apostrophes, text-speak and emoji from the YAML) and finds the most urgent
category whose rules match outside that category's "not risk" exclusions.

An exclusion only blanks out the span it matched, so a second, genuine disclosure in the same
message is still caught. A match never decides care: the caller alerts a person.

Pure: no I/O except ``load_patterns``; no third-party code beyond the project's YAML reader.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from flows.risk_model import PERSON, RiskModel, Scores, load_model
from flows.yamlload import Located, SourceError, load_located

CATEGORIES: tuple[str, ...] = (
    "immediate_danger",
    "child_protection",
    "self_harm",
    "domestic_abuse",
    "parent_distress",
)
NONE = "none"
# Not a risk: a parent asking for a person, in any words. Its rules sit in the same files.
ASKED_FOR_PERSON = "asked_for_person"
ALERT, REVIEW = "alert", "review"
# In the review tier, the most urgent category at least this likely is the one named.
PLAUSIBLE = 0.2
# A pattern's alert in these categories is urgent (minutes to hours); where the model, reading
# the whole message, finds it very unlikely to be risk at all (the model's ``corroborate``), the
# message goes to the review tier instead: the parent still gets the line with where to get help
# now and the therapist a "please read", and the urgent rota is kept for what is plausibly urgent.
CORROBORATED = ("immediate_danger", "child_protection", "self_harm")
# A message of fewer words than this ("yes please", "7", "3 5") gives the model too little to
# judge: the patterns (and the keywords) read it alone.
MODEL_MIN_WORDS = 3
_LETTERS = re.compile(r"[a-z]")


@dataclass(frozen=True)
class Screening:
    """What screening made of one message (for audit: never its text)."""

    category: str  # one of CATEGORIES or "none"
    rule: str | None  # the rule that matched, or "model:<version>"
    tier: str = NONE  # "alert", "review" (worth a person's read) or "none"
    score: float | None = None  # the model's probability of ``category``
    about: str = "parent"  # self-harm: "child" when the words are about the child
    person: bool = False  # asks for a person (acted on when nothing more urgent is)

    @property
    def label(self) -> str:
        """As ``bravesteps screen`` prints it: the category, ``review:<category>`` or ``none``."""
        return f"review:{self.category}" if self.tier == REVIEW else self.category


# --- normalisation ------------------------------------------------------------------------------

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "`": "'", "\u00b4": "'", "\u02bc": "'"})
_LEET = {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "@": "a", "$": "s"}
# A leet digit counts as a letter only straight after a letter ("k1ll", "mys3lf"), so "10pm" and
# "30 paracetamol" keep their numbers; "@" and "$" count next to a letter on either side.
_LEET_DIGIT = re.compile(r"(?<=[a-z])[01345@$]+|[@$](?=[a-z])")
# Letters only: "999" and "111" are numbers a parent may ask for, never stretched letters.
_STRETCH = re.compile(r"([a-z])\1{2,}")
# Letters hidden by a symbol inside a word ("s*x", "k!ll", "f**k", "ab#se"), or starred at its end.
_CENSORED = re.compile(r"[a-z]+(?:[*#%!]+[a-z]+)+|[a-z]+\*+(?![a-z0-9])")
_CENSOR_RUN = re.compile(r"[*#%!]+")
_AGE = re.compile(r"(?<![a-z0-9])([0-9]{1,2}) ?(?:yo|y o|yrs|yr|years)(?: old)?(?![a-z0-9])")
_NON_WORD = re.compile(r"[^a-z0-9']+")
_SPACES = re.compile(r"\s+")
# Three or more single letters in a row, spaced or dotted out: "k i l l", "s.u.i.c.i.d.e".
_SPELLED_OUT = re.compile(r"(?<![a-z0-9])(?:[a-z] ){2,}[a-z](?![a-z0-9])")
_VARIATION = re.compile("[\ufe0e\ufe0f\u200d]")


def _join_letters(match: re.Match[str]) -> str:
    """ "k i l l" -> "kill"; a leading "a" or "i" stays a word ("a k n i f e" -> "a knife")."""
    run = match.group(0)
    if run[0] in "ai" and len(run) >= 7:
        return run[:2] + run[2:].replace(" ", "")
    return run.replace(" ", "")


def _strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFD", text)
    return "".join(c for c in decomposed if unicodedata.category(c) != "Mn")


def _basic(text: str) -> str:
    """Lower case, NFKC, no accents, one kind of apostrophe, no emoji variation selectors."""
    text = unicodedata.normalize("NFKC", text).lower().translate(_APOSTROPHES)
    return _VARIATION.sub("", _strip_accents(text))


def _unleet(text: str) -> str:
    def swap(match: re.Match[str]) -> str:
        return "".join(_LEET.get(c, c) for c in match.group(0))

    previous = None
    while previous != text:  # "k11l": each swapped letter makes the next digit follow a letter
        previous, text = text, _LEET_DIGIT.sub(swap, text)
    return text


@dataclass(frozen=True)
class _Lexicon:
    """Text-speak, misspellings and emoji for one language (or several merged), and the words the
    rules use (a censored word is read as the one of these it fits)."""

    spellings: dict[str, str] = field(default_factory=dict)
    emoji: dict[str, str] = field(default_factory=dict)
    vocabulary: frozenset[str] = frozenset()

    def merged(self, other: _Lexicon) -> _Lexicon:
        return _Lexicon(
            {**self.spellings, **other.spellings},
            {**self.emoji, **other.emoji},
            self.vocabulary | other.vocabulary,
        )


def _uncensor(word: str, vocabulary: dict[int, list[str]]) -> str:
    """ "s*x" -> "sex": the first known word the hidden letters fit (one letter a symbol, then up
    to two more), else the word without its symbols."""
    parts, runs = _CENSOR_RUN.split(word), _CENSOR_RUN.findall(word)
    for widen in (0, 2):
        gaps = [f"[a-z]{{{len(run)},{len(run) + widen}}}" for run in runs] + [""]
        pattern = re.compile("".join(re.escape(p) + g for p, g in zip(parts, gaps, strict=False)))
        for length in range(len(word), len(word) + widen * len(runs) + 1):
            for known in vocabulary.get(length, ()):
                if pattern.fullmatch(known):
                    return known
    return _CENSOR_RUN.sub("", word)


class _Normaliser:
    def __init__(self, lexicon: _Lexicon) -> None:
        self.emoji = lexicon.emoji
        self.emoji_re = (
            re.compile("|".join(re.escape(k) for k in sorted(lexicon.emoji, key=len, reverse=True)))
            if lexicon.emoji
            else None
        )
        self.spellings = lexicon.spellings
        self.vocabulary: dict[int, list[str]] = {}
        for word in sorted(lexicon.vocabulary):
            self.vocabulary.setdefault(len(word), []).append(word)
        keys = sorted(lexicon.spellings, key=len, reverse=True)
        self.spelling_re = (
            re.compile(
                r"(?<![a-z0-9'])(?:" + "|".join(re.escape(k) for k in keys) + r")(?![a-z0-9'])"
            )
            if keys
            else None
        )

    def _spell(self, text: str) -> str:
        if self.spelling_re is None:
            return text
        return self.spelling_re.sub(lambda m: self.spellings[m.group(0)], text)

    def variants(self, text: str) -> list[str]:
        """The message as the rules see it; stretched letters give two readings (1 and 2)."""
        text = _basic(text)
        if self.emoji_re is not None:
            text = self.emoji_re.sub(lambda m: f" {self.emoji[m.group(0)]} ", text)
        if _CENSOR_RUN.search(text):
            text = _CENSORED.sub(lambda m: _uncensor(m.group(0), self.vocabulary), text)
        if _STRETCH.search(text):
            readings = [_STRETCH.sub(r"\1", text), _STRETCH.sub(r"\1\1", text)]
        else:
            readings = [text]
        return [self._finish(r) for r in readings]

    def _finish(self, text: str) -> str:
        text = _unleet(text)
        text = _SPACES.sub(" ", _NON_WORD.sub(" ", text)).strip()
        text = _AGE.sub(r"\1 year old", text)  # "9yo", "9 yrs old"
        text = _SPELLED_OUT.sub(_join_letters, text)
        text = self._spell(text)  # keys written with an apostrophe: "od'd"
        text = text.replace("'", "")
        text = _SPELLED_OUT.sub(_join_letters, text)
        return _SPACES.sub(" ", self._spell(text)).strip()


def normalise(text: str, patterns: RiskPatterns | None = None, language: str = "en") -> list[str]:
    """The readings of ``text`` that the rules are matched against (for tests and audits)."""
    if patterns is None:
        return _Normaliser(_Lexicon()).variants(text)
    return patterns._profile(language).normaliser.variants(text)


# --- phrases ------------------------------------------------------------------------------------

_WORD = r"[a-z0-9]+"
_START = r"(?<![a-z0-9])"
_GAP = r"(?:\s+[a-z0-9]+){0,3}"
_UNIT = re.compile(r"\{[^{}]*\}|\[[^\[\]]*\]|<[^<>]*>|\S+")
_LITERAL = re.compile(r"[a-z0-9]+\*?|\*|#")


class _PhraseError(ValueError):
    pass


def _clean_word(word: str) -> str:
    return _basic(word).replace("'", "")


def _words(text: str) -> str:
    """Regex for a run of literal words: ``kill*`` is a prefix, ``#`` any number, ``*`` any word."""
    parts: list[str] = []
    for raw in _clean_word(text).replace("-", " ").split():
        if not _LITERAL.fullmatch(raw):
            raise _PhraseError(f"'{raw}' is not a plain word (letters and digits only)")
        if raw == "*":
            parts.append(_WORD)
        elif raw == "#":
            parts.append(r"[0-9]+")
        elif raw.endswith("*"):
            parts.append(re.escape(raw[:-1]) + r"[a-z0-9]*")
        else:
            parts.append(re.escape(raw))
    if not parts:
        raise _PhraseError("an alternative is empty")
    return r"\s+".join(parts)


def _alternatives(items: Iterable[str]) -> str:
    return "(?:" + "|".join(_words(item) for item in items) + ")"


def compile_phrase(phrase: str, sets: dict[str, list[str]]) -> str:
    """The regex for one phrase (syntax: see the top of flows/risk/en.yaml).

    It is tried only at the start of a word (the rule adds ``_START`` once for all its parts).
    """
    units = _UNIT.findall(phrase.strip())
    if not units:
        raise _PhraseError("the phrase is empty")
    out: list[str] = []
    for index, unit in enumerate(units):
        optional = False
        if unit == "...":
            if index in (0, len(units) - 1):
                raise _PhraseError("'...' must stand between two words")
            out.append(_GAP)
            continue
        if unit.startswith("{") and unit.endswith("}"):
            fragment = _alternatives(unit[1:-1].split("|"))
        elif unit.startswith("[") and unit.endswith("]"):
            if index == 0:
                raise _PhraseError("a phrase cannot start with an optional '[...]' part")
            fragment = _alternatives(unit[1:-1].split("|"))
            optional = True
        elif unit.startswith("<") and unit.endswith(">"):
            name = unit[1:-1]
            if name not in sets:
                raise _PhraseError(f"'<{name}>' is not one of the sets: {', '.join(sorted(sets))}")
            fragment = _alternatives(sets[name])
        elif any(c in unit for c in "{}[]<>|"):
            raise _PhraseError(f"'{unit}' has an unclosed or stray bracket")
        else:
            fragment = _words(unit)
        joined = fragment if index == 0 else r"\s+" + fragment
        out.append(f"(?:{joined})?" if optional else joined)
    return "".join(out) + r"(?![a-z0-9])"


# --- patterns -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Rule:
    id: str
    body: str  # the rule's alternatives, each tried at the start of a word
    regex: re.Pattern[str]


@dataclass(frozen=True)
class _Category:
    rules: tuple[_Rule, ...]
    exclusions: re.Pattern[str] | None
    any_rule: re.Pattern[str] | None


@dataclass(frozen=True)
class _Profile:
    normaliser: _Normaliser
    categories: tuple[tuple[str, _Category], ...]
    person: _Category
    model: RiskModel | None


@dataclass(frozen=True)
class _LanguageFile:
    lexicon: _Lexicon
    rules: dict[str, list[_Rule]]
    exclusions: dict[str, list[str]]


class RiskPatterns:
    """Compiled rules for every language found; English always applies too."""

    def __init__(
        self, languages: dict[str, _LanguageFile], models: dict[str, RiskModel] | None = None
    ) -> None:
        self.languages = tuple(sorted(languages))
        self._files = languages
        models = models or {}
        self._profiles = {lang: self._build(languages, lang, models) for lang in languages}

    @staticmethod
    def _build(
        languages: dict[str, _LanguageFile], lang: str, models: dict[str, RiskModel]
    ) -> _Profile:
        files = [languages["en"]] if lang == "en" else [languages["en"], languages[lang]]
        lexicon = _Lexicon()
        for f in files:
            lexicon = lexicon.merged(f.lexicon)

        def category(name: str) -> _Category:
            rules = tuple(r for f in files for r in f.rules.get(name, []))
            excl = [e for f in files for e in f.exclusions.get(name, [])]
            return _Category(
                rules,
                re.compile(_START + "(?:" + "|".join(excl) + ")") if excl else None,
                re.compile(_START + "(?:" + "|".join(r.body for r in rules) + ")")
                if rules
                else None,
            )

        return _Profile(
            _Normaliser(lexicon),
            tuple((name, category(name)) for name in CATEGORIES),
            category(ASKED_FOR_PERSON),
            models.get(lang) or models.get("en"),
        )

    def with_models(self, models: dict[str, RiskModel]) -> RiskPatterns:
        """The same rules with other models (tests; a model being evaluated)."""
        return RiskPatterns(self._files, models)

    def _profile(self, language: str) -> _Profile:
        return self._profiles.get(language) or self._profiles["en"]


def _rule_in(category: _Category, readings: list[str]) -> str | None:
    """The id of the first rule of ``category`` that matches a reading outside its exclusions."""
    if category.any_rule is None:
        return None
    for reading in readings:
        if category.exclusions is not None:
            reading = category.exclusions.sub(" | ", reading)
        if not category.any_rule.search(reading):
            continue
        for rule in category.rules:
            if rule.regex.search(reading):
                return rule.id
    return None


def screen_patterns(text: str, patterns: RiskPatterns, language: str = "en") -> Screening:
    """The patterns alone: the most urgent category whose rules match ``text``, or ``none``."""
    profile = patterns._profile(language)
    readings = profile.normaliser.variants(text)
    return _by_patterns(profile, readings)


def _by_patterns(profile: _Profile, readings: list[str]) -> Screening:
    for name, category in profile.categories:
        rule = _rule_in(category, readings)
        if rule is not None:
            return Screening(name, rule, ALERT)
    return Screening(NONE, None)


def screen(text: str, patterns: RiskPatterns, language: str = "en") -> Screening:
    """Patterns or model: an alert for the most urgent category either finds, else the review
    tier when the model finds the message borderline, else ``none``; and whether it asks for a
    person."""
    profile = patterns._profile(language)
    readings = profile.normaliser.variants(text)
    found = _by_patterns(profile, readings)
    model = profile.model
    enough = sum(1 for w in readings[0].split() if _LETTERS.search(w)) >= MODEL_MIN_WORDS
    scores = model.score(readings[0]) if model is not None and enough else None
    if scores is not None and model is not None:
        found = _with_model(found, scores, model)
    person = _rule_in(profile.person, readings) is not None or (
        scores is not None and model is not None and _asks_for_person(scores, model)
    )
    about = _whose(readings[0]) if found.category == "self_harm" else "parent"
    if person or about != "parent":
        found = replace(found, person=person, about=about)
    return found


def _asks_for_person(scores: Scores, model: RiskModel) -> bool:
    """The model reads a request for a person only as its likeliest class (an answer that merely
    looks like one, "walk to school alone", goes to the flow)."""
    p = scores.probabilities
    likeliest = max(p, key=lambda c: p[c])
    return likeliest == PERSON and p[PERSON] >= model.thresholds.alert.get(PERSON, 1.0)


def _with_model(found: Screening, scores: Scores, model: RiskModel) -> Screening:
    """The patterns' finding, made more urgent, or raised to an alert or a review, by the model."""
    p = scores.probabilities
    limits = model.thresholds.alert
    rank = {name: i for i, name in enumerate((*CATEGORIES, NONE))}
    for name in CATEGORIES:
        if rank[name] >= rank[found.category]:
            break
        if p.get(name, 0.0) >= limits.get(name, 1.0):
            return Screening(name, f"model:{model.version}", ALERT, round(p[name], 4))
    if found.category != NONE:
        score = round(p.get(found.category, 0.0), 4)
        if (
            found.category in CORROBORATED
            and scores.risk(CATEGORIES) < model.thresholds.corroborate
        ):
            return replace(found, tier=REVIEW, score=score)
        return replace(found, score=score)
    if scores.risk(CATEGORIES) < model.thresholds.review:
        return found
    likely = [c for c in CATEGORIES if p.get(c, 0.0) >= PLAUSIBLE]
    name = likely[0] if likely else max(CATEGORIES, key=lambda c: p.get(c, 0.0))
    return Screening(name, f"model:{model.version}", REVIEW, round(p[name], 4))


_ABOUT_ME = re.compile(
    r"(?<![a-z])(?:myself|i want|i wanna|i wish|i feel|im going|i am going|i keep|i dont want|"
    r"i do not want|i cannot|i just want|i think about|kill me|i have been|ive been|i cut|i took|"
    r"i hate myself|me dead|i would be better|id be better)(?![a-z])"
)
_ABOUT_CHILD = re.compile(
    r"(?<![a-z])(?:herself|himself|themselves|she|he|her|him|son|daughter|child|kid|boy|girl|"
    r"they said|my [a-z]+ year old)(?![a-z])"
)


def _whose(reading: str) -> str:
    """Whose self-harm: "child" when words about a child come before any about the writer."""
    child = _ABOUT_CHILD.search(reading)
    me = _ABOUT_ME.search(reading)
    if child is not None and (me is None or child.start() < me.start()):
        return "child"
    return "parent"


# --- loading ------------------------------------------------------------------------------------

_TOP_KEYS = {"language", "spellings", "emoji", "sets", "categories"}
_CATEGORY_KEYS = {"rules", "not_risk"}
_RULE_KEYS = {"id", "note", "phrases", "regex"}


def _fail(doc: Located, path: tuple[str | int, ...], problem: str) -> SourceError:
    return SourceError(doc.file, doc.line(path), problem)


def _mapping(doc: Located, path: tuple[str | int, ...], value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _fail(doc, path, f"{what} must be a mapping of names to values")
    return value


def _strings(doc: Located, path: tuple[str | int, ...], value: Any, what: str) -> list[str]:
    if not isinstance(value, list) or not value:
        raise _fail(doc, path, f"{what} must be a list with at least one entry")
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            raise _fail(doc, (*path, i), f"{what}: entry {i + 1} is empty; write the words")
        out.append(item)
    return out


def _compile(
    doc: Located, path: tuple[str | int, ...], phrase: str, sets: dict[str, list[str]]
) -> str:
    try:
        return compile_phrase(phrase, sets)
    except _PhraseError as exc:
        raise _fail(doc, path, f"phrase '{phrase}': {exc}") from None


def _load_rules(
    doc: Located,
    path: tuple[str | int, ...],
    value: Any,
    sets: dict[str, list[str]],
    seen: set[str],
) -> list[tuple[str, str]]:
    if not isinstance(value, list):
        raise _fail(doc, path, "must be a list of rules, each with an id, a note and phrases")
    out: list[tuple[str, str]] = []
    for i, rule in enumerate(value):
        here = (*path, i)
        if not isinstance(rule, dict):
            raise _fail(doc, here, "a rule must have an id, a note and phrases (or a regex)")
        unknown = set(rule) - _RULE_KEYS
        if unknown:
            raise _fail(doc, (*here, sorted(unknown)[0]), f"unknown key '{sorted(unknown)[0]}'")
        rule_id = rule.get("id")
        if not isinstance(rule_id, str) or not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", rule_id):
            raise _fail(
                doc, (*here, "id"), "the rule needs an id: lower-case letters, digits, - or _"
            )
        if rule_id in seen:
            raise _fail(doc, (*here, "id"), f"the id '{rule_id}' is used twice; make it unique")
        seen.add(rule_id)
        if not isinstance(rule.get("note"), str) or not rule["note"].strip():
            raise _fail(doc, here, f"rule '{rule_id}' needs a note saying what it is for")
        if "phrases" not in rule and "regex" not in rule:
            raise _fail(doc, here, f"rule '{rule_id}' needs phrases (or a regex)")
        parts: list[str] = []
        if "phrases" in rule:
            phrases = _strings(
                doc, (*here, "phrases"), rule["phrases"], f"rule '{rule_id}' phrases"
            )
            for j, phrase in enumerate(phrases):
                parts.append(_compile(doc, (*here, "phrases", j), phrase, sets))
        if "regex" in rule:
            patterns = _strings(doc, (*here, "regex"), _as_list(rule["regex"]), "regex")
            for pattern in patterns:
                try:
                    re.compile(pattern)
                except re.error as exc:
                    problem = f"regex '{pattern}' is not valid: {exc}"
                    raise _fail(doc, (*here, "regex"), problem) from None
                parts.append(f"(?:{pattern})")
        out.append((rule_id, "|".join(parts)))
    return out


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def _load_file(path: Path) -> _LanguageFile:
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SourceError(file, 1, f"cannot read the file: {exc.strerror}") from None
    doc = load_located(text, file, core_schema=True)
    top = _mapping(doc, (), doc.value, "the file")
    for key in top:
        if key not in _TOP_KEYS:
            raise _fail(
                doc, (key,), f"unknown key '{key}'; expected one of {', '.join(sorted(_TOP_KEYS))}"
            )

    spellings: dict[str, str] = {}
    for key, value in _mapping(doc, ("spellings",), top.get("spellings"), "spellings").items():
        if not isinstance(value, str) or not value.strip() or not key.strip():
            raise _fail(doc, ("spellings", key), f"spelling '{key}' needs the words it stands for")
        spellings[" ".join(_basic(key).split())] = " ".join(_clean_word(value).split())
    emoji: dict[str, str] = {}
    for key, value in _mapping(doc, ("emoji",), top.get("emoji"), "emoji").items():
        if not isinstance(value, str) or not value.strip():
            raise _fail(doc, ("emoji", key), f"emoji '{key}' needs the word it stands for")
        emoji[_basic(key)] = " ".join(_clean_word(value).split())
    sets: dict[str, list[str]] = {}
    for key, value in _mapping(doc, ("sets",), top.get("sets"), "sets").items():
        sets[key] = _strings(doc, ("sets", key), value, f"set '{key}'")
        for i, item in enumerate(sets[key]):
            try:
                _words(item)
            except _PhraseError as exc:
                raise _fail(doc, ("sets", key, i), f"set '{key}': {exc}") from None

    rules: dict[str, list[_Rule]] = {}
    exclusions: dict[str, list[str]] = {}
    seen: set[str] = set()
    categories = _mapping(doc, ("categories",), top.get("categories"), "categories")
    for name, body in categories.items():
        here = ("categories", name)
        if name not in (*CATEGORIES, ASKED_FOR_PERSON):
            names = ", ".join((*CATEGORIES, ASKED_FOR_PERSON))
            raise _fail(doc, here, f"unknown category '{name}'; the categories are {names}")
        body = _mapping(doc, here, body, f"category '{name}'")
        for key in body:
            if key not in _CATEGORY_KEYS:
                raise _fail(doc, (*here, key), f"unknown key '{key}'; expected rules or not_risk")
        rules[name] = [
            _Rule(rule_id, pattern, re.compile(_START + "(?:" + pattern + ")"))
            for rule_id, pattern in _load_rules(
                doc, (*here, "rules"), body.get("rules", []), sets, seen
            )
        ]
        exclusions[name] = [
            pattern
            for _, pattern in _load_rules(
                doc, (*here, "not_risk"), body.get("not_risk", []), sets, seen
            )
        ]
    vocabulary = frozenset(_vocabulary(top, sets, spellings))
    return _LanguageFile(_Lexicon(spellings, emoji, vocabulary), rules, exclusions)


def _vocabulary(
    top: dict[str, Any], sets: dict[str, list[str]], spellings: dict[str, str]
) -> Iterable[str]:
    """Every plain word the file's rules, sets and spellings use."""
    texts: list[str] = [*spellings.values(), *(item for items in sets.values() for item in items)]
    for body in (top.get("categories") or {}).values():
        for rule in (body or {}).get("rules") or []:
            if isinstance(rule, dict):
                texts.extend(p for p in rule.get("phrases") or [] if isinstance(p, str))
    for text in texts:
        yield from (w for w in re.findall(r"[a-z]+", _clean_word(text)) if len(w) > 2)


def load_patterns(directory: Path, *, models: bool = True) -> RiskPatterns:
    """Read ``directory/<lang>.yaml`` for every language (``en.yaml`` must be there) and, unless
    ``models`` is False, each ``<lang>.model.json`` beside them."""
    directory = Path(directory)
    files = sorted(directory.glob("*.yaml"))
    if not any(f.stem == "en" for f in files):
        raise SourceError(str(directory / "en.yaml"), 1, "the English risk patterns are missing")
    found: dict[str, RiskModel] = {}
    for f in files if models else []:
        model = load_model(directory / f"{f.stem}.model.json")
        if model is not None:
            found[f.stem] = model
    return RiskPatterns({f.stem: _load_file(f) for f in files}, found)
