"""The chair's phone at the 议事亭: the meeting console (start, attendance and quorum, the agenda,
end), check-in of the households present (search and tap), and each item's vote (open, the live
tally, household votes tapped in or a show of hands, close with the result locked).

Every page is for whoever may chair the meeting (``services.can_chair``): others who can see it
get 403, those who cannot see it 404. Every change is a POST that calls one service, commits and
redirects (303) — or, for an htmx target (a check-in row, a vote row), returns that row with an
``HX-Trigger`` event so the attendance and tally refresh themselves. A refusal shows the
service's message with 422, nothing saved. Works without JavaScript."""

from types import SimpleNamespace

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from portal.blueprints.agenda import bp
from portal.blueprints.agenda import services as svc
from portal.blueprints.agenda.forms import CheckInForm, ChoiceForm, HandsForm
from portal.blueprints.agenda.models import (
    CHOICES,
    RULE_SHORT,
    RULES,
    VOTE_MODES,
    Attendance,
)
from portal.blueprints.regions.models import Household, Region
from portal.errors import ServiceError, show_on_form
from portal.extensions import db
from portal.htmx import hx_target
from portal.scope import current_scope, get_household_or_404, get_item_or_404, get_meeting_or_404

ATTENDANCE_EVENT = "attendance-changed"
VOTE_EVENT = "vote-changed"


@bp.context_processor
def _chair_labels():
    return {"rules": RULES, "rule_short": RULE_SHORT, "vote_modes": VOTE_MODES,
            "choices": CHOICES, "outcome_labels": svc.OUTCOME_LABELS, "vote_code": vote_code}


def vote_code(code: str | None) -> str:
    """"ABCD2345" → "ABCD 2345" (easier to read out and type)."""
    return f"{code[:4]} {code[4:]}" if code else ""


# -- loading -------------------------------------------------------------------------------------
def _chair_meeting(meeting_id: int):
    meeting = get_meeting_or_404(meeting_id)
    if not svc.can_chair(current_scope(), meeting):
        abort(403)
    return meeting


def _chair_item(item_id: int):
    item = get_item_or_404(item_id)
    if item.meeting is None:
        abort(404)
    if not svc.can_chair(current_scope(), item.meeting):
        abort(403)
    return item


def _attendance_ctx(meeting, items=None) -> dict:
    items = svc.agenda(meeting.id) if items is None else items
    present = svc.present_count(meeting.id)
    return {"present": present, "entitled": svc.entitled_of(meeting),
            "quorum": svc.quorum_state(meeting, items, present)}


def _present_rows(meeting_id: int, household_id: int | None = None):
    """(household, attendance, 邻 name) of the households checked in, in address order."""
    stmt = (select(Household, Attendance, Region.name)
            .join(Attendance, Attendance.household_id == Household.id)
            .join(Region, Household.neighborhood_id == Region.id)
            .where(Attendance.meeting_id == meeting_id))
    if household_id is not None:
        stmt = stmt.where(Household.id == household_id)
    return db.session.execute(stmt.order_by(Region.path, Household.address, Household.id)).all()


# -- the console -----------------------------------------------------------------------------------
def _render_run(meeting, error: str | None = None, status: int = 200):
    items = svc.agenda(meeting.id)
    ctx = _attendance_ctx(meeting, items) if meeting.status != "planned" else {}
    return render_template("agenda/run.html", meeting=meeting, items=items, error=error,
                           page="run", **ctx), status


@bp.get("/agenda/meetings/<int:meeting_id>/run")
def run(meeting_id: int):
    return _render_run(_chair_meeting(meeting_id))


@bp.get("/agenda/meetings/<int:meeting_id>/attendance")
def attendance(meeting_id: int):
    """到会 N / 应到 M and the quorum: the partial the console and check-in page poll."""
    meeting = _chair_meeting(meeting_id)
    page = "checkin" if request.args.get("page") == "checkin" else "run"
    if hx_target() != "attendance":
        return redirect(url_for(f"agenda.{page}", meeting_id=meeting_id))
    return render_template("agenda/_attendance.html", meeting=meeting, page=page,
                           **_attendance_ctx(meeting))


@bp.post("/agenda/meetings/<int:meeting_id>/open")
def open_meeting(meeting_id: int):
    meeting = _chair_meeting(meeting_id)
    try:
        svc.open_meeting(current_user, current_scope(), meeting)
    except ServiceError as e:
        db.session.rollback()
        return _render_run(_chair_meeting(meeting_id), e.message, 422)
    entitled = meeting.entitled_count
    db.session.commit()
    flash(f"会议已开始，应到 {entitled} 户。请为到会的户签到。")
    return redirect(url_for("agenda.checkin", meeting_id=meeting_id), 303)


@bp.route("/agenda/meetings/<int:meeting_id>/end", methods=["GET", "POST"])
def end_meeting(meeting_id: int):
    meeting = _chair_meeting(meeting_id)
    if request.method == "POST":
        try:
            back = svc.end_meeting(current_user, current_scope(), meeting)
        except ServiceError as e:
            db.session.rollback()
            return _render_end(_chair_meeting(meeting_id), e.message, 422)
        db.session.commit()
        flash("会议已结束，投票码已失效。" + (
            f"{back} 个未表决的议题已退回“提议”，可排入下次会议。" if back else ""))
        return redirect(url_for("agenda.run", meeting_id=meeting_id), 303)
    return _render_end(meeting)


