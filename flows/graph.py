"""Drawings of a flow: its steps as boxes and every way on that the engine can take as arrows.

A flow file reads top to bottom; a drawing shows what the file only implies: where each answer
leads, what a reply that is not understood does, what silence does, and where the loops are. One
graph model feeds two drawings: Mermaid text (for documents and issue threads) and an SVG drawn
here (for the staff app and for people offline: no CDN, no mermaid.js, no graphviz). Pure: the
same flow gives the same bytes.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from flows.layout import Box, Layout, Link, Route, layered
from flows.loader import FlowSet
from flows.model import KINDS, Flow, Step, parse_when

TextLookup = Callable[[str], str | None]
"""A step's catalogue key to its English words (or None); used for the first words in a box."""

START = "@start"
CLOSED = "@closed"
FLOW_PREFIX = "flow:"
FORMATS = ("mermaid", "svg")
SNIPPET_WORDS = 6
SNIPPET_CHARS = 40

# Edge styles: how an arrow is drawn, by what makes the engine take it.
NEXT, ANSWER, BRANCH, RETRY, TIMER, FLOW, ENTRY = (
    "next",
    "answer",
    "branch",
    "retry",
    "timer",
    "flow",
    "entry",
)


@dataclass(frozen=True)
class Node:
    """One box: a step, the start, another flow, or the end of the conversation."""

    id: str
    kind: str  # a step kind, or "start", "flow" (another flow) or "closed"
    title: str
    details: tuple[str, ...] = ()


@dataclass(frozen=True)
class Edge:
    """One way on: from a step to a step (or another flow, or the end), and why."""

    source: str
    target: str
    label: str = ""
    style: str = NEXT


@dataclass(frozen=True)
class Graph:
    """A flow as nodes and edges, the start node first."""

    flow: str
    description: str
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]


class UnknownFlowError(LookupError):
    """There is no flow by that name; ``known`` lists the flows there are."""

    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        self.known = known
        super().__init__(f"there is no flow '{name}'; the flows are: {', '.join(known)}")


# ---- the graph model ------------------------------------------------------------------------


def build(flow: Flow, text: TextLookup | None = None) -> Graph:
    """The graph of one flow; with ``text``, send and ask boxes show their first words."""
    edges = [Edge(START, flow.first, "start", ENTRY)]
    if flow.recovery:
        edges.append(Edge(START, flow.recovery, "if the parent's step was removed", ENTRY))
    for step in flow.steps:
        edges.extend(step_edges(step, flow))
    nodes = [Node(START, "start", flow.flow, ("start",))]
    nodes.extend(Node(s.id, s.kind, s.id, step_details(s, text)) for s in flow.steps)
    known = {node.id for node in nodes}
    for edge in edges:
        if edge.target not in known:
            known.add(edge.target)
            nodes.append(_outside_node(edge.target))
    return Graph(flow.flow, flow.description or "", tuple(nodes), tuple(edges))


def _outside_node(target: str) -> Node:
    """The end of the conversation, another flow, or (in a flow the loader has not checked) a
    step that does not exist, drawn rather than failing."""
    if target == CLOSED:
        return Node(CLOSED, "closed", "conversation closed")
    if target.startswith(FLOW_PREFIX):
        return Node(target, "flow", target.removeprefix(FLOW_PREFIX))
    return Node(target, "missing", target, ("missing step",))


def step_edges(step: Step, flow: Flow) -> list[Edge]:
    """Every way the engine can leave ``step``; a kind with no rule is an error, not a gap."""
    rule = EDGE_RULES.get(step.kind)
    if rule is None:
        raise ValueError(f"no drawing rule for a '{step.kind}' step; add one to EDGE_RULES")
    return rule(step, flow)


def _next(step: Step, label: str = "", style: str = NEXT) -> list[Edge]:
    return [Edge(step.id, step.next, label, style)] if step.next else []


def _plain(step: Step, flow: Flow) -> list[Edge]:
    return _next(step)


def _branch_edges(step: Step, flow: Flow) -> list[Edge]:
    return [
        Edge(step.id, case.target, case.if_ if case.if_ is not None else "else", BRANCH)
        for case in step.branch or []
    ]


