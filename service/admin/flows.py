"""The flows and catalogues as admins need to see them: valid or not, drawn, and readable.

Editing stays in the files (and in version control); this page shows what ``bravesteps lint``
would say about the files on disk now, each loaded flow drawn as ``bravesteps graph`` draws it,
every message with its reading ease and SMS segments, and the missing translations per language.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from flask import abort, current_app, render_template
from markupsafe import Markup

from messages.catalog import Catalogue
from messages.segments import count_segments
from messages.textcheck import MIN_READING_EASE, MIN_WORDS_FOR_EASE, filled, reading_ease
from service.admin import bp, roles, services
from service.linting import lint_content
from service.wiring import Services

CACHE_KEY = "bravesteps.catalogue_report"


@dataclass(frozen=True)
class MessageRow:
    """One catalogue entry as the flows page lists it."""

    key: str
    audience: str
    text: str
    ease: float | None
    segments: int
    characters: int
    audio: bool
    translated: tuple[str, ...]

    @property
    def hard_to_read(self) -> bool:
        return self.ease is not None and self.ease < MIN_READING_EASE


def catalogue_report(catalogue: Catalogue) -> list[MessageRow]:
    """Every English message with its measures (worked out once per loaded catalogue)."""
    cache: dict[int, list[MessageRow]] = current_app.extensions.setdefault(CACHE_KEY, {})
    if id(catalogue) in cache:
        return cache[id(catalogue)]
    others = [lang for lang in catalogue.languages if lang != "en"]
    rows = []
    for key in sorted(catalogue.keys):
        entry = catalogue.entry(key)
        text = filled(entry)
        words = len(text.split())
        rows.append(
            MessageRow(
                key=key,
                audience=entry.audience,
                text=entry.text,
                ease=reading_ease(text) if words >= MIN_WORDS_FOR_EASE else None,
                segments=count_segments(text),
                characters=len(text),
                audio=bool(entry.audio),
                translated=tuple(
                    lang for lang in others if key in catalogue.languages.get(lang, {})
                ),
            )
        )
    cache.clear()
    cache[id(catalogue)] = rows
    return rows


def _by_file(lines: list[str], root: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in lines:
        name = Path(line.split(":", 1)[0]).name
        found.setdefault(name, []).append(line.replace(str(root) + "/", ""))
    return found


@bp.get("/flows")
@roles("admin")
def flows() -> str:
    """Every flow with its validity and diagram; the catalogue with its measures."""
    svc = services()
    settings = svc.settings
    errors, warnings, summary = lint_content(settings.flows_dir, settings.messages_dir)
    names = sorted(svc.flows.flows)
    problems = _by_file(errors, settings.flows_dir.parent)
    return render_template(
        "admin/flows.html",
        names=names,
        flows=svc.flows.flows,
        errors=errors,
        warnings=warnings,
        summary=summary,
        problems=problems,
        rows=catalogue_report(svc.catalogue),
        missing=svc.catalogue.missing(),
        min_ease=MIN_READING_EASE,
    )


def _words(svc: Services) -> Callable[[str], str | None]:
    """The English words of a message, so a drawing shows what each step says (as the CLI's)."""

    def text(key: str) -> str | None:
        try:
            return svc.catalogue.entry(key).text
        except KeyError:
            return None

    return text


@bp.get("/flows/<name>.svg")
@roles("admin")
def flow_svg(name: str) -> tuple[str, int, dict[str, str]]:
    """One flow drawn as SVG (the drawing ``bravesteps graph NAME --format svg`` prints)."""
    from flows.graph import render

    svc = services()
    if name not in svc.flows.flows:
        abort(404)
    return render(svc.flows, name, "svg", _words(svc)), 200, {"Content-Type": "image/svg+xml"}


@bp.get("/flows/<name>")
@roles("admin")
def flow(name: str) -> str:
    """One flow: its diagram inline, and the Mermaid text to paste elsewhere."""
    from flows.graph import render

    svc = services()
    if name not in svc.flows.flows:
        abort(404)
    return render_template(
        "admin/flow.html",
        name=name,
        # Built by flows.graph, which escapes every text it draws.
        svg=Markup(render(svc.flows, name, "svg", _words(svc))),
        mermaid=render(svc.flows, name, "mermaid", _words(svc)),
    )
