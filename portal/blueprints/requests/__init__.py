from flask import Blueprint

bp = Blueprint("requests", __name__)

from portal.blueprints.requests import public, reports, views  # noqa: E402,F401
