"""Drawings of flows: every way on the engine can take is an edge; Mermaid and SVG come out
valid, escaped and the same every time; ``bravesteps graph`` prints them."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from flows import graph
from flows.graph import CLOSED, START, Edge, build, render, step_edges, to_mermaid, to_svg
from flows.layout import Box, Link, layered
from flows.loader import FlowSet, Keywords, load_flow_dir, parse_flow
from flows.model import KINDS, Flow, Step
from messages.catalog import load_catalogue
from service.cli import main

ROOT = Path(__file__).resolve().parent.parent
BRAVESTEPS = Path(sys.executable).with_name("bravesteps")
FLOWS_DIR = ROOT / "flows" / "programme"
MESSAGES_DIR = ROOT / "messages" / "catalog"
SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = "<script>\"y\"</script> & 'q' [b] 👋Zażółć"


def flow_of(text: str) -> Flow:
    return parse_flow(text, "test.yaml")[0]


def flowset_of(*flows: Flow) -> FlowSet:
    return FlowSet({f.flow: f for f in flows}, {f.flow: "v1" for f in flows}, {}, Keywords({}))


# ---- edges: one case (or more) for every step kind --------------------------------------------

ASK = {"ask": "t.q", "expect": "number 0..10", "retries": 0, "fallback": "fb", "next": "n"}

# (kind, the step's fields, the flow's extra fields, the edges expected as (target, label, style))
EDGE_CASES: list[tuple[str, dict[str, Any], dict[str, Any], list[tuple[str, str, str]]]] = [
    ("send", {"send": "t.a", "next": "n"}, {}, [("n", "", "next")]),
    ("set", {"set": {"x": 1}, "next": "n"}, {}, [("n", "", "next")]),
    (
        "branch",
        {"branch": [{"if": "x >= 7", "next": "hi"}, {"else": "lo"}]},
        {},
        [("hi", "x >= 7", "branch"), ("lo", "else", "branch")],
    ),
    ("record", {"record": {"measure": "worry", "value": 3}, "next": "n"}, {}, [("n", "", "next")]),
    ("consent", {"consent": "given", "next": "n"}, {}, [("n", "", "next")]),
    ("alert", {"alert": {"kind": "k"}, "next": "n"}, {}, [("n", "", "next")]),
    ("wait", {"wait": "2 days", "next": "n"}, {}, [("n", "after 2 days", "timer")]),
    ("wait", {"wait": "until 18:00", "next": "n"}, {}, [("n", "until 18:00", "timer")]),
    (
        "wait",
        {"wait": "1 day", "next": "n"},
        {"expire_after": "7 days"},
        [("n", "after 1 day", "timer"), (CLOSED, "waiting 7 days: expires", "timer")],
    ),
    (
        "schedule",
        {"schedule": {"flow": "later", "after": "3 days"}, "next": "n"},
        {},
        [("n", "", "next"), ("flow:later", "starts later, after 3 days", "flow")],
    ),
    ("go", {"go": "other"}, {}, [("flow:other", "go", "flow")]),
    ("end", {"end": True}, {}, []),
    (
        "ask",
        {"ask": "t.q", "expect": "yes_no", "yes": "y", "no": "n", "retries": 1, "fallback": "fb"},
        {},
        [
            ("y", "yes", "answer"),
            ("n", "no", "answer"),
            ("s", "not understood: asks once more", "retry"),
            ("fb", "still not understood", "retry"),
        ],
    ),
    (
        "ask",
        {"ask": "t.q", "expect": "yes_no", "yes": "y", "next": "n", "retries": 0},
        {},
        [
            ("y", "yes", "answer"),
            ("n", "no", "answer"),
            ("s", "not understood: staff alerted", "retry"),
        ],
    ),
    (
        "ask",
        {
            "ask": "t.q",
            "expect": "choice",
            "choices": [{"value": "a", "next": "x"}, {"value": "b"}],
            "next": "n",
        },
        {},
        [
            ("x", "a", "answer"),
            ("n", "b", "answer"),
            ("s", "not understood: asks again, up to 2 times", "retry"),
            ("s", "still not understood: staff alerted", "retry"),
        ],
    ),
    ("ask", ASK, {}, [("n", "number 0..10", "answer"), ("fb", "not understood", "retry")]),
    (
        "ask",
        {**ASK, "expect": "free_text", "remind_after": "1 day", "reminder": "t.r"},
        {},
        [
            ("n", "any reply", "answer"),
            ("fb", "not understood", "retry"),
            ("s", "no reply in 1 day: reminder", "timer"),
        ],
    ),
    (
        "ask",
        {**ASK, "expect": "time", "give_up_after": "3 days -> missed"},
        {},
        [
            ("n", "a time", "answer"),
            ("fb", "not understood", "retry"),
            ("missed", "no reply in 3 days", "timer"),
        ],
    ),
    (
        "ask",
        {**ASK, "expect": "weekday", "give_up_after": "2 days"},
        {"expire_after": "5 days"},
        [
            ("n", "a day", "answer"),
            ("fb", "not understood", "retry"),
            (CLOSED, "no reply in 2 days", "timer"),
            (CLOSED, "waiting 5 days: expires", "timer"),
        ],
    ),
    (
        "ask",
        {**ASK, "expect": "list 3..10"},
        {},
        [("n", "list 3..10", "answer"), ("fb", "not understood", "retry")],
    ),
    (
        "ask",
        {**ASK, "expect": "language"},
        {},
        [("n", "a language", "answer"), ("fb", "not understood", "retry")],
    ),
]


def test_every_step_kind_has_a_case_and_a_rule() -> None:
    """A new step kind fails here until the drawing knows where it leads and what it shows."""
    assert {case[0] for case in EDGE_CASES} == set(KINDS)
    assert set(graph.EDGE_RULES) == set(KINDS)
    assert set(graph.DETAIL_RULES) == set(KINDS)


@pytest.mark.parametrize(("kind", "fields", "extra", "expected"), EDGE_CASES)
def test_edges_of_each_step_kind(
    kind: str, fields: dict[str, Any], extra: dict[str, Any], expected: list[tuple[str, str, str]]
) -> None:
    step = Step.model_validate({"id": "s", **fields})
    assert step.kind == kind
    flow = Flow.model_validate({"flow": "f", "steps": [step.model_dump(by_alias=True)], **extra})
    assert step_edges(step, flow) == [Edge("s", *edge) for edge in expected]
    assert graph.step_details(step)[0] == kind  # the kind is written, not only coloured


def test_a_kind_without_a_rule_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    step = Step.model_validate({"id": "s", "end": True})
    flow = Flow.model_validate({"flow": "f", "steps": [{"id": "s", "end": True}]})
    monkeypatch.delitem(graph.EDGE_RULES, "end")
    with pytest.raises(ValueError, match="no drawing rule for a 'end' step"):
        step_edges(step, flow)


SMALL = """
flow: small
description: a question and its two answers
recovery: ask
steps:
  - id: hello
    send: small.hello
    next: ask
  - id: ask
    ask: small.ask
    expect: yes_no
    retries: 0
    fallback: bye
    yes: bye
    no: hello
  - id: bye
    end: true
