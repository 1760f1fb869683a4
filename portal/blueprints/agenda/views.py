"""Staff pages of 议事: the 议题 list, raising an item, one item with everything that can be done
with it now (off-list decision, scheduling, decision, answer, correction), venues and meetings
with their ordered agenda.

Every change is a POST that parses a form, calls one service, commits and redirects (303) back;
a rule's refusal (``ServiceError``) re-renders the page with the message on the form that was
sent (422, nothing saved); a role that may not act gets the 403 page (``PermissionError``)."""

from datetime import datetime, time, timedelta

from flask import abort, flash, get_flashed_messages, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import func, select
from sqlalchemy.orm import joinedload

from portal.blueprints.agenda import bp
from portal.blueprints.agenda import services as svc
from portal.blueprints.agenda.forms import (
    AnswerForm,
    AssignForm,
    CorrectForm,
    DecideForm,
    DecisionForm,
    ItemForm,
    MeetingForm,
    MinutesForm,
    MoveForm,
    ScheduleForm,
    TermsForm,
    UnscheduleForm,
    VenueForm,
)
from portal.blueprints.agenda.models import (
    ITEM_STATUSES,
    MEETING_KINDS,
    RULE_SHORT,
    RULES,
    VENUE_KINDS,
    VOTE_MODES,
    AgendaItem,
    Venue,
)
from portal.blueprints.regions.models import Region
from portal.clock import local_to_utc, local_today, to_local, utcnow
from portal.errors import attempt
from portal.extensions import db
from portal.htmx import hx_target
from portal.scope import current_scope, get_item_or_404, get_meeting_or_404, get_region_or_404

#: Status tabs of the 议题 list, in lifecycle order ("waiting" = off-list, staff to decide).
TABS = ("proposed", "scheduled", "voting", "passed", "rejected", "no_quorum", "implementing",
        "answered", "declined")
OFF_LIST = "off"
OFF_LIST_LABEL = "清单外事项（由镇村干部决定是否上会）"
#: The agenda partial of the meeting page (htmx swaps it after moving an item).
AGENDA_TARGET = "agenda-list"


@bp.context_processor
def _agenda_labels():
    return {"rules": RULES, "rule_short": RULE_SHORT, "vote_modes": VOTE_MODES,
            "item_statuses": ITEM_STATUSES, "meeting_kinds": MEETING_KINDS,
            "venue_kinds": VENUE_KINDS}


def _me():
    return current_user._get_current_object()


def _need_view(scope) -> None:
    if not scope.view_grants:
        abort(403)


def _region_choices(scope, action: str = "view", limit: int = 2000) -> dict[int, str]:
    """The regions the user may act on, in tree order, indented by depth."""
    top = min((p.count("/") for p in scope.top_paths(action)), default=2)
    rows = db.session.execute(
        scope.regions(action).with_only_columns(Region.id, Region.name, Region.path)
        .order_by(Region.path).limit(limit)).all()
    return {r.id: "　" * max(0, r.path.count("/") - top) + r.name for r in rows}


def _default_region(scope, choices) -> int | None:
    asked = request.args.get("region_id", type=int)
    if asked in choices:
        return asked
    hoods = [i for i in scope.neighborhood_ids() if i in choices]
    if hoods:
        return hoods[0]
    return next(iter(choices), None)


def _town_of_choice(region_id: int | None) -> int | None:
    region = db.session.get(Region, region_id) if region_id else None
    return region.town_id if region else None


# -- 议题 list ------------------------------------------------------------------------------------
@bp.get("/agenda/")
def index():
    scope = current_scope()
    _need_view(scope)
    status = request.args.get("status") or None
    if status not in (*TABS, "waiting", None):
        status = None
    counts = {}
    waiting = 0
    off_list = AgendaItem.category_id.is_(None)
    for st, off, n in db.session.execute(
            select(AgendaItem.status, off_list, func.count())
            .where(scope.region_clause(AgendaItem.path)).group_by(AgendaItem.status, off_list)):
        counts[st] = counts.get(st, 0) + n
        if st == "proposed" and off:
            waiting += n
    rows = svc.items(scope, status)
    return render_template(
        "agenda/index.html", rows=rows, status=status, counts=counts, waiting=waiting,
        total=sum(counts.values()), tabs=TABS,
        upcoming=svc.meetings(scope, upcoming=True, limit=5),
        overdue=svc.overdue_answers(scope, limit=20), today=local_today(),
        is_staff=scope.can_manage_any)


