from flask import Blueprint

bp = Blueprint("agenda", __name__)

from portal.blueprints.agenda import chair, printing, public, views  # noqa: E402,F401
