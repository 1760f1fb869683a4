"""The access-control table of issue 2 (item 8): each role × each route that takes an object id
× an object inside and outside the user's scope → the expected status.

``TABLE`` below is the specification, written by hand from DESIGN.md §2 and the role rules (not
derived from the code under test):

* view (household pages, 邻 page, dashboard, photos) and log a duty: 邻长, 组长, 片长, village
  staff, town staff and admin, over their own subtree;
* manage (tree, households, posts): village staff, town staff, admin over their subtree;
* town settings (special tags, 三张清单, contact rules): town staff and admin;
* anyone with a post in a town (volunteers included) reads its 三张清单;
* volunteers see no households; a user without a post sees nothing;
* 民情诉求 (issue 3): a request is read by whoever may view its household; it is answered
  (响应, 办结 …) by the handlers of its current level over it — 邻长 at 邻 — and by staff of
  that level or above; 组长 and 片长 over it may act once it reaches 组, so acting on a 邻-level
  request is refused with the rule's message (422), not forbidden. A request on the 接单 board
  is read and taken (接单) by anyone with a post over it, volunteers included; volunteers
  cannot answer it (403);
* 台账 (issue 7): the ledgers of a region are for 组长, 片长 and staff over it (邻长, volunteers
  and people without a post: 403 whatever the region); a social resource (on the 组 here) is
  changed by staff who manage its region, seen (403) by 组长 and 片长 over it;
* a roster import job (名册导入) is its uploader's alone: anyone else, admin included, gets 404
  (rows "import.*": v1 a job of the village staff, v2 one of the town staff, t2 one of a second
  town's staff; starting the import, POST …/run, is tested in tests/ledgers/test_import.py);
* an object outside every subtree the user may view → 404 (its existence does not leak); an
  object the user may view but not act on → 403.

Rows are "route  object"; the object is
    v1  village 1's: 邻11 / 组1 / 甲1家 / a post on 邻11 / a log with a photo of 甲1家 /
        a request of 甲1家 waiting at 邻 (with a photo) / one of its requests on the 接单 board
    v2  the same in village 2 (same town, outside every village-1 post)
    t2  the same in a second town (outside everything but the admin's post)
    t1  for the town-wide settings routes: town 1's tag / checklist item / rules
Columns are the roles of the ``world`` fixture (village-1 posts; see tests/conftest.py).
An allowed GET answers 200, an allowed POST 303; 422 is a rule refusing the action now (with its
message on the page). Every refused request, GET or POST, must leave the whole database
unchanged; every allowed POST must change it.
"""

import uuid
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from portal.extensions import db
from tests.conftest import csrf_from

ROLES = ("admin", "town_staff", "village_staff", "area_chief", "group_chief", "neighbor_chief",
         "volunteer", "nobody")