# -- raise an item --------------------------------------------------------------------------------
def _item_form_choices(form, scope, town_id):
    form.region_id.choices = _region_choices(scope)
    cats = svc.deliberation_items(town_id) if town_id else []
    form.category_id.choices = {"": "请选择…"} | {str(c.id): c.title for c in cats} | {
        OFF_LIST: OFF_LIST_LABEL}
    return cats


@bp.route("/agenda/items/new", methods=["GET", "POST"])
def new_item():
    scope = current_scope()
    asked = request.form.get("region_id", type=int) if request.method == "POST" else None
    if asked is not None:  # a region outside the user's subtrees: 404, as everywhere
        get_region_or_404(asked)
    _need_view(scope)
    form = ItemForm()
    choices = _region_choices(scope)
    if not choices:
        abort(403)
    if request.method == "GET":
        form.region_id.data = _default_region(scope, choices)
    town_id = _town_of_choice(form.region_id.data) or _town_of_choice(next(iter(choices)))
    cats = _item_form_choices(form, scope, town_id)
    if request.method == "POST":
        if form.validate_on_submit():
            region = get_region_or_404(form.region_id.data)
            data = {"title": form.title.data, "background": form.background.data,
                    "proposal": form.proposal.data, "category_id": form.category_id.data}
            done = {}
            if attempt(form, lambda: done.setdefault(
                    "item", svc.raise_item(_me(), scope, region, data))):
                db.session.commit()
                item = done["item"]
                flash("议题已提出。清单外事项等镇村干部决定是否上会。" if item.off_list
                      else "议题已提出，可以排入会议了。")
                return redirect(url_for("agenda.item", item_id=item.id), 303)
            cats = _item_form_choices(form, scope, town_id)
        return render_template("agenda/item_form.html", form=form, cats=cats,
                               off_label=OFF_LIST_LABEL), 422
    return render_template("agenda/item_form.html", form=form, cats=cats,
                           off_label=OFF_LIST_LABEL)


# -- one item -------------------------------------------------------------------------------------
def _schedule_meetings(scope, item):
    """Upcoming meetings the user can chair whose region contains the item."""
    return [m for m in svc.meetings(scope, upcoming=True)
            if m.status != "ended" and item.path.startswith(m.path) and svc.can_chair(scope, m)
            and m.id != item.meeting_id]


def _meeting_label(m) -> str:
    return f"{to_local(m.starts_at):%m-%d %H:%M} {m.title}（{m.region.name}）"


def _terms_defaults(form, meeting=None, item=None):
    if item is not None:
        form.planned_minutes.data = item.planned_minutes
        form.rule.data, form.vote_mode.data = item.rule, item.vote_mode
    else:
        form.planned_minutes.data = 15
        form.rule.data = "assembly" if meeting is not None and meeting.kind == "assembly" \
            else "present_majority"
        form.vote_mode.data = "household"
    return form


def _render_item(item, failed: str | None = None, form=None, status: int = 200):
    scope = current_scope()
    me = current_user.id
    manage = svc.can_manage(scope, item.path)
    meeting = item.meeting
    chair = meeting is not None and svc.can_chair(scope, meeting)
    forms = {}
    meetings = []
    cats = []
    owners = []
    if item.status == "proposed" and item.category_id is None and item.off_list and manage:
        f = DecideForm(formdata=None)
        cats = svc.deliberation_items(item.region.town_id)
        f.category_id.choices = {0: "请选择…"} | {c.id: c.title for c in cats}
        forms["decide"] = f
    if item.status == "proposed" and item.category_id is not None and scope.can_view(item.path):
        meetings = _schedule_meetings(scope, item)
        f = _terms_defaults(ScheduleForm(formdata=None))
        f.meeting_id.choices = {m.id: _meeting_label(m) for m in meetings}
        f.back.data = "item"
        forms["schedule"] = f
    if item.decided and chair and item.status not in ("answered",):
        f = DecisionForm(formdata=None)
        f.decision.data = item.decision
        forms["decision"] = f
    if item.status in ("passed", "implementing") and (manage or chair):
        owners = svc.owner_choices(item)
        f = AssignForm(formdata=None)
        f.owner_id.choices = {0: "请选择…"} | {u.id: u.name for u in owners}
        f.owner_id.data, f.answer_due.data = item.owner_id or 0, item.answer_due
        forms["assign"] = f
    if item.status == "implementing" and (me == item.owner_id or manage):
        forms["answer"] = AnswerForm(formdata=None)
    if failed is not None:
        if failed in ("decide", "assign", "schedule"):  # keep the choices of the blank form
            old = forms.get(failed)
            for name in ("category_id", "owner_id", "meeting_id"):
                if old is not None and name in old and name in form:
                    form[name].choices = old[name].choices
        forms[failed] = form
    return render_template(
        "agenda/item.html", item=item, meeting=meeting, chair=chair, manage=manage,
        forms=forms, failed=failed, meetings=meetings,
        corrections=svc.corrections(item.id) if item.decided else [],
        overdue=item.answer_overdue(local_today()), today=local_today()), status