def _wait_edges(step: Step, flow: Flow) -> list[Edge]:
    return _next(step, _when_label(str(step.wait)), TIMER) + _expiry(step, flow)


def _when_label(text: str) -> str:
    if parse_when(text).delay is not None:
        return f"after {text.strip()}"
    return text.strip() if text.strip().lower().startswith("until ") else f"until {text.strip()}"


def _schedule_edges(step: Step, flow: Flow) -> list[Edge]:
    assert step.schedule is not None
    spec = step.schedule
    when = f"after {spec.after}" if spec.after else f"at {spec.at}" if spec.at else f"on {spec.on}"
    return [*_next(step), Edge(step.id, FLOW_PREFIX + spec.flow, f"starts later, {when}", FLOW)]


def _go_edges(step: Step, flow: Flow) -> list[Edge]:
    return [Edge(step.id, FLOW_PREFIX + str(step.go), "go", FLOW)]


def _end_edges(step: Step, flow: Flow) -> list[Edge]:
    return []


def _ask_edges(step: Step, flow: Flow) -> list[Edge]:
    return _answers(step) + _not_understood(step) + _timers(step) + _expiry(step, flow)


ANSWER_LABELS = {
    "free_text": "any reply",
    "time": "a time",
    "weekday": "a day",
    "language": "a language",
}


def _answers(step: Step) -> list[Edge]:
    expect = str(step.expect)
    if expect == "yes_no":
        pairs = [("yes", step.yes or step.next), ("no", step.no or step.next)]
    elif expect == "choice":
        pairs = [(c.value, c.next or step.next) for c in step.choices or []]
    else:
        pairs = [(ANSWER_LABELS.get(expect, expect), step.next)]
    return [Edge(step.id, target, label, ANSWER) for label, target in pairs if target]


def _not_understood(step: Step) -> list[Edge]:
    edges = []
    if step.retries:
        edges.append(Edge(step.id, step.id, f"not understood: {_again(step.retries)}", RETRY))
    still = "still not understood" if step.retries else "not understood"
    if step.fallback:
        edges.append(Edge(step.id, step.fallback, still, RETRY))
    else:
        edges.append(Edge(step.id, step.id, f"{still}: staff alerted", RETRY))
    return edges


def _again(retries: int) -> str:
    return "asks once more" if retries == 1 else f"asks again, up to {retries} times"


def _timers(step: Step) -> list[Edge]:
    edges = []
    if step.remind_after:
        edges.append(Edge(step.id, step.id, f"no reply in {step.remind_after}: reminder", TIMER))
    if step.give_up_after:
        wait = str(step.give_up_after).partition("->")[0].strip()
        target = step.give_up()[1] or CLOSED
        edges.append(Edge(step.id, target, f"no reply in {wait}", TIMER))
    return edges


def _expiry(step: Step, flow: Flow) -> list[Edge]:
    if not flow.expire_after:
        return []
    return [Edge(step.id, CLOSED, f"waiting {flow.expire_after}: expires", TIMER)]


EDGE_RULES: dict[str, Callable[[Step, Flow], list[Edge]]] = {
    "send": _plain,
    "ask": _ask_edges,
    "set": _plain,
    "branch": _branch_edges,
    "record": _plain,
    "consent": _plain,
    "alert": _plain,
    "wait": _wait_edges,
    "schedule": _schedule_edges,
    "go": _go_edges,
    "end": _end_edges,
}


def step_details(step: Step, text: TextLookup | None = None) -> tuple[str, ...]:
    """The short lines under a step's id: its kind first, then what it names."""
    rule = DETAIL_RULES.get(step.kind)
    if rule is None:
        raise ValueError(f"no drawing rule for a '{step.kind}' step; add one to DETAIL_RULES")
    lines = [step.kind, *rule(step)]
    key = step.send or step.ask
    words = _snippet(key, text) if key else None
    if words:
        lines.append(words)
    return tuple(lines)


