"""Pacing: at most N messages a second per sender, as Twilio's queues expect.

A UK long code takes 10 segments a second; sending faster only fills Twilio's queue and risks
30001 (queue overflow) for time-sensitive steps. The clock and sleep are injectable for tests.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class Pacer:
    """Spaces calls per key at ``rate`` a second on average (0 = unpaced)."""

    CATCH_UP = 2

    def __init__(
        self,
        rate: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.clock = clock
        self.sleep = sleep
        self._next: dict[str, float] = {}

    def wait(self, key: str) -> None:
        """Block until ``key`` may send again, then book its next slot.

        Slots are a fixed schedule, each one interval after the last, so a send that ran late
        is made up by the next ones going early and the average holds the rate exactly. A slot
        missed by more than ``CATCH_UP`` intervals (a long stall, or a quiet spell) is not made
        up: the schedule starts again from now, so it never turns into a burst.
        """
        if not self.interval:
            return
        now = self.clock()
        slot = self._next.get(key, now)
        if slot < now - self.CATCH_UP * self.interval:
            slot = now
        if slot > now:
            self.sleep(slot - now)
        self._next[key] = slot + self.interval