@bp.get("/agenda/items/<int:item_id>")
def item(item_id: int):
    return _render_item(get_item_or_404(item_id))


def _item_change(item_id: int, name: str, form, change, message: str):
    """Validate ``form``, run ``change()`` (a service call), commit and go back to the item; on a
    refusal re-render the item page with ``form`` open and its message (422)."""
    if form.validate_on_submit() and attempt(form, change):
        db.session.commit()
        flash(message)
        return redirect(url_for("agenda.item", item_id=item_id, _anchor=name), 303)
    db.session.rollback()
    return _render_item(svc.load_item(item_id), failed=name, form=form, status=422)


@bp.post("/agenda/items/<int:item_id>/decide")
def decide(item_id: int):
    item = get_item_or_404(item_id)
    scope = current_scope()
    form = DecideForm()
    form.category_id.choices = {}
    accept = form.decision.data == "accept"
    return _item_change(
        item_id, "decide", form,
        lambda: svc.decide_off_list(_me(), scope, item, accept,
                                    form.category_id.data or None, form.note.data),
        "已准予上会，可以排入会议了。" if accept else "已决定不予上会，理由已记录。")


@bp.post("/agenda/items/<int:item_id>/schedule")
def schedule_item(item_id: int):
    item = get_item_or_404(item_id)
    scope = current_scope()
    form = ScheduleForm()
    form.meeting_id.choices = {}
    back = form.back.data if form.back.data in ("item", "meeting") else "item"
    if not form.validate_on_submit() or not form.meeting_id.data:
        if not form.meeting_id.errors and not form.meeting_id.data:
            form.meeting_id.errors.append("请选择会议。")
        return _back_to(back, item_id, form)
    meeting = get_meeting_or_404(form.meeting_id.data)
    data = {"planned_minutes": form.planned_minutes.data, "rule": form.rule.data,
            "vote_mode": form.vote_mode.data}
    if attempt(form, lambda: svc.schedule(_me(), scope, item, meeting, data)):
        db.session.commit()
        flash(f"已排入“{meeting.title}”议程第 {item.position} 项。")
        if back == "meeting":
            return redirect(url_for("agenda.meeting", meeting_id=meeting.id,
                                    _anchor=AGENDA_TARGET), 303)
        return redirect(url_for("agenda.item", item_id=item_id), 303)
    if back == "meeting":
        return _render_meeting(svc.load_meeting(meeting.id), failed=("schedule", item_id),
                               form=form, status=422)
    return _back_to(back, item_id, form)


def _back_to(back: str, item_id: int, form):
    db.session.rollback()
    if back == "meeting" and form.meeting_id.data:
        meeting = get_meeting_or_404(form.meeting_id.data)
        return _render_meeting(meeting, failed=("schedule", item_id), form=form, status=422)
    return _render_item(svc.load_item(item_id), failed="schedule", form=form, status=422)


@bp.post("/agenda/items/<int:item_id>/assign")
def assign(item_id: int):
    item = get_item_or_404(item_id)
    scope = current_scope()
    form = AssignForm()
    form.owner_id.choices = {}
    return _item_change(
        item_id, "assign", form,
        lambda: svc.assign_answer(_me(), scope, item, form.owner_id.data, form.answer_due.data),
        "已指定落实负责人和答复期限。")