# Which node each route is asked about: the 邻 (so the object lies inside every village-1
# post's subtree) except child creation and the dashboard, which take a 组.
TABLE = """
route                    obj  admin town_staff village_staff area_chief group_chief neighbor_chief volunteer nobody
region.node              v1   200   200        200           403        403         403            404       404
region.node              v2   200   200        404           404        404         404            404       404
region.node              t2   200   404        404           404        404         404            404       404
region.edit              v1   200   200        200           403        403         403            404       404
region.edit              v2   200   200        404           404        404         404            404       404
region.edit              t2   200   404        404           404        404         404            404       404
region.edit:post         v1   303   303        303           403        403         403            404       404
region.edit:post         v2   303   303        404           404        404         404            404       404
region.edit:post         t2   303   404        404           404        404         404            404       404
child.create:post        v1   303   303        303           403        403         404            404       404
child.create:post        v2   303   303        404           404        404         404            404       404
child.create:post        t2   303   404        404           404        404         404            404       404
household.new            v1   200   200        200           403        403         403            404       404
household.new            v2   200   200        404           404        404         404            404       404
household.new            t2   200   404        404           404        404         404            404       404
household.new:post       v1   303   303        303           403        403         403            404       404
household.new:post       v2   303   303        404           404        404         404            404       404
household.new:post       t2   303   404        404           404        404         404            404       404
household.edit           v1   200   200        200           403        403         403            404       404
household.edit           v2   200   200        404           404        404         404            404       404
household.edit           t2   200   404        404           404        404         404            404       404
household.edit:post      v1   303   303        303           403        403         403            404       404
household.edit:post      v2   303   303        404           404        404         404            404       404
household.edit:post      t2   303   404        404           404        404         404            404       404
household.move           v1   200   200        200           403        403         403            404       404
household.move           v2   200   200        404           404        404         404            404       404
household.move           t2   200   404        404           404        404         404            404       404
household.move:post      v1   303   303        303           403        403         403            404       404
household.move:post      v2   303   303        404           404        404         404            404       404
household.move:post      t2   303   404        404           404        404         404            404       404
post.new                 v1   200   200        200           403        403         403            404       404
post.new                 v2   200   200        404           404        404         404            404       404
post.new                 t2   200   404        404           404        404         404            404       404
post.new:post            v1   303   303        303           403        403         403            404       404
post.new:post            v2   303   303        404           404        404         404            404       404
post.new:post            t2   303   404        404           404        404         404            404       404
post.end                 v1   200   200        200           403        403         403            404       404
post.end                 v2   200   200        404           404        404         404            404       404
post.end                 t2   200   404        404           404        404         404            404       404
post.end:post            v1   303   303        303           403        403         403            404       404
post.end:post            v2   303   303        404           404        404         404            404       404
post.end:post            t2   303   404        404           404        404         404            404       404
tags                     t1   200   200        403           403        403         403            403       404
tags                     t2   200   404        404           404        404         404            404       404
tags:post                t1   303   303        403           403        403         403            403       404
tags:post                t2   303   404        404           404        404         404            404       404
tag.toggle:post          t1   303   303        403           403        403         403            403       404
tag.toggle:post          t2   303   404        404           404        404         404            404       404
duty.household           v1   200   200        200           200        200         200            404       404
duty.household           v2   200   200        404           404        404         404            404       404
duty.household           t2   200   404        404           404        404         404            404       404
duty.row                 v1   200   200        200           200        200         200            404       404
duty.row                 v2   200   200        404           404        404         404            404       404
duty.row                 t2   200   404        404           404        404         404            404       404
duty.log                 v1   200   200        200           200        200         200            404       404
duty.log                 v2   200   200        404           404        404         404            404       404
duty.log                 t2   200   404        404           404        404         404            404       404
duty.log:post            v1   303   303        303           303        303         303            404       404
duty.log:post            v2   303   303        404           404        404         404            404       404
duty.log:post            t2   303   404        404           404        404         404            404       404
duty.photo               v1   200   200        200           200        200         200            404       404
duty.photo               v2   200   200        404           404        404         404            404       404
duty.photo               t2   200   404        404           404        404         404            404       404
dashboard                v1   200   200        200           200        200         404            404       404
dashboard                v2   200   200        404           404        404         404            404       404
dashboard                t2   200   404        404           404        404         404            404       404
neighborhood             v1   200   200        200           200        200         200            404       404
neighborhood             v2   200   200        404           404        404         404            404       404
neighborhood             t2   200   404        404           404        404         404            404       404
ledgers.dashboard        v1   200   200        200           200        200         403            403       404
ledgers.dashboard        v2   200   200        404           404        404         403            403       404
ledgers.dashboard        t2   200   404        404           404        404         403            403       404
ledgers.dashboard.pdf    v1   200   200        200           200        200         403            403       404
ledgers.dashboard.pdf    v2   200   200        404           404        404         403            403       404
ledgers.dashboard.pdf    t2   200   404        404           404        404         403            403       404
checklists               t1   200   200        200           200        200         200            200       404
checklists               t2   200   404        404           404        404         404            404       404
checklist.new            t1   200   200        403           403        403         403            403       404
checklist.new            t2   200   404        404           404        404         404            404       404
checklist.edit           t1   200   200        403           403        403         403            403       404
checklist.edit           t2   200   404        404           404        404         404            404       404
checklist.edit:post      t1   303   303        403           403        403         403            403       404
checklist.edit:post      t2   303   404        404           404        404         404            404       404
rules                    t1   200   200        403           403        403         403            403       404
rules                    t2   200   404        404           404        404         404            404       404
rules:post               t1   303   303        403           403        403         403            403       404
rules:post               t2   303   404        404           404        404         404            404       404
request.detail           v1   200   200        200           200        200         200            404       404
request.detail           v2   200   200        404           404        404         404            404       404
request.detail           t2   200   404        404           404        404         404            404       404
request.photo            v1   200   200        200           200        200         200            404       404
request.photo            v2   200   200        404           404        404         404            404       404
request.photo            t2   200   404        404           404        404         404            404       404
request.act:post         v1   303   303        303           422        422         303            404       404
request.act:post         v2   303   303        404           404        404         404            404       404
request.act:post         t2   303   404        404           404        404         404            404       404
request.close:post       v1   303   303        303           422        422         303            404       404
request.close:post       v2   303   303        404           404        404         404            404       404
request.close:post       t2   303   404        404           404        404         404            404       404
request.escalate:post    v1   303   303        303           422        422         303            403       404
request.escalate:post    v2   303   303        404           404        404         404            404       404
request.escalate:post    t2   303   404        404           404        404         404            404       404
request.claim:post       v1   303   303        303           303        303         303            303       404
request.claim:post       v2   303   303        404           404        404         404            404       404
request.claim:post       t2   303   404        404           404        404         404            404       404
agenda.item              v1   200   200        200           200        200         200            404       404
agenda.item              v2   200   200        404           404        404         404            404       404
agenda.item              t2   200   404        404           404        404         404            404       404
agenda.raise:post        v1   303   303        303           303        303         303            404       404
agenda.raise:post        v2   303   303        404           404        404         404            404       404
agenda.raise:post        t2   303   404        404           404        404         404            404       404
agenda.meeting           v1   200   200        200           200        200         200            404       404
agenda.meeting           v2   200   200        404           404        404         404            404       404
agenda.meeting           t2   200   404        404           404        404         404            404       404
agenda.run               v1   200   200        200           403        403         403            404       404
agenda.run               v2   200   200        404           404        404         404            404       404
agenda.run               t2   200   404        404           404        404         404            404       404
agenda.open:post         v1   303   303        303           403        403         403            404       404
agenda.open:post         v2   303   303        404           404        404         404            404       404
agenda.open:post         t2   303   404        404           404        404         404            404       404
agenda.minutes_pdf       v1   200   200        200           200        200         200            404       404
agenda.minutes_pdf       v2   200   200        404           404        404         404            404       404
agenda.minutes_pdf       t2   200   404        404           404        404         404            404       404
agenda.venue.edit        v1   200   200        200           404        404         404            404       404
agenda.venue.edit        v2   200   200        404           404        404         404            404       404
agenda.venue.edit        t2   200   404        404           404        404         404            404       404
points.person            v1   200   200        200           200        200         404            404       404
points.person            v2   200   200        404           404        404         404            404       404
points.person            t2   200   404        404           404        404         404            404       404
points.reverse:post      v1   303   303        303           403        403         404            404       404
points.reverse:post      v2   303   303        404           404        404         404            404       404
points.reverse:post      t2   303   404        404           404        404         404            404       404
points.breach            v1   200   200        200           200        200         404            404       404
points.breach            v2   200   200        404           404        404         404            404       404
points.breach            t2   200   404        404           404        404         404            404       404
points.breach.withdraw:post v1 303 303       303           403        403         404            404       404
points.breach.withdraw:post v2 303 303       404           404        404         404            404       404
points.breach.withdraw:post t2 303 404       404           404        404         404            404       404
points.voucher           v1   200   200        200           404        404         404            404       404
points.voucher           v2   200   200        404           404        404         404            404       404
points.voucher           t2   200   404        404           404        404         404            404       404
points.voucher.use:post  v1   303   303        303           403        403         404            404       404
points.voucher.use:post  v2   303   303        404           404        404         404            404       404
points.voucher.use:post  t2   303   404        404           404        404         404            404       404
points.review            v1   200   200        200           200        200         404            404       404
points.review            v2   200   200        404           404        404         404            404       404
points.review            t2   200   404        404           404        404         404            404       404
points.rules             t1   200   200        200           200        200         200            200       404
points.rules             t2   200   404        404           404        404         404            404       404
points.rules:post        t1   303   303        403           403        403         403            403       404
points.rules:post        t2   303   404        404           404        404         404            404       404
points.reward.edit       t1   200   200        403           403        403         403            403       404
points.reward.edit       t2   200   404        404           404        404         404            404       404
points.review.settings   t1   200   200        403           403        403         403            403       404
points.review.settings   t2   200   404        404           404        404         404            404       404
haolin.campaign          v1   200   200        200           404        404         404            404       404
haolin.campaign          v2   200   200        404           404        404         404            404       404
haolin.campaign          t2   200   404        404           404        404         404            404       404
haolin.edit              v1   200   200        200           404        404         404            404       404
haolin.edit              v2   200   200        404           404        404         404            404       404
haolin.edit              t2   200   404        404           404        404         404            404       404
haolin.nominate          v1   200   200        200           404        404         404            404       404
haolin.nominate          v2   200   200        404           404        404         404            404       404
haolin.nominate          t2   200   404        404           404        404         404            404       404
haolin.poster            v1   200   200        200           404        404         404            404       404
haolin.poster            v2   200   200        404           404        404         404            404       404
haolin.poster            t2   200   404        404           404        404         404            404       404
haolin.batch             v1   200   200        200           404        404         404            404       404
haolin.batch             v2   200   200        404           404        404         404            404       404
haolin.batch             t2   200   404        404           404        404         404            404       404
kit.village              v1   200   200        200           404        404         404            404       404
kit.village              v2   200   200        404           404        404         404            404       404
kit.village              t2   200   404        404           404        404         404            404       404
kit.sheet                v1   200   200        200           404        404         404            404       404
kit.sheet                v2   200   200        404           404        404         404            404       404
kit.sheet                t2   200   404        404           404        404         404            404       404
kit.contact              v1   200   200        200           404        404         404            404       404
kit.contact              v2   200   200        404           404        404         404            404       404
kit.contact              t2   200   404        404           404        404         404            404       404
kit.chief                v1   200   200        200           403        403         403            404       404
kit.chief                v2   200   200        404           404        404         404            404       404
kit.chief                t2   200   404        404           404        404         404            404       404
kit.card                 v1   200   200        200           403        403         403            404       404
kit.card                 v2   200   200        404           404        404         404            404       404
kit.card                 t2   200   404        404           404        404         404            404       404
kit.issue:post           v1   303   303        303           403        403         403            404       404
kit.issue:post           v2   303   303        404           404        404         404            404       404
kit.issue:post           t2   303   404        404           404        404         404            404       404
kit.household            v1   200   200        200           403        403         403            404       404
kit.household            v2   200   200        404           404        404         404            404       404
kit.household            t2   200   404        404           404        404         404            404       404
kit.policy               t1   200   200        403           403        403         403            403       404
kit.policy               t2   200   404        404           404        404         404            404       404
kit.policy:post          t1   303   303        403           403        403         403            403       404
kit.policy:post          t2   303   404        404           404        404         404            404       404
ledgers.chiefs           v1   200   200        200           200        200         403            403       403
ledgers.chiefs           v2   200   200        404           404        404         403            403       403
ledgers.chiefs           t2   200   404        404           404        404         403            403       403
ledgers.resources        v1   200   200        200           200        200         403            403       403
ledgers.resources        v2   200   200        404           404        404         403            403       403
ledgers.resources        t2   200   404        404           404        404         403            403       403
resource.edit            v1   200   200        200           403        403         404            404       404
resource.edit            v2   200   200        404           404        404         404            404       404
resource.edit            t2   200   404        404           404        404         404            404       404
resource.edit:post       v1   303   303        303           403        403         404            404       404
resource.edit:post       v2   303   303        404           404        404         404            404       404
resource.edit:post       t2   303   404        404           404        404         404            404       404
resource.deactivate      v1   200   200        200           403        403         404            404       404
resource.deactivate      v2   200   200        404           404        404         404            404       404
resource.deactivate      t2   200   404        404           404        404         404            404       404
resource.deactivate:post v1   303   303        303           403        403         404            404       404
resource.deactivate:post v2   303   303        404           404        404         404            404       404
resource.deactivate:post t2   303   404        404           404        404         404            404       404
import.job               v1   404   404        200           404        404         404            404       404
import.job               v2   404   200        404           404        404         404            404       404
import.job               t2   404   404        404           404        404         404            404       404
import.problems          v1   404   404        200           404        404         404            404       404
import.problems          v2   404   200        404           404        404         404            404       404
import.problems          t2   404   404        404           404        404         404            404       404
import.run               v1   404   404        200           404        404         404            404       404
import.run               v2   404   200        404           404        404         404            404       404
import.run               t2   404   404        404           404        404         404            404       404
notice                   v1   200   200        200           200        200         200            200       404
notice                   v2   200   200        404           404        404         404            404       404
notice                   t2   200   404        404           404        404         404            404       404
notice.receipts          v1   200   200        200           403        403         403            403       404
notice.receipts          v2   200   200        404           404        404         404            404       404
notice.receipts          t2   200   404        404           404        404         404            404       404
notice.withdraw:post     v1   303   303        303           403        403         403            403       404
notice.withdraw:post     v2   303   303        404           404        404         404            404       404
notice.withdraw:post     t2   303   404        404           404        404         404            404       404
callout                  v1   200   200        200           200        200         200            404       404
callout                  v2   200   200        404           404        404         404            404       404
callout                  t2   200   404        404           404        404         404            404       404
callout.cancel:post      v1   303   303        303           403        403         303            404       404
callout.cancel:post      v2   303   303        404           404        404         404            404       404
callout.cancel:post      t2   303   404        404           404        404         404            404       404
callout.log:post         v1   403   403        403           403        403         303            404       404
callout.log:post         v2   403   403        404           404        404         404            404       404
callout.log:post         t2   403   404        404           404        404         404            404       404
"""


