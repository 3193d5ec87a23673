"""The whole answer to one parent's message: keywords first, then the flow.

STOP, START and HELP work at any point in any flow and in the family's language, so they are read
before the flow sees the message (a carrier keyword must never be swallowed as an answer). The risk
screening will sit in front of these.
"""

from __future__ import annotations

from flows import matching
from flows.effects import (
    CancelWakes,
    Context,
    ConversationState,
    MessageIn,
    OptIn,
    OptOut,
    Outcome,
    Send,
)
from flows.loader import FlowSet
from flows.runtime import ENGINE_KEYS, run

STOPPED = "system.stopped"
STARTED = "system.started"
HELP = "system.help"
SYSTEM_KEYS = (STOPPED, STARTED, HELP, *ENGINE_KEYS)


def keyword(flowset: FlowSet, text: str, language: str) -> str | None:
    """Which keyword the whole message is (``stop``, ``start``, ``help``), if any."""
    said = matching.normalise(text)
    if not said:
        return None
    for action, words in flowset.keywords.for_language(language).items():
        if said in words:
            return action
    return None


def handle_message(
    flowset: FlowSet,
    state: ConversationState,
    message: MessageIn,
    ctx: Context,
    opted_out: bool,
) -> Outcome:
    """Decide everything that follows one message from a parent."""
    action = keyword(flowset, message.text, ctx.language)
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
            return Outcome(state, [OptIn(), Send(STARTED, variables, *where, reply=True)])
        return Outcome(state, [])
    if action == "help":
        return Outcome(state, [Send(HELP, variables, *where, reply=True)])
    if action == "start":
        return Outcome(state, [Send(STARTED, variables, *where, reply=True)])
    return run(flowset, state, message, ctx)