@bp.post("/agenda/items/<int:item_id>/answer")
def answer(item_id: int):
    item = get_item_or_404(item_id)
    scope = current_scope()
    form = AnswerForm()
    return _item_change(item_id, "answer", form,
                        lambda: svc.answer_item(_me(), scope, item, form.answer.data),
                        "答复已保存，议题已办结。")


@bp.post("/agenda/items/<int:item_id>/decision")
def decision(item_id: int):
    item = get_item_or_404(item_id)
    scope = current_scope()
    form = DecisionForm()
    return _item_change(item_id, "decision", form,
                        lambda: svc.save_decision(_me(), scope, item, form.decision.data),
                        "决议已保存，会写进会议纪要。")


# -- correction (confirmation page) ---------------------------------------------------------------
CORRECTABLE = ("passed", "rejected", "no_quorum")


def _render_correct(item, form, status=200):
    return render_template("agenda/correct.html", item=item, form=form,
                           correctable=item.status in CORRECTABLE,
                           corrections=svc.corrections(item.id)), status


@bp.route("/agenda/items/<int:item_id>/correct", methods=["GET", "POST"])
def correct(item_id: int):
    item = get_item_or_404(item_id)
    scope = current_scope()
    if not svc.can_manage(scope, item.path):
        abort(403)
    form = CorrectForm()
    if request.method == "GET":
        form.yes.data, form.no.data = item.result_yes, item.result_no
        form.abstain.data = item.result_abstain
        return _render_correct(item, form)
    if form.validate_on_submit() and attempt(form, lambda: svc.correct_result(
            _me(), scope, item, form.yes.data, form.no.data, form.abstain.data,
            form.reason.data)):
        db.session.commit()
        flash(f"表决结果已更正为“{item.status_label}”，更正理由已记录。")
        return redirect(url_for("agenda.item", item_id=item_id), 303)
    db.session.rollback()
    return _render_correct(svc.load_item(item_id), form, 422)


# -- the agenda of a meeting: move, take off, terms ---------------------------------------------
def _scheduled_item(item_id: int):
    item = get_item_or_404(item_id)
    if item.meeting_id is None:
        abort(404)
    return item


@bp.post("/agenda/items/<int:item_id>/move")
def move_item(item_id: int):
    item = _scheduled_item(item_id)
    scope = current_scope()
    form = MoveForm()
    meeting_id = item.meeting_id
    if not form.validate_on_submit() or form.delta.data not in (-1, 1):
        abort(400)
    if attempt(form, lambda: svc.move(_me(), scope, item, form.delta.data)):
        db.session.commit()
        flash(f"“{item.title}”已{'上移' if form.delta.data < 0 else '下移'}。")
        return redirect(url_for("agenda.meeting", meeting_id=meeting_id,
                                _anchor=AGENDA_TARGET), 303)
    return _render_meeting(svc.load_meeting(meeting_id), failed=("move", item_id),
                           form=form, status=422)


@bp.post("/agenda/items/<int:item_id>/unschedule")
def unschedule_item(item_id: int):
    item = _scheduled_item(item_id)
    scope = current_scope()
    form = UnscheduleForm()
    meeting_id = item.meeting_id
    if form.validate_on_submit() and attempt(
            form, lambda: svc.unschedule(_me(), scope, item, form.note.data)):
        db.session.commit()
        flash(f"“{item.title}”已撤下，回到待排期。")
        return redirect(url_for("agenda.meeting", meeting_id=meeting_id,
                                _anchor=AGENDA_TARGET), 303)
    db.session.rollback()
    return _render_meeting(svc.load_meeting(meeting_id), failed=("unschedule", item_id),
                           form=form, status=422)


@bp.post("/agenda/items/<int:item_id>/terms")
def item_terms(item_id: int):
    item = _scheduled_item(item_id)
    scope = current_scope()
    form = TermsForm()
    meeting_id = item.meeting_id
    data = {"planned_minutes": form.planned_minutes.data, "rule": form.rule.data,
            "vote_mode": form.vote_mode.data}
    if form.validate_on_submit() and attempt(
            form, lambda: svc.update_terms(_me(), scope, item, data)):
        db.session.commit()
        flash(f"“{item.title}”的时长和表决规则已修改。")
        return redirect(url_for("agenda.meeting", meeting_id=meeting_id,
                                _anchor=f"i{item_id}"), 303)
    db.session.rollback()
    return _render_meeting(svc.load_meeting(meeting_id), failed=("terms", item_id), form=form,
                           status=422)


