from flask import Blueprint

bp = Blueprint("regions", __name__, url_prefix="/regions")

from portal.blueprints.regions import views  # noqa: E402,F401