def _local_today() -> str:
    return datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d")


def _local_now_minus_hour() -> str:
    return (datetime.now(ZoneInfo("Asia/Shanghai")) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")


def _rules_form(o) -> dict:
    """The town's rules as the rules page posts them, plus one new rule ticked on."""
    from portal.blueprints.duties.models import ContactRule

    rules = list(db.session.scalars(select(ContactRule).where(ContactRule.town_id == o.town)
                                    .order_by(ContactRule.id)))
    data = {}
    for i, r in enumerate(rules):
        data.update({f"rules-{i}-id": str(r.id), f"rules-{i}-category": r.category,
                     f"rules-{i}-period": r.period, f"rules-{i}-method": r.method})
        if r.active:
            data[f"rules-{i}-active"] = "y"
    n = len(rules)
    data.update({f"rules-{n}-id": "", f"rules-{n}-category": "ordinary",
                 f"rules-{n}-period": "month", f"rules-{n}-method": "any",
                 f"rules-{n}-active": "y"})
    return data


HOUSEHOLD_FORM = {"head_name": "新户", "address": "新路 1 号", "phone": "13700009999",
                  "member_count": "2"}

#: route → (method, URL from the object's ids, form data or None, extra headers or None)
ROUTES = {
    "region.node": ("GET", lambda o: f"/regions/{o.hood}", None, None),
    "region.edit": ("GET", lambda o: f"/regions/{o.hood}/edit", None, None),
    "region.edit:post": ("POST", lambda o: f"/regions/{o.hood}/edit",
                         lambda o: {"name": "改过的邻"}, None),
    "child.create:post": ("POST", lambda o: f"/regions/{o.group}/children",
                          lambda o: {"name": "新加的邻"}, None),
    "household.new": ("GET", lambda o: f"/regions/{o.hood}/households/new", None, None),
    "household.new:post": ("POST", lambda o: f"/regions/{o.hood}/households/new",
                           lambda o: HOUSEHOLD_FORM, None),
    "household.edit": ("GET", lambda o: f"/regions/households/{o.hh}/edit", None, None),
    "household.edit:post": ("POST", lambda o: f"/regions/households/{o.hh}/edit",
                            lambda o: {**HOUSEHOLD_FORM, "head_name": "改名户"}, None),
    "household.move": ("GET", lambda o: f"/regions/households/{o.hh}/move", None, None),
    "household.move:post": ("POST", lambda o: f"/regions/households/{o.hh}/move",
                            lambda o: {"neighborhood_id": str(o.hoodb)}, None),
    "post.new": ("GET", lambda o: f"/regions/{o.hood}/posts/new", None, None),
    "post.new:post": ("POST", lambda o: f"/regions/{o.hood}/posts/new",
                      lambda o: {"role": "neighbor_chief", "phone": "13700008888",
                                 "name": "新邻长", "password": "new-pass-123"}, None),
    "post.end": ("GET", lambda o: f"/regions/posts/{o.post}/end", None, None),
    "post.end:post": ("POST", lambda o: f"/regions/posts/{o.post}/end",
                      lambda o: {"confirm": "y"}, None),
    "tags": ("GET", lambda o: f"/regions/towns/{o.town}/tags", None, None),
    "tags:post": ("POST", lambda o: f"/regions/towns/{o.town}/tags",
                  lambda o: {"name": "新标签"}, None),
    "tag.toggle:post": ("POST", lambda o: f"/regions/tags/{o.tag}/toggle", lambda o: {}, None),
    "duty.household": ("GET", lambda o: f"/duties/households/{o.hh}", None, None),
    "duty.row": ("GET", lambda o: f"/duties/households/{o.hh}/row", None,
                 lambda o: {"HX-Request": "true", "HX-Target": f"hh-{o.hh}"}),
    "duty.log": ("GET", lambda o: f"/duties/households/{o.hh}/log", None, None),
    "duty.log:post": ("POST", lambda o: f"/duties/households/{o.hh}/log",
                      lambda o: {"duty_item_id": str(o.duty_item), "method": "visit",
                                 "occurred_at": _local_now_minus_hour(), "note": "走访",
                                 "token": str(uuid.uuid4())}, None),
    "duty.photo": ("GET", lambda o: f"/duties/logs/{o.log}/photo", None, None),
    "dashboard": ("GET", lambda o: f"/duties/dashboard?region={o.group}", None, None),
    "neighborhood": ("GET", lambda o: f"/duties/neighborhoods/{o.hood}", None, None),
    "ledgers.dashboard": ("GET", lambda o: f"/ledgers/dashboard?region={o.group}", None, None),
    "ledgers.dashboard.pdf": ("GET", lambda o: f"/ledgers/dashboard/report.pdf?region={o.group}",
                              None, None),
    "checklists": ("GET", lambda o: f"/duties/checklists?town={o.town}", None, None),
    "checklist.new": ("GET", lambda o: f"/duties/checklists/new?town={o.town}&kind=duty",
                      None, None),
    "checklist.edit": ("GET", lambda o: f"/duties/checklists/{o.item}/edit", None, None),
    "checklist.edit:post": ("POST", lambda o: f"/duties/checklists/{o.item}/edit",
                            lambda o: {"title": "改过的职责", "description": "说明",
                                       "active": "y"}, None),
    "rules": ("GET", lambda o: f"/duties/rules?town={o.town}", None, None),
    "rules:post": ("POST", lambda o: f"/duties/rules?town={o.town}", _rules_form, None),
    "request.detail": ("GET", lambda o: f"/requests/{o.request}", None, None),
    "request.photo": ("GET", lambda o: f"/requests/{o.request}/photo", None, None),
    "request.act:post": ("POST", lambda o: f"/requests/{o.request}/acknowledge",
                         lambda o: {"note": "马上去看。"}, None),
    "request.close:post": ("POST", lambda o: f"/requests/{o.request}/close",
                           lambda o: {"answer": "已经修好了，请放心。"}, None),
    "request.escalate:post": ("POST", lambda o: f"/requests/{o.offered}/escalate",
                               lambda o: {"reason": "需要上一级协调。"}, None),
    "request.claim:post": ("POST", lambda o: f"/requests/{o.offered}/claim", lambda o: {}, None),
    "agenda.item": ("GET", lambda o: f"/agenda/items/{o.aitem}", None, None),
    "agenda.raise:post": ("POST", lambda o: "/agenda/items/new",
                          lambda o: {"region_id": str(o.hood), "category_id": str(o.six),
                                     "title": "修缮山塘输水洞", "background": "输水洞堵塞多年。",
                                     "proposal": "组织投工投劳疏通。"}, None),
    "agenda.meeting": ("GET", lambda o: f"/agenda/meetings/{o.meeting}", None, None),
    "agenda.run": ("GET", lambda o: f"/agenda/meetings/{o.meeting}/run", None, None),
    "agenda.open:post": ("POST", lambda o: f"/agenda/meetings/{o.meeting}/open", lambda o: {},
                         None),
    "agenda.minutes_pdf": ("GET", lambda o: f"/agenda/meetings/{o.meeting}/minutes.pdf", None,
                           None),
    "agenda.venue.edit": ("GET", lambda o: f"/agenda/venues/{o.venue}/edit", None, None),
    "points.person": ("GET", lambda o: f"/points/people/{o.pchief}", None, None),
    "points.reverse:post": ("POST", lambda o: f"/points/entries/{o.entry}/reverse",
                            lambda o: {"reason": "记错了户"}, None),
    "points.breach": ("GET", lambda o: f"/points/breaches/{o.breach}", None, None),
    "points.breach.withdraw:post": ("POST", lambda o: f"/points/breaches/{o.breach}/withdraw",
                                    lambda o: {"reason": "核实后撤销"}, None),
    "points.voucher": ("GET", lambda o: f"/points/vouchers/{o.redemption}", None, None),
    "points.voucher.use:post": ("POST", lambda o: f"/points/vouchers/{o.redemption}/use",
                                lambda o: {"back": "voucher"}, None),
    "points.review": ("GET", lambda o: f"/points/reviews/{o.pchief}?period=2026Q3", None, None),
    "points.rules": ("GET", lambda o: f"/points/rules?town={o.town}", None, None),
    "points.rules:post": ("POST", lambda o: f"/points/rules?town={o.town}",
                          lambda o: {"rule": "agenda_attend:", "points": "3", "daily_cap": "",
                                     "monthly_cap": "", "active": "y",
                                     "effective_from": _local_today()}, None),
    "points.reward.edit": ("GET", lambda o: f"/points/rewards/{o.reward}", None, None),
    "points.review.settings": ("GET", lambda o: f"/points/reviews/settings?town={o.town}", None,
                               None),
    "haolin.campaign": ("GET", lambda o: f"/haolin/{o.campaign}", None, None),
    "haolin.nominate": ("GET", lambda o: f"/haolin/{o.campaign}/nominate", None, None),
    "haolin.edit": ("GET", lambda o: f"/haolin/{o.campaign}/edit", None, None),
    "haolin.poster": ("GET", lambda o: f"/haolin/nominations/{o.nomination}/poster.pdf", None,
                      None),
    "haolin.batch": ("GET", lambda o: f"/haolin/{o.campaign}/posters", None, None),
    "kit.village": ("GET", lambda o: f"/sige/villages/{o.village}", None, None),
    "kit.sheet": ("GET", lambda o: f"/sige/villages/{o.village}/work.pdf", None, None),
    "kit.contact": ("GET", lambda o: f"/sige/villages/{o.village}/contact", None, None),
    "kit.chief": ("GET", lambda o: f"/sige/posts/{o.post}", None, None),
    "kit.card": ("GET", lambda o: f"/sige/posts/{o.post}/work.pdf", None, None),
    "kit.issue:post": ("POST", lambda o: f"/sige/posts/{o.post}/issue",
                       lambda o: {"item": "vest", "issued_on": _local_today()}, None),
    "kit.household": ("GET", lambda o: f"/sige/households/{o.hh}/card.pdf", None, None),
    "kit.policy": ("GET", lambda o: f"/sige/towns/{o.town}/policy", None, None),
    "kit.policy:post": ("POST", lambda o: f"/sige/towns/{o.town}/policy",
                        lambda o: {"title": "惠民政策明白卡", "body": "城乡居民医保每年九月开始缴费。"},
                        None),
    # 台账 (issue 7)
    "ledgers.chiefs": ("GET", lambda o: f"/ledgers/chiefs.xlsx?region={o.group}&period=2026-10",
                       None, None),
    "ledgers.resources": ("GET", lambda o: f"/ledgers/resources?region={o.group}", None, None),
    "resource.edit": ("GET", lambda o: f"/ledgers/resources/{o.resource}/edit", None, None),
    "resource.edit:post": ("POST", lambda o: f"/ledgers/resources/{o.resource}/edit",
                           lambda o: {"region_id": str(o.group), "kind": "team",
                                      "name": "改过的志愿服务队", "services": "帮老人买菜",
                                      "contact_name": "李四", "contact_phone": "13912340000"},
                           None),
    "resource.deactivate": ("GET", lambda o: f"/ledgers/resources/{o.resource}/deactivate",
                            None, None),
    "resource.deactivate:post": ("POST", lambda o: f"/ledgers/resources/{o.resource}/deactivate",
                                 lambda o: {"confirm": "y"}, None),
    "import.job": ("GET", lambda o: f"/ledgers/import/{o.job_bad}", None, None),
    "import.problems": ("GET", lambda o: f"/ledgers/import/{o.job_bad}/problems.xlsx", None,
                        None),
    "import.run": ("GET", lambda o: f"/ledgers/import/{o.job_ok}/run", None, None),
    # 通知公告 (a village's notice from the admin) and 倡议 (its 邻长's, over, one sign-up)
    "notice": ("GET", lambda o: f"/notices/{o.notice}", None, None),
    "notice.receipts": ("GET", lambda o: f"/notices/{o.notice}/receipts", None, None),
    "notice.withdraw:post": ("POST", lambda o: f"/notices/{o.notice}/withdraw",
                             lambda o: {"confirm": "y"}, None),
    "callout": ("GET", lambda o: f"/notices/callouts/{o.callout}", None, None),
    "callout.cancel:post": ("POST", lambda o: f"/notices/callouts/{o.callout}/cancel",
                            lambda o: {"confirm": "y"}, None),
    "callout.log:post": ("POST", lambda o: f"/notices/callouts/{o.callout}/log",
                         lambda o: {"households": str(o.hh)}, None),
}


def _import_jobs(owner_id: int, town) -> tuple[str, str]:
    """Two roster import jobs of ``owner_id`` (state files written directly): one checked with
    problems, one checked clean with its file waiting."""
    from portal.blueprints.ledgers import imports as imp

    tokens = []
    for problems in ([[2, "村(社区)", "未知的村(社区)“某村”"]], []):
        token = imp.new_token()
        summary = {"rows": 1, "created": 1, "updated": 0, "unchanged": 0, "moved": 0,
                   "new_regions": 0, "new_users": 0}
        imp.write_state(token, {"user_id": owner_id, "kind": "households", "town_id": town.id,
                                "town_name": town.name, "file_name": "名册.xlsx",
                                "status": "checked", "rows": 1, "summary": summary,
                                "problem_count": len(problems), "new_regions": [],
                                "new_users": []})
        imp.write_problems(token, problems)
        if not problems:
            imp.job_paths(token)[0].write_bytes(b"PK")
        tokens.append(token)
    return tokens[0], tokens[1]


def _parse(table: str) -> dict[tuple[str, str], list[tuple[str, int]]]:
    """{(route, role): [(object, expected status), ...]} from the table's text."""
    lines = [ln.split() for ln in table.strip().splitlines()]
    header, rows = lines[0], lines[1:]
    assert tuple(header[2:]) == ROLES
    cells: dict[tuple[str, str], list[tuple[str, int]]] = {}
    for row in rows:
        route, where, *codes = row
        assert route in ROUTES, route
        assert len(codes) == len(ROLES), row
        for role, code in zip(ROLES, codes, strict=True):
            cells.setdefault((route, role), []).append((where, int(code)))
    return cells


EXPECTED = _parse(TABLE)


def test_table_covers_every_route_and_role_for_in_and_out_objects():
    assert {route for route, _ in EXPECTED} == set(ROUTES)
    for (route, role), rows in EXPECTED.items():
        assert role in ROLES
        assert [w for w, _ in rows] in (["v1", "v2", "t2"], ["t1", "t2"]), route


# -- fixtures ---------------------------------------------------------------------------------
def _photo_log(app, household, town_id, user_id):
    """A duty log with a photo file, written directly (not through the code under test)."""
    from portal.blueprints.duties.models import ChecklistItem, DutyLog

    item = db.session.scalar(select(ChecklistItem.id).where(
        ChecklistItem.town_id == town_id, ChecklistItem.kind == "duty").order_by(ChecklistItem.id))
    name = f"{uuid.uuid4().hex}.jpg"
    folder = Path(app.config["UPLOAD_DIR"]) / "duty"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg \xff\xd9")
    log = DutyLog(household_id=household.id, neighborhood_id=household.neighborhood_id,
                  user_id=user_id, duty_item_id=item, method="visit",
                  occurred_at=datetime.now(ZoneInfo("UTC")).replace(tzinfo=None)
                  - timedelta(days=1),
                  note="", photo=name, form_token=str(uuid.uuid4()))
    db.session.add(log)
    db.session.flush()
    return log.id, item


def _requests(household_id):
    """Two requests of the household, submitted now (after its 邻's 邻长 took post, so both
    wait at 邻): one with a photo, one put on the 接单 board (written directly)."""
    from sqlalchemy.orm import joinedload

    from portal.blueprints.regions.models import Household
    from portal.blueprints.requests import services as rsvc
    from portal.blueprints.requests.models import RequestCategory

    household = db.session.execute(select(Household).options(joinedload(Household.neighborhood))
                                   .where(Household.id == household_id)).scalar_one()
    category = db.session.scalar(select(RequestCategory.id).where(
        RequestCategory.town_id == household.neighborhood.town_id).order_by(RequestCategory.id))
    data = {"category_id": category, "description": "楼道灯坏了，晚上看不见。",
            "contact_name": "住户", "contact_phone": "13912345678", "contact_note": ""}
    plain, _ = rsvc.submit(household, data, source="resident", photo=b"\xff\xd8 not a jpeg",
                           token=str(uuid.uuid4()))
    offered, _ = rsvc.submit(household, data, source="resident", photo=None,
                             token=str(uuid.uuid4()))
    offered.open_to_helpers = True
    assert plain.level == offered.level == 0
    db.session.flush()
    return plain.id, offered.id


def _agenda(ns, admin_id):
    """A venue and a planned meeting at the village, and an item raised on the 邻 and scheduled
    on that meeting (written directly)."""
    from portal.blueprints.agenda.models import AgendaItem, Meeting, Venue
    from portal.blueprints.duties.models import ChecklistItem
    from portal.blueprints.regions.models import Region

    village = db.session.get(Region, db.session.get(Region, ns.group.id).ancestor_ids[1])
    hood = db.session.get(Region, ns.hood.id)
    six = db.session.scalar(select(ChecklistItem.id).where(
        ChecklistItem.town_id == village.town_id, ChecklistItem.kind == "deliberation")
        .order_by(ChecklistItem.id))
    venue = Venue(region_id=village.id, path=village.path, name="村务议事室", kind="room",
                  capacity=40)
    db.session.add(venue)
    db.session.flush()
    meeting = Meeting(region_id=village.id, path=village.path, kind="fenxi", title="民情分析会",
                      venue_id=venue.id, starts_at=datetime(2026, 12, 1, 2, 0),
                      planned_minutes=60, convener_id=admin_id)
    db.session.add(meeting)
    db.session.flush()
    item = AgendaItem(region_id=hood.id, path=hood.path, title="修缮山塘输水洞", category_id=six,
                      background="输水洞堵塞。", proposal="投工投劳疏通。", raised_by_id=admin_id,
                      status="scheduled", meeting_id=meeting.id, position=1)
    db.session.add(item)
    db.session.flush()
    return venue.id, meeting.id, item.id, six


def _points(ns):
    """A 邻长 of the second 邻 (not the world's 邻长) with a point, a 六不得 breach and a voucher,
    and a reward of the town (written directly)."""
    from datetime import date

    from portal.blueprints.auth.models import User
    from portal.blueprints.duties.models import ChecklistItem
    from portal.blueprints.points import services as psvc
    from portal.blueprints.points.models import Breach, Redemption, Reward
    from portal.blueprints.regions.models import Post, Region

    hoodb = db.session.get(Region, ns.hoodb.id)
    chief = User(phone=f"135{hoodb.id:08d}", name=f"邻长{hoodb.name}", password_hash="!")
    db.session.add(chief)
    db.session.flush()
    db.session.add(Post(user_id=chief.id, region_id=hoodb.id, role="neighbor_chief",
                        started_at=datetime(2025, 1, 1)))
    entry = psvc.award(chief.id, "commendation", "commendation", hoodb.id,
                       at=datetime(2026, 8, 1), path=hoodb.path)
    negative = db.session.scalar(select(ChecklistItem.id).where(
        ChecklistItem.town_id == hoodb.town_id, ChecklistItem.kind == "negative"))
    breach = Breach(user_id=chief.id, path=hoodb.path, item_id=negative,
                    occurred_on=date(2026, 8, 2), evidence="入户态度差", recorded_by_id=chief.id)
    reward = Reward(town_id=hoodb.town_id, name="红色电影", cost=5, stock=3,
                    valid_from=date(2026, 1, 1), valid_until=date(2030, 1, 1))
    db.session.add_all([breach, reward])
    db.session.flush()
    redemption = Redemption(reward_id=reward.id, user_id=chief.id, path=hoodb.path, cost=5,
                            code=f"TEST{hoodb.id:06d}")
    db.session.add(redemption)
    db.session.flush()
    return chief.id, entry, breach.id, reward.id, redemption.id


def _commendations(ns, chief_id: int, by_id: int):
    """A village's 好邻 campaign, over, with the 邻长 of the second 邻 approved."""
    from datetime import date

    from portal.blueprints.commendations.models import Campaign, Nomination
    from portal.blueprints.regions.models import Post, Region

    village = db.session.get(Region, int(ns.hood.path.strip("/").split("/")[1]))
    campaign = Campaign(town_id=ns.town.id, region_id=village.id, path=village.path,
                        title=f"{village.name}好邻", honour="好邻", quota=3,
                        period_start=date(2026, 1, 1), period_end=date(2027, 1, 1),
                        notice_start=date(2026, 1, 1), notice_end=date(2026, 1, 7),
                        status="closed", created_by_id=by_id)
    db.session.add(campaign)
    db.session.flush()
    post = db.session.scalar(select(Post.id).where(Post.user_id == chief_id))
    nomination = Nomination(campaign_id=campaign.id, user_id=chief_id, post_id=post,
                            path=ns.hoodb.path, deeds="常年照看独居老人，组织邻里清理山塘。",
                            stats={"households": 3}, nominated_by_id=by_id,
                            status="approved", decided_by_id=by_id, decided_at=datetime(2026, 1, 8))
    db.session.add(nomination)
    db.session.flush()
    return campaign.id, nomination.id


def _resource(ns):
    """A social resource registered on the 组 (written directly)."""
    from portal.blueprints.ledgers.models import SocialResource

    resource = SocialResource(region_id=ns.group.id, path=ns.group.path, kind="team",
                              name=f"{ns.group.name}志愿服务队", services="帮老人买菜、理发",
                              contact_name="张三", contact_phone="13912345678")
    db.session.add(resource)
    db.session.flush()
    return resource.id
def _notices(ns, admin, creator):
    """A notice from the admin to the village, and a call-out of ``creator`` (the 邻长 of the
    邻) that is over, with one sign-up by the household's phone."""
    from portal.blueprints.notices import services as nsvc
    from portal.blueprints.notices.models import CallOutSignup
    from portal.clock import utcnow
    from portal.scope import Grant, Scope

    notice = nsvc.publish(admin, Scope([Grant("admin", "/", None)]), ns.village, "防火检查",
                          "请逐户检查电线。")
    callout = nsvc.create_callout(creator, Scope([Grant("neighbor_chief", ns.hood.path,
                                                        ns.hood.id)]), ns.hood, {
        "title": "清理篮球坪", "task": "一起扯杂草。", "place": "篮球坪", "cap": None,
        "starts_at": utcnow() + timedelta(hours=1)})
    db.session.flush()
    callout.starts_at = utcnow() - timedelta(hours=1)
    db.session.add(CallOutSignup(callout_id=callout.id, name="甲", phone="13912345678", people=2))
    db.session.flush()
    return notice.id, callout.id


@pytest.fixture
def places(app, world):
    """Ids of the objects each row of the table asks about (built in one transaction)."""
    from portal.blueprints.auth.models import User
    from portal.blueprints.duties.models import ChecklistItem
    from portal.blueprints.regions.models import HouseholdTag, Post
    from portal.blueprints.regions.services import create_household, create_region

    town2 = create_region(None, None, "第二镇")
    village2 = create_region(None, town2, "二镇村")
    group = create_region(None, create_region(None, village2, "二镇片"), "二镇组")
    t2 = SimpleNamespace(town=town2, village=village2, group=group, hood=create_region(None, group, "二镇邻"),
                         hoodb=create_region(None, group, "二镇邻b"))
    t2.hh = create_household(None, t2.hood, {"address": "二镇路 1 号", "head_name": "丁",
                                             "phone": "13912345678", "member_count": 2}, [])
    v1 = SimpleNamespace(town=world.town, village=world.village1, group=world.group1,
                         hood=world.hood1, hoodb=world.hood1b, hh=world.hh1)
    v2 = SimpleNamespace(town=world.town, village=world.village2, group=world.group2,
                         hood=world.hood2, hoodb=world.hood2b, hh=world.hh2)
    out = {}
    for i, (key, ns) in enumerate((("v1", v1), ("v2", v2), ("t2", t2))):
        # a 邻长 whose post the "post.end" rows end (no password: never logs in)
        holder = User(phone=f"1360000000{i}", name=f"待结束{key}", password_hash="!")
        db.session.add(holder)
        db.session.flush()
        post = Post(user_id=holder.id, region_id=ns.hood.id, role="neighbor_chief")
        db.session.add(post)
        db.session.flush()
        log_id, item_id = _photo_log(app, ns.hh, ns.town.id, world.admin.id)
        tag_id = db.session.scalar(select(HouseholdTag.id).where(
            HouseholdTag.town_id == ns.town.id, HouseholdTag.name == "其他"))
        last_item = db.session.scalar(select(ChecklistItem.id).where(
            ChecklistItem.town_id == ns.town.id, ChecklistItem.kind == "negative")
            .order_by(ChecklistItem.id.desc()))
        request_id, offered_id = _requests(ns.hh.id)
        venue_id, meeting_id, aitem_id, six = _agenda(ns, world.admin.id)
        pchief, entry, breach, reward, redemption = _points(ns)
        campaign, nomination = _commendations(ns, pchief, world.admin.id)
        resource = _resource(ns)
        notice, callout = _notices(ns, world.admin, {"v1": world.neighbor_chief,
                                                     "v2": world.neighbor_chief2}.get(key, holder))
        out[key] = SimpleNamespace(town=ns.town.id, village=ns.village.id, group=ns.group.id,
                                   hood=ns.hood.id, hoodb=ns.hoodb.id, hh=ns.hh.id,
                                   post=post.id, log=log_id, duty_item=item_id, tag=tag_id,
                                   item=last_item,
                                   request=request_id, offered=offered_id, venue=venue_id,
                                   meeting=meeting_id, aitem=aitem_id, six=six, pchief=pchief,
                                   entry=entry, breach=breach, reward=reward,
                                   redemption=redemption, campaign=campaign,
                                   nomination=nomination, resource=resource, notice=notice,
                                   callout=callout)
    db.session.commit()
    town2_staff = User(phone="13600000009", name="二镇干部", password_hash="!")
    db.session.add(town2_staff)
    db.session.flush()
    db.session.add(Post(user_id=town2_staff.id, region_id=town2.id, role="town_staff"))
    db.session.commit()
    for key, owner, town in (("v1", world.village_staff, world.town),
                             ("v2", world.town_staff, world.town), ("t2", town2_staff, town2)):
        out[key].job_bad, out[key].job_ok = _import_jobs(owner.id, town)
    out["t1"] = out["v1"]
    return out


def snapshot() -> dict:
    """Every row of every table, to compare before and after a request."""
    with db.engine.connect() as conn:
        return {t.name: conn.execute(select(t).order_by(*t.primary_key.columns)).all()
                for t in db.metadata.sorted_tables}


def csrf_token(client) -> str:
    """A token for ``client``'s session, from a page every account may open."""
    return csrf_from(client.get("/account/password"))


def send(client, route, o, token=None):
    method, url, data, headers = ROUTES[route]
    headers = headers(o) if headers else {}
    if method == "GET":
        return client.get(url(o), headers=headers)
    form = dict(data(o))
    if token:
        form["csrf_token"] = token
    return client.post(url(o), data=form, headers=headers)


# -- the table --------------------------------------------------------------------------------
@pytest.mark.parametrize(("route", "role"), [pytest.param(*k, id=f"{k[0]}-{k[1]}")
                                             for k in EXPECTED])
def test_access(route, role, world, places, login_as):
    """One route, one role: every object row of the table (in scope, out of scope)."""
    client = login_as(getattr(world, role))
    method = ROUTES[route][0]
    wrong = []
    for where, expected in EXPECTED[(route, role)]:
        token = csrf_token(client) if method == "POST" else None
        before = snapshot()
        r = send(client, route, places[where], token)
        body = r.get_data().decode(errors="replace")  # read fully (closes a file response)
        r.close()
        if r.status_code != expected:
            wrong.append(f"{where}: expected {expected}, got {r.status_code}: "
                         f"{' '.join(body.split())[:300]}")
        elif expected in (403, 404, 422) and snapshot() != before:
            wrong.append(f"{where}: refused ({expected}) but the database changed")
        elif expected == 303 and ("/login" in r.headers["Location"] or snapshot() == before):
            wrong.append(f"{where}: allowed ({expected}) but nothing was saved")
    assert not wrong, f"{route} as {role}:\n" + "\n".join(wrong)


# -- unauthenticated --------------------------------------------------------------------------
@pytest.mark.parametrize("route", list(ROUTES))
def test_anonymous_is_sent_to_login(route, client, places):
    token = None
    if ROUTES[route][0] == "POST":
        token = csrf_from(client.get("/login"))
    before = snapshot()
    r = send(client, route, places["v1"], token)
    if ROUTES[route][3]:  # an htmx request: redirected by header, the page itself stays
        assert r.status_code == 204
        assert r.headers["HX-Redirect"].startswith("/login?next=")
    else:
        assert r.status_code == 302
        assert r.headers["Location"].startswith("/login?next=")
    assert snapshot() == before


def test_anonymous_post_without_token_is_refused(client, places):
    before = snapshot()
    r = send(client, "tag.toggle:post", places["v1"])
    assert r.status_code in (302, 400)
    assert snapshot() == before


def test_ended_post_gives_no_access(world, places, login_as):
    """The same request flips from allowed to 404 once the post is ended."""
    from portal.blueprints.regions.models import Post

    client = login_as(world.village_staff)
    assert send(client, "household.edit", places["v1"]).status_code == 200
    post = db.session.scalar(select(Post).where(Post.user_id == world.village_staff.id))
    post.ended_at = datetime(2020, 1, 1)
    db.session.commit()
    assert send(client, "household.edit", places["v1"]).status_code == 404
    assert send(client, "duty.household", places["v1"]).status_code == 404


# -- pages without an object: whose lists they are --------------------------------------------
#: 诉求 (my queue): roles with a response level; a volunteer is sent on to the board, a user
#: without a post is refused. 接单 (board): anyone with a post.
LISTS = {
    "/requests/": dict(admin=200, town_staff=200, village_staff=200, area_chief=200,
                       group_chief=200, neighbor_chief=200, volunteer=302, nobody=403),
    "/requests/board": dict(admin=200, town_staff=200, village_staff=200, area_chief=200,
                            group_chief=200, neighbor_chief=200, volunteer=200, nobody=403),
}


@pytest.mark.parametrize("role", ROLES)
def test_request_lists_by_role(role, world, login_as):
    client = login_as(getattr(world, role))
    for url, expected in LISTS.items():
        r = client.get(url)
        assert r.status_code == expected[role], (url, r.status_code)
        if r.status_code == 302:
            assert r.headers["Location"].endswith("/requests/board")
