"""The whole answer to one parent's message: keywords first, then the flow.

STOP, START, HELP, PAUSE and RESUME work at any point in any flow and in the family's language, so
they are read before the flow sees the message (a carrier keyword must never be swallowed as an
answer). The risk screening runs before all of this, in the shell; a request for a person that it
reads in any wording (``MessageIn.asks_for_person``) is acted on as the HUMAN keyword is.
"""

from __future__ import annotations

import re

from flows import matching
from flows.effects import (
    CancelWakes,
    Context,
    ConversationState,
    MessageIn,
    OptIn,
    OptOut,
    Outcome,
    PauseProgramme,
    RaiseAlert,
    ResumeProgramme,
    Send,
)
from flows.loader import FlowSet
from flows.runtime import ENGINE_KEYS, TIP_VARIABLE, open_question, reawaken, run

STOPPED = "system.stopped"
STARTED = "system.started"
HELP = "system.help"
MENU = "system.menu"
NO_TIP_YET = "system.no_tip_yet"
PERSON_WILL_CONTACT = "system.person_will_contact"
PAUSED = "system.paused"
PAUSE_TOO_LONG = "system.pause_too_long"
RESUMED = "system.resumed"
SYSTEM_KEYS = (
    STOPPED,
    STARTED,
    HELP,
    MENU,
    NO_TIP_YET,
    PERSON_WILL_CONTACT,
    PAUSED,
    PAUSE_TOO_LONG,
    RESUMED,
    *ENGINE_KEYS,
)
MAX_PAUSE_WEEKS = 4
_PAUSE_FILLER = re.compile(r"\b(for|weeks?|wks?|please|pls)\b")


def flowset_keys(flowset: FlowSet) -> set[str]:
    """Every catalogue key the flows send (a stored tip must still be one of them)."""
    return {
        key
        for flow in flowset.flows.values()
        for step in flow.steps
        for key in step.catalogue_keys()
    }


def keyword(flowset: FlowSet, text: str, language: str) -> tuple[str | None, int | None]:
    """Which keyword the message is, and for PAUSE the weeks asked for (None if unreadable).

    STOP, START, HELP and RESUME count only as the whole message (as carriers treat them);
    PAUSE may be followed by how long: "PAUSE 2", "pause for two weeks".
    """
    if text.strip() and not text.strip().strip("?"):
        return "menu", None  # "?" alone
    said = matching.normalise(text)
    if not said:
        return None, None
    words = flowset.keywords.for_language(language)
    for action, listed in words.items():
        if said in listed:
            return action, (1 if action == "pause" else None)
    for word in words.get("pause", frozenset()):
        if said.startswith(word + " "):
            rest = _PAUSE_FILLER.sub(" ", said[len(word) :]).strip()
            return "pause", matching.parse_number(rest, 0, 99)
    return None, None


def handle_message(
    flowset: FlowSet,
    state: ConversationState,
    message: MessageIn,
    ctx: Context,
    opted_out: bool,
) -> Outcome:
    """Decide everything that follows one message from a parent."""
    action, weeks = keyword(flowset, message.text, ctx.language)
    variables = {**ctx.family, **state.variables}
    where = (str(state.flow or ""), str(state.step or ""))
    if action == "stop":
        if opted_out:
            return Outcome(state, [])
        return Outcome(
            state, [OptOut(), CancelWakes(), Send(STOPPED, variables, *where, reply=True)]
        )
    if opted_out:
        if action == "start":
            again = reawaken(flowset, state, ctx)
            return Outcome(state, [OptIn(), Send(STARTED, variables, *where, reply=True), *again])
        return Outcome(state, [])
    if action == "help":
        return Outcome(state, [Send(HELP, variables, *where, reply=True)])
    if action == "start":
        return Outcome(state, [Send(STARTED, variables, *where, reply=True)])
    if action == "pause":
        if weeks is None or not 1 <= weeks <= MAX_PAUSE_WEEKS:
            return Outcome(state, [Send(PAUSE_TOO_LONG, variables, *where, reply=True)])
        paused = {**variables, "weeks": weeks, "week_word": "week" if weeks == 1 else "weeks"}
        return Outcome(state, [PauseProgramme(weeks), Send(PAUSED, paused, *where, reply=True)])
    if action == "menu":
        again = open_question(flowset, state, ctx)
        return Outcome(state, [Send(MENU, variables, *where, reply=True), *again])
    if action == "repeat":
        tip = state.variables.get(TIP_VARIABLE)
        key = tip if isinstance(tip, str) and tip in flowset_keys(flowset) else NO_TIP_YET
        return Outcome(state, [Send(key, variables, *where, reply=True)])
    if action == "human" or (action is None and message.asks_for_person):
        alert = RaiseAlert("asked_for_person", "routine", *where)
        return Outcome(state, [alert, Send(PERSON_WILL_CONTACT, variables, *where, reply=True)])
    if action == "resume":
        return Outcome(state, [ResumeProgramme(), Send(RESUMED, variables, *where, reply=True)])
    return run(flowset, state, message, ctx)