def _snippet(key: str, text: TextLookup | None) -> str | None:
    if text is None:
        return None
    try:
        found = text(key)
    except (KeyError, LookupError):
        return None
    words = (found or "").split()
    if not words:
        return None
    short = " ".join(words[:SNIPPET_WORDS])
    if len(short) > SNIPPET_CHARS:
        short = short[: SNIPPET_CHARS - 1].rstrip()
    cut = short != " ".join(words)
    return f"“{short}{'…' if cut else ''}”"


def _yaml_value(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _record_detail(step: Step) -> list[str]:
    assert step.record is not None
    spec = step.record
    value = f"sum of {', '.join(spec.sum)}" if spec.sum is not None else f"= {spec.value}"
    return [f"{spec.measure} {value}"]


def _schedule_detail(step: Step) -> list[str]:
    assert step.schedule is not None
    return [f"flow {step.schedule.flow}"]


DETAIL_RULES: dict[str, Callable[[Step], list[str]]] = {
    "send": lambda s: [str(s.send)] + (["the week's tip"] if s.tip else []),
    "ask": lambda s: [str(s.ask), f"expects {s.expect}"],
    "set": lambda s: [f"{name} = {_yaml_value(value)}" for name, value in (s.set or {}).items()],
    "branch": lambda s: [],
    "record": _record_detail,
    "consent": lambda s: [str(s.consent)],
    "alert": lambda s: [f"{s.alert.kind}, {s.alert.urgency}"] if s.alert else [],
    "wait": lambda s: [str(s.wait)],
    "schedule": _schedule_detail,
    "go": lambda s: [f"to flow {s.go}"],
    "end": lambda s: ["the flow ends"],
}


def render(flowset: FlowSet, name: str, fmt: str, text: TextLookup | None = None) -> str:
    """The drawing of flow ``name`` as ``fmt`` ("mermaid" or "svg").

    Raises ``UnknownFlowError`` for a flow that is not in the set and ``ValueError`` for an
    unknown format. ``text`` (a catalogue key to its English words) adds the first words of each
    message to its box.
    """
    flow = flowset.flows.get(name)
    if flow is None:
        raise UnknownFlowError(name, sorted(flowset.flows))
    if fmt not in FORMATS:
        raise ValueError(f"unknown format '{fmt}'; use one of: {', '.join(FORMATS)}")
    graph = build(flow, text)
    return to_mermaid(graph) if fmt == "mermaid" else to_svg(graph)


# ---- Mermaid --------------------------------------------------------------------------------

_MERMAID_SAFE = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 _-.,:!?()'/=+"
)
_MERMAID_SHAPES = {
    "start": ('(["', '"])'),
    "closed": ('(["', '"])'),
    "end": ('(["', '"])'),
    "ask": ('("', '")'),
    "branch": ('{"', '"}'),
    "wait": ('[["', '"]]'),
    "flow": ('>"', '"]'),
}
_MERMAID_ARROWS = {RETRY: "-.->", TIMER: "-.->", FLOW: "==>"}


def mermaid_text(text: str) -> str:
    """Text safe inside a quoted Mermaid label: anything but plain ASCII as an entity code."""
    return "".join(ch if ch in _MERMAID_SAFE else f"#{ord(ch)};" for ch in text)


def mermaid_ids(graph: Graph) -> dict[str, str]:
    """A Mermaid-safe, unique id for each node (never a keyword such as ``end``)."""
    ids: dict[str, str] = {}
    used: set[str] = set()
    for node in graph.nodes:
        if node.kind in ("start", "closed"):
            base = "n_" + node.kind
        else:
            prefix = "f_" if node.kind == "flow" else "s_"
            base = prefix + re.sub(r"[^A-Za-z0-9_]", "_", node.title)
        candidate, n = base, 1
        while candidate in used:
            n += 1
            candidate = f"{base}_{n}"
        ids[node.id] = candidate
        used.add(candidate)
    return ids


def _mermaid_label(node: Node) -> str:
    kind, *rest = node.details or (node.kind,)
    first = node.title if node.kind == "closed" else f"{kind}: {node.title}"
    return "<br/>".join(mermaid_text(line) for line in [first, *rest])


