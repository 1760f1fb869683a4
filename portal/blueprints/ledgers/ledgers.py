"""The ledgers (台账) of a region: the figures behind 邻长信息台账, the registry of social resources
(辖区社会资源) with its rules, and the XLSX writers of both. The third ledger, 收集问题台账, is
``requests/reports.py``'s; the writers here follow its pattern (openpyxl write-only, Chinese
headers, frozen header, real date cells, ``filename*`` download).

Who may do what (the views ask ``scope``):

* the ledgers and the registry are read by those who supervise a region (组长, 片长, village and
  town staff, admin) over their subtree; 邻长 and volunteers are refused (403);
* social resources are registered, edited and deactivated by staff who manage the region they
  belong to (village and town staff, admin); their contact phone is shown in full to those staff
  and masked to the others, on the pages and in the XLSX.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter
from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import joinedload

from portal.audit import record
from portal.blueprints.agenda.models import Venue
from portal.blueprints.auth.models import User
from portal.blueprints.commendations.models import KIT_ITEMS, KitIssue
from portal.blueprints.duties.models import DutyLog
from portal.blueprints.duties.services import overdue_sql, rule_windows
from portal.blueprints.ledgers.models import RESOURCE_KINDS, VENUE_KIND_LABEL, SocialResource
from portal.blueprints.points.models import PointsEntry
from portal.blueprints.regions.models import Household, Post, Region
from portal.blueprints.regions.services import node_name, path_names
from portal.blueprints.requests.reports import _text
from portal.clock import local_today, to_local
from portal.errors import ServiceError, clean_text
from portal.extensions import db
from portal.phones import PHONE_RE, mask_phone
from portal.scope import path_range

DATE_FORMAT = "yyyy-mm-dd"
PERCENT_FORMAT = "0%"


# -- contact phones ------------------------------------------------------------------------------
#: A landline with its area code: 3-digit codes are 010 and 02x, the others 4 digits; the
#: number 7 or 8 digits not starting with 0 or 1; an extension after a dash.
LANDLINE_RE = re.compile(r"^(0(?:10|2\d|[3-9]\d{2}))([2-9]\d{6,7})$")
SERVICE_RE = re.compile(r"^([48]00)(\d{7})$")
PHONE_HELP = "联系电话应为手机号（如 13800138000）或带区号的座机（如 0731-86543210）。"
#: Full-width digits and dashes people type on a Chinese keyboard.
_WIDE = str.maketrans("０１２３４５６７８９－—", "0123456789--")


def check_contact_phone(text: str | None, field_name: str = "contact_phone") -> str:
    """A mobile or a landline, normalised: "13800138000", "0731-86543210",
    "0731-86543210-8001" (extension after a dash or 转), "400-123-4567"; "" when empty."""
    raw = re.sub(r"[\s()（）]", "", (text or "").translate(_WIDE))
    if not raw:
        return ""
    number, _, ext = raw.partition("转")
    parts = number.split("-")
    tries = [("".join(parts), ext)]
    if not ext and len(parts) > 1:  # the last dash may set off an extension
        tries.append(("".join(parts[:-1]), parts[-1]))
    for digits, extension in tries:
        if not digits.isdigit() or (extension and not re.fullmatch(r"\d{1,6}", extension)):
            continue
        if not extension and PHONE_RE.match(digits):
            return digits
        m = SERVICE_RE.match(digits)
        if m and not extension:
            return f"{m.group(1)}-{m.group(2)[:3]}-{m.group(2)[3:]}"
        m = LANDLINE_RE.match(digits)
        if m:
            return f"{m.group(1)}-{m.group(2)}" + (f"-{extension}" if extension else "")
    raise ServiceError(PHONE_HELP, field_name)


def mask_contact(phone: str | None) -> str:
    """138****8000; a landline keeps its area code and last four digits: 0731-****3210
    (400-****4567)."""
    if not phone:
        return ""
    if "-" not in phone:
        return mask_phone(phone)
    head, _, rest = phone.partition("-")
    number = rest.replace("-", "") if head in ("400", "800") else rest.split("-")[0]
    return f"{head}-****{number[-4:]}"


def tel_uri(phone: str) -> str:
    """A ``tel:`` link of a normalised contact phone (an extension dialled after a pause)."""
    head, _, rest = phone.partition("-")
    if head in ("400", "800") or not rest:
        return "tel:" + phone.replace("-", "")
    number, _, ext = rest.partition("-")
    return f"tel:{head}{number}" + (f",{ext}" if ext else "")


def tree_key(path: str) -> tuple[int, ...]:
    """Tree order of a path by its ids (as strings "/1/10/" would sort before "/1/3/")."""
    return tuple(int(p) for p in path.strip("/").split("/") if p)


# -- the registry --------------------------------------------------------------------------------
#: Levels a resource may be registered on (a single 邻 is too small a scope for one).
RESOURCE_LEVELS = ("town", "village", "area", "group")
FIELDS = ("kind", "name", "address", "contact_name", "contact_phone", "services", "opening")


def clean_resource(data: dict) -> dict:
    """The form's values checked and normalised, or the first refusal (on its field)."""
    kind = data.get("kind")
    if kind not in RESOURCE_KINDS:
        raise ServiceError("请选择资源类别。", "kind")
    # in the form's order, so the first refusal is the highest on the page
    out = {"kind": kind,
           "name": clean_text(data.get("name"), "名称", 60, 2, "name"),
           "services": clean_text(data.get("services"), "服务内容", 500, 2, "services"),
           "address": clean_text(data.get("address"), "地址", 100, 0, "address"),
           "contact_name": clean_text(data.get("contact_name"), "联系人", 40, 0, "contact_name"),
           "contact_phone": check_contact_phone(data.get("contact_phone")),
           "opening": clean_text(data.get("opening"), "开放时间及备注", 200, 0, "opening")}
    if out["contact_phone"] and not out["contact_name"]:
        raise ServiceError("填了联系电话，请一并填写联系人。", "contact_name")
    return out


