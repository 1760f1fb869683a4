"""`flask seed demo`: a town modelled on 江背镇 (Changsha County), for trying the portal out."""

import random
from datetime import timedelta

from sqlalchemy import select
from werkzeug.security import generate_password_hash

from portal.blueprints.auth.models import User
from portal.blueprints.duties.models import ChecklistItem, DutyLog
from portal.blueprints.duties.services import new_form_token
from portal.blueprints.regions.models import Household, HouseholdTag, Post
from portal.blueprints.regions.services import create_region
from portal.clock import local_midnight_utc, local_today, utcnow
from portal.extensions import db

DEMO_PASSWORD = "sanzhang123"
#: (phone, name, role label, where) — printed by `make run` and listed in README.
DEMO_ACCOUNTS = [
    ("13800000000", "系统管理员", "管理员", "全部"),
    ("13800000001", "刘建国", "镇干部", "江背镇"),
    ("13800000002", "周丽", "村干部", "江背镇 › 特立村"),
    ("13800000003", "陈志强", "片长", "特立村 › 第一片"),
    ("13800000004", "杨国平", "组长", "特立村 › 第一片 › 杨家井组"),
    ("13800000005", "胡新林", "邻长", "杨家井组 › 杨家井一邻"),
    ("13800000006", "苏玲", "志愿者", "特立村"),
]

VILLAGES = {
    "特立村": [["杨家井组", "枫树湾组"], ["新屋组", "塘坝组"]],
    "江背社区": [["老街组", "新街组"], ["园区组", "车站组"]],
    "五美村": [["五美组", "荷塘组"], ["石桥组", "竹山组"]],
    "印山村": [["印山组", "游船组"], ["茶园组", "大屋组"]],
}
SURNAMES = "胡杨刘陈周李王张黄赵吴彭罗谢邓曾汤易谭龙"
GIVEN = ["建国", "秀英", "新林", "桂兰", "志强", "玉梅", "国平", "冬梅", "海波", "春华",
         "德胜", "凤英", "明亮", "小红", "长生", "金花", "立新", "美兰", "伟", "芳",
         "永清", "淑珍", "宏伟", "丽娟", "家兴", "翠英", "正华", "巧云"]
ORDINALS = "一二三四五六七八"


def _name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + rng.choice(GIVEN)


