"""Loading and checking the whole set of flow files at once.

A bad edit must never reach a parent: the set is checked as a whole (shape, every ``next``, every
catalogue key, every flow named by ``go``, reachability, loops without a wait) and any problem is
reported as ``file:line: what is wrong; what to write instead``. The caller keeps the previous good
set when loading fails.
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from flows.conditions import parse_condition
from flows.model import Flow, Step
from flows.yamlload import Located, SourceError, load_located

KEYWORDS_FILE = "keywords.yaml"
CALENDAR_FILE = "calendar.yaml"
KEYWORD_ACTIONS = ("stop", "start", "help", "pause", "resume", "menu", "repeat", "human")
WAITING_KINDS = ("ask", "wait")


@dataclass(frozen=True)
class Keywords:
    """Words that act at any point in any flow, per language (English always applies)."""

    words: Mapping[str, Mapping[str, frozenset[str]]]
    _merged: dict[str, Mapping[str, frozenset[str]]] = field(
        default_factory=dict, compare=False, repr=False
    )

    def for_language(self, language: str) -> Mapping[str, frozenset[str]]:
        """The keyword words for a family's language, English included (worked out once)."""
        found = self._merged.get(language)
        if found is None:
            merged: dict[str, set[str]] = {action: set() for action in KEYWORD_ACTIONS}
            for lang in {"en", language}:
                for action, words in self.words.get(lang, {}).items():
                    merged.setdefault(action, set()).update(words)
            found = {action: frozenset(words) for action, words in merged.items()}
            self._merged[language] = found
        return found


