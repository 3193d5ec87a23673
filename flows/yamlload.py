"""YAML reading that remembers where each value came from.

Clinicians edit the flow and catalogue files by hand, so every error must point at a file and a
line. PyYAML's composer keeps line marks on nodes; we build plain Python values from the nodes and
keep a map from each value's path (``("steps", 3, "next")``) to its line.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import yaml

Path = tuple[str | int, ...]
_SCALARS = yaml.constructor.SafeConstructor()


class SourceError(Exception):
    """A problem in a file a person edits, located by file and line."""

    def __init__(self, file: str, line: int, message: str) -> None:
        super().__init__(f"{file}:{line}: {message}")
        self.file = file
        self.line = line
        self.message = message


@dataclass
class Located:
    """A YAML document as plain Python values, with the line of every value."""

    file: str
    value: Any
    lines: dict[Path, int] = field(default_factory=dict)

    def line(self, path: Iterable[str | int]) -> int:
        """Return the line of the value at ``path``, or of its nearest ancestor."""
        key = tuple(path)
        while key:
            if key in self.lines:
                return self.lines[key]
            key = key[:-1]
        return self.lines.get((), 1)


def _build(node: yaml.Node, path: Path, lines: dict[Path, int], file: str) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in result:
                raise SourceError(
                    file,
                    key_node.start_mark.line + 1,
                    f"'{key}' appears twice here; keep one of them",
                )
            lines[(*path, key)] = key_node.start_mark.line + 1
            result[key] = _build(value_node, (*path, key), lines, file)
            lines[(*path, key)] = key_node.start_mark.line + 1
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*path, i), lines, file) for i, item in enumerate(node.value)]
    return _SCALARS.construct_object(node, deep=True)


def load_located(text: str, file: str) -> Located:
    """Parse one YAML document, turning syntax errors into ``SourceError`` with a line."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        problem = exc.problem or "the YAML cannot be read"
        raise SourceError(
            file, line, f"YAML error: {problem}; check the indentation and quotes on this line"
        ) from None
    except yaml.YAMLError as exc:
        raise SourceError(file, 1, f"YAML error: {exc}") from None
    lines: dict[Path, int] = {}
    if node is None:
        return Located(file, None, {(): 1})
    return Located(file, _build(node, (), lines, file), lines)
