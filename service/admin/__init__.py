"""The staff web app under ``/admin``: sign-in, the caseload, a family, alerts, flows, audit log.

Every page needs a sign-in except ``/admin/login``. Every form carries a CSRF token (Flask-WTF's
``CSRFProtect`` covers the whole app except Twilio's signed webhooks). Sessions are signed cookies,
HTTP-only, ``SameSite=Lax``, ``Secure`` when ``PUBLIC_URL`` is https, and end after
``STAFF_IDLE_MINUTES`` without a request.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    Flask,
    Request,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.sessions import NullSession, SecureCookieSession, SecureCookieSessionInterface
from flask_login import LoginManager, current_user, login_user, logout_user
from flask_wtf.csrf import CSRFError, CSRFProtect
from sqlalchemy import func, select
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from service.auth import audit, sign_in
from service.models import Alert, Family, User
from service.wiring import Services

bp = Blueprint("admin", __name__, url_prefix="/admin")
csrf = CSRFProtect()
login_manager = LoginManager()
login_manager.login_view = "admin.login"
login_manager.login_message = "Please sign in to see that page."
login_manager.session_protection = "strong"
SLEEP_KEY = "bravesteps.sleep"
SEEN_KEY = "seen"


@dataclass(frozen=True)
class Login:
    """The signed-in member of staff, as Flask-Login sees them (no database session attached)."""

    id: int
    email: str
    name: str
    role: str
    staff_id: int | None

    is_authenticated = True
    is_active = True
    is_anonymous = False

    def get_id(self) -> str:
        return str(self.id)

    @classmethod
    def of(cls, user: User) -> Login:
        return cls(user.id, user.email, user.name, user.role, user.staff_id)


def services() -> Services:
    """The process's services, hung on the app."""
    svc: Services = current_app.extensions["bravesteps"]
    return svc


def viewer() -> Login:
    """The signed-in user (every admin view but the login requires one)."""
    user: Login = current_user._get_current_object()
    return user


def now() -> datetime:
    """The service's clock (injected in tests)."""
    return services().now()


def record(
    db: Any, action: str, *, family_ref: str | None = None, detail: str | None = None
) -> None:
    """A line of the audit log for what the signed-in user just did or saw."""
    audit(db, db.get(User, viewer().id), action, now(), family_ref=family_ref, detail=detail)


@login_manager.user_loader
def _load(user_id: str) -> Login | None:
    if not user_id.isdigit():
        return None
    with services().db.transaction() as db:
        user = db.get(User, int(user_id))
        return Login.of(user) if user is not None and user.active else None


class StaffSessions(SecureCookieSessionInterface):
    """Signed-cookie sessions for the staff's pages; none under ``without`` (Twilio's webhooks,
    which carry no cookie and are signed instead: no cookie is read, verified or written). The
    session opens before the URL is matched to a blueprint, so this goes by the path."""

    def __init__(self, without: str) -> None:
        self.without = without

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if request.path.startswith(self.without):
            return NullSession()
        return super().open_session(app, request)


def init_app(app: Flask, svc: Services) -> None:
    """Sign-in, CSRF and the staff pages, on ``app``."""
    secure = bool(svc.settings.public_url and svc.settings.public_url.startswith("https://"))
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=secure,
        SESSION_COOKIE_NAME="bravesteps_session",
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SECURE=secure,
        PERMANENT_SESSION_LIFETIME=svc.settings.staff_idle,
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session
    )
    app.extensions.setdefault(SLEEP_KEY, time.sleep)
    from service import webhooks

    app.session_interface = StaffSessions(without=f"{webhooks.bp.url_prefix}/")
    csrf.init_app(app)
    login_manager.init_app(app)

    csrf.exempt(webhooks.bp)  # Twilio signs its requests instead

    from service.admin import alerts, families, flows  # noqa: F401  (register the views)

    app.register_blueprint(bp)

    @app.errorhandler(CSRFError)
    def _csrf(exc: CSRFError) -> Any:
        if request.is_json:
            return jsonify({"error": f"refused: {exc.description} Reload the page."}), 400
        return render_template("admin/error.html", code=400, reason=exc.description), 400

    app.add_template_filter(ago)
    zone = ZoneInfo(svc.settings.default_timezone)

    @app.template_filter("staff_time")
    def _staff_time(moment: datetime) -> str:
        """A time as staff read it: in the service's own time zone, with the zone named."""
        return moment.astimezone(zone).strftime("%a %d %b %H:%M %Z")

    @app.context_processor
    def _globals() -> dict[str, Any]:
        return {
            "simulator_on": "simulator" in app.blueprints,
            "open_alert_count": _open_alert_count(),
        }