# -- venues ---------------------------------------------------------------------------------------
def _venue_or_404(venue_id: int) -> Venue:
    venue = db.session.execute(select(Venue).options(joinedload(Venue.region))
                               .where(Venue.id == venue_id)).scalar_one_or_none()
    if venue is None or not current_scope().can_view(venue.path):
        abort(404)
    return venue


@bp.get("/agenda/venues")
def venues():
    scope = current_scope()
    _need_view(scope)
    rows = svc.venues(scope)
    return render_template("agenda/venues.html", rows=rows,
                           editable={v.id for v in rows if svc.can_manage(scope, v.path)},
                           can_add=scope.can_manage_any)


def _venue_form(venue: Venue | None):
    scope = current_scope()
    choices = _region_choices(scope, "manage")
    if not choices:
        abort(403)
    form = VenueForm() if request.method == "POST" else VenueForm(formdata=None, obj=venue)
    form.region_id.choices = choices
    if request.method == "GET" and venue is None:
        form.region_id.data = _default_region(scope, choices)
        form.capacity.data = 30
        form.kind.data = "pavilion"
    if request.method == "POST" and form.validate_on_submit():
        region = get_region_or_404(form.region_id.data, "manage")
        data = {"name": form.name.data, "kind": form.kind.data, "capacity": form.capacity.data,
                "address": form.address.data, "active": form.active.data}
        done = {}
        if attempt(form, lambda: done.setdefault(
                "venue", svc.save_venue(_me(), scope, venue, region, data))):
            db.session.commit()
            flash(f"议事场所“{done['venue'].name}”已保存。")
            return redirect(url_for("agenda.venues", _anchor=f"v{done['venue'].id}"), 303)
    status = 422 if request.method == "POST" else 200
    return render_template("agenda/venue_form.html", form=form, venue=venue), status


@bp.route("/agenda/venues/new", methods=["GET", "POST"])
def new_venue():
    return _venue_form(None)


@bp.route("/agenda/venues/<int:venue_id>/edit", methods=["GET", "POST"])
def edit_venue(venue_id: int):
    venue = _venue_or_404(venue_id)
    if not svc.can_manage(current_scope(), venue.path):
        abort(403)
    return _venue_form(venue)


# -- meetings -------------------------------------------------------------------------------------
@bp.get("/agenda/meetings")
def meetings():
    scope = current_scope()
    _need_view(scope)
    return render_template("agenda/meetings.html",
                           upcoming=svc.meetings(scope, upcoming=True),
                           past=svc.meetings(scope, upcoming=False, limit=50), now=utcnow())


def _venue_choices(scope, meeting=None) -> dict[int, str]:
    """Active venues any meeting of the user could use (at, above or below their regions),
    labelled with their region; the service refuses one that does not fit the meeting."""
    seen = {}
    for top in scope.top_paths("view"):
        for v in svc.venues_for(top) if top != "/" else db.session.scalars(
                select(Venue).where(Venue.active.is_(True)).order_by(Venue.path, Venue.name)):
            seen[v.id] = v
    if meeting is not None and meeting.venue is not None:
        seen.setdefault(meeting.venue.id, meeting.venue)
    names = dict(db.session.execute(select(Region.id, Region.name).where(
        Region.id.in_({v.region_id for v in seen.values()}))).all()) if seen else {}
    return {0: "暂不指定"} | {
        v.id: f"{v.name}（{names.get(v.region_id, '')} · {v.kind_label}）"
        for v in sorted(seen.values(), key=lambda v: (v.path, v.name))}