def _audit_value(key: str, value):
    return mask_contact(value) if key == "contact_phone" else value


def save_resource(actor, scope, resource: SocialResource | None, region: Region,
                  data: dict) -> SocialResource:
    """Register a resource on ``region``, or change one (both need manage over the region and,
    for a change, over where the resource was)."""
    if not scope.allows("manage", region.path) or (
            resource is not None and not scope.allows("manage", resource.path)):
        raise ServiceError("只能在您管理的区域登记社会资源。", "region_id")
    if region.level not in RESOURCE_LEVELS:
        raise ServiceError("社会资源请登记到镇、村(社区)、片或组。", "region_id")
    values = clean_resource(data)
    if resource is None:
        resource = SocialResource(region_id=region.id, path=region.path, active=True,
                                  created_by_id=getattr(actor, "id", None), **values)
        db.session.add(resource)
        record(actor, "resource.create", resource, region.path, region=region.name,
               resource_kind=RESOURCE_KINDS[values["kind"]],
               **{k: _audit_value(k, v) for k, v in values.items() if k != "kind" and v})
        return resource
    changes = {k: [_audit_value(k, getattr(resource, k)), _audit_value(k, v)]
               for k, v in values.items() if getattr(resource, k) != v}
    if "kind" in changes:
        changes["resource_kind"] = [RESOURCE_KINDS.get(resource.kind, resource.kind),
                                    RESOURCE_KINDS[values["kind"]]]
        del changes["kind"]
    if resource.region_id != region.id:
        changes["region"] = [resource.region.name, region.name]
        resource.region_id, resource.path = region.id, region.path
    for k, v in values.items():
        setattr(resource, k, v)
    if changes:
        record(actor, "resource.update", resource, region.path,
               **{"name": resource.name, **changes})
    return resource


