"""Mistakes people make in flow and catalogue files: each is refused with ``file:line: advice``.

The loader and catalogue tests run in-process on small files written here. The command-line tests
run the real ``bravesteps lint`` and ``bravesteps test-flows`` on copies of the shipped content;
they start together so the suite stays fast.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from flows.loader import KEYWORD_ACTIONS, FlowSetError, load_flow_dir
from flows.scripts import load_script
from flows.yamlload import SourceError
from messages.catalog import CatalogueError, load_catalogue
from messages.segments import count_segments
from messages.textcheck import LONG_VALUES

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_FLOWS = ROOT / "flows" / "programme"
SHIPPED_CATALOGUE = ROOT / "messages" / "catalog"
BRAVESTEPS = Path(sys.executable).parent / "bravesteps"

KEYS = {"t.ask", "t.thanks", "t.other"}
# Line numbers are part of what is tested: keep this text as it is.
DEMO = """\
flow: demo
steps:
  - id: ask_score
    ask: t.ask
    expect: number 0..10
    save: score
    next: thanks
  - id: thanks
    send: t.thanks
    next: done
  - id: done
    end: true
"""


def write(folder: Path, files: dict[str, str | bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        if isinstance(content, bytes):
            (folder / name).write_bytes(content)
        else:
            (folder / name).write_text(content, encoding="utf-8")
    return folder


def problems(tmp_path: Path, files: dict[str, str | bytes]) -> list[str]:
    """Every error the loader gives for these files, with the folder shown as 'F/'."""
    folder = write(tmp_path / "flows", files)
    with pytest.raises(FlowSetError) as info:
        load_flow_dir(folder, KEYS)
    return [str(e).replace(f"{folder}/", "F/") for e in info.value.errors]


def edited(*changes: tuple[str, str]) -> str:
    text = DEMO
    for old, new in changes:
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


def test_the_demo_flow_itself_loads(tmp_path: Path) -> None:
    folder = write(tmp_path / "flows", {"demo.yaml": DEMO})
    assert list(load_flow_dir(folder, KEYS).flows) == ["demo"]


LOOP = """\
  - id: thanks
    send: t.thanks
    next: check
  - id: check
    branch:
      - if: score > 5
        next: thanks
      - else: done
