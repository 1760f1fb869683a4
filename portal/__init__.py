"""三长通 · Sanzhang Portal."""

import hashlib
import secrets
from pathlib import Path

from flask import Flask, redirect, request, url_for
from flask_login import current_user
from sqlalchemy import event
from sqlalchemy.engine import Engine

from portal import clock
from portal.extensions import compress, csrf, db, limiter, login_manager, migrate

PUBLIC_ENDPOINTS = {"auth.login", "static", "health", "requests.public_home",
                    "requests.public_detail", "requests.public_rate", "requests.public_reopen",
                    "requests.public_photo", "agenda.public_vote", "agenda.public_ballot",
                    "agenda.public_cast", "agenda.public_leave", "points.public_ranking",
                    "points.public_person", "commendations.public_notice",
                    "commendations.public_object", "commendations.honour_wall",
                    "commendations.honour_entry", "commendations.photo",
                    "commendations.card_check", "commendations.card_check_photo",
                    "notices.public_callout"}


def create_app(config: dict | None = None) -> Flask:
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_object("portal.settings")
    app.config.from_pyfile("config.py", silent=True)
    app.config.from_prefixed_env("PORTAL")
    if config:
        app.config.update(config)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    _configure_database(app)
    _configure_secret(app)

    db.init_app(app)
    migrate.init_app(app, db, directory=str(Path(__file__).parent.parent / "migrations"))
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "请先登录。"
    csrf.init_app(app)
    limiter.init_app(app)
    compress.init_app(app)

    _import_models()
    from portal.blueprints.agenda import bp as agenda_bp
    from portal.blueprints.auth import bp as auth_bp
    from portal.blueprints.commendations import bp as commendations_bp
    from portal.blueprints.duties import bp as duties_bp
    from portal.blueprints.ledgers import bp as ledgers_bp
    from portal.blueprints.notices import bp as notices_bp
    from portal.blueprints.points import bp as points_bp
    from portal.blueprints.regions import bp as regions_bp
    from portal.blueprints.requests import bp as requests_bp

    app.register_blueprint(auth_bp)
    app.register_blueprint(regions_bp)
    app.register_blueprint(duties_bp)
    app.register_blueprint(requests_bp)
    app.register_blueprint(agenda_bp)
    app.register_blueprint(points_bp)
    app.register_blueprint(commendations_bp)
    app.register_blueprint(ledgers_bp)
    app.register_blueprint(notices_bp)

    from portal import errors

    errors.register(app)
    _register_home(app)
    _register_templating(app)

    from portal.cli import register as register_cli

    register_cli(app)
    return app


def _import_models() -> None:
    from portal import audit  # noqa: F401
    from portal.blueprints.agenda import models as _g  # noqa: F401
    from portal.blueprints.auth import models as _a  # noqa: F401
    from portal.blueprints.commendations import models as _c  # noqa: F401
    from portal.blueprints.duties import models as _d  # noqa: F401
    from portal.blueprints.ledgers import models as _l  # noqa: F401
    from portal.blueprints.notices import models as _n  # noqa: F401
    from portal.blueprints.points import models as _p  # noqa: F401
    from portal.blueprints.regions import models as _r  # noqa: F401
    from portal.blueprints.requests import models as _q  # noqa: F401


def _configure_database(app: Flask) -> None:
    url = app.config.get("DATABASE_URL") or app.config.get("SQLALCHEMY_DATABASE_URI")
    if not url:
        url = "sqlite:///" + str(Path(app.instance_path) / "portal.db")
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    app.config["SQLALCHEMY_DATABASE_URI"] = url
    # SQL parameters hold residents' phone numbers: keep them out of SQL logs (echo) and out of
    # the text of database errors, which end up in tracebacks in the server log (PIPL).
    defaults = {"hide_parameters": True}
    if url.startswith("postgresql"):
        defaults["pool_pre_ping"] = True
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {
        **defaults, **app.config.get("SQLALCHEMY_ENGINE_OPTIONS", {})}


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, _record):
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cur = dbapi_connection.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=5000")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()


def _configure_secret(app: Flask) -> None:
    """Use PORTAL_SECRET_KEY if set; otherwise a random key kept in instance/secret_key."""
    if app.config["SECRET_KEY"] != "dev-only-change-me":
        return
    path = Path(app.instance_path) / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    app.config["SECRET_KEY"] = path.read_text().strip()


def _register_home(app: Flask) -> None:
    from portal.scope import current_scope

    @app.before_request
    def require_login():
        if request.endpoint in PUBLIC_ENDPOINTS or current_user.is_authenticated:
            return None
        target = url_for("auth.login", next=request.full_path.rstrip("?"))
        if request.headers.get("HX-Request"):
            return "", 204, {"HX-Redirect": target}
        return redirect(target)

    residents = PUBLIC_ENDPOINTS - {"auth.login", "static", "health"}

    @app.after_request
    def residents_pages(response):
        """Residents' pages (a household's link, a voting code's ballot) hold a secret in the
        URL or the session: keep them out of other sites' logs and out of search engines."""
        if request.endpoint in residents:
            response.headers["Referrer-Policy"] = "no-referrer"
            response.headers["X-Robots-Tag"] = "noindex, nofollow"
        return response

    @app.get("/")
    def home():
        scope = current_scope()
        if scope.is_neighbor_chief:
            return redirect(url_for("duties.home"))
        if scope.view_grants:
            return redirect(url_for("duties.dashboard"))
        return redirect(url_for("duties.checklists"))

    @app.get("/health")
    def health():
        return {"ok": True}


def _register_templating(app: Flask) -> None:
    from portal.blueprints.duties.models import CATEGORIES, METHODS
    from portal.blueprints.regions.models import LEVEL_LABELS, ROLE_LABELS
    from portal.phones import mask_phone
    from portal.scope import current_scope

    hashes: dict[str, str] = {}

    def asset_url(filename: str) -> str:
        if filename not in hashes or app.debug:
            data = (Path(app.static_folder) / filename).read_bytes()
            hashes[filename] = hashlib.sha256(data).hexdigest()[:10]
        return url_for("static", filename=filename, v=hashes[filename])

    @app.after_request
    def immutable_static(response):
        if request.endpoint != "static":
            return response
        if request.args.get("v"):
            response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        if response.status_code == 200 and response.direct_passthrough:
            # Send the (small) file from memory, so Flask-Compress (whose hook runs after this
            # one) gzips it like a page. A file stream it would leave uncompressed for gzip-only
            # clients (COMPRESS_ALGORITHM_STREAMING has no gzip), and when it does compress a
            # stream, it drops the file's close().
            response.direct_passthrough = False
            response.make_sequence()
        return response

    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True
    from portal.audit import describe

    app.jinja_env.globals.update(describe=describe, asset_url=asset_url, scope=current_scope, methods=METHODS,
                                 categories=CATEGORIES, levels=LEVEL_LABELS, roles=ROLE_LABELS)
    app.jinja_env.filters.update(
        local=clock.fmt_local, short=clock.fmt_short, mask=mask_phone)