def to_mermaid(graph: Graph) -> str:
    """The graph as Mermaid ``flowchart TD`` text, coloured by kind (the kind is also written)."""
    ids = mermaid_ids(graph)
    lines = ["flowchart TD"]
    for node in graph.nodes:
        opening, closing = _MERMAID_SHAPES.get(node.kind, ('["', '"]'))
        lines.append(f"    {ids[node.id]}{opening}{_mermaid_label(node)}{closing}")
    for edge in graph.edges:
        arrow = _MERMAID_ARROWS.get(edge.style, "-->")
        label = f'|"{mermaid_text(edge.label)}"|' if edge.label else ""
        lines.append(f"    {ids[edge.source]} {arrow}{label} {ids[edge.target]}")
    kinds = [kind for kind in PALETTE if any(n.kind == kind for n in graph.nodes)]
    for kind in kinds:
        fill, stroke = PALETTE[kind]
        lines.append(f"    classDef k_{kind} fill:{fill},stroke:{stroke},color:{INK}")
    for kind in kinds:
        members = ",".join(ids[n.id] for n in graph.nodes if n.kind == kind)
        lines.append(f"    class {members} k_{kind}")
    return "\n".join(lines) + "\n"


# ---- SVG ------------------------------------------------------------------------------------

INK = "#111827"
PALETTE: dict[str, tuple[str, str]] = {  # fill, border; the text is always INK (contrast > 12:1)
    "start": ("#ffffff", "#111827"),
    "send": ("#dbeafe", "#1d4ed8"),
    "ask": ("#dcfce7", "#15803d"),
    "set": ("#f3f4f6", "#4b5563"),
    "branch": ("#fef9c3", "#a16207"),
    "record": ("#e0e7ff", "#4338ca"),
    "consent": ("#ccfbf1", "#0f766e"),
    "alert": ("#fee2e2", "#b91c1c"),
    "wait": ("#ffedd5", "#c2410c"),
    "schedule": ("#fae8ff", "#a21caf"),
    "go": ("#ede9fe", "#6d28d9"),
    "end": ("#e5e7eb", "#111827"),
    "flow": ("#ffffff", "#6d28d9"),
    "closed": ("#e5e7eb", "#111827"),
    "missing": ("#fee2e2", "#b91c1c"),
}
CORNERS = {"ask": 14.0, "start": 18.0, "end": 18.0, "closed": 18.0, "branch": 0.0}
EDGE_LOOKS: dict[str, tuple[str, str]] = {  # colour, dash pattern (contrast > 4.5:1 on white)
    NEXT: ("#374151", ""),
    ANSWER: ("#374151", ""),
    BRANCH: ("#374151", ""),
    ENTRY: ("#374151", ""),
    RETRY: ("#4b5563", "5 3"),
    TIMER: ("#c2410c", "2 3"),
    FLOW: ("#111827", ""),
}
BACK_LOOK = ("#6d28d9", "8 4")
LEGEND = (
    (NEXT, "next step, or an answer"),
    (RETRY, "reply not understood"),
    (TIMER, "after a time"),
    (FLOW, "to another flow"),
    ("back", "back to an earlier step"),
)

FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif"
TITLE_SIZE, TEXT_SIZE, SMALL_SIZE = 14.0, 13.0, 11.0
LINE = 1.3  # line height, in font sizes
PAD = 8.0
MAX_TEXT_WIDTH = 200.0  # wraps box text so a phone shows a box at a readable size
MIN_BOX_WIDTH = 110.0
LOOP_ROOM = 18.0
LABEL_WIDTH = 150.0
_NARROW = frozenset("ijlt.,:;'|!()[]{} fr")
_WIDE = frozenset("mwMW@%")
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def text_width(text: str, size: float, bold: bool = False) -> float:
    """A generous estimate of how wide ``text`` is in a sans-serif font (no font files here)."""
    total = 0.0
    for ch in text:
        if unicodedata.east_asian_width(ch) in "WF" or ord(ch) > 0xFFFF:
            total += 1.15
        elif ch in _NARROW:
            total += 0.38
        elif ch in _WIDE or ch.isupper():
            total += 0.82
        else:
            total += 0.63
    return total * size * (1.1 if bold else 1.0)