"""


def test_graph_model_of_a_small_flow() -> None:
    built = build(flow_of(SMALL), {"small.hello": "Hello there, this is the start"}.get)
    assert [(n.id, n.kind) for n in built.nodes] == [
        (START, "start"),
        ("hello", "send"),
        ("ask", "ask"),
        ("bye", "end"),
    ]
    assert built.nodes[1].details == ("send", "small.hello", "“Hello there, this is the start”")
    assert built.nodes[2].details == ("ask", "small.ask", "expects yes_no")


def test_mermaid_of_a_small_flow() -> None:
    text = to_mermaid(build(flow_of(SMALL)))
    assert text.splitlines()[:12] == [
        "flowchart TD",
        '    n_start(["start: small"])',
        '    s_hello["send: hello<br/>small.hello"]',
        '    s_ask("ask: ask<br/>small.ask<br/>expects yes_no")',
        '    s_bye(["end: bye<br/>the flow ends"])',
        '    n_start -->|"start"| s_hello',
        '    n_start -->|"if the parent\'s step was removed"| s_ask',
        "    s_hello --> s_ask",
        '    s_ask -->|"yes"| s_bye',
        '    s_ask -->|"no"| s_hello',
        '    s_ask -.->|"not understood"| s_bye',
        "    classDef k_start fill:#ffffff,stroke:#111827,color:#111827",
    ]
    assert "    class s_hello k_send" in text
    assert "    class s_bye k_end" in text
    assert text.endswith("\n")


def test_mermaid_ids_never_clash_with_keywords_or_each_other() -> None:
    flow = flow_of(
        """
