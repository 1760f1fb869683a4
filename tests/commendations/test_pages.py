"""The staff pages of 好邻, end to end through the client: a town cadre starts a campaign, a
village cadre nominates with a photo, the 公示 opens, a resident objects, the village cadre
resolves it, and the town approves once the period is over."""

import io
from datetime import datetime

from sqlalchemy import func, select

from portal.blueprints.commendations.models import Campaign, Nomination, Objection
from portal.extensions import db
from tests.commendations.test_public import clock  # noqa: F401 (fixture)
from tests.commendations.test_services import chief_post
from tests.conftest import Browser, csrf_from, jpeg

CAMPAIGN = {"title": "2026 年度测试镇好邻", "honour": "测试好邻", "quota": "2",
            "period_start": "2026-01-01", "period_end": "2027-01-01",
            "notice_start": "2026-11-21", "notice_end": "2026-11-27", "design": "red"}
DEEDS = "常年义务照看独居老人，组织邻里清理山塘，三年走访不断。"


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_campaign_from_start_to_approval(world, login_as, clock, client):  # noqa: F811
    town = Browser(login_as(world.town_staff))
    bad = town.post("/haolin/new", **{**CAMPAIGN, "region_id": str(world.town.id),
                                      "quota": "0"})
    assert bad.status_code == 422 and "名额" in bad.get_data(as_text=True)
    assert count(Campaign) == 0
    made = town.post("/haolin/new", **CAMPAIGN, region_id=str(world.town.id))
    assert made.status_code == 303, " ".join(made.get_data(as_text=True).split())[-1500:]
    campaign = db.session.scalar(select(Campaign))

    village = Browser(login_as(world.village_staff))
    form = village.get(f"/haolin/{campaign.id}/nominate")
    assert form.status_code == 200 and world.neighbor_chief.name in form.get_data(as_text=True)
    assert world.neighbor_chief2.name not in form.get_data(as_text=True)  # another village
    short = village.post(f"/haolin/{campaign.id}/nominate",
                         post_id=str(chief_post(world.neighbor_chief).id), deeds="很好")
    assert short.status_code == 422 and count(Nomination) == 0
    done = village.c.post(f"/haolin/{campaign.id}/nominate",
                          data={"csrf_token": village.token, "deeds": DEEDS,
                                "post_id": str(chief_post(world.neighbor_chief).id),
                                "photo": (io.BytesIO(jpeg((800, 600))), "me.jpg")},
                          content_type="multipart/form-data")
    assert done.status_code == 303
    nomination = db.session.scalar(select(Nomination))
    assert nomination.photo and nomination.stats["households"] == 2

    assert village.post(f"/haolin/{campaign.id}/notice").status_code == 403  # the town's
    assert town.post(f"/haolin/{campaign.id}/notice").status_code == 303
    clock["now"] = datetime(2026, 11, 22, 2)
    page = client.get(f"/gongshi/haolin/{campaign.id}")
    client.post(f"/gongshi/haolin/{campaign.id}/{nomination.id}/object",
                data={"reason": "走访记录是补记的，很多户没有去过。", "csrf_token": csrf_from(page)})
    objection = db.session.scalar(select(Objection))
    assert objection is not None

    clock["now"] = datetime(2026, 11, 28, 2)
    refused = town.post(f"/haolin/nominations/{nomination.id}/decide", approve="1")
    assert refused.status_code == 422 and "异议没有核实" in refused.get_data(as_text=True)
    assert village.post(f"/haolin/nominations/{nomination.id}/decide",
                        approve="1").status_code == 403
    assert village.post(f"/haolin/objections/{objection.id}/resolve",
                        resolution="核对走访记录和住户，属实。").status_code == 303
    assert town.post(f"/haolin/nominations/{nomination.id}/decide", approve="1",
                     note="公示无异议").status_code == 303
    db.session.expire_all()
    assert db.session.get(Nomination, nomination.id).status == "approved"
    assert world.neighbor_chief.name in client.get(f"/rongyu/{world.town.id}").get_data(True)


def test_staff_only(world, login_as):
    for who in (world.group_chief, world.neighbor_chief, world.volunteer):
        c = Browser(login_as(who))
        assert c.get("/haolin/").status_code == 403
        assert c.get("/haolin/new").status_code == 403


def test_a_campaign_is_corrected_before_its_notice(world, login_as, clock):  # noqa: F811
    from portal.audit import AuditEntry
    from portal.blueprints.commendations import services as svc
    from tests.commendations.test_services import NOW, scope

    town = Browser(login_as(world.town_staff))
    assert town.post("/haolin/new", **CAMPAIGN, region_id=str(world.town.id)).status_code == 303
    campaign = db.session.scalar(select(Campaign))
    n = svc.nominate(world.town_staff, scope(world.town_staff), campaign,
                     chief_post(world.neighbor_chief), DEEDS, now=NOW)
    n.stats = {"households": 99}  # a stale snapshot
    db.session.commit()
    form = town.get(f"/haolin/{campaign.id}/edit").get_data(as_text=True)
    assert 'value="2026 年度测试镇好邻"' in form and "评选范围" not in form
    same = town.post(f"/haolin/{campaign.id}/edit", **CAMPAIGN)
    assert same.status_code == 422 and "没有修改任何内容" in same.get_data(as_text=True)
    village = Browser(login_as(world.village_staff))
    assert village.post(f"/haolin/{campaign.id}/edit",
                        **{**CAMPAIGN, "title": "村里改的标题"}).status_code == 403
    done = town.post(f"/haolin/{campaign.id}/edit", **{**CAMPAIGN, "title": "2026 年度测试镇好邻（更正）",
                                                       "period_start": "2026-07-01"})
    assert done.status_code == 303
    db.session.expire_all()
    campaign = db.session.get(Campaign, campaign.id)
    assert campaign.title.endswith("（更正）") and str(campaign.period_start) == "2026-07-01"
    assert db.session.get(Nomination, n.id).stats["households"] == 2  # taken again
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "campaign.update"))
    assert entry is not None
    assert town.post(f"/haolin/{campaign.id}/notice").status_code == 303
    late = town.post(f"/haolin/{campaign.id}/edit", **{**CAMPAIGN, "quota": "5"})
    assert late.status_code == 422 and "已经公示" in late.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Campaign, campaign.id).quota == 2
