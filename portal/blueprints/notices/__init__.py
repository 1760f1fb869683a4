"""通知公告 with read receipts, and 倡议 call-outs a 邻长 posts for neighbours to sign up to.

The staff pages live under /notices (views.py); the neighbours' sign-up page of a call-out is
public, at /cy/<token> (public.py), so the blueprint has no url_prefix of its own."""

from flask import Blueprint

bp = Blueprint("notices", __name__)

from portal.blueprints.notices import public, views  # noqa: E402,F401
