"""The one-insert baseline for the webhook benchmark.

A bare Flask app with ``POST /twilio/messages`` that reads Twilio's form, writes ONE row and answers
a constant TwiML string. It uses the service's own engine settings (``service.db.make_engine``:
WAL, busy timeout, a small pool, and writers queued on the lock file before ``BEGIN IMMEDIATE`` on
SQLite; the psycopg pool with pre-ping on PostgreSQL), so the difference to the real webhook is the
webhook's own work: signature check, dedupe, family lock, engine step, state and outbox writes,
TwiML.

Run by ``bench/webhook/run.py`` as ``gunicorn 'baseline:create_app()'`` with
``BENCH_DATABASE_URL`` set.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

from flask import Flask, Response, request
from sqlalchemy import Column, DateTime, Engine, Integer, MetaData, String, Table, Text
from sqlalchemy.dialects import postgresql, sqlite

from service.db import make_engine

TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response />'

metadata = MetaData()
inbound = Table(
    "bench_inbound",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("sid", String(64), nullable=False, unique=True),
    Column("sender", String(32), nullable=False),
    Column("body", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
)


def create_schema(engine: Engine) -> None:
    """Create the baseline's one table (run.py calls this on a fresh database)."""
    metadata.create_all(engine)


def create_app() -> Flask:
    """The baseline app over ``BENCH_DATABASE_URL``."""
    engine = make_engine(os.environ["BENCH_DATABASE_URL"])
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    # ON CONFLICT DO NOTHING only matters if the load generator ever wraps round its request file;
    # it keeps the baseline answering 200 like the webhook does for a repeated MessageSid.
    statement = dialect.insert(inbound).on_conflict_do_nothing(index_elements=["sid"])

    app = Flask(__name__)

    @app.post("/twilio/messages")
    def messages() -> Response:
        form = request.form
        with engine.begin() as connection:
            connection.execute(
                statement,
                {
                    "sid": form["MessageSid"],
                    "sender": form["From"],
                    "body": form.get("Body", ""),
                    "created_at": datetime.now(UTC),
                },
            )
        return Response(TWIML, mimetype="text/xml")

    @app.get("/healthz")
    def healthz() -> Response:
        return Response("ok\n", mimetype="text/plain")

    return app
