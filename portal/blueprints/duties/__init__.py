from flask import Blueprint

bp = Blueprint("duties", __name__, url_prefix="/duties")

from portal.blueprints.duties import views  # noqa: E402,F401
