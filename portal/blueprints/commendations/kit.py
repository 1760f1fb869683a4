"""The 四个一 print kit of every 邻长: a red vest (its issued date), a work card (工作证) with a
QR code to a public verification page, a policy card (政策明白卡: the town's 三张清单 and a text
town staff edit) and household contact cards (联户信息卡: the household's 邻长 and a QR code to
its request form). Each card prints alone or as a sheet of many for a whole village.

The rules (who records what, what is refused) and the loading of what the cards print live
here, each loader in a fixed number of queries however many cards; kit_views.py parses and
renders. Nothing here commits.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import date, datetime

from flask import render_template, url_for
from markupsafe import Markup
from sqlalchemy import and_, delete, select, update

from portal import batch
from portal.audit import record
from portal.blueprints.commendations.models import KIT_ITEMS, KitIssue, PolicyText
from portal.blueprints.regions.models import ROLE_LABELS, Household, Post, Region
from portal.clock import to_local, utcnow
from portal.errors import ServiceError, clean_text
from portal.extensions import db
from portal.pdf import FONTS, photo_data_url, qr_data_url, render_pdf
from portal.photos import read_photo
from portal.scope import path_range

#: The kinds of card, as the URLs name them.
CARDS = {"work": "工作证", "contact": "联户信息卡", "policy": "政策明白卡"}
#: Card sizes (mm) and how many fit an A4 sheet: CR80 (ID-1) for the work and contact cards,
#: 99 × 140 (a little under A6, so four fit inside A4's printable area) for the policy card.
SIZES = {"work": (85.6, 54), "contact": (85.6, 54), "policy": (99, 140)}
PER_SHEET = {"work": 10, "contact": 10, "policy": 4}
#: The work card's photo frame (3:4), in pixels: 300 dpi at 20 × 26.7 mm.
CARD_PHOTO = (240, 320)
#: The shortest side an uploaded card photo may have.
CARD_PHOTO_MIN_SIDE = 240
POLICY_MAX = 600
PHOTO_KIND = "kit"


def today(now: datetime | None = None) -> date:
    return to_local(now or utcnow()).date()


def new_card_token() -> str:
    """The secret of a work card's verification link (22 URL-safe characters, 128 bits)."""
    return secrets.token_urlsafe(16)


# -- rules ------------------------------------------------------------------------------------
def _check_chief(scope, post: Post, region: Region) -> None:
    if post.role != "neighbor_chief":
        raise ServiceError("四个一只发给邻长。")
    if not scope.allows("manage", region.path):
        raise PermissionError("由村(社区)或镇干部办理四个一。")


def set_card_photo(actor, scope, post: Post, region: Region, name: str) -> str | None:
    """The work card's photo is now the file ``name``; returns the replaced file's name (the
    view removes it after the commit)."""
    _check_chief(scope, post, region)
    if post.ended_at is not None:
        raise ServiceError("这个岗位已经结束，不能再制作工作证。", "photo")
    old, post.card_photo = post.card_photo, name
    record(actor, "kit.photo", post, region.path, holder=post.user.name)
    return old


def record_issue(actor, scope, post: Post, region: Region, item: str, issued_on,
                 now: datetime | None = None) -> KitIssue:
    """Record (or correct) the day one of the 四个一 was handed to the 邻长 of ``post``."""
    _check_chief(scope, post, region)
    if item not in KIT_ITEMS:
        raise ServiceError("请选择发放的物品。", "item")
    if post.ended_at is not None:
        raise ServiceError("这个岗位已经结束，不能再登记发放。", "issued_on")
    if not isinstance(issued_on, date):
        raise ServiceError("请填写发放日期。", "issued_on")
    if issued_on > today(now):
        raise ServiceError("发放日期不能晚于今天。", "issued_on")
    if issued_on < to_local(post.started_at).date():
        raise ServiceError(f"发放日期不能早于任职日期（{to_local(post.started_at).date()}）。",
                           "issued_on")
    issue = db.session.scalar(select(KitIssue).where(KitIssue.post_id == post.id,
                                                     KitIssue.item == item))
    if issue is None:
        issue = KitIssue(post_id=post.id, item=item)
        db.session.add(issue)
    elif issue.issued_on == issued_on:
        raise ServiceError(f"{KIT_ITEMS[item]}已登记在 {issued_on} 发放。", "issued_on")
    issue.issued_on, issue.recorded_by_id, issue.recorded_at = issued_on, actor.id, now or utcnow()
    record(actor, "kit.issue", post, region.path, holder=post.user.name, kit=item,
           issued_on=issued_on)
    return issue


