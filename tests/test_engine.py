"""The flow engine: every scripted conversation, flow coverage, and what a script cannot say.

Scripts (``flows/programme/tests`` for the shipped flows, ``tests/data/flows/scripts`` for the
engine's own test flows) each become one test. The direct tests below cover what happens across
an edit of the flow files, stale timers, the loop guard, and the script runner failing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from flows.effects import (
    CancelWakes,
    Context,
    ConversationState,
    Effect,
    MessageIn,
    Note,
    Outcome,
    SaveAnswer,
    ScheduleWake,
    Send,
    StartFlow,
    WakeUp,
)
from flows.loader import FlowSet, Keywords, load_flow_dir
from flows.model import Flow, Step
from flows.runtime import MAX_STEPS_PER_EVENT, NOT_WAITING, run
from flows.scripts import ScriptResult, coverage, find_scripts, load_script, run_script
from flows.yamlload import Located, load_located
from messages.catalog import Catalogue, load_catalogue

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_FLOWS = ROOT / "flows" / "programme"
SHIPPED_CATALOGUE = ROOT / "messages" / "catalog"
TEST_SET = Path(__file__).resolve().parent / "data" / "flows"
NOW = datetime(2026, 1, 5, 17, 0, tzinfo=UTC)


def _load(flows_dir: Path, catalogue_dir: Path) -> tuple[FlowSet, Catalogue]:
    catalogue = load_catalogue(catalogue_dir)
    return load_flow_dir(flows_dir, catalogue.keys), catalogue


_SETS: dict[str, tuple[FlowSet, Catalogue]] = {}


def content(name: str) -> tuple[FlowSet, Catalogue]:
    """The shipped set or the engine's test set, loaded once."""
    if name not in _SETS:
        if name == "shipped":
            _SETS[name] = _load(SHIPPED_FLOWS, SHIPPED_CATALOGUE)
        else:
            _SETS[name] = _load(TEST_SET / "flows", TEST_SET / "catalog")
    return _SETS[name]


def play(name: str, script: Path) -> ScriptResult:
    """Run one script file against one set, rendering with that set's catalogue."""
    flowset, catalogue = content(name)
    return run_script(flowset, catalogue.render, load_script(script))


SCRIPTS = [("shipped", path) for path in find_scripts([SHIPPED_FLOWS / "tests"])] + [
    ("test set", path) for path in find_scripts([TEST_SET / "scripts"])
]


def test_there_are_scripts_for_both_sets() -> None:
    """A folder emptied by mistake must not pass as 'no failures'."""
    assert sum(1 for name, _ in SCRIPTS if name == "shipped") >= 10
    assert sum(1 for name, _ in SCRIPTS if name == "test set") >= 8


@pytest.mark.parametrize(
    ("name", "script"), SCRIPTS, ids=[f"{name}/{path.stem}" for name, path in SCRIPTS]
)
def test_script(name: str, script: Path) -> None:
    """Each scripted conversation holds line by line."""
    result = play(name, script)
    assert result.failures == []
    assert result.visited, "the script reached no step at all"


@pytest.mark.parametrize(
    ("name", "folder"),
    [("shipped", SHIPPED_FLOWS / "tests"), ("test set", TEST_SET / "scripts")],
)
def test_scripts_reach_every_step(name: str, folder: Path) -> None:
    """Together the scripts of a set walk every step of every flow in it."""
    results = [play(name, path) for path in find_scripts([folder])]
    reached, total, missing = coverage(content(name)[0], results)
    assert missing == []
    assert reached == total > 0


# ---- helpers for direct engine tests ---------------------------------------------------------

KEYS = {"t.ask_number", "t.ask_day", "t.ask_time", "t.number_help", "t.checks_intro", "t.fine"}


def build(tmp_path: Path, files: dict[str, str]) -> FlowSet:
    """A flow set from YAML texts, through the real loader."""
    folder = tmp_path / f"set{len(list(tmp_path.iterdir()))}"
    folder.mkdir()
    for file, text in files.items():
        (folder / file).write_text(text, encoding="utf-8")
    return load_flow_dir(folder, KEYS)


