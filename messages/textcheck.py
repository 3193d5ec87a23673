"""Checks on the words themselves: SMS segments and characters that make a text cost more.

A parent on a basic phone gets a long message in pieces, and one curly quote turns a whole text
into UCS-2 (70 characters a segment instead of 160). The linter fills every variable with a long
value and measures what Twilio would send.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from messages.catalog import Catalogue, Entry
from messages.segments import count_segments, non_gsm_characters

MAX_SEGMENTS = 2
MIN_READING_EASE = 70.0
MIN_WORDS_FOR_EASE = 4
MAX_CHARACTERS = 320
# Long but real values, so a message that fits with "Sam" but not with a long name is caught.
LONG_VALUES = {
    "child_name": "Alexandra-Rose",
    "therapist_name": "Bartholomew",
    "family_ref": "F-7KQ2MX",
    "link": "https://bravesteps.example.org/admin/families/F-7KQ2MX",
}
LONG_DEFAULT = "x" * 20


@dataclass(frozen=True)
class Finding:
    """One problem in a catalogue, located."""

    level: str  # "error" | "warning"
    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.level}: {self.message}"


def filled(entry: Entry) -> str:
    """The entry's words with every variable at its long test value."""
    values = {name: LONG_VALUES.get(name, LONG_DEFAULT) for name in entry.variables}
    return entry.text.format_map(values)


def check_entry(entry: Entry) -> list[Finding]:
    """Segments, length and characters of one message."""
    findings = []
    text = filled(entry)
    segments = count_segments(text)
    if segments > MAX_SEGMENTS:
        findings.append(
            Finding(
                "error",
                entry.file,
                entry.line,
                f"'{entry.key}' is {segments} SMS segments with long names filled in (at most "
                f"{MAX_SEGMENTS}); make it shorter or split it into two messages",
            )
        )
    if len(text) > MAX_CHARACTERS:
        findings.append(
            Finding(
                "error",
                entry.file,
                entry.line,
                f"'{entry.key}' is {len(text)} characters with names filled in (at most "
                f"{MAX_CHARACTERS}); make it shorter",
            )
        )
    odd = non_gsm_characters(entry.text)
    if odd and not entry.allow_unicode:
        shown = " ".join(repr(c) for c in odd[:5])
        findings.append(
            Finding(
                "warning",
                entry.file,
                entry.line,
                f"'{entry.key}' has {shown}, which makes the text UCS-2 (70 characters a "
                "segment); use plain quotes and dashes, or add 'allow_unicode: true'",
            )
        )
    return findings


def reading_ease(text: str) -> float:
    """Flesch Reading Ease of English words (textstat 0.7.8 works offline)."""
    import textstat  # imported here: only the linter and the staff pages need it

    return float(textstat.flesch_reading_ease(text))


def check_reading(entry: Entry) -> list[Finding]:
    """An English message a parent with a reading age of 9 can read: ease 70 or more."""
    text = filled(entry)
    if len(text.split()) < MIN_WORDS_FOR_EASE:
        return []  # a name or a word or two: the formula means nothing there
    score = reading_ease(text)
    if score >= MIN_READING_EASE:
        return []
    return [
        Finding(
            "error",
            entry.file,
            entry.line,
            f"'{entry.key}' has reading ease {score:.0f} (at least {MIN_READING_EASE:.0f}); "
            "use shorter sentences and shorter, everyday words",
        )
    ]


def check_translations(catalogue: Catalogue) -> list[Finding]:
    """A message marked reviewed in English (risk replies) must be reviewed in each translation."""
    findings = []
    english = catalogue.languages.get("en", {})
    for lang, entries in sorted(catalogue.languages.items()):
        if lang == "en":
            continue
        for key, entry in entries.items():
            if english.get(key) is not None and english[key].reviewed and not entry.reviewed:
                findings.append(
                    Finding(
                        "error",
                        entry.file,
                        entry.line,
                        f"'{key}' must be translated and checked by a person (never by a machine);"
                        " add 'reviewed: true' once it has been, or remove it to use English",
                    )
                )
    return findings


def check_audio(entry: Entry, audio_dir: Path) -> list[Finding]:
    """A voice note named in the catalogue must be there (or be a web address)."""
    if not entry.audio or entry.audio.startswith(("http://", "https://")):
        return []
    path = audio_dir / entry.language / entry.audio
    if ".." in Path(entry.audio).parts or not path.is_file():
        return [
            Finding(
                "error",
                entry.file,
                entry.line,
                f"'{entry.key}' names the voice note '{entry.audio}', which is not in "
                f"{audio_dir / entry.language}; add the file or fix the name",
            )
        ]
    return []


def check_catalogue(catalogue: Catalogue, audio_dir: Path | None = None) -> list[Finding]:
    """Every message of every language."""
    findings: list[Finding] = []
    for lang, entries in sorted(catalogue.languages.items()):
        for entry in entries.values():
            findings.extend(check_entry(entry))
            if audio_dir is not None:
                findings.extend(check_audio(entry, audio_dir))
            if lang == "en" and entry.audience == "parent":
                findings.extend(check_reading(entry))
    findings.extend(check_translations(catalogue))
    return findings