def clear_issue(actor, scope, post: Post, region: Region, item: str) -> None:
    """Take back a record made in error (the item was not handed over after all)."""
    _check_chief(scope, post, region)
    if item not in KIT_ITEMS:
        raise ServiceError("请选择发放的物品。", "item")
    issue = db.session.scalar(select(KitIssue).where(KitIssue.post_id == post.id,
                                                     KitIssue.item == item))
    if issue is None:
        raise ServiceError(f"{KIT_ITEMS[item]}还没有登记发放。", "item")
    db.session.execute(delete(KitIssue).where(KitIssue.id == issue.id))
    record(actor, "kit.clear", post, region.path, holder=post.user.name, kit=item,
           issued_on=issue.issued_on)


def policy_of(town: Region) -> PolicyText | None:
    return db.session.scalar(select(PolicyText).where(PolicyText.town_id == town.id))


def default_policy_title(town: Region) -> str:
    return f"{town.name}政策明白卡"[:30]


def save_policy(actor, scope, town: Region, title: str, body: str) -> PolicyText:
    """Town staff write the policy card's heading and text."""
    if town.level != "town":
        raise ServiceError("政策明白卡按镇(街道)编写。")
    if not scope.allows("town", town.path):
        raise PermissionError("由镇(街道)干部编写政策明白卡。")
    title = clean_text(title, "标题", 30, minimum=2, field="title")
    body = clean_text(body, "政策内容", POLICY_MAX, minimum=10, field="body")
    policy = policy_of(town)
    if policy is None:
        policy = PolicyText(town_id=town.id, title=title, body=body)
        db.session.add(policy)
    elif (policy.title, policy.body) == (title, body):
        raise ServiceError("内容没有改动。", "body")
    policy.title, policy.body, policy.updated_by_id = title, body, actor.id
    record(actor, "policy.update", policy, town.path, title=title, length=len(body))
    return policy


def _fill(model, objects, attr: str, make) -> None:
    """Give every object without ``attr`` a new one from ``make`` (one UPDATE for all)."""
    missing = [o for o in objects if not getattr(o, attr)]
    for o in missing:
        setattr(o, attr, make())
    if missing:
        db.session.execute(update(model), [{"id": o.id, attr: getattr(o, attr)}
                                           for o in missing])


def fill_card_tokens(posts) -> None:
    """Give every post without one a verification token (one statement for all)."""
    _fill(Post, posts, "card_token", new_card_token)


def fill_intake_tokens(households) -> None:
    """Households older than the request links get theirs now (one statement for all)."""
    from portal.blueprints.regions.services import new_intake_token

    _fill(Household, households, "intake_token", new_intake_token)


# -- what the pages and cards show --------------------------------------------------------------
@dataclass
class Chief:
    """A 邻长's post with their name, phone, 邻 and the 四个一 issued."""

    post: Post
    name: str
    phone: str
    path: str
    issued: dict[str, date] = field(default_factory=dict)


def chiefs_under(region: Region, post_id: int | None = None) -> list[Chief]:
    """The current 邻长 under ``region`` (or the one of ``post_id``, current or not), with
    what they were issued: two queries."""
    from portal.blueprints.auth.models import User

    q = (select(Post, User.name, User.phone, Region.path)
         .join(User, User.id == Post.user_id).join(Region, Region.id == Post.region_id)
         .where(Post.role == "neighbor_chief"))
    if post_id is not None:
        q = q.where(Post.id == post_id)
    else:
        q = q.where(Post.ended_at.is_(None), path_range(Region.path, region.path))
    rows = [Chief(post, name, phone, path) for post, name, phone, path in db.session.execute(
        q.order_by(Region.path, User.name, Post.id).limit(5000))]
    by_post = {c.post.id: c for c in rows}
    if by_post:
        for post_id_, item, day in db.session.execute(
                select(KitIssue.post_id, KitIssue.item, KitIssue.issued_on)
                .where(KitIssue.post_id.in_(list(by_post)))):
            by_post[post_id_].issued[item] = day
    return rows


@dataclass
class HouseholdRow:
    household: Household
    path: str
    chief: str = ""
    chief_phone: str = ""


def households_under(region: Region, household_id: int | None = None) -> list[HouseholdRow]:
    """Households under ``region`` (or one), each with the 邻长 in post on its 邻: one query."""
    from portal.blueprints.auth.models import User

    q = (select(Household, Region.path, User.name, User.phone)
         .join(Region, Region.id == Household.neighborhood_id)
         .outerjoin(Post, and_(Post.region_id == Household.neighborhood_id,
                               Post.role == "neighbor_chief", Post.ended_at.is_(None)))
         .outerjoin(User, User.id == Post.user_id))
    if household_id is not None:
        q = q.where(Household.id == household_id)
    else:
        q = q.where(path_range(Region.path, region.path))
    rows: dict[int, HouseholdRow] = {}
    for household, path, name, phone in db.session.execute(
            q.order_by(Region.path, Household.address, Household.id, Post.id).limit(20000)):
        if household.id not in rows:  # two 邻长 on one 邻: the first appointed is printed
            rows[household.id] = HouseholdRow(household, path, name or "", phone or "")
    return list(rows.values())


