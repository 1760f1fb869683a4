"""好邻 commendations (campaigns, nominations, 公示 with objections, approval, the honour wall)
and the 四个一 print kit. The rules are in services.py; public.py holds the pages anyone may
open without an account."""

from flask import Blueprint

bp = Blueprint("commendations", __name__)

from portal.blueprints.commendations import (  # noqa: E402,F401
    kit_views,
    printing,
    public,
    views,
)