def ctx(now: datetime = NOW) -> Context:
    return Context(now, {"child_name": "Sam"}, consented=True)


def of(effects: list[Effect], kind: type) -> list[Any]:
    return [e for e in effects if isinstance(e, kind)]


def sent(outcome: Outcome) -> list[str]:
    return [e.key for e in of(outcome.effects, Send)]


SURVEY = """\
flow: survey
before_consent: true
recovery: ask_day
steps:
  - id: ask_number
    ask: t.ask_number
    expect: number 0..10
    save: score
    remind_after: 1 day
    reminder: t.number_help
    next: ask_time
  - id: ask_time
    ask: t.ask_time
    expect: time
    save: time
    next: ask_day
  - id: ask_day
    ask: t.ask_day
    expect: weekday
    save: day
    next: done
  - id: done
    end: true
"""


def waiting_at_time(flowset: FlowSet) -> ConversationState:
    """A conversation of ``survey`` that answered the number and now waits at ask_time."""
    state = run(flowset, ConversationState(), StartFlow("survey"), ctx()).state
    state = run(flowset, state, MessageIn("7"), ctx()).state
    assert (state.step, state.waiting) == ("ask_time", True)
    return state


# ---- flow versions ---------------------------------------------------------------------------


def test_edit_keeping_the_step_carries_on_with_the_new_version(tmp_path: Path) -> None:
    old = build(tmp_path, {"survey.yaml": SURVEY})
    state = waiting_at_time(old)
    assert state.version == old.versions["survey"]
    edited = SURVEY.replace("save: time", "save: time   # now stored for reminders")
    new = build(tmp_path, {"survey.yaml": edited})
    assert new.versions["survey"] != old.versions["survey"]

    outcome = run(new, state, MessageIn("6pm"), ctx())

    assert outcome.state.version == new.versions["survey"]
    assert [(a.step, a.value) for a in of(outcome.effects, SaveAnswer)] == [("ask_time", "18:00")]
    assert outcome.state.step == "ask_day"
    assert sent(outcome) == ["t.ask_day"]


def test_edit_that_deletes_the_step_moves_to_recovery(tmp_path: Path) -> None:
    old = build(tmp_path, {"survey.yaml": SURVEY})
    state = waiting_at_time(old)
    without_time = SURVEY.replace(
        "  - id: ask_time\n    ask: t.ask_time\n    expect: time\n    save: time\n"
        "    next: ask_day\n",
        "",
    ).replace("next: ask_time", "next: ask_day")
    new = build(tmp_path, {"survey.yaml": without_time})
    assert new.step("survey", "ask_time") is None

    outcome = run(new, state, MessageIn("6pm"), ctx())

    assert outcome.state.step == "ask_day"  # the flow's recovery step
    assert outcome.state.waiting
    assert outcome.state.version == new.versions["survey"]
    assert sent(outcome) == ["t.ask_day"]
    assert of(outcome.effects, SaveAnswer) == []  # the answer was to a question now gone
    assert of(outcome.effects, CancelWakes)
    assert outcome.state.variables["score"] == 7


def test_edit_that_deletes_the_step_recovers_on_a_wake_up_too(tmp_path: Path) -> None:
    old = build(tmp_path, {"survey.yaml": SURVEY})
    state = run(old, ConversationState(), StartFlow("survey"), ctx()).state
    assert state.step == "ask_number"
    first_gone = SURVEY.replace("recovery: ask_day", "recovery: ask_time").replace(
        "  - id: ask_number\n    ask: t.ask_number\n    expect: number 0..10\n    save: score\n"
        "    remind_after: 1 day\n    reminder: t.number_help\n    next: ask_time\n",
        "",
    )
    new = build(tmp_path, {"survey.yaml": first_gone})

    outcome = run(new, state, WakeUp("remind", "survey", "ask_number"), ctx())

    assert outcome.state.step == "ask_time"
    assert sent(outcome) == ["t.ask_time"]