def set_active(actor, scope, resource: SocialResource, active: bool) -> None:
    if not scope.allows("manage", resource.path):
        raise ServiceError("只能停用或恢复您管理区域的社会资源。")
    if resource.active == active:
        raise ServiceError(f"“{resource.name}”已经{'在用' if active else '停用'}了。")
    resource.active = active
    record(actor, "resource.reactivate" if active else "resource.deactivate", resource,
           resource.path, name=resource.name)


def load_resource(resource_id: int) -> SocialResource | None:
    return db.session.execute(
        select(SocialResource).options(joinedload(SocialResource.region))
        .where(SocialResource.id == resource_id)).scalar_one_or_none()


@dataclass
class Entry:
    """One line of the registry or the ledger: a registered resource or a 议事场所."""

    kind_label: str
    name: str
    path: str
    region_name: str
    address: str
    contact_name: str
    contact_phone: str
    services: str
    active: bool
    resource: SocialResource | None = None
    venue: Venue | None = None


def registry(region: Region, kind: str | None = None, active_only: bool = False
             ) -> list[Entry]:
    """Resources and 议事场所 in ``region``'s subtree, in two queries: by kind (as the kinds are
    listed, 议事场所 last), then active first, then tree order and name. ``kind`` is a code of
    RESOURCE_KINDS or "venue"."""
    out: list[Entry] = []
    if kind != "venue":
        q = (select(SocialResource).options(joinedload(SocialResource.region))
             .where(path_range(SocialResource.path, region.path)))
        if kind:
            q = q.where(SocialResource.kind == kind)
        if active_only:
            q = q.where(SocialResource.active.is_(True))
        for r in db.session.scalars(q):
            out.append(Entry(r.kind_label, r.name, r.path, r.region.name, r.address,
                             r.contact_name, r.contact_phone, r.services, r.active, resource=r))
    if kind in (None, "", "venue"):
        q = (select(Venue).options(joinedload(Venue.region))
             .where(path_range(Venue.path, region.path)))
        if active_only:
            q = q.where(Venue.active.is_(True))
        for v in db.session.scalars(q):
            offer = f"{v.kind_label}，可容纳 {v.capacity} 人，召开议事会议"
            out.append(Entry(VENUE_KIND_LABEL, v.name, v.path, v.region.name, v.address, "", "",
                             offer, v.active, venue=v))
    order = {label: i for i, label in enumerate([*RESOURCE_KINDS.values(), VENUE_KIND_LABEL])}
    out.sort(key=lambda e: (order.get(e.kind_label, 99), not e.active, tree_key(e.path), e.name))
    return out


# -- 邻长信息台账 ------------------------------------------------------------------------------------
@dataclass
class ChiefRow:
    post_id: int
    user_id: int
    name: str
    phone: str
    path: str
    neighborhood_id: int
    started: date
    ended: date | None
    village: str = ""
    area: str = ""
    group: str = ""
    neighborhood: str = ""
    households: int = 0
    on_time: int = 0
    kit: dict[str, date] = field(default_factory=dict)
    contacts: int = 0
    points: int = 0
    balance: int = 0

    @property
    def on_time_share(self) -> float | None:
        return self.on_time / self.households if self.households else None