def _render_end(meeting, error: str | None = None, status: int = 200):
    items = svc.agenda(meeting.id)
    return render_template(
        "agenda/confirm.html", kind="end", meeting=meeting, error=error,
        voting=[i for i in items if i.status == "voting"],
        unvoted=[i for i in items if i.status == "scheduled"],
        present=svc.present_count(meeting.id)), status


# -- check-in --------------------------------------------------------------------------------------
def _render_checkin(meeting, q: str, error: str | None = None, status: int = 200, form=None):
    rows = svc.entitled_households(meeting, q)
    ctx = {"meeting": meeting, "q": q, "rows": rows, "error": error, "page": "checkin",
           "form": form or CheckInForm(formdata=None), "limit": 30}
    if hx_target() == "checkin-list":
        return render_template("agenda/_checkin_list.html", **ctx), status
    return render_template("agenda/checkin.html", **ctx, **_attendance_ctx(meeting)), status


@bp.get("/agenda/meetings/<int:meeting_id>/checkin")
def checkin(meeting_id: int):
    meeting = _chair_meeting(meeting_id)
    return _render_checkin(meeting, request.args.get("q", "").strip()[:40])


def _row_id(household_id: int) -> str:
    return f"ci-{household_id}"


@bp.post("/agenda/meetings/<int:meeting_id>/checkin/<int:household_id>")
def check_in(meeting_id: int, household_id: int):
    meeting = _chair_meeting(meeting_id)
    household = get_household_or_404(household_id)
    q = (request.form.get("q") or "").strip()[:40]
    htmx = hx_target() == _row_id(household_id)
    form = CheckInForm()
    error = None
    if not form.validate():
        error = next(iter(e for errs in form.errors.values() for e in errs), "请检查填写的内容。")
    else:
        try:
            att, created = svc.check_in(current_user, current_scope(), meeting, household,
                                        form.representative.data or "")
        except ServiceError as e:
            db.session.rollback()
            error = e.message
    if error is not None:
        meeting = _chair_meeting(meeting_id)
        if htmx:
            return _checkin_row(meeting, household_id, q, error, 422)
        return _render_checkin(meeting, q, error, 422)
    name, code = household.head_name, att.code
    db.session.commit()
    if htmx:
        return _checkin_row(meeting, household_id, q, headers={"HX-Trigger": ATTENDANCE_EVENT})
    flash(f"已签到：{name}家 · 投票码 {vote_code(code)}" if created
          else f"{name}家已经签到过了 · 投票码 {vote_code(code)}")
    return redirect(url_for("agenda.checkin", meeting_id=meeting_id, q=q or None,
                            _anchor=_row_id(household_id)), 303)


def _checkin_row(meeting, household_id: int, q: str, error: str | None = None, status=200,
                 headers=None):
    """The one row of the check-in list (htmx), read fresh."""
    row = db.session.execute(
        select(Household, Attendance, Region.name)
        .join(Region, Household.neighborhood_id == Region.id)
        .outerjoin(Attendance, (Attendance.household_id == Household.id)
                   & (Attendance.meeting_id == meeting.id))
        .where(Household.id == household_id)).one()
    return render_template("agenda/_checkin_row.html", meeting=meeting, row=row, q=q,
                           error=error, form=CheckInForm(formdata=None)), status, headers or {}


@bp.route("/agenda/meetings/<int:meeting_id>/checkin/<int:household_id>/undo",
          methods=["GET", "POST"])
def undo_check_in(meeting_id: int, household_id: int):
    meeting = _chair_meeting(meeting_id)
    household = get_household_or_404(household_id)
    q = (request.values.get("q") or "").strip()[:40]
    if request.method == "POST":
        name = household.head_name
        try:
            svc.undo_check_in(current_user, current_scope(), meeting, household_id)
        except ServiceError as e:
            db.session.rollback()
            return _render_undo(_chair_meeting(meeting_id), get_household_or_404(household_id),
                                q, e.message, 422)
        db.session.commit()
        flash(f"已撤销{name}家的签到，投票码已作废。")
        return redirect(url_for("agenda.checkin", meeting_id=meeting_id, q=q or None), 303)
    return _render_undo(meeting, household, q)


def _render_undo(meeting, household, q: str, error: str | None = None, status: int = 200):
    return render_template("agenda/confirm.html", kind="undo", meeting=meeting, h=household,
                           q=q, error=error), status


# -- votes -----------------------------------------------------------------------------------------
def _current_outcome(item, t) -> str | None:
    """What the result would be if the vote closed now."""
    try:
        return svc.outcome(item.rule, t.yes, t.no, t.abstain, t.present, t.entitled)
    except ServiceError:
        return None


def _tally_ctx(item) -> dict:
    t = svc.tally(item)
    return {"item": item, "t": t, "now_result": _current_outcome(item, t)}


