"""Pacing: at most N messages a second per sender, as Twilio's queues expect.

A UK long code takes 10 segments a second; sending faster only fills Twilio's queue and risks
30001 (queue overflow) for time-sensitive steps. The clock and sleep are injectable for tests.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class Pacer:
    """Spaces calls per key so that no key goes faster than ``rate`` a second (0 = unpaced)."""

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
        """Block until ``key`` may send again, then book its next slot."""
        if not self.interval:
            return
        now = self.clock()
        slot = max(now, self._next.get(key, now))
        if slot > now:
            self.sleep(slot - now)
        self._next[key] = slot + self.interval
