"""The programme's care rules that decide from a family's measures, without the database.

Pure: the shell reads what a rule needs, asks it, and writes what it decides (an alert, a reply).
"""

from __future__ import annotations

# A goal rating down by this much or more, or the worry rating up by as much, since the last
# rating of the same measure is "getting worse" (programme.md's risk table: a supportive message
# and a routine alert to the therapist).
WORSE_BY = 3.0


def is_getting_worse(name: str, previous: float, value: float) -> bool:
    """Whether ``value`` for the measure ``name`` (``goal1``…, ``worry``) is worse than
    ``previous`` by ``WORSE_BY``: goals are better high, worry is better low; other measures never
    get worse."""
    if name.startswith("goal"):
        return previous - value >= WORSE_BY
    if name == "worry":
        return value - previous >= WORSE_BY
    return False
