"""WhatsApp templates: which approved Content template stands in for a catalogue message.

Outside WhatsApp's 24-hour window only approved templates may start a conversation. A deployment
maps catalogue keys to its templates' ``ContentSid`` and names the variable for each placeholder.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flows.yamlload import SourceError, load_located

_CONTENT_SID = re.compile(r"^HX[0-9a-fA-F]{32}$")


@dataclass(frozen=True)
class Template:
    """An approved template and how to fill it."""

    content_sid: str
    variables: dict[str, str]

    def content_variables(self, values: Mapping[str, Any]) -> str:
        """The JSON string Twilio's ``ContentVariables`` takes."""
        return json.dumps(
            {slot: str(values.get(name, "") or "") for slot, name in self.variables.items()},
            ensure_ascii=False,
        )


def load_templates(path: Path | None, catalogue_keys: set[str]) -> dict[str, Template]:
    """Read the template map; every key must be in the catalogue and every SID well formed."""
    if path is None:
        return {}
    located = load_located(path.read_text(encoding="utf-8"), str(path))
    data = located.value or {}
    if not isinstance(data, dict):
        raise SourceError(str(path), 1, "map catalogue keys to templates")
    templates: dict[str, Template] = {}
    for key, spec in data.items():
        line = located.line((key,))
        if key not in catalogue_keys:
            raise SourceError(str(path), line, f"'{key}' is not a catalogue key")
        if not isinstance(spec, dict) or not _CONTENT_SID.match(str(spec.get("content_sid", ""))):
            raise SourceError(str(path), line, "give 'content_sid: HX…' (32 hex digits after HX)")
        variables = spec.get("variables") or {}
        if not isinstance(variables, dict):
            raise SourceError(str(path), line, "'variables' maps placeholder numbers to names")
        templates[key] = Template(
            str(spec["content_sid"]), {str(k): str(v) for k, v in variables.items()}
        )
    return templates