flow: f
steps:
  - id: end
    go: end
"""
    )
    ids = graph.mermaid_ids(build(flow))
    assert ids == {START: "n_start", "end": "s_end", "flow:end": "f_end"}


def test_mermaid_escapes_hostile_words() -> None:
    built = build(flow_of(SMALL), lambda key: HOSTILE)
    text = to_mermaid(built)
    for line in text.splitlines()[1:]:
        # Quotes only open and close labels; nothing inside can end one or start HTML.
        for label in re.findall(r'"([^"]*)"', line):
            assert re.fullmatch(r"[A-Za-z0-9 _\-.,:!?()'/=+#;<>]*", label), label
            assert "<" not in label.replace("<br/>", "")
    assert "<script" not in text
    assert "#60;script#62;" in text
    assert "#128075;" in text  # the emoji, as an entity code


# ---- SVG ------------------------------------------------------------------------------------


def texts(root: ET.Element) -> list[str]:
    """Every line of text drawn: each line of a box or label is one ``tspan``."""
    found = [t.text or "" for t in root.iter(f"{SVG}tspan")]
    return found + [t.text for t in root.iter(f"{SVG}text") if t.text]


def test_svg_is_accessible_well_formed_and_shows_every_step() -> None:
    flow = flow_of(SMALL)
    svg = to_svg(build(flow))
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img"
    title, desc = root.find(f"{SVG}title"), root.find(f"{SVG}desc")
    assert title is not None and desc is not None
    assert root.get("aria-labelledby") == f"{title.get('id')} {desc.get('id')}"
    assert title.text == "Flow small: a question and its two answers"
    assert desc.text is not None and "ask step ask leads to end step bye (yes)" in desc.text
    words = " ".join(texts(root))
    for step in flow.steps:
        assert step.id in texts(root)
        assert f"{step.kind.upper()}" in words
    assert root.get("viewBox") == f"0 0 {root.get('width')} {root.get('height')}"


def test_svg_is_the_same_every_time() -> None:
    first = to_svg(build(flow_of(SMALL)))
    assert to_svg(build(flow_of(SMALL))) == first
    assert to_svg(build(flow_of(SMALL))).encode() == first.encode()


def test_svg_escapes_hostile_words() -> None:
    flow = flow_of(SMALL.replace("a question and its two answers", 'x "<b>&amp;</b>"'))
    svg = to_svg(build(flow, lambda key: HOSTILE))
    assert "<script" not in svg and "<b>" not in svg
    root = ET.fromstring(svg)
    title = root.find(f"{SVG}title")
    assert title is not None and title.text == 'Flow small: x "<b>&amp;</b>"'
    shown = " ".join(texts(root))
    for word in ('<script>"y"</script>', "&", "'q'", "[b]", "👋", "Zażółć"):
        assert word in shown


def test_svg_draws_a_loop_back_distinctly() -> None:
    svg = to_svg(build(flow_of(SMALL)))
    root = ET.fromstring(svg)
    back = [g for g in root.iter(f"{SVG}g") if "edge-back" in (g.get("class") or "")]
    assert len(back) == 1  # ask --no--> hello goes back up
    path = back[0].find(f"{SVG}path")
    assert path is not None and path.get("stroke-dasharray")
    assert "no" in texts(back[0])


def test_svg_parallel_edges_share_one_arrow() -> None:
    """'yes' and 'not understood' both lead to bye: one arrow, both reasons."""
    root = ET.fromstring(to_svg(build(flow_of(SMALL))))
    assert "yes · not understood" in texts(root)


def contrast(one: str, two: str) -> float:
    """WCAG contrast ratio of two #rrggbb colours."""

    def luminance(colour: str) -> float:
        channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
        lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]

    high, low = sorted((luminance(one), luminance(two)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_colours_have_enough_contrast() -> None:
    for kind, (fill, border) in graph.PALETTE.items():
        assert contrast(graph.INK, fill) >= 7, kind  # text in boxes: WCAG AAA
        assert contrast(border, "#ffffff") >= 3, kind  # box outlines against the page
    for style, (colour, _) in [*graph.EDGE_LOOKS.items(), ("back", graph.BACK_LOOK)]:
        assert contrast(colour, "#ffffff") >= 4.5, style  # arrows, and the legend's words


def test_svg_stays_readable_on_a_phone() -> None:
    """Text is never shrunk below 11px and no box is wider than a phone screen."""
    for name in ("onboarding", "week_1_check_in"):
        root = ET.fromstring(render(SHIPPED, name, "svg", lambda key: HOSTILE * 5))
        sizes = [float(t.get("font-size") or 13) for t in root.iter(f"{SVG}tspan")]
        assert min(sizes) >= 11
        widths = [
            float(rect.get("width") or 0)
            for group in root.iter(f"{SVG}g")
            if "node" in (group.get("class") or "")
            for rect in group.iter(f"{SVG}rect")
        ]
        assert widths and max(widths) <= 240


# ---- the layout -----------------------------------------------------------------------------


def overlaps(a: Any, b: Any) -> bool:
    return (
        a.x < b.x + b.width
        and b.x < a.x + a.width
        and a.y < b.y + b.height
        and b.y < a.y + a.height
    )


def test_layout_layers_by_longest_path_and_turns_loops_around() -> None:
    boxes = [Box(name, 40, 20) for name in "abcd"]
    links = [Link("a", "b"), Link("b", "c"), Link("a", "c"), Link("c", "a"), Link("c", "d")]
    layout = layered(boxes, links, "a")
    ys = {name: layout.boxes[name].y for name in "abcd"}
    assert ys["a"] < ys["b"] < ys["c"] < ys["d"]  # c is below b although a leads to c directly
    assert [route.back for route in layout.routes] == [False, False, False, True, False]
    back = layout.routes[3]
    assert back.points[0][1] > back.points[-1][1]  # drawn upwards, from c to a
    assert layered(boxes, links, "a") == layout


def shipped() -> tuple[FlowSet, Any]:
    catalogue = load_catalogue(MESSAGES_DIR)
    return load_flow_dir(FLOWS_DIR, catalogue.keys), catalogue


SHIPPED, CATALOGUE = shipped()


@pytest.mark.parametrize("name", sorted(SHIPPED.flows))
def test_every_shipped_flow_renders(name: str) -> None:
    def words(key: str) -> str:
        return CATALOGUE.entry(key).text

    flow = SHIPPED.flows[name]
    mermaid = render(SHIPPED, name, "mermaid", words)
    node = r"    [nsf]_\w+(\(\[|\(|\{|\[\[|>|\[)\"[^\"]*\"(\]\)|\)|\}|\]\]|\])"
    edge = r"    [nsf]_\w+ (-->|-\.->|==>)(\|\"[^\"]*\"\|)? [nsf]_\w+"
    styles = r"    (classDef k_\w+ fill:#\w+,stroke:#\w+,color:#\w+|class [\w,]+ k_\w+)"
    lines = mermaid.splitlines()
    assert lines[0] == "flowchart TD"
    for line in lines[1:]:
        assert re.fullmatch(f"{node}|{edge}|{styles}", line), line
    for step in flow.steps:
        assert f"    s_{step.id}" in mermaid

    svg = render(SHIPPED, name, "svg", words)
    root = ET.fromstring(svg)
    shown = texts(root)
    for step in flow.steps:
        assert step.id in shown

    built = build(flow, words)
    layout = layered(
        [Box(n.id, 100, 40) for n in built.nodes],
        [Link(e.source, e.target) for e in built.edges],
        START,
    )
    placed = list(layout.boxes.values())
    for i, a in enumerate(placed):
        assert not any(overlaps(a, b) for b in placed[i + 1 :])


def test_a_step_missing_from_an_unchecked_flow_is_drawn_not_fatal() -> None:
    flow = flow_of(SMALL.replace("no: hello", "no: gone"))
    built = build(flow)
    assert built.nodes[-1] == graph.Node("gone", "missing", "gone", ("missing step",))
    assert "gone" in texts(ET.fromstring(to_svg(built)))
    assert '    s_gone["missing step: gone"]' in to_mermaid(built)


def test_render_names_the_known_flows_for_an_unknown_one() -> None:
    flowset = flowset_of(flow_of(SMALL))
    with pytest.raises(
        graph.UnknownFlowError, match="there is no flow 'big'; the flows are: small"
    ):
        render(flowset, "big", "svg")
    with pytest.raises(ValueError, match="unknown format"):
        render(flowset, "small", "png")
    assert render(flowset, "small", "svg").startswith("<svg ")


# ---- the command ----------------------------------------------------------------------------


def call(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code: Any = 0
    try:
        main(argv)
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return int(code or 0), out, err


@pytest.fixture
def content_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FLOWS_DIR", str(FLOWS_DIR))
    monkeypatch.setenv("MESSAGES_DIR", str(MESSAGES_DIR))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'unused.sqlite'}")
    return tmp_path


def test_cli_prints_mermaid_by_default(
    content_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = call(["graph", "week_1_do"], capsys)
    assert (code, err) == (0, "")
    assert out.startswith('flowchart TD\n    n_start(["start: week_1_do"])\n')
    assert 's_ask_when -->|"morning"| s_thanks' in out


def test_cli_prints_svg(content_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = call(["graph", "onboarding", "--format", "svg"], capsys)
    assert (code, err) == (0, "")
    assert "consent_given" in texts(ET.fromstring(out))


@pytest.mark.slow
def test_cli_svg_is_the_same_in_every_process(content_env: Path) -> None:
    """Same bytes whatever the hash seed: nothing is drawn in the order of a set."""
    runs = [
        subprocess.Popen(
            [str(BRAVESTEPS), "graph", "onboarding", "--format", "svg"],
            stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONHASHSEED": seed},
        )
        for seed in ("1", "2")
    ]
    outputs = [run.communicate(timeout=120)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0]
    assert outputs[0] == outputs[1] and outputs[0].startswith(b"<svg ")


def test_cli_unknown_flow(content_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = call(["graph", "week_99"], capsys)
    assert code != 0 and out == ""
    assert len(err.splitlines()) == 1
    assert "week_99" in err and "onboarding, week_1_check_in" in err
    assert "Traceback" not in err


def test_cli_flow_files_with_errors(
    content_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = content_env / "flows"
    broken.mkdir()
    for path in FLOWS_DIR.glob("*.yaml"):
        (broken / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    do = broken / "week_1_do.yaml"
    do.write_text(do.read_text().replace("next: ask_when", "next: ask_whenn"), encoding="utf-8")
    monkeypatch.setenv("FLOWS_DIR", str(broken))
    code, out, err = call(["graph", "week_1_do"], capsys)
    assert code == 1 and out == ""
    assert f"{do}:7: there is no step 'ask_whenn' in this flow" in err
    lint_code, lint_out, _ = call(["lint"], capsys)
    assert lint_code == 1
    assert [line for line in lint_out.splitlines() if line.startswith(str(do))] == [
        line for line in err.splitlines() if line.startswith(str(do))
    ]
