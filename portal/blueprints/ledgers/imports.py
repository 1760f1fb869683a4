"""Roster import (名册导入): households or 三长 from an XLSX, checked in a dry run, then written
all-or-nothing.

* ``check_file`` refuses what is not a sane XLSX (not a zip, an old .xls, a zip bomb) before
  anything unzips it (in the upload request: shown on the form, 422); ``read_sheet`` (in the
  background) checks the sheets' extent, reads the first sheet with calamine (values only),
  finds the header and returns the data rows, or refuses (:class:`FileRefused`, shown on the
  job's page).
* ``plan`` checks every row against the database (one query per table, loaded into dicts) and
  returns a :class:`Plan`: the problems (Excel row, column, message) and what applying would do.
  It never writes.
* ``apply`` writes a plan without problems with bulk Core statements in the caller's
  transaction, and one audit row.
* Jobs: the uploaded file and the job's state (a JSON file) live under
  ``<instance>/imports/``, named by an unguessable token and bound to the uploader; the dry run
  and then the import run in background threads of this process and write their progress into
  the state file, so any request (of any worker) sees it. The database cannot hold the progress: the import is one
  transaction, and SQLite has one writer.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import secrets
import threading
import time
import traceback
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from datetime import time as clock_time
from pathlib import Path

from flask import current_app
from python_calamine import CalamineError, CalamineWorkbook, PasswordError, WorksheetNotFound
from sqlalchemy import bindparam, delete, insert, select, update

from portal.audit import record
from portal.blueprints.auth.models import User
from portal.blueprints.regions.models import (
    ROLE_LEVEL,
    Household,
    HouseholdTag,
    Post,
    Region,
    household_tag_links,
)
from portal.clock import utcnow
from portal.extensions import db
from portal.phones import PHONE_RE, mask_phone
from portal.scope import path_range

log = logging.getLogger(__name__)

KINDS = {"households": "住户名册", "chiefs": "三长名册"}
#: An upload may be at most this big (100,000 household rows are about 4 MB).
MAX_BYTES = 20 * 1024 * 1024
#: ... and hold at most this many data rows.
MAX_ROWS = 120_000
#: Sum of the zip members' declared uncompressed sizes (a zip bomb declares more).
MAX_UNZIPPED = 400 * 1024 * 1024
MAX_MEMBERS = 2_000
#: Rows written per statement.
CHUNK = 2_000
#: A job whose state file has not moved for this long while "running" was cut off (restart).
STALE_SECONDS = 120

CHIEF_ROLES = {"邻长": "neighbor_chief", "组长": "group_chief", "片长": "area_chief"}
#: Region levels below the village, with their column keys.
SUB_LEVELS = (("area", "area"), ("group", "group"), ("hood", "neighborhood"))
LEVEL_COLUMN = {"area": "area", "group": "group", "neighborhood": "hood"}
TAG_SPLIT = re.compile(r"[、，,;；\s]+")


class FileRefused(Exception):
    """The file cannot be read as a roster at all (shown on the upload form, 422)."""


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    required: bool
    width: int
    limit: int | None = None
    aliases: tuple[str, ...] = ()


VILLAGE = Column("village", "村(社区)", True, 14, 60, ("村/社区", "村", "社区", "村名", "社区名称"))
AREA = Column("area", "片", True, 10, 60, ("片区",))
GROUP = Column("group", "组", True, 12, 60, ("小组", "村(居)民小组", "村民小组", "居民小组"))
HOOD = Column("hood", "邻", True, 10, 60, ("联户", "邻里"))

COLUMNS = {
    "households": (
        VILLAGE, AREA, GROUP, HOOD,
        Column("address", "地址", True, 28, 100, ("住址", "门牌", "家庭住址")),
        Column("head", "户主", True, 10, 40, ("户主姓名",)),
        Column("phone", "联系电话", False, 15, None, ("电话", "手机号", "手机", "联系方式")),
        Column("members", "人口", True, 8, None, ("人数", "家庭人口", "人口数")),
        Column("tags", "特殊标签", False, 18, None, ("标签", "特殊人群")),
    ),
    "chiefs": (
        Column("name", "姓名", True, 10, 40, ()),
        Column("phone", "手机号", True, 15, None, ("手机", "联系电话", "电话")),
        Column("role", "岗位", True, 8, None, ("职务",)),
        VILLAGE,
        Column("area", "片", False, 10, 60, AREA.aliases),
        Column("group", "组", False, 12, 60, GROUP.aliases),
        Column("hood", "邻", False, 10, 60, HOOD.aliases),
    ),
}
HEADER_BY_KEY = {k: {c.key: c.header for c in cols} for k, cols in COLUMNS.items()}


def _norm_header(text) -> str:
    text = "" if text is None else str(text)
    return re.sub(r"\s+", "", text).replace("（", "(").replace("）", ")").replace("*", "")


# -- the file ------------------------------------------------------------------------------------
def check_file(path: Path) -> None:
    """Refuse, before anything unzips it, what is not an XLSX or would unzip to too much (the
    zip's directory only: cheap enough for the upload request)."""
    size = path.stat().st_size
    if size == 0:
        raise FileRefused("文件是空的。请选一个填好的 Excel（.xlsx）文件。")
    with path.open("rb") as f:
        head = f.read(8)
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        raise FileRefused("这是旧版 Excel（.xls）文件。请在 Excel 或 WPS 里“另存为” .xlsx 后再上传。")
    if not zipfile.is_zipfile(path):
        raise FileRefused("这不是 Excel（.xlsx）文件。请下载模板，填好后保存为 .xlsx 再上传。")
    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise FileRefused("文件已损坏，无法打开。请在 Excel 里重新保存后再上传。") from e
    names = {i.filename for i in infos}
    if "xl/workbook.xml" not in names:
        raise FileRefused("这不是 Excel（.xlsx）文件。请下载模板，填好后保存为 .xlsx 再上传。")
    if len(infos) > MAX_MEMBERS or sum(i.file_size for i in infos) > MAX_UNZIPPED:
        raise FileRefused("文件解压后过大，不像正常的名册，已拒收。")


@dataclass
class Sheet:
    header_row: int
    #: column key → 0-based index in the row
    columns: dict[str, int]
    missing: list[str]
    #: (Excel row number, {column key: text})
    rows: list[tuple[int, dict[str, str]]]


def _text(value) -> str:
    """A cell's value as the text the checks read: calamine gives text as str ("" for a blank
    cell), numbers as float (a phone typed as a number is 13800138000.0, 人口 3 is 3.0), dates
    as date or datetime."""
    if type(value) is str:  # most cells: first
        return value.replace("\u3000", " ").strip() if value else ""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else str(value)
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d") if value.time() == clock_time.min else value.isoformat(" ")
    if isinstance(value, date):
        return value.isoformat()
    return str(value).strip()


#: The first sheet is held as one grid of rows × columns (calamine, ~40 bytes a cell): a sheet
#: may span at most this many cells (a roster of 120,000 rows × 9 columns is about 1.1 million).
MAX_CELLS = 6_000_000
#: a cell's or a row's reference (only <c> and <row> carry an attribute named r)
_COLUMN_REF = re.compile(rb' r="([A-Z]+)')
_ROW_REF = re.compile(rb' r="([0-9]+)"')


def _column_number(letters: bytes) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + ch - 64
    return n


def _count_tags(buf: bytes, name: bytes, prefixed: bool) -> int:
    """How many <name> elements start in ``buf`` (<x:name> too when the sheet uses a prefix)."""
    if prefixed:
        return len(re.findall(rb"<(?:\w+:)?" + name + rb"[\s>]", buf))
    return buf.count(b"<" + name + b" ") + buf.count(b"<" + name + b">")


def _last_row_start(buf: bytes) -> int:
    """Where the last row element starts in ``buf`` (-1 if none): the scan cuts there, so a row
    is never split between two pieces."""
    i = buf.rfind(b"row")
    while i > 0:
        start = buf.rfind(b"<", 0, i)
        tag = buf[start + 1:i]
        if start >= 0 and (tag == b"" or (tag.endswith(b":") and b"/" not in tag and b" " not in tag)) \
                and buf[i + 3:i + 4] in (b" ", b">"):
            return start
        i = buf.rfind(b"row", 0, i)
    return -1


def check_extent(path: Path) -> None:
    """Refuse a workbook whose sheets span too big a grid, before calamine builds it: one stray
    cell at XFD1048576 would make it ask for 500 GB and abort the whole process. A scan of the
    sheets' cell references (well under a second for 100,000 rows); every sheet, as which one
    is first is only known from the workbook's relationships."""
    too_big = ("表格的范围过大（名册以外很远的地方还有内容）。请删掉名册以外的行和列，"
               "或把名册复制到一个新文件后再上传。")
    with zipfile.ZipFile(path) as z:
        for info in z.infolist():
            if not (info.filename.startswith("xl/worksheets/") and info.filename.endswith(".xml")):
                continue
            rows = cols = row_tags = row_refs = cell_tags = cell_refs = widest = 0
            prefixed = None
            with z.open(info) as f:
                tail = b""
                while True:
                    chunk = f.read(1 << 20)
                    if prefixed is None:  # <x:sheetData>: elements with a namespace prefix
                        prefixed = b":sheetData" in chunk
                    buf = tail + chunk
                    cut = _last_row_start(buf) if chunk else len(buf)
                    if cut <= 0:  # no row starts here yet: read on (a row of 16 MB is not a roster)
                        if len(buf) > 16 << 20:
                            raise FileRefused(too_big)
                        tail = buf
                        continue
                    buf, tail = buf[:cut], buf[cut:]
                    refs = _ROW_REF.findall(buf)
                    letters = _COLUMN_REF.findall(buf)
                    if refs:
                        rows = max(rows, max(map(int, refs)))
                    if letters:
                        cols = max(cols, max(map(_column_number, set(letters))))
                    row_tags += _count_tags(buf, b"row", prefixed)
                    row_refs += len(refs)
                    cells = _count_tags(buf, b"c", prefixed)
                    cell_tags += cells
                    cell_refs += len(letters)
                    if cells and cell_tags > cell_refs:
                        # cells without a reference take the next column: count them per row
                        widest = max(widest, *(_count_tags(part, b"c", prefixed)
                                               for part in re.split(rb"<(?:\w+:)?row[\s>/]", buf)))
                    if not chunk:
                        break
            # rows and cells without a reference follow the last one that had one
            if (rows + row_tags - row_refs) * (cols + widest) > MAX_CELLS:
                raise FileRefused(too_big)


def read_sheet(path: Path, kind: str, on_row: Callable[[int, int], None] | None = None) -> Sheet:
    """The first sheet's header (searched in its first 10 rows) and non-blank data rows.

    ``on_row(done, total)`` is told how far reading has gone (rows of the sheet)."""
    check_file(path)
    cols = COLUMNS[kind]
    lookup = {}
    for c in cols:
        for name in (c.header, *c.aliases):
            lookup.setdefault(_norm_header(name), c.key)
    header_row, columns = 0, {}
    data: list[tuple[int, dict[str, str]]] = []
    try:
        check_extent(path)
        with CalamineWorkbook.from_path(str(path)) as wb:
            sheet = wb.get_sheet_by_index(0)
            total = (sheet.start[0] + sheet.height) if sheet.start else 0
            # calamine's rows start at the sheet's first row (leading blank rows included) and
            # its columns at the first column that has a value: n is the Excel row number
            for n, values in enumerate(sheet.iter_rows(), start=1):
                if on_row and n % 5000 == 0:
                    on_row(n, total)
                if not header_row:
                    found = {}
                    for i, v in enumerate(values):
                        key = lookup.get(_norm_header(v))
                        if key and key not in found:
                            found[key] = i
                    if len(found) >= 2:
                        header_row, columns = n, found
                    elif n >= 10:
                        break
                    continue
                cells = {k: _text(values[i]) if i < len(values) else "" for k, i in columns.items()}
                if not any(cells.values()):
                    continue
                data.append((n, cells))
                if len(data) > MAX_ROWS:
                    raise FileRefused(f"名册超过 {MAX_ROWS:,} 行。请按村拆成几个文件分别导入。")
    except WorksheetNotFound as e:
        raise FileRefused("文件里没有工作表。") from e
    except PasswordError as e:
        raise FileRefused("文件设了打开密码。请在 Excel 里取消密码、保存后再上传。") from e
    except (CalamineError, OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise FileRefused("无法读取这个 Excel 文件。请在 Excel 里重新保存为 .xlsx 后再上传。") from e
    if not header_row:
        raise FileRefused("第一个工作表的前 10 行里找不到表头（" + "、".join(c.header for c in cols)
                          + "）。请下载模板，按模板的表头填写。")
    if not data:
        raise FileRefused("名册里只有表头，没有数据行。")
    missing = [c.key for c in cols if c.required and c.key not in columns]
    return Sheet(header_row, columns, missing, data)


def normalise_phone(text: str) -> str | None:
    """13800138000 from "138 0013 8000", "138-0013-8000", "+86 13800138000"; None if malformed."""
    digits = re.sub(r"[\s\-()（）]", "", text)
    if digits.startswith("+86"):
        digits = digits[3:]
    elif digits.startswith("0086"):
        digits = digits[4:]
    elif digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    return digits if PHONE_RE.match(digits) else None


# -- the plan --------------------------------------------------------------------------------------
@dataclass
class Plan:
    kind: str
    town_id: int
    town_path: str
    rows: int = 0
    problems: list[tuple[int, str, str]] = field(default_factory=list)
    #: new regions in creation order: (ref, parent ref, level, name, full name); a ref is an int
    #: (an existing region) or a str key of a new one
    new_regions: list[tuple] = field(default_factory=list)
    creates: list[dict] = field(default_factory=list)
    updates: list[dict] = field(default_factory=list)
    unchanged: int = 0
    moved: int = 0
    #: 三长: accounts to create (phone → name)
    new_users: dict[str, str] = field(default_factory=dict)
    #: paths of the villages the rows lie in (the audit row goes to the one village, if one)
    villages: set[str] = field(default_factory=set)

    def summary(self) -> dict:
        return {"rows": self.rows, "created": len(self.creates), "updated": len(self.updates),
                "unchanged": self.unchanged, "moved": self.moved,
                "new_regions": len(self.new_regions), "new_users": len(self.new_users)}


class _Tree:
    """The town's regions by (parent, name); new ones planned on demand."""

    def __init__(self, town: Region):
        self.town = town
        self.nodes: dict[tuple, tuple] = {}  # (parent ref, name) → (ref, path or None)
        self.names: dict = {}
        self.new: list[tuple] = []
        for rid, parent_id, name, path in db.session.execute(
                select(Region.id, Region.parent_id, Region.name, Region.path)
                .where(path_range(Region.path, town.path))):
            self.nodes[(parent_id, name)] = (rid, path)
            self.names[rid] = name

    def village(self, name: str):
        return self.nodes.get((self.town.id, name))

    def child(self, parent_ref, level: str, name: str, full: str):
        node = self.nodes.get((parent_ref, name))
        if node is None:
            ref = f"{parent_ref}/{name}"
            node = (ref, None)
            self.nodes[(parent_ref, name)] = node
            self.new.append((ref, parent_ref, level, name, full))
        return node[0]


def _check_text(problems, n, kind, cells, keys) -> None:
    for c in COLUMNS[kind]:
        if c.key not in keys:
            continue
        value = cells.get(c.key, "")
        if c.required and not value:
            problems.append((n, c.header, "不能为空"))
        elif c.limit and len(value) > c.limit:
            problems.append((n, c.header, f"太长（最多 {c.limit} 个字）"))


def _region_chain(plan, tree, scope, n, kind, cells, depth: int):
    """The ref of the row's node ``depth`` levels below the village (0 = the village), or None
    after adding the row's problem."""
    header = HEADER_BY_KEY[kind]
    village = tree.village(cells["village"]) if cells["village"] else None
    if village is None:
        if cells["village"]:
            plan.problems.append((n, header["village"], f"未知的村(社区)“{cells['village']}”"))
        return None
    if not scope.allows("manage", village[1]):
        plan.problems.append((n, header["village"], f"“{cells['village']}”不在您的管理范围"))
        return None
    plan.villages.add(village[1])
    ref, names = village[0], [cells["village"]]
    for key, level in SUB_LEVELS[:depth]:
        name = cells[key]
        if not name or len(name) > 60:
            return None  # reported by _check_text
        names.append(name)
        ref = tree.child(ref, level, name, " · ".join(names))
    return ref


def _load_users(phones: list[str]) -> tuple[dict, dict]:
    """Accounts by phone (id, name) and their active posts' paths ("/" for a global one)."""
    users, paths = {}, {}
    for i in range(0, len(phones), 1000):
        chunk = phones[i:i + 1000]
        for uid, phone, name in db.session.execute(
                select(User.id, User.phone, User.name).where(User.phone.in_(chunk))):
            users[phone] = (uid, name)
    ids = [u[0] for u in users.values()]
    for i in range(0, len(ids), 1000):
        for uid, rid, role, path in db.session.execute(
                select(Post.user_id, Post.region_id, Post.role, Region.path)
                .outerjoin(Region, Post.region_id == Region.id)
                .where(Post.user_id.in_(ids[i:i + 1000]), Post.ended_at.is_(None))):
            paths.setdefault(uid, []).append((rid, role, path or "/"))
    return users, paths


def _counted(rows: list, progress: Callable[[int], None] | None) -> Iterator:
    """``rows``, telling ``progress`` every 5,000 how many have been checked."""
    for i, row in enumerate(rows, start=1):
        if progress and i % 5000 == 0:
            progress(i)
        yield row


def plan(kind: str, town: Region, scope, sheet: Sheet,
         progress: Callable[[int], None] | None = None) -> Plan:
    """Check every row; what an import would do. Reads only."""
    p = Plan(kind, town.id, town.path, rows=len(sheet.rows))
    header = HEADER_BY_KEY[kind]
    if sheet.missing:
        for key in sheet.missing:
            p.problems.append((sheet.header_row, header[key], "表头缺少这一列"))
        return p
    tree = _Tree(town)
    if kind == "households":
        _plan_households(p, tree, scope, sheet, progress)
    else:
        _plan_chiefs(p, tree, scope, sheet, progress)
    p.new_regions = tree.new
    p.problems.sort(key=lambda x: x[0])
    return p


def _plan_households(p: Plan, tree: _Tree, scope, sheet: Sheet, progress=None) -> None:
    header = HEADER_BY_KEY["households"]
    tags = {name: tid for tid, name in db.session.execute(
        select(HouseholdTag.id, HouseholdTag.name).where(HouseholdTag.town_id == tree.town.id))}
    existing = {}  # (village id, address, head) → household row
    for row in db.session.execute(
            select(Household.id, Household.neighborhood_id, Household.address,
                   Household.head_name, Household.phone, Household.member_count,
                   Household.special_since, Region.path)
            .join(Region, Household.neighborhood_id == Region.id)
            .where(path_range(Region.path, tree.town.path))):
        village_id = int(row.path.strip("/").split("/")[1])
        existing[(village_id, row.address, row.head_name)] = row
    links: dict[int, set] = {}
    for hid, tid in db.session.execute(
            select(household_tag_links.c.household_id, household_tag_links.c.tag_id)
            .join(Household, Household.id == household_tag_links.c.household_id)
            .join(Region, Household.neighborhood_id == Region.id)
            .where(path_range(Region.path, tree.town.path))):
        links.setdefault(hid, set()).add(tid)

    seen_keys: dict[tuple, int] = {}
    seen_phones: dict[str, int] = {}
    matched: set[int] = set()
    phone_rows: list[tuple[int, str, int | None]] = []
    now = utcnow()
    for n, cells in _counted(sheet.rows, progress):
        before = len(p.problems)
        _check_text(p.problems, n, "households", cells, header)
        hood = _region_chain(p, tree, scope, n, "households", cells, 3)
        phone = None
        if cells["phone"]:
            phone = normalise_phone(cells["phone"])
            if phone is None:
                p.problems.append((n, header["phone"], "手机号格式不对（应为 11 位、以 1 开头）"))
            elif phone in seen_phones:
                p.problems.append((n, header["phone"],
                                   f"{mask_phone(phone)} 与第 {seen_phones[phone]} 行相同"))
            else:
                seen_phones[phone] = n
        members = None
        if cells["members"]:
            try:
                members = int(float(cells["members"]))
                if members != float(cells["members"]) or not 1 <= members <= 30:
                    raise ValueError
            except ValueError:
                members = None
                p.problems.append((n, header["members"], "人口应为 1 到 30 的整数"))
        tag_ids = set()
        for name in TAG_SPLIT.split(cells["tags"]):
            if not name:
                continue
            if name in tags:
                tag_ids.add(tags[name])
            else:
                p.problems.append((n, header["tags"], f"未知的标签“{name}”（本镇标签：{'、'.join(tags)}）"))
        if hood is None or len(p.problems) > before:
            continue
        village_id = tree.village(cells["village"])[0]
        key = (village_id, cells["address"], cells["head"])
        if key in seen_keys:
            p.problems.append((n, header["head"], f"与第 {seen_keys[key]} 行是同一户（同村、同地址、同户主）"))
            continue
        seen_keys[key] = n
        old = existing.get(key)
        if old is not None:
            matched.add(old.id)
        phone_rows.append((n, phone, old.id if old else None))
        if old is None:
            p.creates.append({"hood": hood, "address": cells["address"], "head": cells["head"],
                              "phone": phone, "members": members, "tags": sorted(tag_ids)})
            continue
        old_tags = links.get(old.id, set())
        if (old.neighborhood_id == hood and old.phone == phone and old.member_count == members
                and old_tags == tag_ids):
            p.unchanged += 1
            continue
        if old.neighborhood_id != hood:
            p.moved += 1
        special = old.special_since if (old.special_since and tag_ids) else (now if tag_ids else None)
        p.updates.append({"id": old.id, "hood": hood, "phone": phone, "members": members,
                          "special_since": special,
                          "tags": sorted(tag_ids) if tag_ids != old_tags else None})
    # a phone stays with a household the file does not mention
    others = {row.phone: row for row in existing.values()
              if row.phone and row.id not in matched}
    for n, phone, _ in phone_rows:
        if phone and phone in others:
            p.problems.append((n, header["phone"], f"{mask_phone(phone)} 已登记在本镇另一户名下"))


def _plan_chiefs(p: Plan, tree: _Tree, scope, sheet: Sheet, progress=None) -> None:
    header = HEADER_BY_KEY["chiefs"]
    phones = {}
    for n, cells in sheet.rows:
        phone = normalise_phone(cells["phone"]) if cells["phone"] else None
        if phone:
            phones[n] = phone
    users, user_posts = _load_users(sorted(set(phones.values())))
    seen_names: dict[str, tuple[int, str]] = {}
    seen_keys: dict[tuple, int] = {}
    for n, cells in _counted(sheet.rows, progress):
        before = len(p.problems)
        _check_text(p.problems, n, "chiefs", cells, header)
        role = CHIEF_ROLES.get(cells["role"])
        depth = 0
        if cells["role"] and role is None:
            p.problems.append((n, header["role"], "岗位应为 邻长、组长 或 片长"))
        elif role:
            level = ROLE_LEVEL[role]
            depth = [lv for _, lv in SUB_LEVELS].index(level) + 1
            for i, (key, _lv) in enumerate(SUB_LEVELS):
                if i < depth and not cells[key]:
                    p.problems.append((n, header[key], f"{cells['role']}要填到“{header[key]}”"))
                elif i >= depth and cells[key]:
                    p.problems.append((n, header[key], f"{cells['role']}设在{header[SUB_LEVELS[depth - 1][0]]}一级，这一列应留空"))
        phone = phones.get(n)
        if cells["phone"] and phone is None:
            p.problems.append((n, header["phone"], "手机号格式不对（应为 11 位、以 1 开头）"))
        region = _region_chain(p, tree, scope, n, "chiefs", cells, depth) if role else None
        if phone and cells["name"]:
            first = seen_names.get(phone)
            if first and first[1] != cells["name"]:
                p.problems.append((n, header["phone"], f"{mask_phone(phone)} 与第 {first[0]} 行相同，但姓名不同"))
            elif not first:
                seen_names[phone] = (n, cells["name"])
            user = users.get(phone)
            if user is not None:
                held = user_posts.get(user[0], [])
                if any(path == "/" for _, _, path in held) or (
                        held and not any(scope.can_view(path) for _, _, path in held)):
                    p.problems.append((n, header["phone"], f"{mask_phone(phone)} 已在其他单位任职，请联系镇(街道)干部办理"))
                elif user[1] != cells["name"]:
                    p.problems.append((n, header["name"], f"{mask_phone(phone)} 的账号姓名是“{user[1]}”，与表中不同"))
        if region is None or len(p.problems) > before:
            continue
        key = (phone, region, role)
        if key in seen_keys:
            p.problems.append((n, header["role"], f"与第 {seen_keys[key]} 行重复（同一人、同一单位、同一岗位）"))
            continue
        seen_keys[key] = n
        user = users.get(phone)
        if user is not None and isinstance(region, int) and any(
                rid == region and r == role for rid, r, _ in user_posts.get(user[0], [])):
            p.unchanged += 1
            continue
        if user is None:
            p.new_users.setdefault(phone, cells["name"])
        p.creates.append({"phone": phone, "region": region, "role": role})


# -- applying ------------------------------------------------------------------------------------
class Roster:
    """What the import's audit row is about (object type "roster")."""

    id = None


def _chunks(items: list, size: int = CHUNK) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _insert_ids(conn, table, rows: list[dict]) -> list[int]:
    """Insert ``rows`` (executemany, in chunks) and return their new ids in order."""
    ids: list[int] = []
    for chunk in _chunks(rows):
        result = conn.execute(insert(table).returning(table.c.id, sort_by_parameter_order=True),
                              chunk)
        ids.extend(result.scalars().all())
    return ids


def apply(actor, p: Plan, file_name: str, progress: Callable[[int], None] | None = None) -> dict:
    """Write the plan (no problems) in the session's transaction; the caller commits."""
    assert not p.problems
    conn = db.session.connection()
    now = utcnow()
    done = 0

    def step(k: int) -> None:
        nonlocal done
        done += k
        if progress:
            progress(done)

    # new regions, a level at a time (a child needs its parent's id and path)
    refs: dict = {}
    paths = dict(db.session.execute(select(Region.id, Region.path).where(
        path_range(Region.path, p.town_path))).all()) if p.new_regions else {}
    regions = Region.__table__
    for level in ("area", "group", "neighborhood"):
        todo = [r for r in p.new_regions if r[2] == level]
        if not todo:
            continue
        parents = [refs.get(r[1], r[1]) for r in todo]
        ids = _insert_ids(conn, regions, [
            {"parent_id": parent, "level": level, "name": r[3], "path": "",
             "created_at": now, "updated_at": now} for r, parent in zip(todo, parents, strict=True)])
        fixes = []
        for r, parent, rid in zip(todo, parents, ids, strict=True):
            refs[r[0]] = rid
            paths[rid] = f"{paths[parent]}{rid}/"
            fixes.append({"b_id": rid, "b_path": paths[rid]})
        for chunk in _chunks(fixes):
            conn.execute(update(regions).where(regions.c.id == bindparam("b_id"))
                         .values(path=bindparam("b_path")), chunk)

    def ref(x):
        return refs.get(x, x)

    created_users = 0
    if p.kind == "households":
        from portal.blueprints.regions.services import new_intake_token

        table = Household.__table__
        for chunk in _chunks(p.creates):
            ids = _insert_ids(conn, table, [
                {"neighborhood_id": ref(c["hood"]), "address": c["address"],
                 "head_name": c["head"], "phone": c["phone"], "member_count": c["members"],
                 "special_since": now if c["tags"] else None,
                 "intake_token": new_intake_token(), "created_at": now, "updated_at": now}
                for c in chunk])
            tag_rows = [{"household_id": hid, "tag_id": t}
                        for hid, c in zip(ids, chunk, strict=True) for t in c["tags"]]
            if tag_rows:
                conn.execute(insert(household_tag_links), tag_rows)
            step(len(chunk))
        for chunk in _chunks(p.updates):
            conn.execute(update(table).where(table.c.id == bindparam("b_id")).values(
                neighborhood_id=bindparam("b_hood"), phone=bindparam("b_phone"),
                member_count=bindparam("b_members"), special_since=bindparam("b_special"),
                updated_at=now), [
                {"b_id": u["id"], "b_hood": ref(u["hood"]), "b_phone": u["phone"],
                 "b_members": u["members"], "b_special": u["special_since"]} for u in chunk])
            retag = [u for u in chunk if u["tags"] is not None]
            if retag:
                conn.execute(delete(household_tag_links).where(
                    household_tag_links.c.household_id.in_([u["id"] for u in retag])))
                rows = [{"household_id": u["id"], "tag_id": t} for u in retag for t in u["tags"]]
                if rows:
                    conn.execute(insert(household_tag_links), rows)
            step(len(chunk))
    else:
        user_ids = {}
        if p.new_users:
            unusable = [{"phone": phone, "name": name,
                         # no password matches: staff set one with 重置密码
                         "password_hash": "!" + secrets.token_hex(16), "active": True,
                         "session_generation": 0, "created_at": now, "updated_at": now}
                        for phone, name in p.new_users.items()]
            ids = _insert_ids(conn, User.__table__, unusable)
            user_ids = dict(zip(p.new_users, ids, strict=True))
            created_users = len(ids)
        phones = [c["phone"] for c in p.creates if c["phone"] not in user_ids]
        for i in range(0, len(phones), 1000):
            user_ids.update(db.session.execute(select(User.phone, User.id).where(
                User.phone.in_(phones[i:i + 1000]))).all())
        for chunk in _chunks(p.creates):
            conn.execute(insert(Post.__table__), [
                {"user_id": user_ids[c["phone"]], "region_id": ref(c["region"]),
                 "role": c["role"], "started_at": now} for c in chunk])
            step(len(chunk))
    summary = p.summary()
    detail = {"roster": KINDS[p.kind], "file": file_name, "rows": summary["rows"],
              "created": summary["created"], "updated": summary["updated"],
              "unchanged": summary["unchanged"], "new_regions": summary["new_regions"]}
    if p.kind == "households":
        detail["moved"] = summary["moved"]
    else:
        detail["new_users"] = created_users
    path = next(iter(p.villages)) if len(p.villages) == 1 else p.town_path
    record(actor, f"import.{p.kind}", Roster(), path, **detail)
    return summary


def new_user_ids(p: Plan) -> list[int]:
    """The accounts the import made (after ``apply``), for the done page's password links."""
    phones = list(p.new_users)
    ids: list[int] = []
    for i in range(0, len(phones), 1000):
        ids.extend(db.session.scalars(select(User.id).where(User.phone.in_(phones[i:i + 1000]))))
    return sorted(ids)


# -- jobs ----------------------------------------------------------------------------------------
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{22,43}$")


def folder() -> Path:
    path = Path(current_app.config.get("IMPORT_DIR") or Path(current_app.instance_path) / "imports")
    path.mkdir(parents=True, exist_ok=True)
    return path


def new_token() -> str:
    return secrets.token_urlsafe(24)


def job_paths(token: str) -> tuple[Path, Path, Path]:
    base = folder()
    return base / f"{token}.xlsx", base / f"{token}.json", base / f"{token}.problems.json"


def write_state(token: str, state: dict) -> None:
    _, path, _ = job_paths(token)
    state["touched"] = time.time()
    tmp = path.with_name(f".{path.name}.{threading.get_ident()}")
    tmp.write_text(json.dumps(state, ensure_ascii=False))
    tmp.replace(path)


def read_state(token: str) -> dict | None:
    if not TOKEN_RE.match(token or ""):
        return None
    _, path, _ = job_paths(token)
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if state.get("status") in ("checking", "running") and not running(token) \
            and time.time() - state.get("touched", 0) > STALE_SECONDS:
        state["message"] = ("试导入被中断（服务器重启）。请重新上传。" if state["status"] == "checking"
                            else "导入被中断（服务器重启），没有保存任何数据。请重新上传。")
        state["status"] = "failed"
    return state


def write_problems(token: str, problems: list) -> None:
    _, _, path = job_paths(token)
    path.write_text(json.dumps(problems, ensure_ascii=False))


def read_problems(token: str) -> list:
    _, _, path = job_paths(token)
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return []


def sweep(max_age: float = 2 * 24 * 3600) -> None:
    """Remove jobs older than two days (abandoned dry runs keep their file until then)."""
    cutoff = time.time() - max_age
    for path in folder().iterdir():
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
        except OSError:
            pass


_threads: dict[str, threading.Thread] = {}
_lock = threading.Lock()


def running(token: str) -> bool:
    job = _threads.get(token)
    return job is not None and job.is_alive()


def start_dry_run(token: str, state: dict, actor_id: int) -> None:
    """Read and check job ``token``'s file in a background thread (the upload's dry run)."""
    app = current_app._get_current_object()
    state.update(status="checking", phase="读取文件", done=0, total=0, message="")
    write_state(token, state)
    with _lock:
        job = threading.Thread(target=_dry_run, args=(app, token, state, actor_id), daemon=True,
                               name=f"dry-run-{token[:8]}")
        _threads[token] = job
        job.start()


def _actor_scope(actor_id: int):
    """The user (posts and their regions loaded) and their scope, inside a job's thread."""
    from sqlalchemy.orm import selectinload

    from portal.scope import Scope

    actor = db.session.execute(select(User).options(
        selectinload(User.posts).joinedload(Post.region))
        .where(User.id == actor_id)).scalar_one()
    return actor, Scope.for_user(actor)


def _ticker(token: str, state: dict) -> Callable[[str, int, int], None]:
    """progress(phase, done, total): into the state file at most twice a second (and at the
    end of a phase)."""
    last = [0.0]

    def progress(phase: str, done: int, total: int) -> None:
        if phase != state.get("phase") or time.time() - last[0] > 0.5 or done >= total:
            last[0] = time.time()
            state.update(phase=phase, done=min(done, total), total=total)
            write_state(token, state)

    return progress


@contextlib.contextmanager
def _job(token: str, state: dict, what: str, failed: str) -> Iterator[Path]:
    """Around a background step of job ``token`` (yields its uploaded file): a refused file or
    any error rolls back, removes the file and marks the job failed; the state file is written
    at the end whatever happened. ``failed`` is the message for an unexpected error; only its
    type and traceback are logged, as a database error's message holds the statement's
    parameters (residents' phones)."""
    xlsx, _, _ = job_paths(token)
    try:
        yield xlsx
    except FileRefused as e:
        db.session.rollback()
        xlsx.unlink(missing_ok=True)
        state.update(status="failed", message=str(e))
    except Exception as e:
        db.session.rollback()
        xlsx.unlink(missing_ok=True)
        log.error("roster %s %s failed: %s\n%s", what, token[:8], type(e).__name__,
                  "".join(traceback.format_tb(e.__traceback__)))
        state.update(status="failed", message=failed)
    finally:
        db.session.remove()
        write_state(token, state)


def _dry_run(app, token: str, state: dict, actor_id: int) -> None:
    with app.app_context(), _job(token, state, "dry run",
                                 "试导入出错，没有保存任何数据。请稍后重新上传；仍不行请联系管理员。") as xlsx:
        progress = _ticker(token, state)
        sheet = read_sheet(xlsx, state["kind"], lambda n, total: progress("读取文件", n, total))
        progress("核对", 0, len(sheet.rows))
        _, scope = _actor_scope(actor_id)
        town = db.session.get(Region, state["town_id"])
        p = plan(state["kind"], town, scope, sheet,
                 lambda k: progress("核对", k, len(sheet.rows)))
        db.session.rollback()
        write_problems(token, p.problems)
        state.update(status="checked", rows=p.rows, summary=p.summary(),
                     problem_count=len(p.problems),
                     new_regions=[r[4] for r in p.new_regions][:200],
                     new_users=[[name, mask_phone(phone)]
                                for phone, name in list(p.new_users.items())[:200]])
        if p.problems:
            xlsx.unlink(missing_ok=True)  # it cannot be imported; a corrected file comes next


def start(token: str, state: dict, actor_id: int) -> bool:
    """Run the import of job ``token`` in a background thread (once at a time)."""
    app = current_app._get_current_object()
    with _lock:
        if running(token):
            return False
        try:  # one start per job, across the server's processes too
            os.close(os.open(folder() / f"{token}.started", os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            return False
        state.update(status="running", phase="读取文件", done=0, message="")
        write_state(token, state)
        job = threading.Thread(target=_run, args=(app, token, state, actor_id), daemon=True,
                               name=f"import-{token[:8]}")
        _threads[token] = job
        job.start()
    return True


def _run(app, token: str, state: dict, actor_id: int) -> None:
    with app.app_context(), _job(token, state, "import",
                                 "导入出错，已全部撤销，没有保存任何数据。请稍后重试；仍不行请联系管理员。") as xlsx:
        tick = _ticker(token, state)

        def progress(phase: str, done: int) -> None:
            tick(phase, done, state["rows"])

        actor, scope = _actor_scope(actor_id)
        town = db.session.get(Region, state["town_id"])
        sheet = read_sheet(xlsx, state["kind"], lambda n, _total: progress("读取文件", n))
        progress("核对", 0)
        p = plan(state["kind"], town, scope, sheet, lambda k: progress("核对", k))
        if p.problems:
            db.session.rollback()
            write_problems(token, p.problems)
            state.update(status="refused", summary=p.summary(), problem_count=len(p.problems),
                         message="上传后数据已有变化，重新核对发现问题，没有导入任何数据。")
        else:
            progress("写入", 0)
            summary = apply(actor, p, state["file_name"], lambda k: progress("写入", k))
            users = new_user_ids(p) if p.new_users else []
            db.session.commit()
            state.update(status="done", summary=summary, new_user_ids=users[:500],
                         phase="完成", done=state["rows"])
        xlsx.unlink(missing_ok=True)  # imported, or refused: a corrected file comes next


def wait_all(timeout: float | None = None) -> None:
    """Block until every dry run and import started is done (tests, bench)."""
    for job in list(_threads.values()):
        job.join(timeout)

