"""Handlers' pages of 民情诉求: my queue (我的诉求), one request with what the user may do with it
now, and the 接单 board. Every change is a POST that calls one service function with the clock
read once, then commits and redirects (303) back to the request; a refusal re-renders the page
with the rule's message on the form that was sent (422), nothing saved."""

from datetime import timedelta

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy.orm.exc import StaleDataError

from portal.blueprints.requests import bp
from portal.blueprints.requests import services as svc
from portal.blueprints.requests.forms import (
    CloseForm,
    EscalateForm,
    MediationForm,
    NoteForm,
    ReleaseForm,
    RouteForm,
)
from portal.blueprints.requests.models import (
    LEVEL_MOTTOS,
    LEVEL_NAMES,
    RATINGS,
    SOURCES,
    TOP,
    Department,
)
from portal.clock import local_to_utc, utcnow
from portal.errors import ServiceError, attempt
from portal.extensions import db
from portal.photos import send_photo
from portal.scope import current_scope, get_request_or_404

#: Roles with a queue of their own (the others only take requests from the board).
HANDLER_ROLES = tuple(svc.QUEUE_LEVEL)
STAFF_ROLES = tuple(svc.STAFF_LEVEL)
CLAIM_LOST = "刚刚已经有人接了这一单。"

#: action → (form, what the button says); the helper's actions come last
ACTIONS = {
    "acknowledge": (NoteForm, "响应"),
    "escalate": (EscalateForm, "上报"),
    "route": (RouteForm, "转交部门"),
    "offer": (NoteForm, "发布接单"),
    "close": (CloseForm, "办结答复"),
    "mediation": (MediationForm, "记录调解"),
    "progress": (NoteForm, "办理进展"),
    "done": (NoteForm, "办完了"),
    "release": (ReleaseForm, "退回接单"),
}
HANDLER_ACTIONS = frozenset({"acknowledge", "escalate", "route", "offer", "close"})
HELPER_ACTIONS = frozenset({"progress", "done", "release"})
NOTE_LABELS = {"acknowledge": "回复居民（可不填）", "offer": "接单说明（可不填）",
               "progress": "进展情况", "done": "办理结果"}


