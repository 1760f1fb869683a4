"""Residents vote on their own phone, without an account: at check-in each household gets a
one-time code (投票码); entered at /v it lets that phone vote for that household on the items of
that meeting while the meeting is open.

The session keeps only which attendance the phone speaks for (``vote_attendance``); every page
checks it again, so a code stops working when the meeting ends or the check-in is undone. The
pages show the household's own votes and nothing of other households. Wrong codes are
rate-limited per client address, counting failures only: 300 households at one 议事亭 share one
Wi-Fi address, and typing a good code never uses up the budget."""

from flask import current_app, flash, redirect, render_template, request, session, url_for
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from portal.blueprints.agenda import bp
from portal.blueprints.agenda import services as svc
from portal.blueprints.agenda.forms import ChoiceForm, CodeForm
from portal.blueprints.agenda.models import CHOICES, Attendance, Meeting, Vote
from portal.errors import MESSAGES, ServiceError, _retry_minutes
from portal.extensions import db, limiter
from portal.htmx import hx_target

#: Endpoints reached without an account (listed in PUBLIC_ENDPOINTS of the app).
PUBLIC = frozenset({"agenda.public_vote", "agenda.public_ballot", "agenda.public_cast",
                    "agenda.public_leave"})
SESSION_KEY = "vote_attendance"
GONE = "这个投票码已失效（签到已撤销）。如有疑问，请问主持人。"
ENDED = "会议已经结束，投票码已失效。谢谢您参加议事！"
NOT_THIS_MEETING = "这个议题不在您参加的会议上。"


def _code_limit() -> str:
    return current_app.config["AGENDA_CODE_LIMIT"]


def _failed(response) -> bool:
    """Only a refused code (or a stale form) counts against the address's budget."""
    return response.status_code in (400, 422)


code_limit = limiter.limit(_code_limit, methods=["POST"], deduct_when=_failed)


def household_label(household) -> str:
    """The family name only ("张家"), as the resident pages of 民情诉求 say it."""
    return f"{household.head_name[:1]}家"


def _from_session():
    """(attendance, state): state is "ok" (meeting open), "ended", "gone" or None (no code
    entered). The session entry is dropped unless the state is "ok"."""
    saved = session.get(SESSION_KEY)
    if not saved:
        return None, None
    try:
        att_id, household_id, meeting_id = saved
    except (TypeError, ValueError):
        session.pop(SESSION_KEY, None)
        return None, None
    att = db.session.execute(
        select(Attendance)
        .options(joinedload(Attendance.meeting).joinedload(Meeting.venue),
                 joinedload(Attendance.household))
        .where(Attendance.id == att_id)).scalar_one_or_none()
    if att is None or att.household_id != household_id or att.meeting_id != meeting_id:
        session.pop(SESSION_KEY, None)
        return None, "gone"
    if att.meeting.status != "open":
        session.pop(SESSION_KEY, None)
        return att, "ended"
    return att, "ok"


# -- the code --------------------------------------------------------------------------------------
@bp.route("/v", methods=["GET", "POST"])
@code_limit
def public_vote():
    form = CodeForm()
    if request.method == "POST":
        if form.validate():
            att = svc.attendance_by_code(form.code.data)
            if att is not None:
                session[SESSION_KEY] = [att.id, att.household_id, att.meeting_id]
                return redirect(url_for("agenda.public_ballot"), 303)
            form.code.errors.append(svc.BAD_CODE)
        return _render_code(form, status=422)
    att, state = _from_session()
    return _render_code(CodeForm(formdata=None), current=att if state == "ok" else None,
                        notice=GONE if state == "gone" else None)


def _render_code(form, status: int = 200, current=None, notice: str | None = None):
    return render_template("agenda/public_code.html", form=form, notice=notice,
                           current=household_label(current.household) if current else None,
                           meeting=current.meeting if current else None), status


# -- the ballot ------------------------------------------------------------------------------------
def _render_ballot(att, state: str, error: tuple[int, str] | None = None, status: int = 200):
    items, mine = [], {}
    if state == "ok":
        items = svc.agenda(att.meeting_id)
        mine = dict(db.session.execute(
            select(Vote.item_id, Vote.choice).where(
                Vote.household_id == att.household_id,
                Vote.item_id.in_([i.id for i in items]))).all()) if items else {}
    ctx = {"att": att, "meeting": att.meeting, "ended": state != "ok", "items": items,
           "mine": mine, "error": error, "who": household_label(att.household)}
    template = "agenda/_ballot.html" if hx_target() == "ballot" else "agenda/public_ballot.html"
    return render_template(template, **ctx), status


@bp.get("/v/ballot")
def public_ballot():
    att, state = _from_session()
    if att is None:
        if state == "gone":
            flash(GONE)
        if hx_target():
            return "", 204, {"HX-Redirect": url_for("agenda.public_vote")}
        return redirect(url_for("agenda.public_vote"), 303)
    return _render_ballot(att, state)


def _ballot_row_id(item_id: int) -> str:
    return f"b-{item_id}"


@bp.post("/v/ballot/<int:item_id>")
def public_cast(item_id: int):
    att, state = _from_session()
    if att is None:
        flash(GONE if state == "gone" else "请先输入签到时拿到的投票码。")
        return redirect(url_for("agenda.public_vote"), 303)
    if state != "ok":
        return _render_ballot(att, state)
    item = svc.load_item(item_id)
    if item is None or item.meeting_id != att.meeting_id:
        return _render_ballot(att, state, (item_id, NOT_THIS_MEETING), 404)
    choice = ChoiceForm().choice.data or ""
    htmx = hx_target() == _ballot_row_id(item_id)
    try:
        svc.cast_vote(item, att.household_id, choice)
    except ServiceError as e:
        db.session.rollback()
        att, state = _from_session()
        if att is None or state != "ok":
            return redirect(url_for("agenda.public_ballot"), 303)
        if htmx:
            return _ballot_row(att, item_id, e.message, 422)
        return _render_ballot(att, state, (item_id, e.message), 422)
    db.session.commit()
    if htmx:
        att, _ = _from_session()
        return _ballot_row(att, item_id)
    flash(f"已投票：{CHOICES[choice]}。谢谢！")
    return redirect(url_for("agenda.public_ballot", _anchor=_ballot_row_id(item_id)), 303)


def _ballot_row(att, item_id: int, error: str | None = None, status: int = 200):
    item = svc.load_item(item_id)
    mine = db.session.scalar(select(Vote.choice).where(Vote.item_id == item_id,
                                                       Vote.household_id == att.household_id))
    return render_template("agenda/_ballot_row.html", item=item, mine={item_id: mine} if mine
                           else {}, row_error=error), status


@bp.post("/v/leave")
def public_leave():
    session.pop(SESSION_KEY, None)
    flash("已退出。需要再投票时，重新输入投票码即可。")
    return redirect(url_for("agenda.public_vote"), 303)


# -- errors of the public pages (headers: portal.__init__.residents_pages) -----------------------
def _too_many(e):
    """Too many wrong codes from this address: the code page again, saying when to retry.
    Other pages of the blueprint get the app's usual error page."""
    if request.endpoint not in PUBLIC:
        return current_app._find_error_handler(e, [])(e)
    form = CodeForm(formdata=None)
    form.form_errors.append(f"输错投票码的次数太多了。为防止有人乱试，请 {_retry_minutes()} "
                            "分钟后再试，或请主持人帮您投票。")
    return render_template("agenda/public_code.html", form=form, notice=None, current=None,
                           meeting=None, title=MESSAGES[429][0]), 429


bp.register_error_handler(429, _too_many)
