"""`flask seed demo`: a town modelled on 江背镇 (Changsha County), for trying the portal out."""

import random
from datetime import date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import joinedload
from werkzeug.security import generate_password_hash

from portal.blueprints.auth.models import User
from portal.blueprints.duties.models import ChecklistItem, DutyLog
from portal.blueprints.duties.services import new_form_token
from portal.blueprints.regions.models import Household, HouseholdTag, Post
from portal.blueprints.regions.services import create_region, new_intake_token
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
#: How well the 邻长 of some 邻 keep the contact rules, and how often they call in between (the
#: others draw theirs at random): the demo's 履职评议 of 杨家井组 and 枫树湾组 has 优秀 to show,
#: and people who fall behind.
DILIGENCE = {"杨家井一邻": (1.0, 0.7), "枫树湾一邻": (1.0, 0.5), "杨家井三邻": (0.5, 0.2),
             "枫树湾四邻": (0.3, 0.1)}


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

    holders: dict[tuple[int | None, str], User] = {}

    def post(u: User, region, role: str) -> None:
        db.session.add(Post(user=u, region_id=region.id if region else None, role=role,
                            started_at=now - timedelta(days=400)))
        holders[(region.id if region else None, role)] = u

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
    diligence: list[tuple[User, tuple[float, float]]] = []
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
                    if hood.name in DILIGENCE:
                        diligence.append((nchief, DILIGENCE[hood.name]))
                    for k in range(rng.randint(8, 14)):
                        h = Household(
                            neighborhood_id=hood.id, intake_token=new_intake_token(),
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

    logs = _demo_logs(rng, households, duty_items, contact_item, now,
                      {u.id: d for u, d in diligence})
    requests = _demo_requests(random.Random(seed + 1), town, holders, households, now)
    agenda_items = _demo_agenda(random.Random(seed + 2), town, holders, households, now)
    ledger = _demo_points(town, holders, households, logs, now)
    commended = _demo_commendations(town, holders, now)
    commended.update(_demo_kit(town, holders, now))
    commended.update(_demo_resources(town, holders))
    notices = _demo_notices(town, holders, households, now)
    db.session.commit()
    return {"村/社区": len(VILLAGES), "邻": len(VILLAGES) * 16, "户": len(households),
            "账号": len(users), "履职记录": len(logs), "民情诉求": requests, "议题": agenda_items,
            **ledger, **commended, **notices}


def _demo_logs(rng, households, duty_items, contact_item, now,
               diligent: dict[int, tuple[float, float]] | None = None) -> list[DutyLog]:
    """Logs from the start of the previous quarter (the period a 履职评议 looks back on) to now,
    by the town's contact rules: a 特殊人群户 gets a visit a month and calls in between, any other
    household a visit a quarter and now and then a call. Each 邻长 keeps a household's rule in
    a period with their diligence, and calls in between at their own rate (``diligent``: user
    id → (share of periods kept, rate of calls); the others draw theirs): most keep the rules,
    a few fall behind. In the period under way, only its elapsed share."""
    from portal.blueprints.duties.services import next_period_start, period_start

    today = local_today(now)
    first = period_start("quarter", period_start("quarter", today) - timedelta(days=1))
    start = local_midnight_utc(first)
    notes = ["", "", "身体还好，叮嘱注意用电安全。", "反映门前路灯不亮，已上报组长。",
             "宣传医保缴费政策。", "孩子学习情况正常。", "调解邻里排水纠纷。"]

    def windows(period: str):
        """(from, to, share elapsed) of each period of the kind from ``start`` to now."""
        w = period_start(period, first)
        while (lo := local_midnight_utc(w)) < now:
            following = next_period_start(period, w)
            hi = local_midnight_utc(following)
            lo_c, hi_c = max(lo, start), min(hi, now)
            yield lo_c, hi_c, (hi_c - lo_c) / (hi - lo)
            w = following

    def moment(lo, hi):
        """A daytime moment (08:00–20:00 local) between ``lo`` and ``hi``."""
        days = (local_today(hi - timedelta(seconds=1)) - local_today(lo)).days + 1
        day = local_today(lo) + timedelta(days=rng.randrange(days))
        at = local_midnight_utc(day) + timedelta(minutes=rng.randint(8 * 60, 20 * 60 - 1))
        return max(lo, min(at, hi - timedelta(minutes=1)))

    months, weeks, quarters = (list(windows(p)) for p in ("month", "week", "quarter"))
    diligence: dict[int, tuple[float, float]] = {}
    logs: list[DutyLog] = []
    for h, chief in households:
        if chief.id not in diligence:
            d = rng.choice([0.95, 0.9, 0.85, 0.6, 0.3])
            diligence[chief.id] = (diligent or {}).get(chief.id, (d, 0.3 * d))
        d, calls = diligence[chief.id]
        plan = []  # (from, to, method or None for a call of any kind)
        if h.special_since:
            plan += [(lo, hi, "visit") for lo, hi, share in months if rng.random() < d * share]
            plan += [(lo, hi, None) for lo, hi, share in weeks if rng.random() < calls * share]
        else:
            plan += [(lo, hi, "visit") for lo, hi, share in quarters
                     if rng.random() < d * share]
            plan += [(lo, hi, None) for lo, hi, share in months
                     if rng.random() < 0.4 * calls * share]
        for lo, hi, method in plan:
            at = moment(lo, hi)
            method = method or rng.choices(["visit", "phone", "wechat", "other"], [2, 3, 3, 1])[0]
            item = contact_item if rng.random() < 0.6 else rng.choice(duty_items)
            log = DutyLog(household_id=h.id, neighborhood_id=h.neighborhood_id,
                          user_id=chief.id, duty_item_id=item.id, method=method,
                          occurred_at=at, note=rng.choice(notes), form_token=new_form_token(),
                          created_at=at)
            db.session.add(log)
            logs.append(log)
            if method == "visit" and (h.last_visit_at is None or at > h.last_visit_at):
                h.last_visit_at = at
            if h.last_contact_at is None or at > h.last_contact_at:
                h.last_contact_at, h.last_contact_method = at, method
    return logs


# -- 民情诉求 ------------------------------------------------------------------------------------------
#: (category, description, answer) by category, for the generated requests.
REQUEST_TEXTS = {
    "安全隐患": [("屋后电线老化，下雨天有火花。", "已联系供电所更换了电线，提醒住户雨天注意用电。"),
                ("村道转弯处护栏被撞坏了，晚上很危险。", "已设置警示标志，护栏已报修并更换。"),
                ("楼道里堆了很多纸箱，堵住了消防通道。", "已协调住户清理，消防通道已畅通。")],
    "邻里纠纷": [("隔壁新砌的围墙占了我家出路。", "邻长和组长上门丈量，双方同意围墙后退半米，已经改好。"),
                ("楼上漏水到我家，协商不下来。", "组织两家协商，楼上住户已请人修好防水层并赔偿粉刷费用。")],
    "物业管理": [("小区路灯坏了好几盏，晚上看不见路。", "物业已更换路灯，已全部亮了。"),
                ("电梯经常停运，老人上下楼不方便。", "已督促物业请维保单位检修，电梯恢复正常。")],
    "环境卫生": [("垃圾桶满了好几天没人清运。", "已联系保洁员，清运改为每天一次。"),
                ("水沟堵了，污水漫到路上。", "组织志愿者清理了水沟，已经畅通。"),
                ("有人在塘边倒建筑垃圾。", "已清理建筑垃圾，并在塘边立了禁止倾倒的牌子。")],
    "政策咨询": [("想问问医保今年怎么缴费。", "已上门讲解医保缴费标准和手机缴费方法，老人已缴好。"),
                ("家里老人的高龄补贴怎么申请？", "已告知所需材料，邻长帮忙代办，补贴已申请。"),
                ("孩子上学的资助政策想了解一下。", "已把教育资助政策明白卡送到家，并说明申请时间。")],
    "生活求助": [("独居老人家里水管爆了，需要人帮忙修。", "志愿者上门换了水管，老人很满意。"),
                ("腿脚不便，想请人帮忙去镇上取药。", "邻长帮忙取药送到家。"),
                ("家里老人不会用智能手机交电费。", "邻长上门教会了老人用手机交电费。")],
    "其他": [("想在村里组织广场舞活动，需要场地。", "已协调村部广场晚上开放，并装了照明。"),
             ("村里的公告栏被风吹倒了。", "已重新立好公告栏并加固。")],
}
CATEGORY_WEIGHTS = {"安全隐患": 3, "环境卫生": 3, "政策咨询": 3, "生活求助": 2, "物业管理": 2,
                    "邻里纠纷": 1.5, "其他": 1}
ESCALATE_REASONS = ("需要组里协调。", "涉及几户人家，邻里协商不了，请组长出面。",
                    "需要村里安排资金和人手。", "超出村里能力，请镇里相关部门支持。")


def _demo_requests(rng: random.Random, town, holders, households, now) -> int:
    """About forty requests in every state, made through the services with past clocks so each
    timeline reads as it would have happened (see the scenarios below)."""
    from uuid import uuid4

    from sqlalchemy.orm.attributes import set_committed_value

    from portal.blueprints.requests import services as rs
    from portal.blueprints.requests.models import Department, RequestCategory

    regions, by_name, act = _acting(town, holders)
    categories = {c.name: c for c in rs.options(RequestCategory, town.id)}
    departments = {d.name: d for d in rs.options(Department, town.id)}
    in_hood: dict[int, list[Household]] = {}
    for h, _chief in households:
        set_committed_value(h, "neighborhood", regions[h.neighborhood_id])
        in_hood.setdefault(h.neighborhood_id, []).append(h)
    hood_ids = sorted(in_hood)

    def scope(u):
        return act(u)[1]

    def who(hood, level) -> User:
        """The person answering at ``level`` for a household of ``hood``."""
        node = rs.node_id(hood.path, level)
        role = ("neighbor_chief", "group_chief", "village_staff", "town_staff")[level]
        return holders[(node, role)]

    count = 0

    def submit(h, category, text, at, by_chief=False):
        nonlocal count
        hood = regions[h.neighborhood_id]
        req, _ = rs.submit(h, {"category_id": categories[category].id, "description": text,
                               "contact_name": h.head_name, "contact_phone": h.phone,
                               "contact_note": ""},
                           source="chief" if by_chief else "resident",
                           actor=who(hood, 0) if by_chief else None, photo=None,
                           token=str(uuid4()), now=at)
        count += 1
        return req, hood

    def step(hours: float, at):
        return at + timedelta(hours=hours)

    def climb(req, hood, to_level, at):
        """Escalate by hand from the current level up to ``to_level``."""
        while req.level < to_level:
            at = step(rng.uniform(0.5, 3), at)
            u = who(hood, req.level)
            rs.escalate(u, scope(u), req, at, ESCALATE_REASONS[min(req.level + 1, 3)])
        return at

    def answer(req, hood, text, at, rating=None):
        u = who(hood, req.level)
        rs.close(u, scope(u), req, at, text)
        if rating:
            rs.rate(req, rating, "", step(rng.uniform(2, 30), at))

    def day_time(days_ago: int):
        day = local_today(now) - timedelta(days=days_ago)
        return local_midnight_utc(day) + timedelta(hours=rng.uniform(8, 18))

    def pick(category=None):
        h = rng.choice(in_hood[rng.choice(hood_ids)])
        if category is None:
            category = rng.choices(list(CATEGORY_WEIGHTS), list(CATEGORY_WEIGHTS.values()))[0]
        text, reply = rng.choice(REQUEST_TEXTS[category])
        return h, category, text, reply

    # -- closed over the last two months, most of them at 邻 ("微事不出邻") ---------------
    plan = ["neighborhood"] * 14 + ["group"] * 4 + ["village"] * 3 + ["town"] + ["timeout"] * 2
    rng.shuffle(plan)
    for k, kind in enumerate(plan):
        h, category, text, reply = pick()
        at = day_time(5 + (k * 55) // len(plan) + rng.randint(0, 2))
        req, hood = submit(h, category, text, at, by_chief=rng.random() < 0.3)
        if kind == "timeout":  # nobody answered at 邻: the 组长 takes it up later
            at = step(rng.uniform(6, 20), at)
            u = who(hood, 1)
            rs.acknowledge(u, scope(u), req, at, "邻长外出，由组长跟进。")
        else:
            at = step(rng.uniform(0.3, 3), at)
            u = who(hood, 0)
            rs.acknowledge(u, scope(u), req, at, "已收到，马上去看。")
            at = climb(req, hood, {"neighborhood": 0, "group": 1, "village": 2, "town": 3}[kind],
                       at)
            if req.level == 1:
                u = who(hood, 1)
                at = step(rng.uniform(0.5, 4), at)
                rs.acknowledge(u, scope(u), req, at, "组长已接手。")
            if req.level >= 2:
                u = who(hood, req.level)
                dept = rng.choice(list(departments.values()))
                at = step(rng.uniform(1, 6), at)
                rs.route(u, scope(u), req, at, dept.id, "请尽快安排处理。")
        rating = rng.choices(["satisfied", "basic", "unsatisfied", None], [12, 4, 1, 4])[0]
        answer(req, hood, reply, step(rng.uniform(2, 40), at), rating)

    # -- the seeds' story: 山塘输水洞堵塞, told to 邻长 胡新林 of 杨家井组, fixed by the town's
    # agricultural service centre together with 特立村 ---------------------------------------
    hood = by_name["杨家井一邻"]
    h = in_hood[hood.id][0]
    at = day_time(18)
    req, hood = submit(h, "安全隐患", "山塘输水洞堵塞，蓄水困难，春耕马上要放水灌田了。", at,
                       by_chief=True)
    u = who(hood, 0)
    at = step(0.3, at)
    rs.escalate(u, scope(u), req, at, "输水洞在塘底，邻里修不了，需要村里对接解决。")
    u = who(hood, 1)
    at = step(0.5, at)
    rs.escalate(u, scope(u), req, at, "组里没有设备，报村委会。")
    u = who(hood, 2)
    at = step(1, at)
    rs.route(u, scope(u), req, at, departments["农业综合服务中心"].id,
             "春耕关键时期，请镇农业综合服务中心派专人修复。")
    rs.close(u, scope(u), req, step(30, at),
             "镇农业综合服务中心和特立村安排专人疏通了输水洞，山塘已正常蓄水，农田灌溉有保障。")
    rs.rate(req, "satisfied", "修得很快，谢谢！", step(40, at))

    # -- a family dispute mediated until the children signed a 赡养协议 ----------------------
    hood = by_name["老街一邻"]
    h = in_hood[hood.id][1]
    at = day_time(25)
    req, hood = submit(h, "邻里纠纷", "母亲八十多岁了，兄弟姐妹因为财产分配有分歧，老人的赡养没人管。",
                       at)
    u = who(hood, 0)
    at = step(1, at)
    rs.acknowledge(u, scope(u), req, at, "先上门看望老人，了解情况。")
    at = step(50, at)
    rs.record_mediation(u, scope(u), req, {
        "outcome": "not_agreed", "parties": "周奶奶及六名子女", "mediators": u.name,
        "held_at": at, "note": "子女意见分歧较大，约定下周再谈。"}, at)
    at = climb(req, hood, 2, step(1, at))
    u = who(hood, 2)
    at = step(2, at)
    rs.acknowledge(u, scope(u), req, at, "社区工作人员和邻长一起再组织调解。")
    at = step(100, at)
    rs.record_mediation(u, scope(u), req, {
        "outcome": "agreed", "parties": "周奶奶及六名子女", "mediators": f"{who(hood, 0).name}、{u.name}",
        "held_at": at, "agreement_title": "赡养协议",
        "agreement_terms": "六名子女轮流照顾母亲，每人每月出生活费三百元，医药费平摊。",
        "signed_on": local_today(at), "note": "讲解了《老年人权益保障法》，子女们签了协议。"}, at)
    rs.close(u, scope(u), req, step(2, at), "六名子女已签订赡养协议，社区和邻长会定期回访。")
    rs.rate(req, "satisfied", "", step(26, at))

    # -- on the 接单 board: one taken by the demo volunteer, one still open ------------------
    hood = by_name["枫树湾二邻"]
    h = in_hood[hood.id][0]
    at = now - timedelta(hours=26)
    req, hood = submit(h, "生活求助", "独居老人家里的灯坏了，自己爬不上去换。", at)
    u = who(hood, 0)
    rs.offer_to_helpers(u, scope(u), req, step(1, at), "请附近的志愿者帮忙换个灯泡。")
    volunteer = holders[(by_name["特立村"].id, "volunteer")]
    rs.claim(volunteer, scope(volunteer), req, step(3, at))
    rs.helper_progress(volunteer, req, step(4, at), "已联系老人，明天上午带灯泡过去。")
    hood = by_name["新屋一邻"]
    h = in_hood[hood.id][2]
    at = now - timedelta(hours=5)
    req, hood = submit(h, "生活求助", "腿脚不便，想请人帮忙去镇上取药。", at)
    u = who(hood, 0)
    rs.offer_to_helpers(u, scope(u), req, step(0.5, at), "有空的志愿者请帮忙跑一趟。")

    # -- open now: for the demo accounts' queues and the overdue lists ------------------------
    hood = by_name["杨家井一邻"]  # 胡新林: two waiting with time left, one he is working on
    for hours, (category, (text, _)) in ((1.2, ("环境卫生", REQUEST_TEXTS["环境卫生"][1])),
                                         (2.5, ("政策咨询", REQUEST_TEXTS["政策咨询"][0]))):
        submit(in_hood[hood.id][3], category, text, now - timedelta(hours=hours))
    req, hood = submit(in_hood[hood.id][4], "安全隐患", REQUEST_TEXTS["安全隐患"][0][0],
                       now - timedelta(hours=20))
    u = who(hood, 0)
    rs.acknowledge(u, scope(u), req, now - timedelta(hours=18), "已报供电所，等师傅上门。")
    # 杨家井二邻: nobody answered within 4 hours, so it is 组长 杨国平's now (not yet recorded)
    submit(in_hood[by_name["杨家井二邻"].id][0], "物业管理", REQUEST_TEXTS["物业管理"][0][0],
           now - timedelta(hours=7))
    # 特立村: escalated to 村 (周丽) by the 组长 this morning
    req, hood = submit(in_hood[by_name["塘坝三邻"].id][0], "环境卫生",
                       REQUEST_TEXTS["环境卫生"][2][0], now - timedelta(hours=9))
    climb(req, hood, 2, now - timedelta(hours=8.5))
    # 五美村: up to 镇 (刘建国), and one nobody answered at any level: overdue at 镇
    req, hood = submit(in_hood[by_name["荷塘一邻"].id][0], "邻里纠纷",
                       REQUEST_TEXTS["邻里纠纷"][0][0], now - timedelta(hours=30))
    climb(req, hood, 3, now - timedelta(hours=29.5))
    submit(in_hood[by_name["竹山二邻"].id][1], "安全隐患", REQUEST_TEXTS["安全隐患"][1][0],
           now - timedelta(days=7))
    # a few more across the town: waiting, past the 邻 deadline, being worked on
    for hours, state in ((0.5, "new"), (3, "new"), (9, "new"), (14, "working"), (30, "working")):
        h, category, text, _ = pick()
        req, hood = submit(h, category, text, now - timedelta(hours=hours))
        if state == "working":
            u = who(hood, 0)
            rs.acknowledge(u, scope(u), req, now - timedelta(hours=hours - 1), "正在协调处理。")
    db.session.flush()
    return count


# -- 议事 ----------------------------------------------------------------------------------------
def _acting(town, holders):
    """The town's regions by id and by name, and ``act(user)`` → (user, their Scope) built
    from the seeded posts without loading them again."""
    from portal.blueprints.regions.models import Region
    from portal.scope import Grant, Scope, path_range

    regions = {r.id: r for r in db.session.scalars(
        select(Region).where(path_range(Region.path, town.path)))}
    grants: dict[int, list[Grant]] = {}
    for (region_id, role), u in holders.items():
        path = regions[region_id].path if region_id in regions else "/"
        grants.setdefault(u.id, []).append(Grant(role, path, region_id))

    def act(u):
        return u, Scope(grants[u.id])

    return regions, {r.name: r for r in regions.values()}, act


def _demo_agenda(rng: random.Random, town, holders, households, now) -> int:
    """Venues, and 议题 in every state, made through the services with past clocks:

    * 杨家井组's 民情恳谈会 twelve days ago at its 议事亭 — after the 山塘输水洞 was unblocked (the
      requests demo), 胡新林 raised the 山塘's dredging and upkeep: passed and answered; new street
      lights passed and are overdue for an answer (组长 杨国平); moving the rubbish point failed on
      a show of hands;
    * 特立村's 村民会议 five weeks ago on its 村规民约: fewer than two thirds of the households
      came, so the vote was 流会;
    * 杨家井组's next 恳谈会 in three days with three items on the agenda, to run from the demo;
    * a few raised items: one waiting for its meeting, one outside the 议事清单 waiting for staff,
      one declined.

    The services stamp audit rows and ``created_at`` with the real clock; a flush hook dates
    everything written here with the seed's clock instead, so each timeline reads as it happened.
    """
    from sqlalchemy import event

    from portal.audit import AuditEntry
    from portal.blueprints.agenda import services as svc
    from portal.models import TimestampMixin

    regions, by_name, act = _acting(town, holders)
    in_hood: dict[int, list[Household]] = {}
    for h, _chief in households:
        in_hood.setdefault(h.neighborhood_id, []).append(h)

    six = {c.title: str(c.id) for c in svc.deliberation_items(town.id)}
    clock = [now]

    def stamp(session, _context, _instances):
        at = clock[0]
        for obj in session.new:
            if isinstance(obj, AuditEntry) and obj.at is None:
                obj.at = at
            elif isinstance(obj, TimestampMixin):
                obj.created_at = obj.created_at or at
                obj.updated_at = at
        for obj in session.dirty:
            if isinstance(obj, TimestampMixin) and session.is_modified(obj):
                obj.updated_at = at

    def local_at(days: int, hours: float):
        """``hours`` after local midnight, ``days`` from today (negative: in the past)."""
        return local_midnight_utc(local_today(now) + timedelta(days=days)) + \
            timedelta(hours=hours)

    village = by_name["特立村"]
    group = by_name["杨家井组"]
    staff = holders[(village.id, "village_staff")]          # 周丽
    gchief = holders[(group.id, "group_chief")]              # 杨国平
    hood1 = by_name["杨家井一邻"]
    hu = holders[(hood1.id, "neighbor_chief")]              # 胡新林
    count = 0

    def raise_item(u, region, title, category, background, proposal, at):
        nonlocal count
        clock[0] = at
        item = svc.raise_item(*act(u), region, {
            "title": title, "category_id": category, "background": background,
            "proposal": proposal}, now=at)
        count += 1
        return item

    def attend(meeting, chief, who, start):
        """Check ``who`` in over the first minutes of the meeting."""
        for k, h in enumerate(who):
            rep = ""
            if rng.random() < 0.2:
                rep = h.head_name[0] + rng.choice(GIVEN)
            clock[0] = start + timedelta(seconds=20 * k)
            svc.check_in(*act(chief), meeting, h, representative=rep, now=clock[0])

    session = db.session()
    event.listen(session, "before_flush", stamp)
    try:
        # -- venues ---------------------------------------------------------------------
        clock[0] = now - timedelta(days=200)
        venue = {}
        for region, name, kind, capacity, address in [
                (group, "杨家井组议事亭", "pavilion", 40, "杨家井组老樟树下（组部旁）"),
                (by_name["新屋组"], "新屋组议事角", "corner", 20, "新屋组小卖部门前坪"),
                (by_name["老街组"], "老街红色驿站", "station", 30, "江背社区老街 18 号"),
                (town, "江背镇议事大厅", "hall", 200, "江背镇人民政府一楼"),
                *((by_name[v], f"{v}村务议事室", "room", 120 if v == "特立村" else 80,
                   f"{v}村部二楼") for v in VILLAGES)]:
            u = holders[(town.id, "town_staff")]
            venue[name] = svc.save_venue(*act(u), None, region, {
                "name": name, "kind": kind, "capacity": capacity, "address": address})
        db.session.flush()

        # -- 杨家井组 民情恳谈会, twelve days ago ---------------------------------------
        day = -12
        dredge = raise_item(
            hu, hood1, "山塘清淤及输水洞日常管护", six["公共设施建设与维护"],
            "上月山塘输水洞堵塞，蓄水困难，经镇农业综合服务中心和村里派人疏通后恢复蓄水。"
            "但山塘多年没有清淤，库容变小，淤泥还会再次堵住输水洞口。",
            "冬季枯水期组织清淤，每户投工一天或出资 100 元；由杨家井一邻邻长胡新林牵头，"
            "每月检查一次输水洞口。", local_at(day - 4, 9.5))
        lights = raise_item(
            gchief, group, "组内主干道增设路灯", six["公共设施建设与维护"],
            "杨家井组主干道约 800 米没有路灯，老人晚上出门和学生放学回家不安全。",
            "增设 8 盏太阳能路灯，费用申请村集体资金，不足部分由受益户自愿筹集。",
            local_at(day - 6, 15))
        bins = raise_item(
            holders[(by_name["杨家井三邻"].id, "neighbor_chief")], by_name["杨家井三邻"],
            "垃圾收集点搬迁至村口", six["人居环境整治"],
            "垃圾收集点紧挨三邻几户人家，夏天气味大。",
            "把收集点搬到村口公路边，方便清运车辆。", local_at(day - 3, 11))
        start = local_at(day, 19.5)
        clock[0] = start - timedelta(days=5)
        kentan = svc.save_meeting(*act(gchief), None, group, {
            "kind": "kentan", "title": "十一月民情恳谈会", "starts_at": start,
            "planned_minutes": 90, "venue_id": venue["杨家井组议事亭"].id})
        for item, minutes, rule, mode in ((dredge, 30, "present_majority", "household"),
                                          (lights, 25, "present_majority", "household"),
                                          (bins, 20, "cast_majority", "hands")):
            svc.schedule(*act(gchief), item, kentan, {
                "planned_minutes": minutes, "rule": rule, "vote_mode": mode})
        clock[0] = start - timedelta(minutes=10)
        svc.open_meeting(*act(gchief), kentan, now=clock[0])
        members = [h for hood in sorted(r.id for r in regions.values()
                                        if r.parent_id == group.id) for h in in_hood[hood]]
        came = sorted(rng.sample(members, k=round(len(members) * 0.7)),
                      key=lambda h: (h.neighborhood_id, h.id))
        if members[0] not in came:  # the household that reported the 输水洞
            came[0] = members[0]
        attend(kentan, gchief, came, start - timedelta(minutes=9))

        def household_vote(item, at, weights):
            clock[0] = at
            svc.open_vote(*act(gchief), item, now=at)
            for k, h in enumerate(came):
                if rng.random() < 0.06:
                    continue  # stepped out
                clock[0] = at + timedelta(seconds=15 + 4 * k)
                choice = rng.choices(["yes", "no", "abstain"], weights)[0]
                svc.cast_vote(item, h.id, choice, actor=gchief if k % 3 else None,
                              now=clock[0])
            clock[0] = at + timedelta(minutes=5)
            return svc.close_vote(*act(gchief), item, now=clock[0])

        household_vote(dredge, start + timedelta(minutes=28), [90, 4, 6])
        svc.save_decision(*act(gchief), dredge,
                          "同意冬季枯水期组织山塘清淤，每户投工一天或出资 100 元；"
                          "胡新林牵头每月巡查输水洞口。\n由村委会向镇农业综合服务中心申请清淤机械支持。")
        svc.assign_answer(*act(staff), dredge, staff.id, local_today(start) + timedelta(days=14),
                          today=local_today(start))
        household_vote(lights, start + timedelta(minutes=55), [75, 15, 10])
        svc.save_decision(*act(gchief), lights,
                          "同意在主干道增设 8 盏太阳能路灯；组长杨国平负责向村里申请集体资金，"
                          "一周内答复资金安排。")
        svc.assign_answer(*act(gchief), lights, gchief.id,
                          local_today(start) + timedelta(days=7), today=local_today(start))
        clock[0] = start + timedelta(minutes=62)
        svc.open_vote(*act(gchief), bins, now=clock[0])
        n = len(came)
        yes, no = n // 4, n // 2
        svc.set_hands(*act(gchief), bins, yes, no, n - yes - no - 2)
        clock[0] = start + timedelta(minutes=70)
        svc.close_vote(*act(gchief), bins, now=clock[0])
        svc.save_decision(*act(gchief), bins,
                          "多数户认为村口公路边离住户太远、不便投放，收集点暂不搬迁；"
                          "改为夏季每天清运一次并加盖。")
        svc.save_minutes(*act(gchief), kentan,
                         "一、组长杨国平通报上次恳谈会议定事项的落实情况。\n"
                         "二、邻长胡新林介绍上月山塘输水洞堵塞和疏通的经过，提出清淤和日常管护。"
                         "大家认为春耕前必须清淤，同意投工投劳。\n"
                         "三、村干部周丽说明村集体资金申请程序，路灯经费由组里写申请、村委会研究。\n"
                         "四、垃圾收集点搬迁意见分歧较大，举手表决未通过，改为增加清运次数。",
                         "苏玲")
        clock[0] = start + timedelta(minutes=95)
        svc.end_meeting(*act(gchief), kentan, now=clock[0])
        clock[0] = local_at(day + 6, 16)
        svc.answer_item(*act(staff), dredge,
                        "镇农业综合服务中心已同意派挖机支持，清淤定在枯水期进行，每户投工安排已张贴在"
                        "议事亭；胡新林已领取输水洞巡查记录表，每月检查一次。", now=clock[0])

        # -- 特立村 村民会议, five weeks ago: not enough households came (流会) -----------
        start = local_at(-35, 14.5)
        rules = raise_item(
            staff, village, "修订村规民约：红白喜事简办", six["村规民约与居民公约"],
            "近年来红白喜事攀比之风抬头，酒席规模越来越大，村民负担重。",
            "村规民约增加一条：红白喜事酒席不超过 15 桌，不燃放大型烟花，由红白理事会监督。",
            local_at(-50, 10))
        clock[0] = start - timedelta(days=10)
        assembly = svc.save_meeting(*act(staff), None, village, {
            "kind": "assembly", "title": "村民会议（修订村规民约）", "starts_at": start,
            "planned_minutes": 120, "venue_id": venue["特立村村务议事室"].id})
        svc.schedule(*act(staff), rules, assembly,
                     {"planned_minutes": 60, "rule": "assembly", "vote_mode": "hands"})
        clock[0] = start - timedelta(minutes=15)
        svc.open_meeting(*act(staff), assembly, now=clock[0])
        everyone = [h for h, _chief in households if regions[h.neighborhood_id].path
                    .startswith(village.path)]
        need = svc.quorum_needed("assembly", assembly.entitled_count)
        came_v = rng.sample(everyone, k=need - 1 - rng.randint(10, 20))
        attend(assembly, staff, came_v, start - timedelta(minutes=14))
        clock[0] = start + timedelta(minutes=40)
        svc.open_vote(*act(staff), rules, now=clock[0])
        n = len(came_v)
        svc.set_hands(*act(staff), rules, n * 3 // 4, n // 8, n - n * 3 // 4 - n // 8)
        clock[0] = start + timedelta(minutes=50)
        result = svc.close_vote(*act(staff), rules, now=clock[0])
        assert result == "no_quorum"
        svc.save_decision(*act(staff), rules,
                          f"到会 {n} 户，未达到本村 {assembly.entitled_count} 户的三分之二"
                          f"（{need} 户），依照村民委员会组织法，本次表决不生效（流会）。"
                          "议题顺延至下次村民会议，会前由各组长、邻长逐户通知。")
        svc.save_minutes(*act(staff), assembly,
                         "周丽主持。说明村规民约修订的起草经过，宣读修订草案。\n"
                         "会议开始时清点到会户数不足三分之二，仍就草案听取意见：多数到会户赞成简办，"
                         "有户主提出桌数上限应区分红事和白事。\n会后由红白理事会修改草案，择期再开。",
                         "苏玲")
        clock[0] = start + timedelta(minutes=75)
        svc.end_meeting(*act(staff), assembly, now=clock[0])

        # -- 杨家井组's next 恳谈会, in three days -----------------------------------------
        upcoming_items = [
            raise_item(hu, hood1, "机耕道硬化筹资方案", six["集体资产与收益分配"],
                       "杨家井一邻到二邻的机耕道雨天泥泞，农机下不了田。",
                       "申请“一事一议”财政奖补，村集体出一部分，受益户按田亩分摊其余费用。",
                       local_at(-4, 10)),
            raise_item(gchief, group, "杨家井组文明卫生户评选办法", six["村规民约与居民公约"],
                       "组里环境卫生好坏不一，大家希望有个评比。",
                       "每季度由各邻长推荐、恳谈会评议，评出 5 户文明卫生户，在议事亭公示。",
                       local_at(-3, 16)),
            raise_item(holders[(by_name["杨家井二邻"].id, "neighbor_chief")],
                       by_name["杨家井二邻"], "塘边安装防护栏", six["公共设施建设与维护"],
                       "二邻屋前的水塘没有护栏，小孩放学经过很危险。",
                       "在塘边临路一侧安装 60 米防护栏，并立警示牌。", local_at(-2, 9))]
        start = local_at(3, 19.5)
        clock[0] = now - timedelta(days=2)
        meeting = svc.save_meeting(*act(gchief), None, group, {
            "kind": "kentan", "title": "十二月民情恳谈会", "starts_at": start,
            "planned_minutes": 60, "venue_id": venue["杨家井组议事亭"].id})
        for item, minutes, rule, mode in zip(
                upcoming_items, (20, 15, 10),
                ("present_two_thirds", "present_majority", "cast_majority"),
                ("household", "household", "hands"), strict=True):
            svc.schedule(*act(gchief), item, meeting, {
                "planned_minutes": minutes, "rule": rule, "vote_mode": mode})

        # -- raised, waiting: for a meeting, for staff, and one declined -------------------
        fengshu = by_name["枫树湾一邻"]
        raise_item(holders[(fengshu.id, "neighbor_chief")], fengshu, "公共厕所改造",
                   six["人居环境整治"], "枫树湾的老公厕年久失修，下雨天漏水。",
                   "改造成水冲式公厕，由村里申请改厕补助。", local_at(-6, 10))
        xinwu = by_name["新屋一邻"]
        xinwu_chief = holders[(xinwu.id, "neighbor_chief")]
        raise_item(xinwu_chief, xinwu, "村里出资修建家门口停车位", "off",
                   "几户人家买了车，家门口没有地方停。",
                   "请村里出钱在门前坪修 4 个停车位。（清单外：涉及个人受益，请村里决定是否上会）",
                   local_at(-1, 18))
        noise = raise_item(xinwu_chief, xinwu, "邻居装修噪音影响休息", "off",
                           "隔壁装修每天早上七点开始打钻。",
                           "请大家讨论装修时间的规定。", local_at(-9, 20))
        clock[0] = local_at(-8, 10)
        svc.decide_off_list(*act(staff), noise, False, None,
                            "属邻里纠纷，请通过民情诉求（点单）由邻长调解；装修时间可在修订村规民约时一并讨论。",
                            now=clock[0])
        db.session.flush()
    finally:
        event.remove(session, "before_flush", stamp)
    return count


# -- 积分 ----------------------------------------------------------------------------------------
#: The store: (name, cost, stock, description, redeemable this quarter only?).
REWARDS = [
    ("季度红色电影观影", 30, 40, "每季度一场，在镇文化站放映红色经典影片。凭券入场，一券一人。", True),
    ("村BA篮球赛门票", 50, 20, "江背镇“村BA”篮球联赛门票一张，凭券到镇文化站领取。", False),
    ("印山红游船票", 40, 10, "印山村红色旅游游船票一张，节假日除外，凭券到游船码头兑换。", False),
    ("环湖巴士乘车券", 20, 30, "环湖旅游巴士单次乘车券，一券一人，上车出示。", False),
]
REVIEW_COMMENTS = {
    "A": "联系户按规则走访联系，一户不落；群众反映的问题响应及时，带头提出议题、参加议事。",
    "B": "常态化联系总体到位，个别联系户联系不够及时，下季度注意补上。",
    "C": "部分联系户超期未走访，请对照联系规则排好走访计划，组长跟进督促。",
    "D": "多数联系户长期未联系，已谈话提醒，下季度由组长重点帮带。",
}


def _demo_points(town, holders, households, logs, now) -> dict:
    """A living ledger, through the points services with the seed's clock:

    * every duty log above paid by the town's rules (daily and monthly caps and all), as the
      log page pays it; the requests and 议事 demos were paid by their services' hooks;
    * 胡新林 saved one visit twice and voided the copy: its point went back;
    * the store's four rewards; 胡新林 spent points on a bus ticket (used) and this quarter's
      red film (not yet; another bus ticket when his points do not reach it);
    * 组长 杨国平 recorded a 六不得 breach against 杨家井三邻's 邻长, who answered it;
    * last quarter's 履职评议 of the 邻长 of 杨家井组 and 枫树湾组 by their 组长: the figures
      from the records, the grade by how many households were contacted on time; the model
      邻长 of DILIGENCE come out 优秀, the ones falling behind lower."""
    from portal.blueprints.duties.services import next_period_start, period_start, void_log
    from portal.blueprints.points import services as points
    from portal.blueprints.points.models import PointsEntry

    regions, by_name, act = _acting(town, holders)

    today = local_today(now)
    hood1 = by_name["杨家井一邻"]
    hu = holders[(hood1.id, "neighbor_chief")]              # 胡新林
    staff = holders[(by_name["特立村"].id, "village_staff")]  # 周丽

    # -- the duty logs, paid in the order they happened --------------------------------------
    db.session.flush()
    for log in sorted(logs, key=lambda log: (log.occurred_at, log.id)):
        points.on_duty_log(log)
    mine = max((log for log in logs if log.user_id == hu.id), key=lambda log: log.occurred_at)
    copy = DutyLog(household_id=mine.household_id, neighborhood_id=mine.neighborhood_id,
                   user_id=hu.id, duty_item_id=mine.duty_item_id, method=mine.method,
                   occurred_at=mine.occurred_at, note=mine.note, form_token=new_form_token(),
                   created_at=min(mine.created_at + timedelta(minutes=3), now))
    db.session.add(copy)
    db.session.flush()
    points.on_duty_log(copy)
    void_log(*act(hu), copy, "重复记录：同一次联系记了两次。",
             min(copy.created_at + timedelta(minutes=10), now))

    # -- the store -------------------------------------------------------------------------
    quarter = period_start("quarter", today)
    following = next_period_start("quarter", quarter)
    rewards = {}
    for name, cost, stock, description, this_quarter in REWARDS:
        until = following if this_quarter else next_period_start("quarter", following)
        rewards[name] = points.save_reward(holders[(town.id, "town_staff")], town, None, {
            "name": name, "description": description, "cost": cost, "stock": stock,
            "valid_from": quarter, "valid_until": until - timedelta(days=1)})
    bus = points.redeem(hu, rewards["环湖巴士乘车券"].id, hood1.path, today=today)
    points.mark_used(*act(staff), bus, now)
    # early in a quarter his points may not reach the film yet: another bus ticket then
    film = rewards["季度红色电影观影"]
    points.redeem(hu, (film if points.balance(hu.id) >= film.cost
                       else rewards["环湖巴士乘车券"]).id, hood1.path, today=today)

    # -- a breach (六不得), and the 邻长's answer -----------------------------------------------
    hood3 = by_name["杨家井三邻"]
    gchief = holders[(by_name["杨家井组"].id, "group_chief")]  # 杨国平
    chief3 = holders[(hood3.id, "neighbor_chief")]
    post3 = db.session.scalar(select(Post).where(Post.user_id == chief3.id,
                                                 Post.role == "neighbor_chief"))
    item = db.session.scalar(select(ChecklistItem).where(
        ChecklistItem.town_id == town.id, ChecklistItem.kind == "negative",
        ChecklistItem.title == "不得推诿隐瞒"))
    breach = points.record_breach(
        *act(gchief), post3, item.id, today - timedelta(days=10),
        "三邻住户反映楼道灯坏了、老人夜里摔了一跤，邻长两天没有回复，也没有上报组里。"
        "组长上门走访时住户说明了情况，邻居可以作证。", today=today)
    breach.recorded_at = local_midnight_utc(today - timedelta(days=8)) + timedelta(hours=10)
    points.answer_breach(chief3, breach,
                         "那两天在长沙医院照顾住院的母亲，手机没顾上看，也没有请人代为联系，"
                         "是我的责任。以后外出会提前告诉组长，并请二邻邻长帮忙照看。",
                         now=breach.recorded_at + timedelta(days=1, hours=3))

    # -- last quarter's 履职评议 ------------------------------------------------------------------
    start, end = points.period_bounds(points.previous_quarter(today))
    reviewed_at = min(now, local_midnight_utc(end) + timedelta(days=9, hours=2))
    reviews = 0
    for group_name in ("杨家井组", "枫树湾组"):
        group = by_name[group_name]
        supervisor = holders[(group.id, "group_chief")]
        for hood in sorted((r for r in regions.values() if r.parent_id == group.id),
                           key=lambda r: r.path):
            chief = holders[(hood.id, "neighbor_chief")]
            m = next(m for m in points.review_metrics(hood.path, start, end, reviewed_at)
                     if m.user_id == chief.id)
            share = m.contact_share or 0
            grade = "A" if share >= 0.95 else "B" if share >= 0.75 else "C" if share >= 0.45 \
                else "D"
            points.save_review(*act(supervisor), chief.id, start, end, grade,
                               REVIEW_COMMENTS[grade], now=reviewed_at)
            reviews += 1
    db.session.flush()
    return {"积分记录": db.session.scalar(select(func.count()).select_from(PointsEntry)),
            "履职评议": reviews}


#: What the demo's nominees did (the deeds are written by the cadre who nominates).
DEMO_DEEDS = [
    "坚持每周上门看望独居老人，帮邻里代缴水电费、代购药品；今年牵头清理组里的山塘和水沟，"
    "协调解决了两户人家的宅基地纠纷。",
    "联系的户家家进了微信群，通知事事有回音；汛期连夜挨户转移低洼处的三户老人，"
    "事后组织邻里互助修缮房屋。",
    "把屋场会开在自家禾坪上，收集的路灯、垃圾清运等诉求都在邻里办结；"
    "带动邻里参加志愿服务，积分在组里排第一。",
    "调解邻里之间的排水、占道纠纷，没有一件上交；每逢节日组织慰问困难户，是大家公认的热心人。",
]


def _demo_commendations(town, holders, now) -> dict:
    """好邻, through the services with the seed's clock:

    * last quarter's 优秀邻长 (a town campaign, plain posters): every 邻长 the 履职评议 rated
      优秀 nominated by the town office; an objection during the 公示 was checked by 特立村's
      cadre and found groundless; all approved after the period: they are on the honour wall;
    * this year's 江背好邻 (red posters): three nominees, 胡新林 among them, in their 公示 now —
      anyone may object on the public page until it ends."""
    from portal.blueprints.commendations import services as haolin
    from portal.blueprints.points import services as points
    from portal.blueprints.points.models import Review

    regions, by_name, act = _acting(town, holders)
    today = local_today(now)

    def at(days: int) -> datetime:  # 10:00 local, ``days`` from today
        return local_midnight_utc(today + timedelta(days=days)) + timedelta(hours=10)

    office = act(holders[(town.id, "town_staff")])
    posts = {p.user_id: p for p in db.session.scalars(select(Post).where(
        Post.role == "neighbor_chief", Post.region_id.in_(list(regions))))}

    # -- last quarter's 优秀邻长: over, on the honour wall ----------------------------------------
    start, end = points.period_bounds(points.previous_quarter(today))
    quarter = haolin.create_campaign(*office, town, {
        "title": f"{points.period_label(start, end)}优秀邻长", "honour": "优秀邻长", "quota": 5,
        "period_start": start, "period_end": end, "notice_start": today - timedelta(days=14),
        "notice_end": today - timedelta(days=8), "design": "plain"}, now=at(-16))
    best = db.session.scalars(select(Review).where(
        Review.town_id == town.id, Review.result == "excellent", Review.period_start == start)
        .order_by(Review.score.desc()).limit(quarter.quota)).all()
    nominated = [haolin.nominate(*office, quarter, posts[r.user_id], DEMO_DEEDS[i % 4],
                                 review_id=r.id, now=at(-15)) for i, r in enumerate(best)]
    haolin.open_notice(*office, quarter, now=at(-15))
    if nominated:
        objection = haolin.lodge_objection(
            nominated[0], quarter, "听说他有几次走访是电话里问的，没有上门，请核实。",
            now=at(-12))
        village = next(r for r in regions.values()
                       if r.level == "village" and nominated[0].path.startswith(r.path))
        haolin.resolve_objection(
            *act(holders[(village.id, "village_staff")]), objection, nominated[0], False,
            "逐户核对了走访记录并回访了三户，上门走访属实；电话联系是另外记录的，异议不成立。",
            now=at(-10))
    for n in nominated:
        haolin.decide(*office, quarter, n, True, "公示期满，经核实审定。", now=at(-7))

    # -- this year's 江背好邻: in its 公示 --------------------------------------------------------
    year = haolin.create_campaign(*office, town, {
        "title": f"{today.year} 年度江背好邻", "honour": "江背好邻", "quota": 3,
        "period_start": date(today.year, 1, 1), "period_end": date(today.year + 1, 1, 1),
        "notice_start": today - timedelta(days=2), "notice_end": today + timedelta(days=5),
        "design": "red"}, now=at(-6))
    for i, name in enumerate(("杨家井一邻", "枫树湾一邻", "老街一邻")):
        chief = holders[(by_name[name].id, "neighbor_chief")]
        haolin.nominate(*office, year, posts[chief.id], DEMO_DEEDS[(i + 1) % 4], now=at(-5))
    haolin.open_notice(*office, year, now=at(-2))
    db.session.flush()
    return {"好邻评选": 2, "标兵": len(nominated)}


DEMO_POLICY = """城乡居民医保：每年 9 月至 12 月缴纳下一年度费用，可在“湘税社保”小程序缴费。
高龄补贴：80 周岁以上老人每月发放，满 80 周岁当月到村(社区)登记。
困难救助：突发大病、火灾等致困家庭，可向村(社区)申请临时救助。
农房建设：新建、翻建住房先向村里申请，经镇审批后再动工。
防汛防火：汛期注意山塘水库安全；秋冬季禁止野外用火、焚烧秸秆。
有事找邻长：邻长电话印在联户信息卡上，扫卡上的二维码也可以反映问题。"""


def _demo_kit(town, holders, now) -> dict:
    """四个一, through the services: the town's policy card text, and 特立村's 邻长 issued their
    red vest, work card, policy card and contact cards a month after taking office — except
    the three of 塘坝组, whose vests have not come yet."""
    from portal.blueprints.commendations import kit

    regions, by_name, act = _acting(town, holders)
    office = act(holders[(town.id, "town_staff")])
    kit.save_policy(*office, town, "江背镇惠民政策明白卡", DEMO_POLICY)
    village = by_name["特立村"]
    cadre = act(holders[(village.id, "village_staff")])
    issued = 0
    for hood in sorted((r for r in regions.values()
                        if r.level == "neighborhood" and r.path.startswith(village.path)),
                       key=lambda r: r.path):
        post = db.session.scalar(select(Post).options(joinedload(Post.user)).where(
            Post.region_id == hood.id, Post.role == "neighbor_chief"))
        day = local_today(post.started_at) + timedelta(days=30)
        for item in ("vest", "card", "policy", "contact"):
            if item == "vest" and hood.name.startswith("塘坝") and not hood.name.endswith("一邻"):
                continue
            kit.record_issue(*cadre, post, hood, item, day, now=now)
            issued += 1
    db.session.flush()
    return {"四个一发放": issued}


#: (村 or 组, kind, name, address, contact, phone, services, opening) of the demo's 辖区社会资源.
DEMO_RESOURCES = (
    ("特立村", "station", "特立村红色驿站", "特立村村部一楼", "周丽", "0731-86281234",
     "歇脚饮水、手机充电、雨具借用，党员志愿者代办医保社保", "每天 8:30—17:30"),
    ("特立村", "team", "特立村“银发”志愿服务队", "特立村村部", "杨国平", "13900001234",
     "上门陪护独居老人、代购药品、帮忙理发，22 名队员", "每周二、周五上午集中上门"),
    ("杨家井组", "place", "杨家井文化广场", "杨家井组塘边", "", "",
     "广场舞、坝坝电影、屋场会场地（可容纳 200 人）", "全天开放"),
    ("江背社区", "business", "江背镇老街惠民理发店", "老街 18 号", "李师傅", "13700005678",
     "70 岁以上老人免费理发，每月一次上门为行动不便的老人理发", "9:00—19:00，周一休息"),
    ("江背社区", "place", "江背社区新时代文明实践站", "江背社区服务中心二楼", "罗敏",
     "0731-86289876", "四点半课堂、法律咨询、健康讲座；场地免费借用须提前预约",
     "工作日 9:00—17:00"),
    ("五美村", "team", "五美村应急救援队", "五美村村部", "彭德胜", "13600002345",
     "防汛抗旱、山林防火、道路抢修，配抽水泵 2 台", "汛期 24 小时值班"),
    ("印山村", "business", "印山茶园农家乐", "印山村茶园组 6 号", "谭金花", "13500003456",
     "为村里活动提供餐食优惠，吸纳 12 名村民就业", ""),
)


def _demo_resources(town, holders) -> dict:
    """辖区社会资源, through the service: a 红色驿站, volunteer teams, a square, businesses."""
    from portal.blueprints.ledgers import ledgers

    _regions, by_name, act = _acting(town, holders)
    office = act(holders[(town.id, "town_staff")])
    for where, kind, name, address, contact, phone, offer, opening in DEMO_RESOURCES:
        ledgers.save_resource(*office, None, by_name[where], {
            "kind": kind, "name": name, "address": address, "contact_name": contact,
            "contact_phone": phone, "services": offer, "opening": opening})
    db.session.flush()
    return {"社会资源": len(DEMO_RESOURCES)}
def _demo_notices(town, holders, households, now) -> dict:
    """通知公告 and 倡议, through the services with the seed's clock:

    * a town-wide notice from 刘建国 (镇干部) two days ago, read by about half its recipients
      (胡新林 has not opened it: his nav shows the unread badge);
    * a notice from 陈志强 (片长) to 特立村第一片 this morning, read by a few;
    * 胡新林's call-out to clear the 杨家井组 basketball court in three days, with a dozen
      sign-ups in ten minutes (a few by phones of his own households), and one from last week,
      over and ready to be recorded as 文明示范员 duty."""
    from sqlalchemy import update

    from portal.blueprints.notices import services as ns
    from portal.blueprints.notices.models import NoticeRecipient

    regions, by_name, act = _acting(town, holders)
    rng = random.Random(7)
    staff = holders[(town.id, "town_staff")]
    area = next(r for r in regions.values() if r.name == "第一片"
                and r.path.startswith(by_name["特立村"].path))
    hood = by_name["杨家井一邻"]
    chief = holders[(hood.id, "neighbor_chief")]

    town_notice = ns.publish(*act(staff), town, "关于开展冬季防火安全检查的通知", (
        "各村(社区)、各位片长、组长、邻长：\n"
        "冬季天干物燥，请于本月 28 日集中走访日前，对联系户逐户开展一次防火安全检查：\n"
        "1. 重点查看独居老人、留守儿童家庭的电线、取暖器和灶台；\n"
        "2. 发现隐患当场提醒，处理不了的在“诉求”里代录上报；\n"
        "3. 检查情况记为“安全防护员”履职。\n"
        "江背镇人民政府"), now=now - timedelta(days=2))
    area_notice = ns.publish(*act(holders[(area.id, "area_chief")]), area,
                             "本周五群众工作日安排", (
        "本周五上午 9 点在特立村村务议事室召开民情分析会，请各组长带上本月收集的问题台账，"
        "各邻长把联系户反映的问题提前报给组长。\n片长 陈志强"), now=now - timedelta(hours=3))
    for notice, share, hours in ((town_notice, 0.5, 40), (area_notice, 0.3, 2)):
        ids = list(db.session.scalars(select(NoticeRecipient.user_id).where(
            NoticeRecipient.notice_id == notice.id, NoticeRecipient.user_id != chief.id)
            .order_by(NoticeRecipient.user_id)))
        readers = rng.sample(ids, k=int(len(ids) * share))
        db.session.execute(update(NoticeRecipient).where(
            NoticeRecipient.notice_id == notice.id, NoticeRecipient.user_id.in_(readers))
            .values(read_at=now - timedelta(hours=hours)))

    today = local_today(now)
    own = [h for h, c in households if c is chief and h.phone]
    names = ["苏玲", "胡桂兰", "杨志强", "刘玉梅", "陈海波", "周春华", "李德胜", "王凤英",
             "张明亮", "黄小红", "赵长生", "吴冬梅"]
    posted = now - timedelta(minutes=30)
    court = ns.create_callout(*act(chief), hood, {
        "title": "一起清理篮球坪杂草", "place": "杨家井组篮球坪",
        "task": "暑假来了，请有时间的居民到篮球坪来跟我一起扯杂草，给孩子们多一点活动场地。"
                "自带手套，有锄头的带上锄头。",
        "starts_at": local_midnight_utc(today + timedelta(days=3)) + timedelta(hours=8),
        "cap": 30}, now=posted)
    db.session.flush()
    for i, name in enumerate(names):
        phone = own[i].phone if i < min(4, len(own)) else (
            f"139{rng.randint(0, 99999999):08d}" if i % 3 else "")
        ns.sign_up(court, {"name": name, "phone": phone, "people": 1 + (i % 4 == 0),
                           "note": "带锄头" if i % 5 == 1 else ""},
                   now=posted + timedelta(minutes=1 + i * 0.8))
    past = ns.create_callout(*act(chief), hood, {
        "title": "清理山塘边垃圾", "place": "杨家井山塘",
        "task": "山塘边堆了不少垃圾，周六早上一起捡干净，垃圾袋我来准备。",
        "starts_at": now + timedelta(hours=1), "cap": None}, now=now)
    db.session.flush()
    for i, name in enumerate(names[:6]):
        ns.sign_up(past, {"name": name, "phone": own[-1 - i].phone if i < len(own) else "",
                          "people": 1, "note": ""}, now=now)
    past.starts_at = local_midnight_utc(today - timedelta(days=5)) + timedelta(hours=8)
    past.created_at = past.starts_at - timedelta(days=2)
    return {"通知": 2, "倡议": 2, "倡议报名": len(names) + 6}
