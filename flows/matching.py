"""Reading parents' replies the way they really write them.

Parents answer by SMS and WhatsApp, often on a small keyboard and many with low literacy, so a
reply to "How worried is Sam, 0 to 10?" may be ``7``, ``Seven.``, ``sevn``, ``7️⃣`` or
``i think 7``. Every parser here accepts those forms but returns ``None`` as soon as it is unsure
(``7 or 8``, ``not sure``, two different days): the flow then asks again, which is always better
than recording an answer the parent did not give.

Pure and stdlib-only: no I/O, no clock, no third-party imports.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

__all__ = [
    "Choice",
    "match_choice",
    "normalise",
    "parse_list",
    "parse_number",
    "parse_time",
    "parse_weekday",
    "parse_yes_no",
    "similarity_distance",
]

# --------------------------------------------------------------------------------------------
# Normalising
# --------------------------------------------------------------------------------------------

# Variation selectors (U+FE00–FE0F) and zero-width characters (ZWSP, ZWNJ, ZWJ, word joiner,
# BOM, soft hyphen): invisible, but they stop "👍️" from equalling "👍".
_INVISIBLE = dict.fromkeys([*range(0xFE00, 0xFE10), 0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF, 0x00AD])
_EDGE_PUNCTUATION = ".!?,'\"’‘“”…¡¿" + " \t\n\r\f\v"
# Skin tones (U+1F3FB–1F3FF) and the gender signs of ZWJ sequences: 👍🏽 means 👍.
_MODIFIERS = dict.fromkeys([*range(0x1F3FB, 0x1F400), 0x2640, 0x2642])


def normalise(text: str) -> str:
    """Fold a reply to one comparable form: ``"  YES!! "`` and ``"yes"`` must compare equal.

    NFKC (full-width digits, ligatures), casefold, drop variation selectors and zero-width
    characters, collapse whitespace and strip punctuation and quotes from both ends. Emoji,
    including skin tones, are kept.
    """
    folded = unicodedata.normalize("NFKC", text.translate(_INVISIBLE)).casefold()
    return " ".join(folded.split()).strip(_EDGE_PUNCTUATION)


def _key(text: str) -> str:
    """normalise() plus the folds every parser wants: straight apostrophes, no skin tones."""
    return normalise(text).replace("’", "'").replace("‘", "'").translate(_MODIFIERS).strip()


def _words(text: str) -> tuple[str, ...]:
    """A space-separated word list, in order (easier to read and edit than a list literal)."""
    return tuple(text.split())


def _wordset(text: str) -> frozenset[str]:
    """A space-separated word list as a set."""
    return frozenset(text.split())


# Words (letters/digits, with inner apostrophes), or any other single non-space character.
_TOKEN = re.compile(r"[^\W_]+(?:'[^\W_]+)*|\S")
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)*")
_IGNORABLE = frozenset(".,!?:;~#()[]'\"*_…")


def _is_symbol(token: str) -> bool:
    """Emoji and other pictographs: they carry no number or day of their own."""
    return len(token) == 1 and unicodedata.category(token) in ("So", "Sk", "Cn")


# --------------------------------------------------------------------------------------------
# Distance
# --------------------------------------------------------------------------------------------


def similarity_distance(a: str, b: str) -> int:
    """Damerau-Levenshtein distance (optimal string alignment), to forgive small typos.

    Counts insertions, deletions, substitutions and swaps of two neighbouring letters, so
    ``thrusday`` is one step from ``thursday``.
    """
    if a == b:
        return 0
    if not a:
        return len(b)
    if not b:
        return len(a)
    before: list[int] = []
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, char_b in enumerate(b, 1):
            cost = 0 if char_a == char_b else 1
            best = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and char_a == b[j - 2] and a[i - 2] == char_b:
                best = min(best, before[j - 2] + 1)
            current[j] = best
        before, previous = previous, current
    return previous[-1]


def _allowed_typos(word: str) -> int:
    """How many edits a word of this length may suffer and still be recognised."""
    if len(word) >= 8:
        return 2
    if len(word) >= 4:
        return 1
    return 0


def _closest(token: str, targets: Iterable[str], *, same_first_letter: bool = False) -> list[str]:
    """The targets nearest to ``token`` within their typo allowance (several if tied)."""
    best: list[str] = []
    best_distance = 99
    for target in targets:
        allowed = _allowed_typos(target)
        if not allowed or abs(len(target) - len(token)) > allowed:
            continue
        if same_first_letter and target[0] != token[0]:
            continue
        distance = similarity_distance(token, target)
        if distance > allowed or distance > best_distance:
            continue
        if distance < best_distance:
            best, best_distance = [], distance
        best.append(target)
    return best


# --------------------------------------------------------------------------------------------
# Numbers
# --------------------------------------------------------------------------------------------

_UNITS = _words(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty"
)
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50}
_TENS |= {"sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
_NUMBER_WORDS: dict[str, int] = {word: n for n, word in enumerate(_UNITS)}
_NUMBER_WORDS |= _TENS | {"hundred": 100, "nil": 0, "nought": 0, "zeros": 0}
# Typo targets: number words of four letters or more ("sevn" → seven; "for" is not four).
_NUMBER_TYPO_TARGETS = tuple(w for w in _NUMBER_WORDS if len(w) >= 4)
# Real words one slip away from a number word: never read them as numbers.
_NOT_NUMBER_TYPOS = _wordset(
    "none nice nina nile fine fire file fife five's foul there threw thee seen sever steven "
    "fort forte thirsty first fifth sixth seventh eighth ninth tenth fourth hero eleventh "
    "twelfth"
)
# Words that may sit around a score without changing it: "i think about a 7".
_NUMBER_FILLERS = _wordset(
    "about around roughly approx approximately maybe probably prob prolly i think guess say "
    "i'd id would it's its it is was be a an like just hmm hmmm um umm er erm uh so well ok "
    "okay today now honestly tbh score rating level at the he's hes she's shes they're im "
    "i'm lol x xx definitely def defo please pls plz thanks thx ta"
)
_KEYCAPS = re.compile(r"(?:\d\u20e3)+")
_COMPOUND = re.compile(
    r"\b(twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety)[\s-]*"
    r"(one|two|three|four|five|six|seven|eight|nine)\b"
)
_HUNDRED = re.compile(r"\b(?:a|one)\s+hundred\b")
_OUT_OF = re.compile(r"\s*(?:/|\bout\s+of\b|\boutta\b|\bof\b)\s*(\d+|[^\W\d_]+)\b")


def _digits(text: str) -> str:
    """Keycap emoji (1️⃣0️⃣, 7⃣) and 🔟 as plain digits, spaced off from their neighbours."""
    text = text.replace("\U0001f51f", " 10 ")
    if "\u20e3" in text:
        text = _KEYCAPS.sub(lambda m: " " + m.group().replace("\u20e3", "") + " ", text)
        text = text.replace("\u20e3", "")
    return text


def _number_word(token: str) -> int | None:
    """A number word, exactly or with one small typo that points at a single number."""
    value = _NUMBER_WORDS.get(token)
    if value is not None:
        return value
    if len(token) < 4 or token in _NOT_NUMBER_TYPOS:
        return None
    near = _closest(token, _NUMBER_TYPO_TARGETS, same_first_letter=True)
    return _NUMBER_WORDS[near[0]] if len(near) == 1 else None


def _one_number(key: str, fillers: frozenset[str], high_for_fraction: int | None) -> int | None:
    """The single whole number in a short reply whose other words are all harmless fillers.

    ``high_for_fraction`` allows "7/10" and "7 out of 10" when the denominator is exactly that.
    Any unknown word, a second different number, or a decimal makes the answer None.
    """
    text = _digits(key)
    if any(c.isalpha() for c in text):
        text = _HUNDRED.sub(" 100 ", text)
        text = _COMPOUND.sub(lambda m: f" {_TENS[m[1]] + _NUMBER_WORDS[m[2]]} ", text)
    fractions = list(_OUT_OF.finditer(text))
    if fractions:
        if high_for_fraction is None or len(fractions) > 1:
            return None
        denominator = fractions[0][1]
        value = int(denominator) if denominator.isdigit() else _NUMBER_WORDS.get(denominator)
        if value != high_for_fraction:
            return None
        text = text[: fractions[0].start()] + " " + text[fractions[0].end() :]
    found: set[int] = set()
    for token in _TOKEN.findall(text):
        if token.isdecimal():
            if len(token) > 4:
                return None
            found.add(int(token))
        elif token[0].isalpha():
            if token in fillers:
                continue
            number = _number_word(token)
            if number is None:
                return None
            found.add(number)
        elif token not in _IGNORABLE and not _is_symbol(token):
            return None
    if len(found) != 1:
        return None
    return found.pop()


def parse_number(text: str, low: int, high: int) -> int | None:
    """A rating such as "how worried, 0 to 10?": ``7``, ``seven``, ``7/10``, ``7️⃣``, ``i think 7``.

    None for anything unsure or outside ``low``..``high``: "7 or 8", "7-8", "none", "1000".
    """
    if len(text) > 200:
        return None
    number = _one_number(_key(text), _NUMBER_FILLERS, high)
    if number is None or not low <= number <= high:
        return None
    return number


# --------------------------------------------------------------------------------------------
# Yes / no
# --------------------------------------------------------------------------------------------

_YES, _NO, _WEAK_YES, _NEUTRAL = "yes", "no", "weak", "neutral"
_YES_NO_PHRASES: dict[tuple[str, ...], str] = {}


def _add_phrases(polarity: str, phrases: str) -> None:
    for phrase in phrases.split("|"):
        _YES_NO_PHRASES[tuple(phrase.split())] = polarity


_add_phrases(
    _YES,
    "yes|y|yeah|yea|yeh|yah|yh|yep|yup|ya|aye|sure|of course|ofc|definitely|defo|absolutely|"
    "certainly|for sure|i do|yes i do|agree|i agree|agreed|i will|will do|go on|go ahead|"
    "alright|all right|sounds good|ofcourse|👍|✅|✔|☑|✓|👌|🙂|😀|😊|☺|😃|😄|🆗",
)
# "ok" and "please" lean yes alone, but "ok no thanks" and "no please don't" are noes.
_add_phrases(_WEAK_YES, "ok|okay|okey|okie|k|kk|please|pls|plz")
_add_phrases(
    _NO,
    "no|n|nope|nah|naw|no thanks|no thank you|no thx|not now|not today|not yet|not really|"
    "no way|never|don't|dont|do not|i don't|i dont|i do not|i don't want to|i dont want to|"
    "i don't want|i dont want|don't want to|dont want to|i won't|i wont|won't|wont|"
    "👎|❌|✖|🚫|✗|✘|❎|⛔",
)
_add_phrases(_NEUTRAL, "thanks|thank you|thx|ty|ta|cheers|x|xx|xxx|hi|hello|oh|🙏|❤|♥")
_YES_NO_VOCABULARY = frozenset(word for phrase in _YES_NO_PHRASES for word in phrase)
_LONGEST_PHRASE = max(len(phrase) for phrase in _YES_NO_PHRASES)
# Typo targets: yes/no words of four letters or more, and the three-letter yes words.
_YES_NO_TYPO_TARGETS = tuple(
    phrase[0]
    for phrase, polarity in _YES_NO_PHRASES.items()
    if len(phrase) == 1 and len(phrase[0]) >= 4 and polarity != _NEUTRAL
)
_SHORT_YES = ("yes", "yep", "yup")
# Real words one slip away from a yes/no word.
_NOT_YES_NO_TYPOS = _wordset("yet yen yrs yer year yeas sue sore nose note node none hope okra")


def _squeeze(word: str) -> str:
    """Runs of one letter as a single letter: ``yesss`` → ``yes``, ``noooo`` → ``no``."""
    return re.sub(r"(.)\1+", r"\1", word)


_SQUEEZED_VOCABULARY: dict[str, str] = {}
for _word in sorted(_YES_NO_VOCABULARY, key=len):
    _SQUEEZED_VOCABULARY.setdefault(_squeeze(_word), _word)


def _yes_no_word(token: str) -> str | None:
    """A token as a word of the yes/no vocabulary: exact, stretched ("yesss") or a small typo."""
    if token in _YES_NO_VOCABULARY:
        return token
    squeezed = _SQUEEZED_VOCABULARY.get(_squeeze(token))
    if squeezed is not None:
        return squeezed
    if len(token) < 3 or not token.isalpha() or token in _NOT_YES_NO_TYPOS:
        return None
    near = _closest(token, _YES_NO_TYPO_TARGETS, same_first_letter=True)
    if not near and len(token) == 3:
        near = [t for t in _SHORT_YES if t[0] == token[0] and similarity_distance(token, t) == 1]
    polarities = {_YES_NO_PHRASES[(t,)] for t in near}
    return near[0] if len(polarities) == 1 else None


def parse_yes_no(text: str) -> bool | None:
    """A yes/no answer from words, typos or emoji: ``Yess``, ``yep 👍🏽``, ``no thanks``, ``❌``.

    None for anything else or anything mixed: "yes and no", "maybe", "not sure", "ok no 👍".
    """
    if len(text) > 200:
        return None
    tokens: list[str] = []
    for token in _TOKEN.findall(_key(text)):
        if token in _IGNORABLE or token == "-":
            continue
        word = _yes_no_word(token)
        if word is None:
            return None
        tokens.append(word)
    polarities: set[str] = set()
    i = 0
    while i < len(tokens):
        for length in range(min(_LONGEST_PHRASE, len(tokens) - i), 0, -1):
            polarity = _YES_NO_PHRASES.get(tuple(tokens[i : i + length]))
            if polarity is not None:
                polarities.add(polarity)
                i += length
                break
        else:
            return None
    if _NO in polarities:
        return None if _YES in polarities else False
    if _YES in polarities or _WEAK_YES in polarities:
        return True
    return None


# --------------------------------------------------------------------------------------------
# Choices
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Choice:
    """One option of a multiple-choice question: the value to record and the words for it."""

    value: str
    words: tuple[str, ...]


_ORDINALS = {
    "first": 1, "1st": 1, "second": 2, "2nd": 2, "third": 3, "3rd": 3, "fourth": 4, "4th": 4,
    "fifth": 5, "5th": 5, "sixth": 6, "6th": 6, "seventh": 7, "7th": 7, "eighth": 8, "8th": 8,
    "ninth": 9, "9th": 9, "tenth": 10, "10th": 10,
}  # fmt: skip
_ORDINAL = re.compile(r"^(?:the\s+)?(\w+)(?:\s+one)?$")
_NUMBER_SIGN = re.compile(r"\bno(?:\.\s*|(?=\d))")
_POSITION_FILLERS = _NUMBER_FILLERS | _wordset("option opt choice number num nr answer")
# Words that turn "Tuesday" into "not Tuesday": a contained word is then not trusted.
_NEGATIONS = _wordset(
    "not no don't dont can't cant cannot won't wont isn't isnt never except but without nope nah"
)


@lru_cache(maxsize=1024)
def _choice_word(word: str) -> tuple[str, tuple[str, ...], bool]:
    """A choice word prepared once: its key, its word tokens, and whether it is an emoji."""
    key = _key(word)
    tokens = tuple(t for t in _TOKEN.findall(key) if t not in _IGNORABLE)
    return key, tokens, not any(c.isalnum() for c in key)


def _position(key: str, count: int) -> int | None:
    """The 1-based option number: ``2``, ``two``, ``2️⃣``, ``Option 2``, ``#2``, ``second``."""
    ordinal = _ORDINAL.match(key)
    if ordinal and ordinal[1] in _ORDINALS:
        number: int | None = _ORDINALS[ordinal[1]]
    else:
        number = _one_number(_NUMBER_SIGN.sub(" number ", key), _POSITION_FILLERS, None)
    return number if number is not None and 1 <= number <= count else None