def test_removing_the_whole_flow_closes_the_conversation(tmp_path: Path) -> None:
    old = build(tmp_path, {"survey.yaml": SURVEY, "other.yaml": OTHER})
    state = waiting_at_time(old)
    new = build(tmp_path, {"other.yaml": OTHER})

    outcome = run(new, state, MessageIn("6pm"), ctx())

    assert outcome.state.flow is None and outcome.state.step is None
    assert not outcome.state.waiting
    assert of(outcome.effects, CancelWakes)
    assert sent(outcome) == [NOT_WAITING]
    assert of(outcome.effects, SaveAnswer) == []
    woken = run(new, state, WakeUp("remind", "survey", "ask_time"), ctx())
    assert woken.state.flow is None
    assert sent(woken) == []


def test_a_question_turned_into_a_message_carries_on(tmp_path: Path) -> None:
    """Waiting at a step that no longer waits would strand the parent; it is run instead."""
    old = build(tmp_path, {"survey.yaml": SURVEY})
    state = waiting_at_time(old)
    no_question = SURVEY.replace(
        "    ask: t.ask_time\n    expect: time\n    save: time\n", "    send: t.fine\n"
    )
    new = build(tmp_path, {"survey.yaml": no_question})

    outcome = run(new, state, MessageIn("anything"), ctx())

    assert sent(outcome) == ["t.fine", "t.ask_day"]
    assert (outcome.state.step, outcome.state.waiting) == ("ask_day", True)


OTHER = """\
flow: other
steps:
  - id: only
    send: t.fine
    next: stop
  - id: stop
    end: true
"""


# ---- timers, unknown flows, the loop guard ---------------------------------------------------


def test_stale_wake_up_does_nothing(tmp_path: Path) -> None:
    flowset = build(tmp_path, {"survey.yaml": SURVEY})
    started = run(flowset, ConversationState(), StartFlow("survey"), ctx())
    (remind,) = of(started.effects, ScheduleWake)
    assert (remind.reason, remind.step, remind.at) == ("remind", "ask_number", NOW + timedelta(1))
    moved_on = run(flowset, started.state, MessageIn("3"), ctx()).state

    outcome = run(flowset, moved_on, WakeUp("remind", "survey", "ask_number"), ctx(remind.at))

    assert outcome.state == moved_on
    assert sent(outcome) == []
    assert [type(e) for e in outcome.effects] == [Note]
    # ...while the same wake-up on time sends the reminder
    due = run(flowset, started.state, WakeUp("remind", "survey", "ask_number"), ctx(remind.at))
    assert sent(due) == ["t.number_help"]


def test_start_of_an_unknown_flow_does_nothing(tmp_path: Path) -> None:
    flowset = build(tmp_path, {"survey.yaml": SURVEY})
    state = waiting_at_time(flowset)

    outcome = run(flowset, state, StartFlow("week_99"), ctx())

    assert outcome.state == state
    assert [type(e) for e in outcome.effects] == [Note]


def _flowset(*flows: Flow) -> FlowSet:
    """A flow set made without the loader, for what the loader would refuse."""
    return FlowSet(
        {f.flow: f for f in flows},
        {f.flow: "v1" for f in flows},
        {f.flow: Located(f"{f.flow}.yaml", {}) for f in flows},
        Keywords({}),
    )


def test_loop_guard_stops_a_loop_that_never_waits() -> None:
    spin = Flow(
        flow="spin",
        steps=[
            Step.model_validate({"id": "a", "set": {"n": 1}, "next": "b"}),
            Step.model_validate({"id": "b", "set": {"n": 2}, "next": "a"}),
        ],
    )
    outcome = run(_flowset(spin), ConversationState(), StartFlow("spin"), ctx())

    assert outcome.state.step is None and not outcome.state.waiting
    notes = [e.text for e in of(outcome.effects, Note)]
    assert any(f"more than {MAX_STEPS_PER_EVENT} steps" in text for text in notes)