def chief_rows(region: Region, start_utc: datetime, end_utc: datetime, now: datetime
               ) -> list[ChiefRow]:
    """One row per 邻长 post under ``region`` active at any time in [start_utc, end_utc), in tree
    order, with its figures. Seven queries however many rows: the posts, the names on their
    paths, the town's contact rules, households per 邻 (and how many are not overdue now), the
    四个一 issued, the duty logs per person and 邻 in the period, and the points per person."""
    hood = Region
    in_period = and_(Post.role == "neighbor_chief", Post.started_at < end_utc,
                     or_(Post.ended_at.is_(None), Post.ended_at >= start_utc))
    posts_q = (select(Post.id).join(hood, hood.id == Post.region_id)
               .where(in_period, path_range(hood.path, region.path)))
    rows = [ChiefRow(pid, uid, name, phone, path, rid, to_local(started).date(),
                     to_local(ended).date() if ended else None)
            for pid, uid, name, phone, path, rid, started, ended in db.session.execute(
                select(Post.id, Post.user_id, User.name, User.phone, hood.path, hood.id,
                       Post.started_at, Post.ended_at)
                .join(User, User.id == Post.user_id).join(hood, hood.id == Post.region_id)
                .where(in_period, path_range(hood.path, region.path))
                .order_by(hood.path, Post.started_at, Post.id))]
    if not rows:
        return rows
    rows.sort(key=lambda r: (tree_key(r.path), r.started, r.post_id))
    names = path_names(r.path for r in rows)
    for r in rows:
        r.village, r.area, r.group, r.neighborhood = (node_name(r.path, names, d)
                                                      for d in (1, 2, 3, 4))

    by_cat = rule_windows(region.town_id, now)
    counts = {nid: (total, int(ok or 0)) for nid, total, ok in db.session.execute(
        select(Household.neighborhood_id, func.count(),
               func.sum(case((overdue_sql(by_cat), 0), else_=1)))
        .join(Region, Region.id == Household.neighborhood_id)
        .where(path_range(Region.path, region.path))
        .group_by(Household.neighborhood_id))}

    kits: dict[int, dict[str, date]] = {}
    for pid, item, day in db.session.execute(
            select(KitIssue.post_id, KitIssue.item, KitIssue.issued_on)
            .where(KitIssue.post_id.in_(posts_q.scalar_subquery()))):
        kits.setdefault(pid, {})[item] = day

    logs = {(uid, nid): n for uid, nid, n in db.session.execute(
        select(DutyLog.user_id, DutyLog.neighborhood_id, func.count())
        .join(Region, Region.id == DutyLog.neighborhood_id)
        .where(path_range(Region.path, region.path), DutyLog.voided_at.is_(None),
               DutyLog.occurred_at >= start_utc, DutyLog.occurred_at < end_utc)
        .group_by(DutyLog.user_id, DutyLog.neighborhood_id))}

    earned = case((and_(PointsEntry.kind.in_(("award", "reversal")),
                        PointsEntry.at >= start_utc, PointsEntry.at < end_utc),
                   PointsEntry.delta), else_=0)
    people = select(Post.user_id).join(hood, hood.id == Post.region_id) \
        .where(in_period, path_range(hood.path, region.path)).scalar_subquery()
    points = {uid: (int(p or 0), int(b or 0)) for uid, p, b in db.session.execute(
        select(PointsEntry.user_id, func.sum(earned), func.sum(PointsEntry.delta))
        .where(PointsEntry.user_id.in_(people)).group_by(PointsEntry.user_id))}

    for r in rows:
        r.households, r.on_time = counts.get(r.neighborhood_id, (0, 0))
        r.kit = kits.get(r.post_id, {})
        r.contacts = logs.get((r.user_id, r.neighborhood_id), 0)
        r.points, r.balance = points.get(r.user_id, (0, 0))
    return rows


# -- XLSX ----------------------------------------------------------------------------------------
def _title(ws, text: str) -> WriteOnlyCell:
    cell = WriteOnlyCell(ws, value=text)
    cell.font = Font(bold=True, size=13)
    return cell


def _header(ws, columns) -> list[WriteOnlyCell]:
    bold = Font(bold=True)
    wrap = Alignment(wrap_text=True, vertical="center")
    out = []
    for title, _ in columns:
        cell = WriteOnlyCell(ws, value=title)
        cell.font = bold
        cell.alignment = wrap
        out.append(cell)
    return out


def _day(ws, value: date | None) -> WriteOnlyCell:
    cell = WriteOnlyCell(ws, value=value)
    cell.number_format = DATE_FORMAT
    return cell


