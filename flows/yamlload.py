"""YAML reading that remembers where each value came from.

Clinicians edit the flow and catalogue files by hand, so every error must point at a file and a
line. PyYAML's composer keeps line marks on nodes; we build plain Python values from the nodes and
keep a map from each value's path (``("steps", 3, "next")``) to its line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import yaml

Path = tuple[str | int, ...]


class _CoreLoader(yaml.SafeLoader):
    """YAML 1.2 core schema for plain values: only true/false are booleans.

    Under YAML 1.1 (PyYAML's default) ``yes``, ``no`` and ``on`` are booleans, ``18:00`` is the
    number 1080 and ``2026-02-30`` is a date that fails to build. Clinicians write ``words: [yes,
    ok]`` and ``parent: 18:00`` and mean the words they typed.
    """

    yaml_implicit_resolvers: dict[Any, Any] = {}  # its own registry, not SafeLoader's


_CoreLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_CoreLoader.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"),
    list("-+0123456789"),
)
_CoreLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)
_CoreLoader.add_implicit_resolver(
    "tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""]
)


_INT_TAG = "tag:yaml.org,2002:int"


def _core_int(text: str) -> int:
    """A core-schema integer: ``08`` is eight (YAML 1.1 reads a leading 0 as octal)."""
    text = text.replace("_", "")
    digits = text.lstrip("+-").lower()
    return int(text, 0) if digits.startswith(("0o", "0x", "0b")) else int(text)


class SourceError(Exception):
    """A problem in a file a person edits, located by file and line."""

    def __init__(self, file: str, line: int, message: str) -> None:
        super().__init__(f"{file}:{line}: {message}")
        self.file = file
        self.line = line
        self.message = message


@dataclass
class Located:
    """A YAML document as plain Python values, with the line of every value.

    ``texts`` keeps every scalar exactly as written (``7`` stays ``"7"``, ``yes`` stays
    ``"yes"``), for readers that want the words rather than the value YAML makes of them.
    """

    file: str
    value: Any
    lines: dict[Path, int] = field(default_factory=dict)
    texts: dict[Path, str] = field(default_factory=dict)

    def line(self, path: Iterable[str | int]) -> int:
        """Return the line of the value at ``path``, or of its nearest ancestor."""
        key = tuple(path)
        while key:
            if key in self.lines:
                return self.lines[key]
            key = key[:-1]
        return self.lines.get((), 1)


class _Builder:
    """Turns composed nodes into values, recording each value's line and written text."""

    def __init__(self, file: str, core_schema: bool) -> None:
        self.file = file
        self.core_schema = core_schema
        # One constructor per document: PyYAML's keeps every object it built until the next one.
        self.constructor = yaml.constructor.SafeConstructor()
        self.lines: dict[Path, int] = {}
        self.texts: dict[Path, str] = {}

    def build(self, node: yaml.Node, path: Path) -> Any:
        lines = self.lines
        lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            result: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = str(key_node.value)
                if key in result:
                    raise SourceError(
                        self.file,
                        key_node.start_mark.line + 1,
                        f"'{key}' appears twice here; keep one of them",
                    )
                result[key] = self.build(value_node, (*path, key))
                lines[(*path, key)] = key_node.start_mark.line + 1
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        self.texts[path] = str(node.value)
        try:
            if self.core_schema and node.tag == _INT_TAG:
                return _core_int(str(node.value))
            return self.constructor.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, TypeError, OverflowError) as exc:
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            tag = str(node.tag)
            fix = (
                "put it in quotes"
                if tag.startswith("tag:yaml.org,2002:")
                else f"remove the '{tag}' in front of it"
            )
            raise SourceError(
                self.file,
                node.start_mark.line + 1,
                f"cannot read the value '{node.value}' ({problem}); {fix}",
            ) from None


_OPENED = {
    "quoted scalar": "the quote opened on this line is never closed; add the closing quote",
    "flow sequence": "the '[' on this line is not closed with ']' (or a word in it needs quotes)",
    "flow mapping": "the '{' on this line is not closed with '}' (or a word in it needs quotes)",
}


def _syntax_problem(exc: yaml.MarkedYAMLError) -> tuple[int, str]:
    """The line a person should look at, and what to do there.

    PyYAML notices an unclosed quote or bracket only where the text stops making sense, often at
    the end of the file; the line that opened it is the one to fix.
    """
    context = exc.context or ""
    for opened, advice in _OPENED.items():
        if opened in context and exc.context_mark is not None:
            return exc.context_mark.line + 1, advice
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark else 1
    problem = exc.problem or "the YAML cannot be read"
    if "'\\t'" in problem:
        return line, "a tab is used here; indent with spaces only"
    if "<block" in problem:
        return line, "the indentation of this line does not fit the lines above; line it up"
    if "mapping values are not allowed" in problem:
        return line, (
            "this ':' cannot start a new key here; check the indentation of this line, or put "
            "words that contain ':' in quotes"
        )
    return line, f"{problem}; check the indentation and quotes on this line"


def load_located(text: str, file: str, *, core_schema: bool = False) -> Located:
    """Parse one YAML document, turning syntax errors into ``SourceError`` with a line.

    ``core_schema`` reads plain values the YAML 1.2 way (see ``_CoreLoader``): what people type in
    flows and scripts stays the words they typed. Without it PyYAML's YAML 1.1 rules apply.
    """
    loader = _CoreLoader if core_schema else yaml.SafeLoader
    try:
        node = yaml.compose(text, Loader=loader)
    except yaml.MarkedYAMLError as exc:
        line, message = _syntax_problem(exc)
        raise SourceError(file, line, f"YAML error: {message}") from None
    except yaml.YAMLError as exc:
        raise SourceError(file, 1, f"YAML error: {exc}") from None
    if node is None:
        return Located(file, None, {(): 1})
    builder = _Builder(file, core_schema)
    value = builder.build(node, ())
    return Located(file, value, builder.lines, builder.texts)