"""

CASES = {
    "yaml syntax: unclosed bracket": (
        [("    send: t.thanks\n", "    send: [t.thanks\n")],
        [
            "F/demo.yaml:9: YAML error: the '[' on this line is not closed with ']' "
            "(or a word in it needs quotes)"
        ],
    ),
    "yaml syntax: unclosed quote": (
        [("    save: score\n", "    save: 'score\n")],
        [
            "F/demo.yaml:6: YAML error: the quote opened on this line is never closed; add the "
            "closing quote"
        ],
    ),
    "yaml syntax: indentation": (
        [("    next: thanks\n", "   next: thanks\n")],
        [
            "F/demo.yaml:7: YAML error: the indentation of this line does not fit the lines "
            "above; line it up"
        ],
    ),
    "yaml syntax: tab": (
        [("    next: thanks\n", "\tnext: thanks\n")],
        ["F/demo.yaml:7: YAML error: a tab is used here; indent with spaces only"],
    ),
    "unknown key, with did you mean": (
        [("    next: thanks\n", "    nxt: thanks\n")],
        ["F/demo.yaml:7: unknown key 'nxt'; did you mean 'next'?"],
    ),
    "duplicate key": (
        [("    next: thanks\n", "    next: thanks\n    next: done\n")],
        ["F/demo.yaml:8: 'next' appears twice here; keep one of them"],
    ),
    "missing expect": (
        [("    expect: number 0..10\n", "")],
        [
            "F/demo.yaml:3: an 'ask' step needs 'expect': yes_no, choice, number 0..10, "
            "free_text, time, weekday or list 3..10"
        ],
    ),
    "bad expect": (
        [("number 0..10", "number 1-5")],
        [
            "F/demo.yaml:5: 'expect' must be one of: yes_no, choice, free_text, time, weekday, "
            "'number 0..10', 'list 3..10'"
        ],
    ),
    "number range the wrong way round": (
        [("number 0..10", "number 10..0")],
        ["F/demo.yaml:3: in 'number 10..0' the first number must not be bigger"],
    ),
    "dangling next, close to a step": (
        [("    next: thanks\n", "    next: thank\n")],
        [
            "F/demo.yaml:7: there is no step 'thank' in this flow; did you mean 'thanks'?",
            "F/demo.yaml:8: step 'thanks' can never be reached; lead to it from another step "
            "or remove it",
            "F/demo.yaml:11: step 'done' can never be reached; lead to it from another step "
            "or remove it",
        ],
    ),
    "dangling next, nothing close": (
        [("    next: done\n", "    next: goodbye_forever\n")],
        [
            "F/demo.yaml:10: there is no step 'goodbye_forever' in this flow; the steps here "
            "are: ask_score, thanks, done",
            "F/demo.yaml:11: step 'done' can never be reached; lead to it from another step "
            "or remove it",
        ],
    ),
    "unknown catalogue key": (
        [("send: t.thanks", "send: t.thank")],
        [
            "F/demo.yaml:9: message key 't.thank' is not in the English catalogue; did you "
            "mean 't.thanks'?"
        ],
    ),
    "go to an unknown flow": (
        [("    end: true\n", "    go: week_2\n")],
        ["F/demo.yaml:12: there is no flow 'week_2'"],
    ),
    "unreachable step": (
        [("    end: true\n", "    end: true\n  - id: orphan\n    send: t.other\n    next: done\n")],
        [
            "F/demo.yaml:13: step 'orphan' can never be reached; lead to it from another step "
            "or remove it"
        ],
    ),
    "loop without a wait": (
        [("  - id: thanks\n    send: t.thanks\n    next: done\n", LOOP)],
        [
            "F/demo.yaml:8: these steps go round in a loop without waiting for the parent: "
            "thanks -> check; put an 'ask' or a 'wait' in the loop"
        ],
    ),
    "branch without else": (
        [
            (
                "    send: t.thanks\n    next: done\n",
                "    branch:\n      - if: score > 5\n        next: done\n",
            )
        ],
        [
            "F/demo.yaml:8: step 'thanks': a branch needs a last arm '- else: step_id' for "
            "when nothing matches"
        ],
    ),
    "condition that cannot be read": (
        [
            (
                "    send: t.thanks\n    next: done\n",
                "    branch:\n      - if: score is big\n        next: done\n      - else: done\n",
            )
        ],
        [
            "F/demo.yaml:10: cannot read the condition 'score is big'; write it like "
            "'worry >= 7', 'consent == yes' or 'goal_2 is set'"
        ],
    ),
    "two kinds in one step": (
        [("    send: t.thanks\n", "    send: t.thanks\n    ask: t.ask\n")],
        [
            "F/demo.yaml:8: step 'thanks' must do exactly one of: send, ask, set, branch, "
            "record, consent, alert, wait, schedule, go, end (found send, ask)"
        ],
    ),
    "a step that does nothing": (
        [("    send: t.thanks\n", "")],
        [
            "F/demo.yaml:8: step 'thanks' must do exactly one of: send, ask, set, branch, "
            "record, consent, alert, wait, schedule, go, end (found none)"
        ],
    ),
    "duplicate step id": (
        [("    end: true\n", "    end: true\n  - id: thanks\n    send: t.other\n    next: done\n")],
        ["F/demo.yaml:13: step id 'thanks' is used twice"],
    ),
    "yes_no without yes, no or next": (
        [
            (
                "    expect: number 0..10\n    save: score\n    next: thanks\n",
                "    expect: yes_no\n    yes: thanks\n",
            )
        ],
        ["F/demo.yaml:3: step 'ask_score': give both 'yes' and 'no', or a 'next'"],
    ),
    "a step with no way on": (
        [("    next: done\n", "")],
        [
            "F/demo.yaml:8: step 'thanks': say where to go next with 'next: step_id' (or end "
            "the flow with a step 'end: true')",
            "F/demo.yaml:10: step 'done' can never be reached; lead to it from another step "
            "or remove it",
        ],
    ),
    "give_up_after naming no step": (
        [("    save: score\n", "    save: score\n    give_up_after: 3 days -> nowhere\n")],
        [
            "F/demo.yaml:7: there is no step 'nowhere' in this flow; the steps here are: "
            "ask_score, thanks, done"
        ],
    ),
    "a length of time people would not write": (
        [("    save: score\n", "    save: score\n    give_up_after: soon\n")],
        [
            "F/demo.yaml:3: 'soon' is not a length of time; write it like '30 minutes', "
            "'2 hours', '3 days'"
        ],
    ),
    "an answer key on a send step": (
        [("    send: t.thanks\n", "    send: t.thanks\n    expect: yes_no\n")],
        ["F/demo.yaml:8: 'expect' belongs on an 'ask' step, not a 'send' step"],
    ),
}


@pytest.mark.parametrize(("changes", "expected"), CASES.values(), ids=CASES.keys())
def test_flow_mistake(tmp_path: Path, changes: list[tuple[str, str]], expected: list[str]) -> None:
    assert problems(tmp_path, {"demo.yaml": edited(*changes)}) == expected


def test_a_broken_file_does_not_also_break_the_go_to_it(tmp_path: Path) -> None:
    """One mistake, one message: 'go: demo' is fine while demo.yaml has its own error."""
    starter = "flow: starter\nsteps:\n  - id: hello\n    send: t.other\n    next: on\n"
    starter += "  - id: on\n    go: demo\n"
    files: dict[str, str | bytes] = {
        "demo.yaml": edited(("    next: thanks\n", "    nxt: thanks\n")),
        "starter.yaml": starter,
    }
    assert problems(tmp_path, files) == ["F/demo.yaml:7: unknown key 'nxt'; did you mean 'next'?"]


def test_flows_that_go_to_each_other_without_waiting(tmp_path: Path) -> None:
    ping = "flow: ping\nsteps:\n  - id: hello\n    send: t.other\n    next: over\n"
    ping += "  - id: over\n    go: pong\n"
    pong = "flow: pong\nsteps:\n  - id: back\n    go: ping\n"
    assert problems(tmp_path, {"ping.yaml": ping, "pong.yaml": pong}) == [
        "F/pong.yaml:4: these flows go round in a loop without waiting for the parent: "
        "ping -> pong -> ping; put an 'ask' or a 'wait' before the 'go'"
    ]


def test_a_flow_may_go_to_itself_after_a_question(tmp_path: Path) -> None:
    again = edited(("    end: true\n", "    go: demo\n"))
    folder = write(tmp_path / "flows", {"demo.yaml": again})
    assert "demo" in load_flow_dir(folder, KEYS).flows
    instant = "flow: spin\nsteps:\n  - id: hello\n    send: t.other\n    next: again\n"
    instant += "  - id: again\n    go: spin\n"
    assert problems(tmp_path / "b", {"spin.yaml": instant}) == [
        "F/spin.yaml:7: these flows go round in a loop without waiting for the parent: "
        "spin -> spin; put an 'ask' or a 'wait' before the 'go'"
    ]


def test_the_same_flow_name_twice(tmp_path: Path) -> None:
    assert problems(tmp_path, {"a.yaml": DEMO, "b.yaml": DEMO}) == [
        "F/b.yaml:1: flow 'demo' is already defined in F/a.yaml"
    ]


def test_a_flow_file_that_is_not_utf8(tmp_path: Path) -> None:
    latin = DEMO.replace("flow: demo\n", "flow: demo\ndescription: café\n").encode("latin-1")
    assert problems(tmp_path, {"demo.yaml": latin}) == [
        "F/demo.yaml:1: the file is not UTF-8 text; save it as UTF-8"
    ]


def test_keyword_file_mistakes(tmp_path: Path) -> None:
    keywords = "en:\n  stop: [stop]\n  snooze: [later]\n  help: []\n"
    assert problems(tmp_path, {"demo.yaml": DEMO, "keywords.yaml": keywords}) == [
        f"F/keywords.yaml:3: unknown keyword action 'snooze'; use {', '.join(KEYWORD_ACTIONS)}",
        "F/keywords.yaml:4: give a list of words",
    ]


def test_words_stay_words(tmp_path: Path) -> None:
    """YAML 1.1 would make yes/no/on booleans and 18:00 the number 1080; people mean words."""
    flow = edited(
        (
            "    expect: number 0..10\n",
            "    expect: choice\n    quick_replies: [Yes, No]\n"
            "    choices:\n      - value: yes\n        words: [yes, on, 18:00]\n"
            "      - value: no\n        words: [no, off]\n",
        ),
        (
            "    send: t.thanks\n    next: done\n",
            "    set:\n      agreed: yes\n      at: 18:00\n"
            "      note: 2026-02-30\n    next: done\n",
        ),
    )
    folder = write(tmp_path / "flows", {"demo.yaml": flow})
    step = load_flow_dir(folder, KEYS).step("demo", "ask_score")
    assert step is not None and step.choices is not None
    assert step.quick_replies == ["Yes", "No"]
    assert [(c.value, c.words) for c in step.choices] == [
        ("yes", ["yes", "on", "18:00"]),
        ("no", ["no", "off"]),
    ]
    thanks = load_flow_dir(folder, KEYS).step("demo", "thanks")
    assert thanks is not None
    assert thanks.set == {"agreed": "yes", "at": "18:00", "note": "2026-02-30"}


def test_a_script_that_is_not_utf8(tmp_path: Path) -> None:
    script = tmp_path / "s.yaml"
    script.write_bytes("script: café\n".encode("latin-1"))
    with pytest.raises(SourceError) as info:
        load_script(script)
    assert str(info.value) == f"{script}:1: the file is not UTF-8 text; save it as UTF-8"


# ---- catalogues ------------------------------------------------------------------------------


def catalogue_problems(tmp_path: Path, files: dict[str, str | bytes]) -> list[str]:
    folder = write(tmp_path / "catalog", files)
    with pytest.raises(CatalogueError) as info:
        load_catalogue(folder)
    return [str(e).replace(f"{folder}/", "C/") for e in info.value.errors]


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("  ask: Hello {child_name", "'t.ask' has a stray '{' or '}'; variables look like"),
        ("  ask: Hello child_name}", "'t.ask' has a stray '{' or '}'; variables look like"),
        ("  ask: Hello {0}", "'t.ask' uses a numbered variable; name it, like {child_name}"),
        ("  ask: Hello {}", "'t.ask' uses a numbered variable; name it, like {child_name}"),
        ("  ask: 2026-02-30", "cannot read the value '2026-02-30' (day is out of range for mon"),
    ],
)
def test_catalogue_mistake(tmp_path: Path, entry: str, expected: str) -> None:
    text = f"t:\n  thanks: Thank you.\n{entry}\n"
    (line,) = catalogue_problems(tmp_path, {"en.yaml": text})
    assert line.startswith(f"C/en.yaml:3: {expected}")


def test_a_numbered_variable_is_refused_at_its_line(tmp_path: Path) -> None:
    """Refused today, though with the 'stray' advice (see NUMBERED_BUG)."""
    (line,) = catalogue_problems(tmp_path, {"en.yaml": "t:\n  thanks: Thanks.\n  ask: Hi {0}\n"})
    assert line.startswith("C/en.yaml:3: 't.ask' ")


def test_a_catalogue_that_is_not_utf8(tmp_path: Path) -> None:
    latin = "t:\n  ask: Café?\n".encode("latin-1")
    assert catalogue_problems(tmp_path, {"en.yaml": latin}) == [
        "C/en.yaml:1: the file is not UTF-8 text; save it as UTF-8"
    ]


# ---- the command line ------------------------------------------------------------------------


def line_of(path: Path, starts: str) -> int:
    """The 1-based line of ``path`` that starts with ``starts``."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(i for i, text in enumerate(lines, 1) if text.startswith(starts))