def _meeting_form(meeting):
    scope = current_scope()
    choices = _region_choices(scope)
    if not choices:
        abort(403)
    if request.method == "POST":
        form = MeetingForm()
    elif meeting is not None:
        form = MeetingForm(formdata=None, obj=meeting)
        form.starts_at.data = to_local(meeting.starts_at).replace(tzinfo=None)
        form.venue_id.data = meeting.venue_id or 0
    else:
        form = MeetingForm(formdata=None)
        form.region_id.data = _default_region(scope, choices)
        form.kind.data = "zhili" if scope.is_neighbor_chief else "kentan"
        form.planned_minutes.data = 60
        form.starts_at.data = datetime.combine(local_today() + timedelta(days=1), time(19, 30))
        form.venue_id.data = 0
    form.region_id.choices = choices
    form.venue_id.choices = _venue_choices(scope, meeting)
    if request.method == "POST" and form.validate_on_submit():
        region = get_region_or_404(form.region_id.data)
        data = {"kind": form.kind.data, "title": form.title.data,
                "starts_at": local_to_utc(form.starts_at.data),
                "planned_minutes": form.planned_minutes.data,
                "venue_id": form.venue_id.data or None}
        done = {}
        if attempt(form, lambda: done.setdefault(
                "meeting", svc.save_meeting(_me(), scope, meeting, region, data))):
            db.session.commit()
            flash("会议已召集，可以排入议题了。" if meeting is None else "会议已修改。")
            return redirect(url_for("agenda.meeting", meeting_id=done["meeting"].id), 303)
    status = 422 if request.method == "POST" else 200
    return render_template("agenda/meeting_form.html", form=form, meeting=meeting), status


@bp.route("/agenda/meetings/new", methods=["GET", "POST"])
def new_meeting():
    _need_view(current_scope())
    return _meeting_form(None)


@bp.route("/agenda/meetings/<int:meeting_id>/edit", methods=["GET", "POST"])
def edit_meeting(meeting_id: int):
    meeting = get_meeting_or_404(meeting_id)
    if not svc.can_chair(current_scope(), meeting):
        abort(403)
    return _meeting_form(meeting)


def _render_meeting(meeting, failed: tuple[str, int] | None = None, form=None, status=200):
    """The meeting page; ``failed`` = (form name, item id) of a refused form, shown open."""
    scope = current_scope()
    chair = svc.can_chair(scope, meeting)
    items = svc.agenda(meeting.id)
    editable = chair and meeting.status != "ended"
    terms = {}
    if editable:
        for i in items:
            if i.status == "scheduled":
                terms[i.id] = _terms_defaults(TermsForm(formdata=None), item=i)
    candidates = []
    if editable:
        for i in svc.schedulable(meeting):
            f = _terms_defaults(ScheduleForm(formdata=None), meeting=meeting)
            f.meeting_id.data, f.back.data = meeting.id, "meeting"
            candidates.append((i, f))
    errors = {}
    if failed is not None:
        name, item_id = failed
        if name == "terms":
            terms[item_id] = form
        elif name == "schedule":
            form.meeting_id.data = meeting.id
            candidates = [(i, form if i.id == item_id else f) for i, f in candidates]
        else:
            errors[item_id] = [*form.form_errors,
                               *(e for fld in form for e in fld.errors)]
    minutes = None
    if failed == ("minutes", 0):
        minutes = form
    elif chair and meeting.status in ("open", "ended"):
        minutes = MinutesForm(formdata=None, obj=meeting)
    ctx = dict(meeting=meeting, items=items, chair=chair, editable=editable, terms=terms,
               candidates=candidates, errors=errors, failed=failed, minutes=minutes,
               overrun=svc.overrun(meeting, items),
               planned=sum(i.planned_minutes for i in items),
               present=svc.present_count(meeting.id) if meeting.status != "planned" else None,
               move_form=MoveForm(formdata=None), unschedule_form=UnscheduleForm(formdata=None))
    if hx_target() == AGENDA_TARGET:
        return render_template("agenda/_agenda_list.html", oob_messages=get_flashed_messages(),
                               **ctx), status
    return render_template("agenda/meeting.html", **ctx), status


@bp.get("/agenda/meetings/<int:meeting_id>")
def meeting(meeting_id: int):
    return _render_meeting(get_meeting_or_404(meeting_id))


@bp.post("/agenda/meetings/<int:meeting_id>/minutes")
def minutes(meeting_id: int):
    meeting = get_meeting_or_404(meeting_id)
    scope = current_scope()
    form = MinutesForm()
    if form.validate_on_submit() and attempt(form, lambda: svc.save_minutes(
            _me(), scope, meeting, form.notes.data, form.recorder.data)):
        db.session.commit()
        flash("会议记录已保存。")
        return redirect(url_for("agenda.meeting", meeting_id=meeting_id, _anchor="minutes"), 303)
    db.session.rollback()
    return _render_meeting(svc.load_meeting(meeting_id), failed=("minutes", 0), form=form,
                           status=422)