def ago(moment: datetime, reference: datetime) -> str:
    """'3 hours ago', 'yesterday', '12 days ago': how long before ``reference``."""
    seconds = (reference - moment).total_seconds()
    if seconds < 0:
        return "just now" if seconds > -60 else "in the future"
    if seconds < 90:
        return "just now"
    if seconds < 3600:
        return f"{round(seconds / 60)} minutes ago"
    if seconds < 23.5 * 3600:
        hours = round(seconds / 3600)
        return f"{hours} hour{'s' if hours != 1 else ''} ago"
    days = round(seconds / 86400)
    return "yesterday" if days == 1 else f"{days} days ago"


def _open_alert_count() -> int:
    if not current_user.is_authenticated or viewer().role not in ("admin", "therapist"):
        return 0
    from service.auth import families_for

    with services().db.transaction() as db:
        ids = families_for(viewer()).with_only_columns(Family.id).scalar_subquery()
        query = select(func.count()).select_from(Alert).where(Alert.status != "resolved")
        return int(db.scalar(query.where(Alert.family_id.in_(ids))) or 0)


@bp.before_request
def _require_sign_in() -> Response | None:
    """Every page but the sign-in needs a signed-in user who has not been idle too long."""
    moment = now().timestamp()
    if current_user.is_authenticated and _idle_too_long(moment):
        logout_user()
        session.clear()
        if request.endpoint != "admin.login":
            flash("You were signed out after a time without use. Please sign in again.", "info")
            return redirect(url_for("admin.login", next=request.path))
    if request.endpoint == "admin.login":
        return None
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    session[SEEN_KEY] = moment
    session.permanent = True
    return None


def _idle_too_long(moment: float) -> bool:
    seen = session.get(SEEN_KEY)
    idle = services().settings.staff_idle.total_seconds()
    return not isinstance(seen, int | float) or moment - seen > idle


def roles(*allowed: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Refuse (403) users whose role is not ``allowed``."""

    def wrap(view: Callable[..., Any]) -> Callable[..., Any]:
        def checked(*args: Any, **kwargs: Any) -> Any:
            if viewer().role not in allowed:
                abort(403)
            return view(*args, **kwargs)

        checked.__name__ = view.__name__
        checked.__doc__ = view.__doc__
        return checked

    return wrap


TITLES = {403: "Not for your role", 404: "Not found", 405: "Not allowed", 413: "Too large"}


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> tuple[str, int]:
    """Staff pages answer errors with a page in the app's look, never a traceback."""
    code = exc.code or 500
    reason = {
        403: "Your login cannot see this page. Ask an admin if you need it.",
        404: "There is nothing here, or it is not one of your families.",
    }.get(code, exc.description or "")
    return render_template(
        "admin/error.html", code=code, title=TITLES.get(code), reason=reason
    ), code


def _safe_next(target: str | None) -> str:
    """Only paths inside the staff app: never another site."""
    if target and target.startswith("/admin/") and not target.startswith("//"):
        return target
    return url_for("admin.families")


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | str | tuple[str, int]:
    """The sign-in form: fields ``email`` and ``password`` (and the CSRF token)."""
    if request.method == "GET":
        if current_user.is_authenticated:
            return redirect(url_for("admin.families"))
        return render_template("admin/login.html", email="")
    email = (request.form.get("email") or "")[:254]
    password = (request.form.get("password") or "")[:1024]
    svc = services()
    with svc.db.transaction() as db:
        result = sign_in(db, email, password, request.remote_addr or "-", svc.now())
        if result.user is not None:
            audit(db, result.user, "signed in", svc.now())
            signed = Login.of(result.user)
    if result.user is None:
        if result.delay:
            current_app.extensions[SLEEP_KEY](result.delay)
        reason = (
            "Too many failed sign-ins. Wait 15 minutes, then try again."
            if result.refused
            else "That email and password do not match. Check them and try again."
        )
        status = 429 if result.refused else 401
        return render_template("admin/login.html", email=email, error=reason), status
    session.clear()  # a fresh session at sign-in: no fixation
    login_user(signed)
    session[SEEN_KEY] = svc.now().timestamp()
    session.permanent = True
    return redirect(_safe_next(request.args.get("next")))


@bp.post("/logout")
def logout() -> Response:
    """Sign out and forget the session."""
    logout_user()
    session.clear()
    flash("You are signed out.", "info")
    return redirect(url_for("admin.login"))


@bp.get("/")
def home() -> Response:
    """The caseload is the home page."""
    return redirect(url_for("admin.families"))