def _render_vote(item, error: str | None = None, status: int = 200, hands_form=None):
    meeting = item.meeting
    ctx = _tally_ctx(item) if item.status != "scheduled" else {"item": item}
    rows, votes = [], {}
    if item.vote_mode == "household" and item.status != "scheduled":
        rows = _present_rows(meeting.id)
        votes = svc.votes_of(item.id)
    if hands_form is None and item.vote_mode == "hands":
        hands_form = HandsForm(formdata=None)
        if item.hands_entered:
            hands_form.yes.data, hands_form.no.data = item.hands_yes, item.hands_no
            hands_form.abstain.data = item.hands_abstain
    return render_template("agenda/vote.html", meeting=meeting, rows=rows, votes=votes,
                           error=error, hands_form=hands_form, **ctx), status


@bp.get("/agenda/items/<int:item_id>/vote")
def vote(item_id: int):
    return _render_vote(_chair_item(item_id))


@bp.get("/agenda/items/<int:item_id>/tally")
def tally(item_id: int):
    """The live tally: polled every 2 s while the vote is open."""
    item = _chair_item(item_id)
    if hx_target() != "tally":
        return redirect(url_for("agenda.vote", item_id=item_id))
    return render_template("agenda/_tally.html", **_tally_ctx(item))


@bp.post("/agenda/items/<int:item_id>/open")
def open_vote(item_id: int):
    item = _chair_item(item_id)
    try:
        svc.open_vote(current_user, current_scope(), item)
    except ServiceError as e:
        db.session.rollback()
        return _render_vote(_chair_item(item_id), e.message, 422)
    title, hands = item.title, item.vote_mode == "hands"
    db.session.commit()
    flash(f"开始表决：{title}。" + ("请数清举手人数后录入。" if hands
                                 else "请逐户点选，或请居民用投票码在手机上投票。"))
    return redirect(url_for("agenda.vote", item_id=item_id), 303)


def _vote_row_id(household_id: int) -> str:
    return f"v-{household_id}"


@bp.post("/agenda/items/<int:item_id>/vote/<int:household_id>")
def record_vote(item_id: int, household_id: int):
    item = _chair_item(item_id)
    htmx = hx_target() == _vote_row_id(household_id)
    form = ChoiceForm()
    choice = form.choice.data or ""
    try:
        svc.cast_vote(item, household_id, choice, actor=current_user)
    except ServiceError as e:
        db.session.rollback()
        item = _chair_item(item_id)
        if htmx and _present_rows(item.meeting_id, household_id):
            return _vote_row(item, household_id, e.message, 422)
        return _render_vote(item, e.message, 422)
    db.session.commit()
    if htmx:
        return _vote_row(item, household_id, headers={"HX-Trigger": VOTE_EVENT})
    row = _present_rows(item.meeting_id, household_id)
    flash(f"已记录：{row[0][0].head_name}家 · {CHOICES[choice]}")
    return redirect(url_for("agenda.vote", item_id=item_id,
                            _anchor=_vote_row_id(household_id)), 303)


def _vote_row(item, household_id: int, error: str | None = None, status: int = 200,
              headers=None):
    rows = _present_rows(item.meeting_id, household_id)
    if not rows:
        abort(404)
    vote_ = svc.votes_of(item.id).get(household_id)
    return render_template("agenda/_vote_row.html", item=item, row=rows[0], vote=vote_,
                           error=error), status, headers or {}


@bp.post("/agenda/items/<int:item_id>/hands")
def hands(item_id: int):
    item = _chair_item(item_id)
    form = HandsForm()
    if form.validate():
        counts = form.yes.data, form.no.data, form.abstain.data
        try:
            svc.set_hands(current_user, current_scope(), item, *counts)
        except ServiceError as e:
            db.session.rollback()
            show_on_form(form, e)
        else:
            db.session.commit()
            flash("已录入举手票数：赞成 {} 反对 {} 弃权 {}。核对无误后请结束表决。".format(*counts))
            return redirect(url_for("agenda.vote", item_id=item_id), 303)
    return _render_vote(_chair_item(item_id), status=422, hands_form=form)


@bp.route("/agenda/items/<int:item_id>/close", methods=["GET", "POST"])
def close_vote(item_id: int):
    item = _chair_item(item_id)
    if request.method == "POST":
        try:
            result = svc.close_vote(current_user, current_scope(), item)
        except ServiceError as e:
            db.session.rollback()
            return _render_close(_chair_item(item_id), e.message, 422)
        r = SimpleNamespace(yes=item.result_yes, no=item.result_no, abstain=item.result_abstain,
                            present=item.result_present)
        db.session.commit()
        flash(f"表决结果：{svc.OUTCOME_LABELS[result]}（赞成 {r.yes} 反对 {r.no} 弃权 "
              f"{r.abstain}，到会 {r.present} 户）")
        return redirect(url_for("agenda.vote", item_id=item_id), 303)
    return _render_close(item)


def _render_close(item, error: str | None = None, status: int = 200):
    return render_template("agenda/confirm.html", kind="close", meeting=item.meeting,
                           error=error, **_tally_ctx(item)), status