@dataclass
class FlowSet:
    """Every flow, its version and its source, plus the keywords."""

    flows: dict[str, Flow]
    versions: dict[str, str]
    sources: dict[str, Located]
    keywords: Keywords
    steps: dict[str, dict[str, Step]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.steps = {name: {s.id: s for s in flow.steps} for name, flow in self.flows.items()}

    def step(self, flow: str, step_id: str) -> Step | None:
        """The step ``step_id`` of ``flow``, or None if either is gone."""
        return self.steps.get(flow, {}).get(step_id)


class FlowSetError(Exception):
    """One or more problems in the flow files; each names its file and line."""

    def __init__(self, errors: list[SourceError]) -> None:
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


def _friendly(error: dict[str, Any], allowed: Iterable[str]) -> str:
    loc = error.get("loc", ())
    kind = error.get("type", "")
    if kind == "extra_forbidden" and loc:
        name = str(loc[-1])
        close = difflib.get_close_matches(name, list(allowed), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else "; remove it or check the spelling"
        return f"unknown key '{name}'{hint}"
    if kind == "missing" and loc:
        return f"'{loc[-1]}' is missing here; add it"
    if kind == "string_pattern_mismatch" and loc:
        name = str(loc[-1])
        if name == "id":
            return "a step id is lower-case words joined by '_' (like ask_goal_rating)"
        if name == "expect":
            return (
                "'expect' must be one of: yes_no, choice, free_text, time, weekday, "
                "'number 0..10', 'list 3..10'"
            )
        if name == "flow":
            return "a flow name is lower-case words joined by '_' (like week_1)"
        return f"'{name}' is not written the right way"
    message = str(error.get("msg", "is not valid"))
    return message.removeprefix("Value error, ")


_STEP_FIELDS = [*Step.model_fields, "if", "else"]


def parse_flow(text: str, file: str) -> tuple[Flow, Located]:
    """Read one flow file and check its shape."""
    located = load_located(text, file, core_schema=True)
    if not isinstance(located.value, dict):
        raise FlowSetError(
            [SourceError(file, 1, "a flow file starts with 'flow: name' and a list of 'steps'")]
        )
    try:
        flow = Flow.model_validate(located.value)
    except ValidationError as exc:
        allowed = _STEP_FIELDS + list(Flow.model_fields)
        errors = [
            SourceError(file, located.line(err["loc"]), _friendly(dict(err), allowed))
            for err in exc.errors()
        ]
        raise FlowSetError(errors) from None
    return flow, located


def parse_keywords(text: str, file: str) -> Keywords:
    """Read the keyword file: ``language: {stop: [...], start: [...], help: [...]}``."""
    located = load_located(text, file, core_schema=True)
    data = located.value or {}
    if not isinstance(data, dict):
        raise FlowSetError([SourceError(file, 1, "write one section per language, like 'en:'")])
    words: dict[str, dict[str, frozenset[str]]] = {}
    errors = []
    for lang, actions in data.items():
        if not isinstance(actions, dict):
            errors.append(SourceError(file, located.line((lang,)), "list the words per action"))
            continue
        words[lang] = {}
        for action, listed in actions.items():
            if action not in KEYWORD_ACTIONS:
                errors.append(
                    SourceError(
                        file,
                        located.line((lang, action)),
                        f"unknown keyword action '{action}'; use {', '.join(KEYWORD_ACTIONS)}",
                    )
                )
                continue
            if not isinstance(listed, list) or not listed:
                errors.append(
                    SourceError(file, located.line((lang, action)), "give a list of words")
                )
                continue
            words[lang][action] = frozenset(str(w).strip().casefold() for w in listed)
    if errors:
        raise FlowSetError(errors)
    return Keywords(words)


def load_flow_dir(directory: Path, catalogue_keys: set[str]) -> FlowSet:
    """Load every ``*.yaml`` flow in ``directory`` and check them together."""
    errors: list[SourceError] = []
    flows: dict[str, Flow] = {}
    versions: dict[str, str] = {}
    sources: dict[str, Located] = {}
    keywords = Keywords({})
    unloaded: set[str] = set()  # flows whose file has errors of its own
    if not directory.is_dir():
        raise FlowSetError([SourceError(str(directory), 1, "no such folder of flows")])
    for path in sorted(directory.glob("*.yaml")):
        text = _read(path, errors)
        if text is None:
            continue
        try:
            if path.name == CALENDAR_FILE:
                continue  # the timetable, checked by flows.calendar once the flows are known
            if path.name == KEYWORDS_FILE:
                keywords = parse_keywords(text, str(path))
                continue
            flow, located = parse_flow(text, str(path))
        except FlowSetError as exc:
            errors.extend(exc.errors)
            unloaded.add(_flow_name(text, path))
            continue
        except SourceError as exc:
            errors.append(exc)
            unloaded.add(_flow_name(text, path))
            continue
        if flow.flow in flows:
            other = sources[flow.flow].file
            errors.append(
                SourceError(str(path), 1, f"flow '{flow.flow}' is already defined in {other}")
            )
            continue
        flows[flow.flow] = flow
        versions[flow.flow] = hashlib.sha256(text.encode()).hexdigest()[:12]
        sources[flow.flow] = located
    if not flows and not errors:
        errors.append(SourceError(str(directory), 1, "no flow files (*.yaml) found here"))
    flowset = FlowSet(flows, versions, sources, keywords)
    errors.extend(check_references(flowset, catalogue_keys, unloaded))
    if errors:
        raise FlowSetError(errors)
    return flowset


def _flow_name(text: str, path: Path) -> str:
    """The name a broken flow file gives itself, so a 'go' to it is not reported as well."""
    try:
        value = load_located(text, str(path), core_schema=True).value
    except SourceError:
        value = None
    name = value.get("flow") if isinstance(value, dict) else None
    return str(name) if name else path.stem


def _read(path: Path, errors: list[SourceError]) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        errors.append(SourceError(str(path), 1, "the file is not UTF-8 text; save it as UTF-8"))
    except OSError as exc:
        errors.append(SourceError(str(path), 1, f"cannot read the file ({exc.strerror})"))
    return None


def check_references(
    flowset: FlowSet, catalogue_keys: set[str], unloaded: Iterable[str] = ()
) -> list[SourceError]:
    """Check what one file cannot check alone: steps, keys and flows named, and the graph.

    ``unloaded`` names flows whose files failed on their own; a ``go`` to them is not reported
    as well, so one mistake gives one message.
    """
    unloaded = set(unloaded)
    errors: list[SourceError] = []
    for name, flow in flowset.flows.items():
        src = flowset.sources[name]
        ids = [s.id for s in flow.steps]
        index = {s.id: i for i, s in enumerate(flow.steps)}
        seen: set[str] = set()
        for i, step in enumerate(flow.steps):
            path: tuple[str | int, ...] = ("steps", i)
            if step.id in seen:
                errors.append(
                    SourceError(
                        src.file, src.line((*path, "id")), f"step id '{step.id}' is used twice"
                    )
                )
            seen.add(step.id)
            for field_name in ("next", "fallback", "yes", "no", "give_up_after"):
                target = getattr(step, field_name)
                if field_name == "give_up_after" and target:
                    target = step.give_up()[1]
                if target and target not in index:
                    errors.append(_unknown_step(src, (*path, field_name), target, ids))
            for j, choice in enumerate(step.choices or []):
                if choice.next and choice.next not in index:
                    errors.append(
                        _unknown_step(src, (*path, "choices", j, "next"), choice.next, ids)
                    )
            for j, case in enumerate(step.branch or []):
                if case.target not in index:
                    errors.append(_unknown_step(src, (*path, "branch", j), case.target, ids))
                if case.if_ is not None:
                    try:
                        parse_condition(case.if_)
                    except ValueError as exc:
                        errors.append(
                            SourceError(src.file, src.line((*path, "branch", j, "if")), str(exc))
                        )
            for field_name in ("send", "ask", "not_understood", "reminder"):
                key = getattr(step, field_name)
                if key and key not in catalogue_keys:
                    close = difflib.get_close_matches(key, sorted(catalogue_keys), n=1)
                    hint = (
                        f"; did you mean '{close[0]}'?"
                        if close
                        else "; add it to messages/catalog/en.yaml"
                    )
                    errors.append(
                        SourceError(
                            src.file,
                            src.line((*path, field_name)),
                            f"message key '{key}' is not in the English catalogue{hint}",
                        )
                    )
            if step.go is not None and step.go not in flowset.flows and step.go not in unloaded:
                close = difflib.get_close_matches(step.go, list(flowset.flows), n=1)
                hint = f"; did you mean '{close[0]}'?" if close else ""
                errors.append(
                    SourceError(
                        src.file, src.line((*path, "go")), f"there is no flow '{step.go}'{hint}"
                    )
                )
            scheduled = step.schedule.flow if step.schedule else None
            if scheduled and scheduled not in flowset.flows and scheduled not in unloaded:
                errors.append(
                    SourceError(
                        src.file,
                        src.line((*path, "schedule", "flow")),
                        f"there is no flow '{scheduled}' to schedule",
                    )
                )
            errors.extend(_check_way_on(src, path, step, i, flow))
        if flow.recovery and flow.recovery not in index:
            errors.append(_unknown_step(src, ("recovery",), flow.recovery, ids))
        errors.extend(_check_graph(src, flow))
    if not errors:
        errors.extend(_check_go_loops(flowset))
    return errors


def _unknown_step(
    src: Located, path: tuple[str | int, ...], target: str, ids: list[str]
) -> SourceError:
    close = difflib.get_close_matches(target, ids, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else f"; the steps here are: {', '.join(ids)}"
    return SourceError(src.file, src.line(path), f"there is no step '{target}' in this flow{hint}")


def _check_way_on(
    src: Located, path: tuple[str | int, ...], step: Step, i: int, flow: Flow
) -> list[SourceError]:
    """Every step must say where the parent goes next; a step falling off the end is an error."""
    problems = []
    line = src.line(path)
    kind = step.kind
    if kind == "ask" and step.expect == "choice":
        if step.next is None and any(c.next is None for c in step.choices or []):
            problems.append("give each choice a 'next', or the step a 'next'")
    elif kind == "ask" and step.expect == "yes_no":
        if step.next is None and (step.yes is None or step.no is None):
            problems.append("give both 'yes' and 'no', or a 'next'")
    elif kind == "branch":
        if not any(case.else_ is not None for case in step.branch or []):
            problems.append("a branch needs a last arm '- else: step_id' for when nothing matches")
    elif kind not in ("go", "end") and step.next is None:
        problems.append(
            "say where to go next with 'next: step_id' (or end the flow with a step 'end: true')"
        )
    return [SourceError(src.file, line, f"step '{step.id}': {p}") for p in problems]


def _check_graph(src: Located, flow: Flow) -> list[SourceError]:
    """Every step reachable from the start; no loop that never waits for the parent."""
    steps = {s.id: s for s in flow.steps}
    index = {s.id: i for i, s in enumerate(flow.steps)}
    reached: set[str] = set()
    todo = [flow.first, flow.recovery_step]
    while todo:
        current = todo.pop()
        if current in reached or current not in steps:
            continue
        reached.add(current)
        todo.extend(steps[current].targets())
    errors = [
        SourceError(
            src.file,
            src.line(("steps", index[s.id])),
            f"step '{s.id}' can never be reached; lead to it from another step or remove it",
        )
        for s in flow.steps
        if s.id not in reached
    ]
    # A loop made only of steps that do not wait would spin forever.
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> list[str] | None:
        state[node] = 1
        trail.append(node)
        step = steps[node]
        if step.kind not in WAITING_KINDS:
            for target in step.targets():
                if target not in steps:
                    continue
                if state.get(target) == 1 and steps[target].kind not in WAITING_KINDS:
                    return trail[trail.index(target) :]
                if target not in state:
                    found = visit(target, trail)
                    if found:
                        return found
        trail.pop()
        state[node] = 2
        return None

    for s in flow.steps:
        if s.id not in state:
            loop = visit(s.id, [])
            if loop:
                errors.append(
                    SourceError(
                        src.file,
                        src.line(("steps", index[loop[0]])),
                        "these steps go round in a loop without waiting for the parent: "
                        + " -> ".join(loop)
                        + "; put an 'ask' or a 'wait' in the loop",
                    )
                )
                break
    return errors


def _check_go_loops(flowset: FlowSet) -> list[SourceError]:
    """No flows that hand over to each other with ``go`` without ever waiting for the parent.

    Flow A leads straight on to flow B when, from A's first step, a ``go: B`` step is reached
    without passing an ``ask`` or a ``wait``. A circle of such hand-overs (A -> B -> A, or a flow
    that goes to itself) would spin forever; one flow's own check cannot see it.
    """
    straight_on: dict[str, list[tuple[str, int]]] = {}
    for name, flow in flowset.flows.items():
        steps = {s.id: (i, s) for i, s in enumerate(flow.steps)}
        seen: set[str] = set()
        todo = [flow.first]
        found: list[tuple[str, int]] = []
        while todo:
            current = todo.pop()
            if current in seen or current not in steps:
                continue
            seen.add(current)
            i, step = steps[current]
            if step.kind in WAITING_KINDS:
                continue
            if step.go is not None:
                found.append((step.go, i))
            todo.extend(step.targets())
        straight_on[name] = found
    state: dict[str, int] = {}

    def visit(name: str, trail: list[tuple[str, int]]) -> list[tuple[str, int]] | None:
        state[name] = 1
        for target, index in straight_on.get(name, []):
            if target not in flowset.flows:
                continue
            here = [*trail, (name, index)]
            if state.get(target) == 1:
                start = next(k for k, (flow, _) in enumerate(here) if flow == target)
                return here[start:]
            if target not in state:
                loop = visit(target, here)
                if loop:
                    return loop
        state[name] = 2
        return None

    for name in flowset.flows:
        if name in state:
            continue
        loop = visit(name, [])
        if loop:
            last, index = loop[-1]
            src = flowset.sources[last]
            names = [f for f, _ in loop] + [loop[0][0]]
            return [
                SourceError(
                    src.file,
                    src.line(("steps", index, "go")),
                    "these flows go round in a loop without waiting for the parent: "
                    + " -> ".join(names)
                    + "; put an 'ask' or a 'wait' before the 'go'",
                )
            ]
    return []