def test_loop_guard_stops_flows_going_to_each_other() -> None:
    ping = Flow(flow="ping", steps=[Step.model_validate({"id": "go_pong", "go": "pong"})])
    pong = Flow(flow="pong", steps=[Step.model_validate({"id": "go_ping", "go": "ping"})])

    outcome = run(_flowset(ping, pong), ConversationState(), StartFlow("ping"), ctx())

    assert outcome.state.step is None
    assert any("steps at once" in e.text for e in of(outcome.effects, Note))


# ---- the script runner fails when it should --------------------------------------------------

WRONG = """\
script: a script that expects the wrong things
start: survey
conversation:
  - send: t.ask_number
  - parent: "7"
  - stored: {score: 8}
  - send: t.ask_day
"""


def _run_text(flowset: FlowSet, text: str, file: str = "wrong.yaml") -> ScriptResult:
    def render(key: str, variables: dict[str, Any], language: str) -> str:
        return f"words of {key}"

    return run_script(flowset, render, load_located(text, file, core_schema=True))


def test_a_wrong_script_fails_with_file_and_line(tmp_path: Path) -> None:
    flowset = build(tmp_path, {"survey.yaml": SURVEY})

    result = _run_text(flowset, WRONG)

    assert not result.ok
    assert result.failures == [
        "wrong.yaml:6: expected score = 8 to be stored, found 7",
        "wrong.yaml:7: expected t.ask_day, but the service sent t.ask_time ('words of t.ask_time')",
    ]


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (
            '  - parent: "7"\n',
            "wrong.yaml:4: the service also sent t.ask_number ('words of t.ask_number'), which "
            "the script does not expect",
        ),
        (
            "  - send: t.ask_number\n  - parent: '7'\n",
            "wrong.yaml:3: at the end the service also sent t.ask_time",
        ),
        ("  - send: t.ask_number\n  - say: hi\n", "wrong.yaml:5: each line is one of: parent"),
        ("  - send: [t.ask_number, t.ask_time]\n", "wrong.yaml:4: expected the service to send"),
        ("  - send: t.ask_number\n  - after: soon\n", "wrong.yaml:5: 'soon' is not a length"),
        ("  - send: t.ask_number\n  - at_step: survey.done\n", "wrong.yaml:5: expected the"),
        ("  - send: t.ask_number\n  - measured: 7\n", "wrong.yaml:5: cannot read"),
        ("  - send: t.ask_number\n  - opted_out: maybe\n", "wrong.yaml:5: write 'opted_out"),
        ("  - send: t.ask_number\n  - alert: asked_for_person\n", "wrong.yaml:5: expected an"),
        ("  - send: {contains: hello}\n", "wrong.yaml:4: expected words 'hello'"),
    ],
)
def test_wrong_lines_fail_at_their_line(tmp_path: Path, lines: str, expected: str) -> None:
    flowset = build(tmp_path, {"survey.yaml": SURVEY})
    text = "script: wrong\nstart: survey\nconversation:\n" + lines

    result = _run_text(flowset, text)

    assert result.failures, "the runner passed a wrong script"
    assert result.failures[0].startswith(expected)


def test_a_script_for_an_unknown_flow_fails(tmp_path: Path) -> None:
    flowset = build(tmp_path, {"survey.yaml": SURVEY})

    result = _run_text(flowset, "script: x\nstart: week_9\nconversation: []\n")

    assert result.failures == ["wrong.yaml:2: 'start' must name a flow; there is no flow 'week_9'"]


def test_parent_words_are_sent_as_written(tmp_path: Path) -> None:
    """``parent: yes`` and ``parent: 18:00`` are the words typed, not YAML's true and 1080."""
    flowset = build(tmp_path, {"survey.yaml": SURVEY})
    text = (
        "script: as written\nstart: survey\nconversation:\n"
        "  - send: t.ask_number\n  - parent: 7\n  - send: t.ask_time\n  - parent: 18:00\n"
        "  - stored: {time: '18:00'}\n  - send: t.ask_day\n"
    )

    assert _run_text(flowset, text).failures == []
