"""通知公告 with read receipts, and 倡议 call-outs a 邻长 posts for neighbours to sign up to."""

from flask import Blueprint

bp = Blueprint("notices", __name__, url_prefix="/notices")

from portal.blueprints.notices import views  # noqa: E402,F401
