"""The catalogues of words, one file per language, keys shared across languages.

Clinicians review all the words in one file and translators touch no logic. A key missing in a
language falls back to English key by key, so a half-translated catalogue is still usable; the
linter lists what is missing.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flows.yamlload import Located, SourceError, load_located

LANGUAGE_NAME = "language.name"  # each catalogue's own name for its language, e.g. "Polski"
ENTRY_FIELDS = ("text", "audio", "allow_unicode", "reviewed", "audience", "note")


@dataclass(frozen=True)
class Entry:
    """One message: its words and how it may be sent."""

    key: str
    text: str
    file: str
    line: int
    audio: str | None = None
    allow_unicode: bool = False
    reviewed: bool = False
    audience: str = "parent"  # "staff" for words sent to staff phones

    @property
    def language(self) -> str:
        """The language of the file this entry came from."""
        return Path(self.file).stem

    @property
    def variables(self) -> list[str]:
        """The ``{names}`` the words use."""
        return [name for _, name, _, _ in string.Formatter().parse(self.text) if name]


@dataclass
class Catalogue:
    """Every language's entries; English is complete by definition."""

    languages: dict[str, dict[str, Entry]] = field(default_factory=dict)
    # Answers derived from the entries, worked out once: a loaded catalogue never changes (a
    # reload builds a new one), and these are asked on every inbound message.
    _derived: dict[tuple[str, str], Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def keys(self) -> set[str]:
        """The English keys: the set every flow may name."""
        return set(self.languages.get("en", {}))

    def entry(self, key: str, language: str = "en") -> Entry:
        """The entry in ``language``, else the English one."""
        found = self.languages.get(language, {}).get(key)
        if found is None:
            found = self.languages["en"][key]
        return found

    def complete_languages(self) -> list[str]:
        """Languages that have every English key."""
        english = self.keys
        return sorted(lang for lang, entries in self.languages.items() if english <= set(entries))

    def offered(self) -> tuple[tuple[str, str], ...]:
        """Languages to offer parents: complete catalogues, each named in its own words."""
        if ("offered", "") not in self._derived:
            self._derived[("offered", "")] = tuple(
                (code, self.render(LANGUAGE_NAME, {}, code) or code)
                for code in self.complete_languages()
            )
        result: tuple[tuple[str, str], ...] = self._derived[("offered", "")]
        return result

    def voice_note_count(self, language: str) -> int:
        """How many messages have a recorded voice note in ``language`` (or in English)."""
        if ("voice", language) not in self._derived:
            self._derived[("voice", language)] = sum(
                1 for key in self.keys if self.entry(key, language).audio
            )
        count: int = self._derived[("voice", language)]
        return count

    def missing(self) -> dict[str, list[str]]:
        """For each language other than English, the keys it lacks."""
        english = self.keys
        return {
            lang: sorted(english - set(entries))
            for lang, entries in sorted(self.languages.items())
            if lang != "en"
        }

    def render(self, key: str, variables: Mapping[str, Any], language: str = "en") -> str:
        """The words of ``key`` with ``{names}`` filled in; an unknown name is left blank."""
        text = self.entry(key, language).text
        return string.Formatter().vformat(text, (), _Blank(variables)).strip()


class _Blank(dict[str, Any]):
    def __init__(self, values: Mapping[str, Any]) -> None:
        super().__init__({k: "" if v is None else v for k, v in values.items()})

    def __missing__(self, key: str) -> str:
        return ""


def _flatten(located: Located, node: Any, prefix: tuple[str, ...], out: dict[str, Entry]) -> None:
    file = located.file
    if isinstance(node, dict) and "text" not in node:
        for name, child in node.items():
            _flatten(located, child, (*prefix, str(name)), out)
        return
    key = ".".join(prefix)
    line = located.line(prefix)
    if isinstance(node, str):
        out[key] = Entry(key, node.strip(), file, line)
        return
    if isinstance(node, dict):
        unknown = [name for name in node if name not in ENTRY_FIELDS]
        if unknown:
            raise SourceError(
                file,
                line,
                f"unknown field '{unknown[0]}' in '{key}'; use {', '.join(ENTRY_FIELDS)}",
            )
        text = node.get("text")
        if not isinstance(text, str) or not text.strip():
            raise SourceError(file, line, f"'{key}' needs its words under 'text'")
        out[key] = Entry(
            key,
            text.strip(),
            file,
            line,
            audio=node.get("audio"),
            allow_unicode=bool(node.get("allow_unicode", False)),
            reviewed=bool(node.get("reviewed", False)),
            audience=str(node.get("audience", "parent")),
        )
        if out[key].audience not in ("parent", "staff"):
            raise SourceError(file, line, f"'{key}': audience is 'parent' or 'staff'")
        return
    raise SourceError(file, line, f"'{key}' must be words (in quotes if they contain ':')")


def parse_catalogue(text: str, file: str) -> dict[str, Entry]:
    """Read one catalogue file into entries keyed ``section.name``."""
    located = load_located(text, file)
    if located.value is None:
        return {}
    if not isinstance(located.value, dict):
        raise SourceError(file, 1, "a catalogue is sections of 'key: words'")
    entries: dict[str, Entry] = {}
    _flatten(located, located.value, (), entries)
    for key, entry in entries.items():
        if "." not in key:
            raise SourceError(file, entry.line, f"put '{key}' inside a section, like 'common:'")
        try:
            fields = [name for _, name, _, _ in string.Formatter().parse(entry.text)]
        except ValueError:
            raise SourceError(
                file,
                entry.line,
                f"'{key}' has a stray '{{' or '}}'; variables look like {{child_name}}",
            ) from None
        if any(name is not None and (name == "" or name.isdigit()) for name in fields):
            raise SourceError(
                file, entry.line, f"'{key}' uses a numbered variable; name it, like {{child_name}}"
            )
    return entries


def load_catalogue(directory: Path) -> Catalogue:
    """Load ``<lang>.yaml`` files from ``directory``; English must be there."""
    errors: list[SourceError] = []
    catalogue = Catalogue()
    if not directory.is_dir():
        raise CatalogueError([SourceError(str(directory), 1, "no such folder of catalogues")])
    for path in sorted(directory.glob("*.yaml")):
        try:
            catalogue.languages[path.stem] = parse_catalogue(
                path.read_text(encoding="utf-8"), str(path)
            )
        except SourceError as exc:
            errors.append(exc)
        except UnicodeDecodeError:
            errors.append(SourceError(str(path), 1, "the file is not UTF-8 text; save it as UTF-8"))
    if "en" not in catalogue.languages and not errors:
        errors.append(
            SourceError(str(directory / "en.yaml"), 1, "the English catalogue is missing")
        )
    for lang, entries in catalogue.languages.items():
        if lang == "en":
            continue
        for key, entry in entries.items():
            if key not in catalogue.keys:
                errors.append(
                    SourceError(
                        entry.file,
                        entry.line,
                        f"'{key}' is not in the English catalogue; "
                        "every language uses the English keys",
                    )
                )
    if errors:
        raise CatalogueError(errors)
    return catalogue


class CatalogueError(Exception):
    """Problems in the catalogues, each with its file and line."""

    def __init__(self, errors: list[SourceError]) -> None:
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))