def wrap(text: str, width: float, size: float, bold: bool = False) -> list[str]:
    """``text`` in lines no wider than ``width``; a word too long alone is cut."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        trial = f"{current} {word}" if current else word
        if text_width(trial, size, bold) <= width:
            current = trial
            continue
        if current:
            lines.append(current)
        current = ""
        for ch in word:
            if current and text_width(current + ch, size, bold) > width:
                lines.append(current)
                current = ""
            current += ch
    if current:
        lines.append(current)
    return lines or [""]


def xml_text(text: str) -> str:
    """Text safe in XML content and in double-quoted attributes."""
    text = _NOT_XML.sub("", text)
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )


@dataclass(frozen=True)
class _Line:
    text: str
    size: float
    weight: str = "normal"
    style: str = "normal"


@dataclass(frozen=True)
class _Drawn:
    """One edge as drawn: the edges it stands for (parallel edges merge) and its look."""

    source: str
    target: str
    labels: tuple[str, ...]
    style: str


def _box_lines(node: Node, loops: list[str]) -> list[_Line]:
    kind, *rest = node.details or (node.kind,)
    tag = "another flow" if node.kind == "flow" else kind
    lines = [_Line(tag.upper(), SMALL_SIZE)]
    lines += [
        _Line(t, TITLE_SIZE, "bold") for t in wrap(node.title, MAX_TEXT_WIDTH, TITLE_SIZE, True)
    ]
    for detail in rest:
        style = "italic" if detail.startswith("“") else "normal"
        lines += [_Line(t, TEXT_SIZE, style=style) for t in wrap(detail, MAX_TEXT_WIDTH, TEXT_SIZE)]
    for loop in loops:
        lines += [_Line(t, SMALL_SIZE) for t in wrap(f"↻ {loop}", MAX_TEXT_WIDTH, SMALL_SIZE)]
    return lines


def _box_size(lines: list[_Line]) -> tuple[float, float]:
    width = max(text_width(ln.text, ln.size, ln.weight == "bold") for ln in lines) + 2 * PAD
    height = sum(line.size * LINE for line in lines) + 2 * PAD
    return max(width, MIN_BOX_WIDTH), height


def _merged(graph: Graph) -> list[_Drawn]:
    """Edges between the same two nodes drawn once, with all their reasons."""
    drawn: dict[tuple[str, str], _Drawn] = {}
    for edge in graph.edges:
        key = (edge.source, edge.target)
        old = drawn.get(key)
        labels = (edge.label,) if edge.label else ()
        if old is None:
            drawn[key] = _Drawn(edge.source, edge.target, labels, edge.style)
        else:
            style = edge.style if EDGE_LOOKS[edge.style][1] == "" else old.style
            drawn[key] = _Drawn(old.source, old.target, old.labels + labels, style)
    return list(drawn.values())


def _label_lines(edge: _Drawn) -> list[str]:
    if edge.source == edge.target or not edge.labels:
        return []
    return wrap(" · ".join(edge.labels), LABEL_WIDTH, SMALL_SIZE)


def to_svg(graph: Graph) -> str:
    """The graph as a self-contained, accessible SVG drawing (same graph, same bytes)."""
    edges = _merged(graph)
    loops = {
        n.id: [lb for e in edges if e.source == e.target == n.id for lb in e.labels]
        for n in graph.nodes
    }
    lines = {n.id: _box_lines(n, loops[n.id]) for n in graph.nodes}
    sizes = {n.id: _box_size(lines[n.id]) for n in graph.nodes}
    boxes = [
        Box(n.id, sizes[n.id][0] + (LOOP_ROOM if loops[n.id] else 0.0), sizes[n.id][1])
        for n in graph.nodes
    ]
    links = []
    for edge in edges:
        label = _label_lines(edge)
        width = max((text_width(t, SMALL_SIZE) for t in label), default=0.0)
        links.append(Link(edge.source, edge.target, width, len(label) * SMALL_SIZE * LINE))
    layout = layered(boxes, links, graph.nodes[0].id)
    return _svg(graph, edges, lines, sizes, layout)


def _num(value: float) -> str:
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _svg(
    graph: Graph,
    edges: list[_Drawn],
    lines: dict[str, list[_Line]],
    sizes: dict[str, tuple[float, float]],
    layout: Layout,
) -> str:
    prefix = "flowgraph-" + re.sub(r"[^A-Za-z0-9_-]", "_", graph.flow)
    legend_top = layout.height
    width = max(layout.width, 300.0)
    height = legend_top + len(LEGEND) * 16 + 12
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" '
        f'aria-labelledby="{prefix}-title {prefix}-desc" class="flow-graph" '
        f'width="{_num(width)}" height="{_num(height)}" '
        f'viewBox="0 0 {_num(width)} {_num(height)}" font-family="{xml_text(FONT)}" '
        f'font-size="{_num(TEXT_SIZE)}" fill="{INK}">',
        f'<title id="{prefix}-title">{xml_text(_title(graph))}</title>',
        f'<desc id="{prefix}-desc">{xml_text(describe(graph))}</desc>',
        _markers(prefix),
        f'<rect x="0" y="0" width="{_num(width)}" height="{_num(height)}" fill="#ffffff"/>',
    ]
    for edge, route in zip(edges, layout.routes, strict=True):
        out.append(_edge_svg(edge, route, prefix))
    for node in graph.nodes:
        out.append(_node_svg(node, lines[node.id], sizes[node.id], layout, prefix))
    out.append(_legend_svg(prefix, legend_top))
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _title(graph: Graph) -> str:
    return f"Flow {graph.flow}" + (f": {graph.description}" if graph.description else "")


def describe(graph: Graph) -> str:
    """The drawing in words, for screen readers: every step and where it leads."""
    names = {n.id: _spoken(n) for n in graph.nodes}
    parts = [f"Flow {graph.flow}, {sum(1 for n in graph.nodes if n.kind in KINDS)} steps."]
    for node in graph.nodes:
        ways = [_spoken_way(e, names) for e in graph.edges if e.source == node.id]
        if ways:
            parts.append(f"{names[node.id]} leads {'; '.join(ways)}.")
    return " ".join(parts)


def _spoken_way(edge: Edge, names: dict[str, str]) -> str:
    where = "stays here" if edge.target == edge.source else f"to {names[edge.target]}"
    return f"{where} ({edge.label})" if edge.label else where


def _spoken(node: Node) -> str:
    if node.kind == "start":
        return "The start"
    if node.kind == "flow":
        return f"flow {node.title}"
    if node.kind == "closed":
        return "the conversation closing"
    return f"{node.kind} step {node.title}"


def _markers(prefix: str) -> str:
    colours = sorted({look[0] for look in EDGE_LOOKS.values()} | {BACK_LOOK[0]})
    parts = ["<defs>"]
    for colour in colours:
        parts.append(
            f'<marker id="{prefix}-arrow-{colour[1:]}" viewBox="0 0 10 10" refX="9" refY="5" '
            f'markerUnits="userSpaceOnUse" markerWidth="9" markerHeight="9" '
            f'orient="auto-start-reverse">'
            f'<path d="M0,0 L10,5 L0,10 z" fill="{colour}"/></marker>'
        )
    parts.append("</defs>")
    return "".join(parts)


def _path(points: tuple[tuple[float, float], ...]) -> str:
    (x, y), rest = points[0], points[1:]
    d = [f"M{_num(x)},{_num(y)}"]
    for nx, ny in rest:
        k = (ny - y) / 2
        d.append(f"C{_num(x)},{_num(y + k)} {_num(nx)},{_num(ny - k)} {_num(nx)},{_num(ny)}")
        x, y = nx, ny
    return " ".join(d)


def _loop_path(points: tuple[tuple[float, float], ...]) -> str:
    """A hook from a box's right side back into it; the layout kept LOOP_ROOM free there."""
    (right, y1), (_, y2) = points[0], points[-1]
    x = right - LOOP_ROOM
    return (
        f"M{_num(x)},{_num(y1)} C{_num(x + LOOP_ROOM)},{_num(y1 - 6)} "
        f"{_num(x + LOOP_ROOM)},{_num(y2 + 6)} {_num(x + 1)},{_num(y2)}"
    )