def replace_in(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def copy_content(into: Path) -> tuple[Path, Path]:
    """Copies of the shipped flows (without their scripts) and catalogue."""
    flows = into / "flows"
    shutil.copytree(SHIPPED_FLOWS, flows, ignore=shutil.ignore_patterns("tests"))
    catalog = into / "catalog"
    shutil.copytree(SHIPPED_CATALOGUE, catalog)
    return flows, catalog


LONG_LEARN = (
    "Week 1. Worry is common in children like {child_name}. It can get better, and you can "
    "help {child_name} a lot. When {child_name} stays away from what scares them, the fear can "
    "grow. Small brave steps help it shrink. This week, watch for one worry moment and notice "
    "what happens just before it and after it."
)


@dataclass
class CliRun:
    """One ``bravesteps`` command, started in the background, and what it printed."""

    args: list[str]
    env: dict[str, str] = field(default_factory=dict)
    paths: dict[str, Path] = field(default_factory=dict)
    process: subprocess.Popen[str] | None = None
    code: int | None = None
    out: str = ""


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> dict[str, CliRun]:
    """Start every command-line run at once; each test reads the one it needs."""
    base = tmp_path_factory.mktemp("cli")
    runs: dict[str, CliRun] = {}

    flows, catalog = copy_content(base / "broken")
    replace_in(flows / "onboarding.yaml", "    next: how_far\n", "    nxt: how_far\n")
    replace_in(
        catalog / "en.yaml",
        "  declined: >-\n    That is fine. We will not send any more texts. If you change your "
        "mind, reply START.",
        f"  declined: >-\n    {LONG_LEARN}",
    )
    runs["lint broken"] = CliRun(
        ["lint", str(flows)], {"MESSAGES_DIR": str(catalog)}, {"flows": flows, "catalog": catalog}
    )
    runs["lint shipped"] = CliRun(["lint"])

    flows, catalog = copy_content(base / "curly")
    replace_in(
        catalog / "en.yaml",
        "Please reply with one number from 0 to 10.",
        "Please reply with one number from 0 to 10 – that’s all.",
    )
    runs["lint curly"] = CliRun(
        ["lint"], {"FLOWS_DIR": str(flows), "MESSAGES_DIR": str(catalog)}, {"catalog": catalog}
    )

    wrong = base / "wrong.yaml"
    wrong.write_text(
        "script: a wrong script\nstart: onboarding\nconversation:\n"
        "  - send: onboarding.welcome\n  - parent: 'yes'\n  - send: onboarding.declined\n",
        encoding="utf-8",
    )
    runs["test-flows wrong"] = CliRun(["test-flows", str(wrong)], paths={"script": wrong})
    runs["test-flows shipped"] = CliRun(["test-flows"])

    for run in runs.values():
        env = {
            **os.environ,
            "DATABASE_URL": f"sqlite:///{base / 'unused.sqlite'}",
            "FLOWS_DIR": str(SHIPPED_FLOWS),
            "MESSAGES_DIR": str(SHIPPED_CATALOGUE),
            **run.env,
        }
        run.process = subprocess.Popen(
            [str(BRAVESTEPS), *run.args],
            cwd=base,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
    for run in runs.values():
        assert run.process is not None
        run.out, _ = run.process.communicate(timeout=60)
        run.code = run.process.returncode
    return runs


@pytest.mark.slow
def test_lint_a_broken_flow_and_a_long_message(cli: dict[str, CliRun]) -> None:
    run = cli["lint broken"]
    flows, catalog, out = run.paths["flows"], run.paths["catalog"], run.out
    assert run.code == 1, out
    nxt = line_of(flows / "onboarding.yaml", "    nxt:")
    learn = line_of(catalog / "en.yaml", "  declined:")
    lines = out.splitlines()
    assert f"{flows}/onboarding.yaml:{nxt}: unknown key 'nxt'; did you mean 'next'?" in lines
    assert any(
        line.startswith(
            f"{catalog}/en.yaml:{learn}: error: 'onboarding.declined' is 3 SMS segments with long "
            "names filled in (at most 2)"
        )
        for line in lines
    ), out
    # the broken onboarding file is one error, not also a confusing "no such flow" elsewhere
    assert "there is no flow" not in out
    assert re.search(r"^lint: .*; 2 error\(s\), ", out, re.M), out


def test_the_long_message_fits_with_a_short_name() -> None:
    """The linter's long names are what make LONG_LEARN too long, not the words alone."""
    assert count_segments(LONG_LEARN.format(child_name="Sam")) == 2
    long = LONG_LEARN.format(child_name=LONG_VALUES["child_name"])
    assert count_segments(long) == 3
    assert len(long) <= 320  # so the only error is the segments one


@pytest.mark.slow
def test_lint_passes_the_shipped_set(cli: dict[str, CliRun]) -> None:
    run = cli["lint shipped"]
    assert run.code == 0, run.out
    assert re.search(r"^lint: \d+ flow\(s\), \d+ message\(s\); 0 error\(s\)", run.out, re.M)


@pytest.mark.slow
def test_lint_warns_about_a_curly_quote(cli: dict[str, CliRun]) -> None:
    run = cli["lint curly"]
    catalog, out = run.paths["catalog"], run.out
    assert run.code == 0, out
    help_line = line_of(catalog / "en.yaml", "  rating_help:")
    assert (
        f"{catalog}/en.yaml:{help_line}: warning: 'onboarding.rating_help' has '–' '’', which "
        "makes the text UCS-2 (70 characters a segment); use plain quotes and dashes, or add "
        "'allow_unicode: true'"
    ) in out.splitlines()
    assert re.search(r"^lint: .*; 0 error\(s\), [1-9]\d* warning\(s\)$", out, re.M), out


@pytest.mark.slow
def test_test_flows_fails_on_a_wrong_script(cli: dict[str, CliRun]) -> None:
    run = cli["test-flows wrong"]
    script, out = run.paths["script"], run.out
    assert run.code == 1, out
    assert f"FAIL a wrong script  ({script})" in out
    assert (
        f"  {script}:6: expected onboarding.declined, but the service sent onboarding.thanks_yes"
    ) in out
    assert "0 passed, 1 failed" in out


@pytest.mark.slow
def test_test_flows_passes_the_shipped_scripts(cli: dict[str, CliRun]) -> None:
    run = cli["test-flows shipped"]
    out = run.out
    assert run.code == 0, out
    reached = re.search(r"^flow steps reached: (\d+)/(\d+) \(100 %\)$", out, re.M)
    assert reached and reached[1] == reached[2], out
    assert re.search(r"^\d+ passed, 0 failed$", out, re.M), out
