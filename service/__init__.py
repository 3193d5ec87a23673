"""The bravesteps web app: Twilio webhooks, health, the staff app and the demo's simulator."""

from __future__ import annotations

import gc
import logging
import re
import sys
import traceback
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, abort, jsonify, send_from_directory

from service.config import ConfigError, Settings, load_settings
from service.dispatch import Dispatcher
from service.wiring import ContentError, Services, build_services

__all__ = ["create_app"]

MAX_REQUEST_BYTES = 64 * 1024


def create_app(config: Settings | Mapping[str, str] | Services | None = None) -> Flask:
    """Build the app; ``config`` may be ``Settings``, an environment mapping, or ``Services``.

    Called with no argument (gunicorn's ``service:create_app()``), a bad setting or flow file
    prints one line and exits instead of showing a traceback.
    """
    try:
        if isinstance(config, Services):
            svc = config
        else:
            settings = config if isinstance(config, Settings) else load_settings(config, web=True)
            svc = build_services(settings)
    except (ConfigError, ContentError) as exc:
        if config is not None:
            raise
        print(f"bravesteps: cannot start: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    app = _app(svc)
    if config is None:
        # The process's one app (a gunicorn worker): what it holds for good (flows, catalogues,
        # SQLAlchemy's tables, the modules) is left out of the garbage collector's full
        # collections, which would otherwise walk ~130,000 objects and stall a request for tens
        # of milliseconds now and then.
        gc.collect()
        gc.freeze()
    return app


def _app(svc: Services) -> Flask:
    app = Flask(__name__, instance_relative_config=True)
    app.config.update(
        SECRET_KEY=svc.settings.secret_key,
        MAX_CONTENT_LENGTH=MAX_REQUEST_BYTES,
        TESTING=svc.settings.testing,
    )
    app.extensions["bravesteps"] = svc
    app.extensions["bravesteps.dispatcher"] = Dispatcher(svc, svc.settings.dispatch)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )

    from service import admin, simulator, webhooks

    app.register_blueprint(webhooks.bp)
    if not svc.settings.twilio_enabled:
        app.register_blueprint(simulator.bp)
    admin.init_app(app, svc)

    @app.get("/audio/<lang>/<path:name>")
    def audio(lang: str, name: str) -> Response:
        """Recorded voice notes, served by the app itself (no CDN)."""
        if not re.fullmatch(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})?", lang):
            abort(404)
        folder = svc.settings.messages_dir / "audio" / lang
        return send_from_directory(folder, name, max_age=3600)

    @app.get("/healthz")
    def healthz() -> tuple[Response, int]:
        """200 when the database answers and the flows are loaded."""
        database = svc.db.ping()
        flows = bool(svc.flows.flows)
        ok = database and flows
        body = {
            "status": "ok" if ok else "unavailable",
            "database": "ok" if database else "unreachable",
            "flows": len(svc.flows.flows),
            "twilio": "on" if svc.settings.twilio_enabled else "off (simulator)",
        }
        return jsonify(body), 200 if ok else 503

    @app.errorhandler(Exception)
    def on_error(exc: Exception) -> Any:
        from werkzeug.exceptions import HTTPException

        if isinstance(exc, HTTPException):
            return Response(f"{exc.code} {exc.name}\n", status=exc.code, mimetype="text/plain")
        # The type and where it was raised, never the message: it may quote a parent's words.
        frames = traceback.extract_tb(exc.__traceback__)[-3:]
        where = " <- ".join(f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno}" for f in reversed(frames))
        logging.getLogger("bravesteps").error("unhandled %s at %s", type(exc).__name__, where)
        return Response("Sorry, something went wrong.\n", status=500, mimetype="text/plain")

    return app
