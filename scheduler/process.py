"""The scheduler process: APScheduler only wakes the tick; the database holds the work.

APScheduler 3.x cannot share a job store between processes, so it keeps nothing: one interval job
calls ``run_tick``. ``coalesce`` folds missed runs into one, ``max_instances=1`` stops overlap, and
``misfire_grace_time=None`` runs a late tick however late. A second scheduler started by mistake is
harmless, because every piece of work is claimed atomically in the database.
"""

from __future__ import annotations

import logging
from datetime import datetime

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler

from scheduler.tick import run_tick
from service.wiring import Services

log = logging.getLogger("bravesteps.scheduler")


def _tick(services: Services) -> None:
    try:
        report = run_tick(services)
        if report.work_done or report.sent.total or report.reconciled:
            log.info("%s", report.line())
    except Exception as exc:  # the next tick tries again; never kill the scheduler
        log.error("tick failed: %s", type(exc).__name__)


def _add_job(scheduler: BaseScheduler, services: Services, interval: float) -> None:
    scheduler.add_job(
        _tick,
        "interval",
        args=[services],
        seconds=interval,
        id="tick",
        replace_existing=True,
        coalesce=True,
        max_instances=1,
        misfire_grace_time=None,
        next_run_time=datetime.now().astimezone(),
    )


def run_forever(services: Services) -> None:
    """Tick every ``SCHEDULER_INTERVAL`` seconds until stopped (Ctrl-C or SIGTERM)."""
    logging.getLogger("bravesteps").setLevel(logging.INFO)
    scheduler = BlockingScheduler(timezone="UTC")
    _add_job(scheduler, services, services.settings.scheduler_interval)
    log.info("scheduler started: a tick every %gs", services.settings.scheduler_interval)
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        log.info("scheduler stopped")


def start_background(services: Services, interval: float) -> BackgroundScheduler:
    """The demo's scheduler: the same tick on a thread beside the web app."""
    scheduler = BackgroundScheduler(timezone="UTC")
    _add_job(scheduler, services, interval)
    scheduler.start()
    return scheduler