def where(path: str, names: dict[int, str]) -> str:
    """"村 · 组 · 邻" (the 片 and the town left out: the card names the town apart)."""
    ids = [int(i) for i in path.strip("/").split("/")]
    parts = [ids[1]] if len(ids) > 1 else []
    parts += ids[3:]
    return " · ".join(names.get(i, "") for i in parts if names.get(i))


def checklists(town_id: int) -> dict[str, list[str]]:
    """The titles of the town's active 三张清单 items, by kind (one query)."""
    from portal.blueprints.duties.models import CHECKLIST_KINDS, ChecklistItem

    out: dict[str, list[str]] = {k: [] for k in CHECKLIST_KINDS}
    for kind, title in db.session.execute(
            select(ChecklistItem.kind, ChecklistItem.title)
            .where(ChecklistItem.town_id == town_id, ChecklistItem.active.is_(True))
            .order_by(ChecklistItem.kind, ChecklistItem.sort, ChecklistItem.id)):
        out[kind].append(title)
    return out


# -- the cards ----------------------------------------------------------------------------------
def verify_link(token: str) -> str:
    return url_for("commendations.card_check", token=token, _external=True)


def work_cards(chiefs: list[Chief], names: dict[int, str]) -> list[dict]:
    town = names.get(int(chiefs[0].path.strip("/").split("/")[0]), "") if chiefs else ""
    cards = []
    for c in chiefs:
        photo = read_photo(PHOTO_KIND, c.post.card_photo)
        cards.append({
            "name": c.name, "role": ROLE_LABELS[c.post.role], "where": where(c.path, names),
            "town": town, "since": to_local(c.post.started_at).date(),
            "link": verify_link(c.post.card_token),
            "photo": photo_data_url(photo, CARD_PHOTO) if photo else None})
    return cards


def contact_cards(rows: list[HouseholdRow], names: dict[int, str]) -> list[dict]:
    cards = []
    for r in rows:
        town = names.get(int(r.path.strip("/").split("/")[0]), "")
        link = url_for("requests.public_home", token=r.household.intake_token, _external=True)
        cards.append({
            "head": r.household.head_name, "address": r.household.address,
            "where": where(r.path, names), "town": town, "chief": r.chief,
            "phone": r.chief_phone, "link": link})
    return cards


def policy_cards(chiefs: list[Chief], names: dict[int, str], town: Region,
                 policy: PolicyText | None, items: dict[str, list[str]]) -> list[dict]:
    from portal.blueprints.duties.models import CHECKLIST_KINDS

    lists = [(CHECKLIST_KINDS[k], titles) for k, titles in items.items() if titles]
    common = {"title": policy.title if policy else default_policy_title(town),
              "body": policy.body if policy else "", "lists": lists, "town": town.name}
    return [{**common, "holder": c.name, "where": where(c.path, names)} for c in chiefs]


def cards_pdf(kind: str, cards: list[dict], sheet: bool) -> bytes:
    """One card (``sheet`` False: the page is the card) or A4 sheets of PER_SHEET cards with
    cut lines. User text reaches WeasyPrint escaped by autoescape."""
    # the QR codes are drawn here, not when the cards are gathered: a batch part renders in a
    # background thread, and a card's link is what its cache key hashes
    cards = [{**c, "qr": qr_data_url(c["link"], scale=1, border=1, kind="png")} if "link" in c
             else c for c in cards]
    pages = [cards[i:i + PER_SHEET[kind]] for i in range(0, len(cards), PER_SHEET[kind])]
    width, height = SIZES[kind]
    html = render_template("commendations/kit/print_cards.html", kind=kind, sheet=sheet,
                           pages=pages or [[]], fonts=Markup(FONTS), width=width, height=height,
                           label=CARDS[kind])
    return render_pdf(html)


#: Bump when the card templates change: cached parts of the old ones are not reused.
CARDS_VERSION = 1
#: A village's contact cards render in parts of this many (4 A4 pages), in the background.
PART_SIZE = PER_SHEET["contact"] * 4


def contact_parts(cards: list[dict]) -> list[batch.Part]:
    """A village's contact cards as parts of one batch print, each cached under a hash of what
    it prints (a changed household, 邻长 or link renders its part again)."""
    parts = []
    for i in range(0, len(cards), PART_SIZE):
        chunk = cards[i:i + PART_SIZE]
        key = batch.digest(CARDS_VERSION, "contact", [sorted(c.items()) for c in chunk])
        parts.append(batch.Part(batch.cache_dir("cards") / f"{key}.pdf",
                                lambda chunk=chunk: cards_pdf("contact", chunk, True)))
    return parts