def _contained(tokens: list[str], choices: Sequence[Choice]) -> set[str] | None:
    """Choices whose multi-letter word appears as whole words in the reply.

    A match lying inside a longer match ("school" within "after school") is dropped. None when a
    negation sits outside every match ("not Tuesday"), because the reply may mean the opposite.
    """
    spans: list[tuple[int, int, str]] = []
    for choice in choices:
        for word in choice.words:
            _, needle, emoji = _choice_word(word)
            if emoji or not needle or sum(c.isalpha() for c in "".join(needle)) < 2:
                continue
            size = len(needle)
            for start in range(len(tokens) - size + 1):
                if tuple(tokens[start : start + size]) == needle:
                    spans.append((start, start + size, choice.value))
    kept = [
        (start, end, value)
        for start, end, value in spans
        if not any(
            s <= start and end <= e and (e - s) > (end - start) and v != value for s, e, v in spans
        )
    ]
    covered = {i for start, end, _ in kept for i in range(start, end)}
    if any(t in _NEGATIONS and i not in covered for i, t in enumerate(tokens)):
        return None
    return {value for _, _, value in kept}


def _repeats(key: str, emoji: str) -> bool:
    """The reply is just the emoji sent a few times: "👍👍" for 👍."""
    squashed = key.replace(" ", "")
    return squashed == emoji * (len(squashed) // len(emoji))


def match_choice(text: str, choices: Sequence[Choice]) -> str | None:
    """Which option a reply picks, by number, word, contained word, typo or emoji.

    Tried in order, stopping at the first rule that finds anything: the option's number or an
    exact word; a word contained in the reply ("I think Tuesday works"); one small typo of a
    word. None when nothing matches or two options match equally well.
    """
    if len(text) > 500 or not choices:
        return None
    key = _key(text)
    if not key:
        return None
    found: set[str] = set()
    position = _position(key, len(choices))
    if position is not None:
        found.add(choices[position - 1].value)
    for choice in choices:
        for word in choice.words:
            word_key, _, emoji = _choice_word(word)
            if key == word_key or (emoji and word_key and _repeats(key, word_key)):
                found.add(choice.value)
    if found:
        return found.pop() if len(found) == 1 else None

    tokens = [t for t in _TOKEN.findall(key) if t not in _IGNORABLE]
    contained = _contained(tokens, choices)
    if contained is None:
        return None
    if contained:
        return contained.pop() if len(contained) == 1 else None

    letters = " ".join(tokens)
    if not letters.replace(" ", "").replace("'", "").isalpha():
        return None
    best: dict[str, int] = {}
    for choice in choices:
        for word in choice.words:
            word_key, _, emoji = _choice_word(word)
            if emoji or not word_key.replace(" ", "").replace("'", "").isalpha():
                continue
            allowed = _allowed_typos(word_key.replace(" ", ""))
            if not allowed or abs(len(word_key) - len(letters)) > allowed:
                continue
            distance = similarity_distance(letters, word_key)
            if distance <= allowed:
                best[choice.value] = min(distance, best.get(choice.value, distance))
    if not best:
        return None
    closest = min(best.values())
    winners = [value for value, distance in best.items() if distance == closest]
    return winners[0] if len(winners) == 1 else None


# --------------------------------------------------------------------------------------------
# Times
# --------------------------------------------------------------------------------------------

_MERIDIEM = re.compile(r"\b([ap])\s?\.\s?m\b\.?")
_HALF = re.compile(r"^half\s+(?:past\s+)?(\d{1,2})(?![\d:.])")
_TIME_PREFIX = re.compile(r"^(?:(?:at|around|about|by|say|approx|roughly|@)\s*)+")
_TIME_SUFFIX = re.compile(
    r"\s*\b(?:(?:in\s+the|this|at|tomorrow|today)\s+)?(morning|afternoon|evening|night|tonight)$"
)
_CLOCK = re.compile(r"^(\d{1,2})(?:\s*[:.h]\s*(\d{2}))?\s*(?:hrs|hr|h)?\s*(am|pm)?$")
_MILITARY = re.compile(r"^(\d)(\d{2})\s*(am|pm)?$|^(\d{2})(\d{2})\s*(?:hrs|hr|h)?\s*(am|pm)?$")


def _clock(key: str) -> tuple[str, int, str | None] | None:
    """The hour digits as written, the minute and any am/pm: "6.30pm" → ("6", 30, "pm")."""
    match = _CLOCK.match(key)
    if match:
        return match[1], int(match[2] or 0), match[3]
    match = _MILITARY.match(key)
    if match and match[1]:
        return match[1], int(match[2]), match[3]
    if match:
        return match[4], int(match[5]), match[6]
    return None


def parse_time(text: str) -> tuple[int, int] | None:
    """A time of day as (hour, minute): ``18:00``, ``1800``, ``6pm``, ``6.30 PM``, ``noon``.

    A bare hour from 1 to 12 ("6", "6:30", "1030") is None: the parent must say am or pm (or
    "in the evening"), since a reminder twelve hours out is worse than asking again. Hours 13–23
    and 24-hour forms with a leading zero ("06:30", "0630") are clear.
    """
    if len(text) > 100:
        return None
    key = _MERIDIEM.sub(r" \1m", _key(text))
    key = " ".join(key.replace("o'clock", " ").replace("oclock", " ").split())
    key = _TIME_PREFIX.sub("", key).strip()
    period: str | None = None
    suffix = _TIME_SUFFIX.search(key)
    if suffix:
        period = suffix[1]
        key = _TIME_PREFIX.sub("", key[: suffix.start()].strip()).strip()
    if key in ("noon", "midday", "12 noon", "12 midday") and period in (None, "afternoon"):
        return (12, 0)
    if key in ("midnight", "12 midnight") and period in (None, "night", "tonight"):
        return (0, 0)
    half = _HALF.match(key)
    if half:
        key = f"{half[1]}:30{key[half.end() :]}"
    clock = _clock(key.replace(" ", ""))
    if clock is None:
        return None
    written, minute, meridiem = clock
    hour = int(written)
    if minute > 59 or hour > 23:
        return None
    if period is not None:
        implied = _period_meridiem(hour, period)
        if implied is None or meridiem not in (None, implied):
            return None
        meridiem = implied
    if meridiem is not None:
        if hour > 12:
            return (hour, minute) if meridiem == "pm" else None
        if hour == 0:
            return None
        return (hour % 12 + (12 if meridiem == "pm" else 0), minute)
    if hour >= 13 or (len(written) == 2 and written.startswith("0")):
        return (hour, minute)
    return None


def _period_meridiem(hour: int, period: str) -> str | None:
    """am/pm implied by "in the morning", "tonight"…; None when the pair makes no sense."""
    if hour > 12:
        return None if period == "morning" else "pm"
    if period == "morning":
        return "am" if 1 <= hour <= 11 else None
    if period == "afternoon":
        return "pm" if hour == 12 or 1 <= hour <= 7 else None
    return "pm" if 4 <= hour <= 11 else None


# --------------------------------------------------------------------------------------------
# Weekdays
# --------------------------------------------------------------------------------------------

_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAY_WORDS: dict[str, int] = {name: i for i, name in enumerate(_DAY_NAMES)}
_DAY_WORDS |= {name + "s": i for i, name in enumerate(_DAY_NAMES)}
_DAY_WORDS |= {
    "mon": 0, "tue": 1, "tues": 1, "tu": 1, "wed": 2, "weds": 2, "thu": 3, "thur": 3,
    "thurs": 3, "thr": 3, "fri": 4, "sat": 5, "sun": 6,
}  # fmt: skip
_DAY_FILLERS = _wordset(
    "on this next every a the please pls thanks thank you morning afternoon evening night "
    "eve is best works work good fine for me i think maybe probably prob ok okay yes at "
    "around about then would be its it's how lets let's do say great perfect x xx am pm "
    "after before lunch lunchtime dinner teatime school"
)
_TIME_TOKEN = re.compile(r"\d{1,4}(?:am|pm|h|hrs)?")
_NOT_DAY_TYPOS = _wordset("sundae sundry sundays mondo")


def parse_weekday(text: str) -> int | None:
    """A day of the week, Monday=0 … Sunday=6: ``Mon.``, ``tues``, ``thrusday``, ``on friday``.

    None for "weekend", "today", two different days, or a day with unknown words around it
    ("not monday").
    """
    if len(text) > 100:
        return None
    found: set[int] = set()
    for token in _TOKEN.findall(_key(text)):
        if token in _IGNORABLE or token == "-" or _TIME_TOKEN.fullmatch(token):
            continue
        day = _DAY_WORDS.get(token)
        if day is None:
            if token in _DAY_FILLERS:
                continue
            if len(token) < 4 or not token.isalpha() or token in _NOT_DAY_TYPOS:
                return None
            near = _closest(token, _DAY_NAMES)
            if len(near) != 1:
                return None
            day = _DAY_NAMES.index(near[0])
        found.add(day)
    return found.pop() if len(found) == 1 else None


# --------------------------------------------------------------------------------------------
# Lists
# --------------------------------------------------------------------------------------------

_LINE_MARKER = re.compile(
    r"""^\s*(?:
        (?:step|no\.?|\#)\s*\d{1,2}\s*[.):\-–—]?\s*   # Step 1: / #1 / no. 1
      | \(\d{1,2}\)\s*                              # (1)
      | \d{1,2}\s*[.)](?!\d)\s*                     # 1. / 1)
      | \d{1,2}\s*[:\-–—]\s+                        # 1 - / 1:
      | \d\ufe0f?\u20e3\s*                          # 1️⃣
      | [-*–—]\s+                                   # - / *
      | [•·▪►➡→✓✔]\ufe0f?\s*                        # •
    )""",
    re.IGNORECASE | re.VERBOSE,
)
_INLINE_NUMBER = re.compile(
    r"(?:^|(?<=\s))(?:step\s*(\d{1,2})\s*[.):\-]?|(\d{1,2})\s*[.):](?!\d))\s*", re.IGNORECASE
)
_FIRST_MARKER = re.compile(r"\s*(?:step\s*|#)?\(?1(?!\d)", re.IGNORECASE)
_NEWLINES = re.compile(r"\r\n|[\r\n\u2028\u2029\x85]")
_INVISIBLE_IN_ITEMS = dict.fromkeys([0x200B, 0x2060, 0xFEFF, 0x00AD])


def _clean_item(item: str) -> str:
    return " ".join(item.split()).strip(" ;,")


def _inline_numbered(line: str) -> list[str] | None:
    """Split "1. walk 2. talk 3. wave" on markers numbered 1, 2, 3… in order (at least two)."""
    starts: list[tuple[int, int]] = []
    for marker in _INLINE_NUMBER.finditer(line):
        if int(marker[1] or marker[2]) == len(starts) + 1:
            starts.append((marker.start(), marker.end()))
    if len(starts) < 2:
        return None
    head = line[: starts[0][0]].strip()
    if head and not head.endswith(":"):
        return None
    ends = [start for start, _ in starts[1:]] + [len(line)]
    return [line[body:end] for (_, body), end in zip(starts, ends, strict=True)]


def _split_line(line: str) -> list[str]:
    """One line that may hold several items: "1. a 2. b", "• a • b", or "a; b; c"."""
    numbered = _inline_numbered(line)
    if numbered is not None:
        return numbered
    if line.count("•") >= 2:
        return line.split("•")
    if ";" in line:
        return line.split(";")
    return [_LINE_MARKER.sub("", line, count=1)]


def parse_list(text: str, min_items: int = 1, max_items: int = 20) -> list[str] | None:
    """A parent's list of steps (a fear ladder) sent in ONE message, numbering removed.

    Accepts numbered or bulleted lines, plain lines, "1. a 2. b 3. c" on one line, or items
    separated by ";". A heading line ("My steps:") above numbered lines is dropped. None when
    there are fewer than ``min_items`` or more than ``max_items`` items.
    """
    lines = [
        line.strip()
        for line in _NEWLINES.split(text.translate(_INVISIBLE_IN_ITEMS))
        if line.strip()
    ]
    if len(lines) <= 1:
        items = _split_line(lines[0]) if lines else []
    else:
        marked = [_LINE_MARKER.match(line) is not None for line in lines]
        # A heading above a numbered list: "My steps:" / "Here are the steps" then "1. …".
        heading = lines[0].endswith(":") or _FIRST_MARKER.match(lines[1]) is not None
        if heading and not marked[0] and all(marked[1:]):
            lines = lines[1:]
        items = [_LINE_MARKER.sub("", line, count=1) for line in lines]
    cleaned = [item for item in (_clean_item(i) for i in items) if item]
    if not min_items <= len(cleaned) <= max_items:
        return None
    return cleaned