def _edge_svg(edge: _Drawn, route: Route, prefix: str) -> str:
    """One arrow; a loop back to its own box is a small hook on the box's right side (what
    makes it loop is written inside the box)."""
    colour, dash = BACK_LOOK if route.back else EDGE_LOOKS[edge.style]
    loop = edge.source == edge.target
    d = _loop_path(route.points) if loop else _path(route.points)
    dashes = f' stroke-dasharray="{dash}"' if dash else ""
    parts = [
        f'<g class="edge edge-{edge.style}{" edge-back" if route.back else ""}">',
        f'<path d="{d}" fill="none" stroke="{colour}" stroke-width="{_stroke(edge.style)}"{dashes} '
        f'marker-end="url(#{prefix}-arrow-{colour[1:]})"/>',
    ]
    label = _label_lines(edge)
    if label and route.label is not None:
        x, middle = route.label
        top = middle - len(label) * SMALL_SIZE * LINE / 2
        parts.append(_text_block(x, top, [_Line(t, SMALL_SIZE) for t in label], "start", halo=True))
    parts.append("</g>")
    return "".join(parts)


def _stroke(style: str) -> str:
    return "2.5" if style == FLOW else "1.5"


def _text_block(x: float, top: float, lines: list[_Line], anchor: str, halo: bool = False) -> str:
    extra = ' stroke="#ffffff" stroke-width="4" stroke-linejoin="round" paint-order="stroke"'
    parts = [f'<text x="{_num(x)}" text-anchor="{anchor}"{extra if halo else ""}>']
    y = top
    for line in lines:
        y += line.size * LINE
        attrs = f'x="{_num(x)}" y="{_num(y - line.size * (LINE - 1) - 2)}"'
        attrs += f' font-size="{_num(line.size)}"'
        if line.weight != "normal":
            attrs += f' font-weight="{line.weight}"'
        if line.style != "normal":
            attrs += f' font-style="{line.style}"'
        parts.append(f"<tspan {attrs}>{xml_text(line.text)}</tspan>")
    parts.append("</text>")
    return "".join(parts)


