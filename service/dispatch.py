"""Sending replies from the web process without making Twilio wait.

The webhook commits the reply to the outbox and answers at once; the dispatcher then hands the new
rows to the sender. Rows are claimed atomically, so a tick running at the same moment cannot send
them again, and a reply left behind by a crash is sent by the next tick.
"""

from __future__ import annotations

import logging
import queue
import threading

from service.outbox import drain
from service.wiring import Services

log = logging.getLogger("bravesteps.dispatch")


class Dispatcher:
    """Send given outbox rows inline, on a background thread, or not at all (left to the tick)."""

    def __init__(self, services: Services, mode: str) -> None:
        self.services = services
        self.mode = mode
        self._queue: queue.Queue[list[int]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, ids: list[int]) -> None:
        """Hand these outbox rows to the sender."""
        if not ids or self.mode == "off":
            return
        if self.mode == "inline":
            self._send(ids)
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                # Started lazily, so each gunicorn worker gets its own after the fork.
                self._thread = threading.Thread(target=self._run, name="dispatch", daemon=True)
                self._thread.start()
        self._queue.put(ids)

    def _run(self) -> None:
        while True:
            ids = self._queue.get()
            self._send(ids)
            self._queue.task_done()

    def _send(self, ids: list[int]) -> None:
        try:
            drain(self.services, ids=ids)
        except Exception as exc:  # the tick will pick the rows up; never kill the thread
            log.error("dispatch failed (%s); the next tick will send", type(exc).__name__)