def _number(ws, value, fmt: str | None = None) -> WriteOnlyCell:
    cell = WriteOnlyCell(ws, value=value)
    if fmt:
        cell.number_format = fmt
    return cell


def _raw(ws, value: str) -> WriteOnlyCell:
    """A short text cell the portal wrote itself (a name, a phone): kept as text, never a
    number or a formula."""
    cell = WriteOnlyCell(ws, value=value or "")
    cell.data_type = "s"
    return cell


def _sheet(wb, name: str, columns, title: str):
    ws = wb.create_sheet(name)
    ws.freeze_panes = "A3"  # below the title and the header rows
    for i, (_, width) in enumerate(columns, 1):
        ws.column_dimensions[get_column_letter(i)].width = width
    ws.append([_title(ws, title)])
    ws.append(_header(ws, columns))
    return ws



#: (header, width in characters) of the 邻长信息台账.
CHIEF_COLUMNS = (
    ("村(社区)", 12), ("片", 9), ("组", 11), ("邻", 12), ("姓名", 9), ("手机号", 13),
    ("任职起始", 11), ("离任", 11), ("联系户数（截至导出时）", 11),
    *((f"{label}发放日期", 11) for label in KIT_ITEMS.values()),
    ("走访/联系次数", 9), ("按时联系户占比（截至导出时）", 12), ("本期积分", 8),
    ("积分余额", 8),
)


def chiefs_workbook(region: Region, period_label: str, first: date, last: date,
                    start_utc: datetime, end_utc: datetime, now: datetime):
    """The 邻长信息台账 of ``region`` for a period (a write-only workbook)."""
    wb = Workbook(write_only=True)
    title = (f"{region.name} 邻长信息台账 · {period_label}（{first:%Y-%m-%d} 至 {last:%Y-%m-%d}）"
             f" · 导出于 {to_local(now):%Y-%m-%d %H:%M}")
    ws = _sheet(wb, "邻长信息台账", CHIEF_COLUMNS, title)
    for r in chief_rows(region, start_utc, end_utc, now):
        ws.append([
            _raw(ws, r.village), _raw(ws, r.area), _raw(ws, r.group), _raw(ws, r.neighborhood),
            _raw(ws, r.name), _raw(ws, r.phone), _day(ws, r.started), _day(ws, r.ended),
            _number(ws, r.households),
            *(_day(ws, r.kit.get(item)) for item in KIT_ITEMS),
            _number(ws, r.contacts), _number(ws, r.on_time_share, PERCENT_FORMAT),
            _number(ws, r.points), _number(ws, r.balance),
        ])
    return wb


#: (header, width) of the 辖区社会资源台账.
RESOURCE_COLUMNS = (("类别", 10), ("名称", 20), ("所属村(社区)", 12), ("地址", 22),
                    ("联系人", 9), ("联系电话", 15), ("服务内容", 40), ("状态", 7))


def resources_workbook(region: Region, now: datetime, full_phone) -> Workbook:
    """The 辖区社会资源台账 of ``region``: registered resources and 议事场所, as a temporary file.
    ``full_phone(path)`` says whether a contact phone is written in full (else masked)."""
    wb = Workbook(write_only=True)
    title = f"{region.name} 辖区社会资源台账 · 截至 {local_today(now):%Y-%m-%d}"
    ws = _sheet(wb, "辖区社会资源台账", RESOURCE_COLUMNS, title)
    entries = registry(region)
    names = path_names(e.path for e in entries)
    for e in entries:
        village = node_name(e.path, names, 1) or "（镇直）"
        phone = e.contact_phone if full_phone(e.path) else mask_contact(e.contact_phone)
        ws.append([_raw(ws, e.kind_label), _text(ws, e.name), _raw(ws, village),
                   _text(ws, e.address), _text(ws, e.contact_name), _raw(ws, phone),
                   _text(ws, e.services, wrap=True), _raw(ws, "在用" if e.active else "停用")])
    return wb