def load_demo(seed: int = 2023) -> dict:
    rng = random.Random(seed)
    now = utcnow()
    password_hash = generate_password_hash(DEMO_PASSWORD)
    users: dict[str, User] = {}

    def user(phone: str, name: str) -> User:
        if phone not in users:
            users[phone] = User(phone=phone, name=name, password_hash=password_hash)
            db.session.add(users[phone])
        return users[phone]

    def post(u: User, region, role: str) -> None:
        db.session.add(Post(user=u, region_id=region.id if region else None, role=role,
                            started_at=now - timedelta(days=400)))

    fixed = {phone: user(phone, name) for phone, name, *_ in DEMO_ACCOUNTS}
    post(fixed["13800000000"], None, "admin")
    town = create_region(None, None, "江背镇")
    post(fixed["13800000001"], town, "town_staff")
    db.session.flush()
    tags = list(db.session.scalars(select(HouseholdTag).where(HouseholdTag.town_id == town.id)))
    duty_items = list(db.session.scalars(select(ChecklistItem).where(
        ChecklistItem.town_id == town.id, ChecklistItem.kind == "duty")))
    contact_item = next(i for i in duty_items if i.title == "民情联络员")

    serial = 100
    households: list[tuple[Household, User]] = []
    for vname, areas in VILLAGES.items():
        village = create_region(None, town, vname)
        if vname == "特立村":
            post(fixed["13800000002"], village, "village_staff")
            post(fixed["13800000006"], village, "volunteer")
        else:
            serial += 1
            post(user(f"138{serial:08d}", _name(rng)), village, "village_staff")
        for a_index, groups in enumerate(areas):
            area = create_region(None, village, f"第{ORDINALS[a_index]}片")
            serial += 1
            chief = fixed["13800000003"] if (vname, a_index) == ("特立村", 0) \
                else user(f"138{serial:08d}", _name(rng))
            post(chief, area, "area_chief")
            for gname in groups:
                group = create_region(None, area, gname)
                serial += 1
                gchief = fixed["13800000004"] if gname == "杨家井组" \
                    else user(f"138{serial:08d}", _name(rng))
                post(gchief, group, "group_chief")
                for n in range(4):
                    hood = create_region(None, group, f"{gname[:-1]}{ORDINALS[n]}邻")
                    serial += 1
                    nchief = fixed["13800000005"] if (gname, n) == ("杨家井组", 0) \
                        else user(f"139{serial:08d}", _name(rng))
                    post(nchief, hood, "neighbor_chief")
                    for k in range(rng.randint(8, 14)):
                        h = Household(
                            neighborhood_id=hood.id,
                            address=f"{gname}{rng.randint(1, 60)}号" if vname != "江背社区"
                            else f"{gname[:-1]}小区{rng.randint(1, 12)}栋{rng.randint(1, 6)}0{k % 4 + 1}",
                            head_name=_name(rng),
                            phone=f"1{rng.choice('35789')}{rng.randint(0, 999999999):09d}",
                            member_count=rng.randint(1, 6),
                            created_at=now - timedelta(days=400),
                        )
                        h.tags = []
                        if rng.random() < 0.22:
                            h.tags = rng.sample(tags[:5], k=1 if rng.random() < 0.8 else 2)
                            h.special_since = now - timedelta(days=300)
                        db.session.add(h)
                        households.append((h, nchief))
    db.session.flush()

    logs = _demo_logs(rng, households, duty_items, contact_item, now)
    db.session.commit()
    return {"村/社区": len(VILLAGES), "邻": len(VILLAGES) * 16, "户": len(households),
            "账号": len(users), "履职记录": logs}


def _demo_logs(rng, households, duty_items, contact_item, now) -> int:
    """About three months of logs: most 邻长 keep the rules, a few fall behind."""
    today = local_today(now)
    start = local_midnight_utc(today.replace(day=1) - timedelta(days=62))
    span = (now - start).total_seconds()
    diligence: dict[int, float] = {}
    count = 0
    for h, chief in households:
        d = diligence.setdefault(chief.id, rng.choice([0.95, 0.9, 0.85, 0.6, 0.3]))
        if h.special_since:
            n = sum(1 for _ in range(13) if rng.random() < d * 0.8)
        else:
            n = sum(1 for _ in range(3) if rng.random() < d * 0.7)
        for _ in range(n):
            at = start + timedelta(seconds=rng.random() * span)
            local_hour_shift = timedelta(hours=rng.randint(0, 11))
            at = min(at.replace(hour=0, minute=rng.randint(0, 59)) + local_hour_shift, now)
            method = rng.choices(["visit", "phone", "wechat", "other"], [5, 3, 3, 1])[0]
            item = contact_item if rng.random() < 0.6 else rng.choice(duty_items)
            note = rng.choice(["", "", "身体还好，叮嘱注意用电安全。", "反映门前路灯不亮，已上报组长。",
                               "宣传医保缴费政策。", "孩子学习情况正常。", "调解邻里排水纠纷。"])
            db.session.add(DutyLog(household_id=h.id, neighborhood_id=h.neighborhood_id,
                                   user_id=chief.id, duty_item_id=item.id, method=method,
                                   occurred_at=at, note=note, form_token=new_form_token(),
                                   created_at=at))
            if method == "visit" and (h.last_visit_at is None or at > h.last_visit_at):
                h.last_visit_at = at
            if h.last_contact_at is None or at > h.last_contact_at:
                h.last_contact_at, h.last_contact_method = at, method
            count += 1
    return count
