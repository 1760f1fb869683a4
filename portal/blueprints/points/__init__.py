from flask import Blueprint

bp = Blueprint("points", __name__, url_prefix="/points")

from portal.blueprints.points import breaches, ledger, reviews, store  # noqa: E402,F401
