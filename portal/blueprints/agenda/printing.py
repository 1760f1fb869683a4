"""议程 (posted at the 议事亭 before the meeting) and 会议纪要 (after it) as A4 PDFs.

Anyone who may see the meeting may print it (``get_meeting_or_404``). Everything the PDFs show is
loaded up front in a fixed number of queries — the meeting (with venue, region and convener), the
names of its region's ancestors, the agenda items (with category, raiser and owner), the
corrections of all items at once, and the attendance with households and 邻 — and the templates
only read attributes. User text reaches WeasyPrint escaped by Jinja's autoescape; the fetcher of
:func:`portal.pdf.render_pdf` refuses anything but ``data:`` URLs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta

from flask import render_template
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from portal.blueprints.agenda import bp
from portal.blueprints.agenda import services as svc
from portal.blueprints.agenda.models import (
    RULE_SHORT,
    RULES,
    VOTE_MODES,
    AgendaItem,
    Attendance,
    ResultCorrection,
)
from portal.blueprints.regions.models import Household, Region
from portal.clock import local_today, to_local, utcnow
from portal.extensions import db
from portal.pdf import FONTS, pdf_response, render_pdf
from portal.scope import get_meeting_or_404

WEEKDAYS = "一二三四五六日"
#: The item statuses whose locked result reads 通过 / 未通过 / 流会.
RESULT_WORDS = {"passed": "通过", "implementing": "通过", "answered": "通过",
                "rejected": "未通过", "no_quorum": "流会"}
MODE_SHORT = {k: v.split("（")[0] for k, v in VOTE_MODES.items()}


@dataclass
class Present:
    """One household checked in: head, 邻, who came for it, when."""

    head_name: str
    hood_id: int
    hood: str
    representative: str
    at: object


@dataclass
class Row:
    """An agenda item with what the minutes say about it."""

    item: AgendaItem
    corrections: list[ResultCorrection] = field(default_factory=list)

    @property
    def result_word(self) -> str:
        if self.item.status in RESULT_WORDS and self.item.result_yes is not None:
            return RESULT_WORDS[self.item.status]
        return "表决中" if self.item.status == "voting" else "未表决"

    @property
    def counted(self) -> bool:
        return self.item.status in RESULT_WORDS and self.item.result_yes is not None

    @property
    def follows_up(self) -> bool:
        return self.item.status in ("passed", "implementing", "answered")


def _when(meeting) -> str:
    start = to_local(meeting.starts_at)
    end = to_local(meeting.starts_at + timedelta(minutes=meeting.planned_minutes))
    day = f"{start.year}年{start.month}月{start.day}日（星期{WEEKDAYS[start.weekday()]}）"
    return f"{day} {start:%H:%M}–{end:%H:%M}"


def _scope_name(region) -> str:
    """"江背镇 特立村 第一片 杨家井组": the region with its ancestors (one query)."""
    ids = region.ancestor_ids[:-1]
    names = dict(db.session.execute(select(Region.id, Region.name).where(Region.id.in_(ids)))
                 .all()) if ids else {}
    return " ".join([*(names[i] for i in ids if i in names), region.name])


def _heading(meeting) -> str:
    name = meeting.region.name
    return meeting.title if meeting.title.startswith(name) else f"{name}{meeting.title}"


def _agenda_items(meeting_id: int) -> list[AgendaItem]:
    return list(db.session.scalars(
        select(AgendaItem).options(joinedload(AgendaItem.category),
                                   joinedload(AgendaItem.raised_by), joinedload(AgendaItem.owner))
        .where(AgendaItem.meeting_id == meeting_id).order_by(AgendaItem.position)))


def _common(meeting) -> dict:
    items = _agenda_items(meeting.id)
    entitled = svc.entitled_of(meeting)
    now = utcnow()
    return {
        "meeting": meeting, "heading": _heading(meeting), "when": _when(meeting),
        "scope_name": _scope_name(meeting.region), "entitled": entitled, "items": items,
        "total_minutes": sum(i.planned_minutes for i in items),
        "overrun": svc.overrun(meeting, items),
        "rules_used": [(RULE_SHORT[r], RULES[r]) for r in RULES if any(i.rule == r for i in items)],
        "rule_short": RULE_SHORT, "mode_short": MODE_SHORT, "printed_at": now,
        "today": local_today(now), "fonts": Markup(FONTS),
    }


def _filename(meeting, what: str) -> str:
    day = to_local(meeting.starts_at)
    title = re.sub(r'[\\/:*?"<>|\s]+', "", _heading(meeting)) or "会议"
    return f"{title}{what}-{day:%Y%m%d}.pdf"


@bp.get("/agenda/meetings/<int:meeting_id>/agenda.pdf")
def agenda_pdf(meeting_id: int):
    """议程: to post at the 议事亭 before the meeting."""
    meeting = get_meeting_or_404(meeting_id)
    html = render_template("agenda/print_agenda.html", **_common(meeting))
    return pdf_response(render_pdf(html), _filename(meeting, "议程"))


@bp.get("/agenda/meetings/<int:meeting_id>/minutes.pdf")
def minutes_pdf(meeting_id: int):
    """会议纪要: attendance, each item's result, decision, corrections and follow-up, notes."""
    meeting = get_meeting_or_404(meeting_id)
    ctx = _common(meeting)
    rows = {i.id: Row(i) for i in ctx["items"]}
    if rows:
        for c in db.session.scalars(
                select(ResultCorrection).options(joinedload(ResultCorrection.user))
                .where(ResultCorrection.item_id.in_(list(rows)))
                .order_by(ResultCorrection.at, ResultCorrection.id)):
            rows[c.item_id].corrections.append(c)
    present = [Present(*row) for row in db.session.execute(
        select(Household.head_name, Region.id, Region.name, Attendance.representative,
               Attendance.checked_in_at)
        .join(Household, Attendance.household_id == Household.id)
        .join(Region, Household.neighborhood_id == Region.id)
        .where(Attendance.meeting_id == meeting.id)
        .order_by(Region.path, Household.address, Household.id))]
    by_hood: dict[int, list[Present]] = {}
    for p in present:  # in the order of the 邻's path
        by_hood.setdefault(p.hood_id, []).append(p)
    html = render_template("agenda/print_minutes.html", rows=list(rows.values()),
                           present=present, by_hood=[(ps[0].hood, ps) for ps in by_hood.values()],
                           **ctx)
    return pdf_response(render_pdf(html), _filename(meeting, "会议纪要"))
