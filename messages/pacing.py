"""Pacing: at most N messages a second per sender, as Twilio's queues expect.

A UK long code takes 10 segments a second; sending faster only fills Twilio's queue and risks
30001 (queue overflow) for time-sensitive steps. The clock and sleep are injectable for tests.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class Pacer:
    """Spaces calls per key at ``rate`` a second on average (0 = unpaced)."""

    CATCH_UP = 5  # slots a late sender may make up; more lateness than that is lost

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
        (the machine was busy, a commit was slow) is made up by the next ones going early, and
        the average holds the rate exactly. At most ``CATCH_UP`` slots are made up, so however
        long a stall, what follows it is at most that many sends in quick succession.
        """
        if not self.interval:
            return
        now = self.clock()
        slot = max(self._next.get(key, now), now - self.CATCH_UP * self.interval)
        if slot > now:
            self.sleep(slot - now)
        self._next[key] = slot + self.interval