# -- shown time --------------------------------------------------------------------------------
def _span(d: timedelta) -> str:
    minutes = int(d.total_seconds() // 60)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    if days >= 2:
        return f"{days} 天 {hours} 小时" if hours else f"{days} 天"
    hours += days * 24
    if hours:
        return f"{hours} 小时 {mins} 分" if mins else f"{hours} 小时"
    return f"{mins} 分钟" if mins else "不到 1 分钟"


def time_left(eff: svc.Effective, now) -> tuple[str, bool] | None:
    """("还剩 2 小时 10 分", urgent) for a request waiting for a response, else None; urgent
    (shown red) when less than an hour is left or the last deadline has passed."""
    if eff.deadline is None:
        return None
    left = eff.deadline - now
    if left <= timedelta(0):
        return "已超时 " + _span(-left), True
    return "还剩 " + _span(left), left < timedelta(hours=1)


@bp.context_processor
def _request_labels():
    return {"time_left": time_left, "level_names": LEVEL_NAMES, "level_mottos": LEVEL_MOTTOS,
            "sources": SOURCES, "ratings": RATINGS}


# -- 我的诉求 -------------------------------------------------------------------------------------
@bp.get("/requests/")
def queue():
    scope = current_scope()
    if not scope.has_role(*HANDLER_ROLES):
        if scope.has_role(*svc.HELPER_ROLES):
            return redirect(url_for("requests.board"))
        abort(403)
    now = utcnow()
    return render_template("requests/queue.html", q=svc.queue(scope, now), now=now,
                           is_staff=scope.has_role(*STAFF_ROLES))


# -- one request ---------------------------------------------------------------------------------
def _allowed(scope, req, eff, me: int) -> list[str]:
    """The actions the user may take on ``req`` now (the services decide again on POST)."""
    acts = set()
    if req.status != "closed":
        if svc.can_handle(scope, req, eff.level):
            if req.status == "new":
                acts.add("acknowledge")
            if eff.level < TOP:
                acts.add("escalate")
            if eff.level >= 2:
                acts.add("route")
            if not req.open_to_helpers:
                acts.add("offer")
            if req.helper_id is None or req.helper_done_at is not None:
                acts.add("close")
        if req.helper_id == me:
            acts.add("progress")
            if req.helper_done_at is None:
                acts.add("done")
            acts.add("release")
    if req.category.is_dispute and (scope.allows("log", req.path) or req.helper_id == me):
        acts.add("mediation")
    return [a for a in ACTIONS if a in acts]


def _make_form(action: str, req, submitted: bool, events=()):
    form_class = ACTIONS[action][0]
    form = form_class() if submitted else form_class(formdata=None)
    if action in NOTE_LABELS:
        form.note.label.text = NOTE_LABELS[action]
    if action == "route":
        form.department_id.choices = {0: "请选择…"} | {
            d.id: d.name for d in svc.options(Department, req.town_id)}
    if not submitted and action == "close" and req.helper_done_at is not None:
        # the handler confirms the helper's work: their report is the answer's first draft
        done = [e for e in events if e.kind == "helper_done"]
        if done:
            form.answer.data = done[-1].note
    return form


def _render_detail(req, failed: str | None = None, form=None, status: int = 200,
                   confirm: str | None = None):
    scope = current_scope()
    now = utcnow()
    me = current_user.id
    eff = svc.effective(req, now)
    events = svc.timeline(req.id)
    allowed = _allowed(scope, req, eff, me)
    shown = allowed + ([failed] if failed and failed not in allowed else [])
    forms = {a: form if a == failed else _make_form(a, req, False, events) for a in shown}
    if confirm == "release" and "release" in forms:
        forms["release"].confirm.data = "yes"
    # why a handler of a lower level may no longer act (escalated meanwhile, by hand or not)
    moved_on = (req.status != "closed" and not svc.can_handle(scope, req, eff.level)
                and any(svc.can_handle(scope, req, k) for k in range(eff.level)))
    can_claim = (req.status != "closed" and req.open_to_helpers and req.helper_id is None
                 and svc.can_help(scope, req))
    household = req.household
    return render_template(
        "requests/detail.html", req=req, h=household, eff=eff, now=now, events=events,
        mediations=svc.mediations(req.id), forms=forms, failed=failed, labels=ACTIONS,
        confirm=confirm, moved_on=moved_on, can_claim=can_claim,
        sees_contact=svc.sees_contact(scope, req, me, now),
        can_view_household=scope.can_view(household.neighborhood.path),
        responders=svc.responders(req, eff.level) if req.status == "new" else [],
        reopen_until=svc.reopen_until(req) if req.status == "closed" else None,
        is_handler=scope.has_role(*HANDLER_ROLES)), status


@bp.get("/requests/<int:request_id>")
def detail(request_id: int):
    req = get_request_or_404(request_id)
    return _render_detail(req, confirm=request.args.get("confirm"))


@bp.get("/requests/<int:request_id>/photo")
def photo(request_id: int):
    req = get_request_or_404(request_id)
    return send_photo("requests", req.photo)


def _check_may_try(scope, req, action: str) -> None:
    """403 for an action the user's posts never allow on this request (a volunteer answering
    it). Whether it is allowed *now* is the service's question: its refusal is a 422."""
    if action in HANDLER_ACTIONS:
        ok = any(svc.can_handle(scope, req, k) for k in range(TOP + 1))
    elif action in HELPER_ACTIONS:
        ok = svc.can_help(scope, req) or req.helper_id == current_user.id
    else:  # mediation
        ok = scope.allows("log", req.path) or req.helper_id == current_user.id
    if not ok:
        abort(403)


def _change(action: str, req, form, scope, now) -> str:
    """Run the service for ``action``; returns the confirmation to flash."""
    me = current_user._get_current_object()
    note = form.note.data if "note" in form else ""
    try:
        if action == "acknowledge":
            svc.acknowledge(me, scope, req, now, note=note)
            return "已响应，居民能看到您在办理。办好后请办结并答复。"
        if action == "escalate":
            svc.escalate(me, scope, req, now, form.reason.data)
            return f"已上报到{LEVEL_NAMES[req.level]}级。"
        if action == "route":
            svc.route(me, scope, req, now, form.department_id.data, note)
            dept = db.session.get(Department, req.department_id)
            return f"已转交{dept.name}。"
        if action == "offer":
            svc.offer_to_helpers(me, scope, req, now, note)
            return "已发布到接单栏，志愿者、党员和三长可以接单。"
        if action == "close":
            svc.close(me, scope, req, now, form.answer.data)
            return "已办结，答复已发给居民。"
        if action == "mediation":
            f = form
            svc.record_mediation(me, scope, req, {
                "parties": f.parties.data, "mediators": f.mediators.data,
                "held_at": local_to_utc(f.held_at.data) if f.held_at.data else None,
                "outcome": f.outcome.data, "agreement_title": f.agreement_title.data,
                "agreement_terms": f.agreement_terms.data, "signed_on": f.signed_on.data,
                "note": f.note.data}, now)
            return "调解记录已保存。"
        if action == "progress":
            svc.helper_progress(me, req, now, note)
            return "进展已记录。"
        if action == "done":
            svc.helper_done(me, req, now, note)
            return "已报告办完，等待负责人确认办结。"
        svc.release(me, req, now, note)
        return "已退回，这一单回到了接单栏。"
    except StaleDataError as e:  # the version check, wherever the service flushed
        raise ServiceError(svc.STALE) from e


@bp.post("/requests/<int:request_id>/<action>")
def act(request_id: int, action: str):
    if action not in ACTIONS:
        abort(404)
    req = get_request_or_404(request_id)
    scope = current_scope()
    _check_may_try(scope, req, action)
    form = _make_form(action, req, submitted=True)
    if action == "release" and form.confirm.data != "yes" and req.helper_id == current_user.id:
        return _render_detail(req, confirm="release")  # the second step: asks first
    now = utcnow()
    done = {}
    if form.validate_on_submit() and attempt(
            form, lambda: done.setdefault("message", _change(action, req, form, scope, now))):
        db.session.commit()
        flash(done["message"])
        return redirect(url_for("requests.detail", request_id=request_id), 303)
    # a refusal rolled the session back (the request is expired): read it again
    req = svc.load(request_id)
    return _render_detail(req, failed=action, form=form, status=422)


# -- 接单 -----------------------------------------------------------------------------------------
def _render_board(scope, error: tuple[int, str] | None = None, status: int = 200):
    now = utcnow()
    open_, mine = svc.board(scope, current_user.id, now)
    return render_template("requests/board.html", open_=open_, mine=mine, now=now, error=error,
                           is_handler=scope.has_role(*HANDLER_ROLES)), status


@bp.get("/requests/board")
def board():
    scope = current_scope()
    if not scope.has_role(*svc.HELPER_ROLES):
        abort(403)
    return _render_board(scope)


@bp.post("/requests/<int:request_id>/claim")
def claim(request_id: int):
    scope = current_scope()
    me = current_user._get_current_object()
    req = svc.load(request_id)
    # the loser of a race may no longer "see" the request, but hears why it is gone
    if req is None or not (svc.can_see(scope, req, me.id)
                           or (req.open_to_helpers and svc.can_help(scope, req))):
        abort(404)
    try:
        svc.claim(me, scope, req, utcnow())
    except (ServiceError, StaleDataError) as e:
        db.session.rollback()
        message = e.message if isinstance(e, ServiceError) else CLAIM_LOST
        return _render_board(scope, error=(request_id, message), status=422)
    message = f"接单成功：{req.category.name} · {req.number}。请尽快联系居民，办完后点“办完了”。"
    db.session.commit()
    flash(message)
    return redirect(url_for("requests.detail", request_id=request_id), 303)