def _node_svg(
    node: Node, lines: list[_Line], size: tuple[float, float], layout: Layout, prefix: str
) -> str:
    placed = layout.boxes[node.id]
    width, height = size
    fill, stroke = PALETTE.get(node.kind, PALETTE["set"])
    corner = CORNERS.get(node.kind, 4.0)
    dash = ' stroke-dasharray="6 3"' if node.kind in ("flow", "missing") else ""
    border = "2.5" if node.kind in ("branch", "alert") else "1.5"
    ident = re.sub(r"[^A-Za-z0-9_-]", "_", node.id)
    return (
        f'<g id="{prefix}-{ident}" class="node kind-{node.kind}">'
        f'<rect x="{_num(placed.x)}" y="{_num(placed.y)}" width="{_num(width)}" '
        f'height="{_num(height)}" rx="{_num(corner)}" fill="{fill}" stroke="{stroke}" '
        f'stroke-width="{border}"{dash}/>'
        + _text_block(placed.x + PAD, placed.y + PAD, lines, "start")
        + "</g>"
    )


def _legend_svg(prefix: str, top: float) -> str:
    parts = ['<g class="legend">']
    for k, (style, words) in enumerate(LEGEND):
        colour, dash = BACK_LOOK if style == "back" else EDGE_LOOKS[style]
        y = top + k * 16 + 8
        dashes = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(
            f'<path d="M16,{_num(y)} L44,{_num(y)}" stroke="{colour}" '
            f'stroke-width="{_stroke(style)}"{dashes} '
            f'marker-end="url(#{prefix}-arrow-{colour[1:]})"/>'
        )
        parts.append(
            f'<text x="52" y="{_num(y + 4)}" font-size="{_num(SMALL_SIZE)}">'
            f"{xml_text(words)}</text>"
        )
    parts.append("</g>")
    return "".join(parts)
