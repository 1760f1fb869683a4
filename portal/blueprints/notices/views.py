"""Pages of notices (通知公告) and call-outs (倡议) for people with a post. Views parse, call one
service, commit and redirect (303); a refusal re-renders the form with its message (422,
nothing saved)."""

from __future__ import annotations

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_login import current_user

from portal.blueprints.notices import bp
from portal.blueprints.notices import services as svc
from portal.blueprints.notices.forms import CallOutForm, ConfirmForm, LogForm, NoticeForm
from portal.blueprints.regions.models import Region
from portal.clock import local_to_utc, utcnow
from portal.errors import attempt
from portal.extensions import db
from portal.pdf import qr_data_url
from portal.scope import current_scope


@bp.app_template_global()
def unread_notices() -> int:
    """The nav's badge: loaded with the user (no query of its own), lowered when this request
    opened an unread notice."""
    if "unread_notices" in g:
        return g.unread_notices
    return current_user.unread_notices or 0


def _page() -> int:
    return max(1, request.args.get("page", 1, type=int) or 1)


# -- notices --------------------------------------------------------------------------------------
@bp.get("/notices/")
def index():
    page = _page()
    rows, more = svc.inbox(current_user.id, page)
    return render_template("notices/index.html", rows=rows, more=more, page=page,
                           publisher=bool(svc.publish_tops(current_scope())))


@bp.get("/notices/sent")
def sent():
    scope = current_scope()
    if not svc.publish_tops(scope):
        abort(403)
    page = _page()
    rows, more = svc.sent(scope, current_user.id, page)
    return render_template("notices/sent.html", rows=rows, more=more, page=page)


@bp.route("/notices/new", methods=["GET", "POST"])
def new():
    scope = current_scope()
    regions = svc.publish_regions(scope)
    if not regions:
        abort(403)
    form = NoticeForm()
    form.region_id.choices = [(r.id, _indent(r, regions[0])) for r in regions]
    if request.method == "GET":
        preset = request.args.get("region", type=int)
        form.region_id.data = preset if preset in {r.id for r in regions} else regions[0].id
    if form.validate_on_submit():
        region = next((r for r in regions if r.id == form.region_id.data), None)
        if region is None:
            _refuse_region(form.region_id.data)
        holder = {}
        if attempt(form, lambda: holder.setdefault("n", svc.publish(
                current_user, scope, region, form.title.data, form.body.data))):
            notice = holder["n"]
            db.session.commit()
            flash(f"已发布，发给 {notice.recipient_count} 人。")
            return redirect(url_for("notices.receipts", notice_id=notice.id), 303)
    status = 422 if request.method == "POST" else 200
    return render_template("notices/new.html", form=form), status


def _refuse_region(region_id) -> None:
    """A posted region the user may not publish to: 404 outside what they see, else 403."""
    region = db.session.get(Region, region_id) if isinstance(region_id, int) else None
    if region is None or not current_scope().can_view(region.path):
        abort(404)
    abort(403)


def _indent(region: Region, top: Region) -> str:
    depth = region.path.count("/") - top.path.count("/")
    return "\u3000" * max(depth, 0) + f"{region.name}（{region.level_label}）"


def _notice_or_404(notice_id: int, manage: bool = False):
    """(notice, receipt, may_manage). 404 unless the user received it (and it is not withdrawn)
    or may manage it; with ``manage``, 403 for a recipient who may not."""
    notice, receipt = svc.load_notice(notice_id, current_user.id)
    if notice is None:
        abort(404)
    scope = current_scope()
    manager = svc.may_manage(scope, current_user.id, notice)
    if not manager:
        if receipt is None or notice.withdrawn_at is not None:
            abort(404)
        if manage:
            abort(403)
    return notice, receipt, manager


@bp.get("/notices/<int:notice_id>")
def notice(notice_id: int):
    notice, receipt, manager = _notice_or_404(notice_id)
    read_at = receipt.read_at if receipt else None
    first = False
    if receipt is not None and read_at is None and notice.withdrawn_at is None:
        read_at = utcnow()
        first = svc.mark_read(notice.id, current_user.id, read_at)
        if first:
            g.unread_notices = max(0, (current_user.unread_notices or 0) - 1)
    page = render_template("notices/notice.html", notice=notice, manager=manager,
                           read_at=read_at,
                           reads=svc.read_count(notice.id) if manager else None)
    if first:
        db.session.commit()  # after rendering: the commit expires what the page shows
    return page


@bp.get("/notices/<int:notice_id>/receipts")
def receipts(notice_id: int):
    notice, _, _ = _notice_or_404(notice_id, manage=True)
    groups = svc.receipts(notice)
    read = sum(gr.read for gr in groups)
    return render_template("notices/receipts.html", notice=notice, groups=groups, read=read,
                           total=sum(len(gr.rows) for gr in groups))


@bp.route("/notices/<int:notice_id>/withdraw", methods=["GET", "POST"])
def withdraw(notice_id: int):
    notice, _, _ = _notice_or_404(notice_id, manage=True)
    form = ConfirmForm()
    if request.method == "POST":
        if form.validate_on_submit() and attempt(form, lambda: svc.withdraw(current_user, notice)):
            db.session.commit()
            flash("通知已撤回，收件人的列表里不再显示。")
            return redirect(url_for("notices.notice", notice_id=notice.id), 303)
        return render_template("notices/withdraw.html", notice=notice, form=form), 422
    return render_template("notices/withdraw.html", notice=notice, form=form)


# -- call-outs ------------------------------------------------------------------------------------
@bp.get("/notices/callouts")
def callouts():
    from sqlalchemy import or_, select
    from sqlalchemy.orm import joinedload

    from portal.blueprints.notices.models import CallOut

    scope = current_scope()
    rows = list(db.session.scalars(
        select(CallOut).options(joinedload(CallOut.region), joinedload(CallOut.creator))
        .where(or_(CallOut.created_by_id == current_user.id, scope.region_clause(CallOut.path)))
        .order_by(CallOut.starts_at.desc(), CallOut.id.desc()).limit(50)))
    return render_template("notices/callouts.html", rows=rows, now=utcnow(),
                           can_create=bool(svc.callout_regions(scope)))


@bp.route("/notices/callouts/new", methods=["GET", "POST"])
def callout_new():
    scope = current_scope()
    regions = svc.callout_regions(scope)
    if not regions:
        abort(403)
    form = CallOutForm()
    form.region_id.choices = [(r.id, f"{r.name}（{r.level_label}）") for r in regions]
    if request.method == "GET":
        form.region_id.data = regions[0].id
    if form.validate_on_submit():
        region = next((r for r in regions if r.id == form.region_id.data), None)
        data = {"title": form.title.data, "task": form.task.data, "place": form.place.data,
                "cap": form.cap.data,
                "starts_at": local_to_utc(form.starts_at.data) if form.starts_at.data else None}
        holder = {}
        if attempt(form, lambda: holder.setdefault("c", svc.create_callout(
                current_user, scope, region, data))):
            callout = holder["c"]
            db.session.commit()
            flash("倡议已发出。把下面的链接或二维码发到微信群里，邻居就能报名。")
            return redirect(url_for("notices.callout", callout_id=callout.id), 303)
    elif request.method == "POST" and form.starts_at.errors:
        form.starts_at.errors[:] = ["请填写时间，如 2026-07-10 08:00。"]
    status = 422 if request.method == "POST" else 200
    return render_template("notices/callout_new.html", form=form), status


def _callout_or_404(callout_id: int):
    """(call-out, is its creator). 404 unless the user posted it or views its region."""
    scope = current_scope()  # built now: a refused change's rollback expires the user's posts
    callout = svc.load_callout(callout_id)
    if callout is None:
        abort(404)
    mine = callout.created_by_id == current_user.id
    if not mine and not scope.can_view(callout.path):
        abort(404)
    return callout, mine


def _may_cancel(callout, mine: bool) -> bool:
    return mine or current_scope().allows("manage", callout.path)


@bp.get("/notices/callouts/<int:callout_id>")
def callout(callout_id: int):
    callout, mine = _callout_or_404(callout_id)
    rows = svc.signups(callout.id)
    link = url_for("notices.public_callout", token=callout.token, _external=True)
    full_phones = mine or current_scope().allows("manage", callout.path)
    now = utcnow()
    people = sum(r.people for r in rows)
    return render_template(
        "notices/callout.html", callout=callout, rows=rows, people=people, mine=mine,
        full_phones=full_phones, link=link, now=now,
        qr=qr_data_url(link) if callout.cancelled_at is None and now < callout.starts_at
        else None, may_cancel=_may_cancel(callout, mine),
        closed=svc.closed_reason(callout, people, now))


@bp.route("/notices/callouts/<int:callout_id>/cancel", methods=["GET", "POST"])
def callout_cancel(callout_id: int):
    callout, mine = _callout_or_404(callout_id)
    if not _may_cancel(callout, mine):
        abort(403)
    form = ConfirmForm()
    if request.method == "POST":
        if form.validate_on_submit() and attempt(
                form, lambda: svc.cancel_callout(current_user, callout)):
            db.session.commit()
            flash("倡议已取消，报名页会显示“已取消”。")
            return redirect(url_for("notices.callout", callout_id=callout.id), 303)
        return render_template("notices/callout_cancel.html", callout=callout, form=form), 422
    return render_template("notices/callout_cancel.html", callout=callout, form=form)


@bp.route("/notices/callouts/<int:callout_id>/log", methods=["GET", "POST"])
def callout_log(callout_id: int):
    callout, mine = _callout_or_404(callout_id)
    if not mine:
        abort(403)
    households = svc.region_households(callout)
    rows = svc.signups(callout.id)
    item = svc.duty_item(callout.region.town_id)
    form = LogForm()
    form.households.choices = [(h.id, h.head_name) for h in households]
    if item is None:
        from portal.blueprints.duties.services import checklist

        form.duty_item_id.choices = [(0, "请选择")] + [
            (i.id, i.title) for i in checklist(callout.region.town_id, "duty")]
    if request.method == "GET":
        form.households.data = sorted(svc.matched_household_ids(households, rows))
    elif form.validate_on_submit():
        chosen = item.id if item else (form.duty_item_id.data or None)
        holder = {}
        if attempt(form, lambda: holder.setdefault("n", svc.log_as_duty(
                current_user, callout, form.households.data or [], chosen))):
            db.session.commit()
            flash(f"已记为履职：{callout.logged_households} 户各记一条“{_item_title(item, chosen)}”。")
            return redirect(url_for("notices.callout", callout_id=callout.id), 303)
        # the rollback expired what was loaded: load again for the page
        callout = svc.load_callout(callout_id)
        households = svc.region_households(callout)
        rows = svc.signups(callout.id)
    status = 422 if request.method == "POST" else 200
    matched = svc.matched_household_ids(households, rows)
    return render_template("notices/callout_log.html", callout=callout, form=form,
                           households=households, matched=matched, item=item,
                           people=sum(r.people for r in rows), signed=len(rows),
                           ticked=set(form.households.data or []), now=utcnow()), status


def _item_title(item, chosen: int) -> str:
    if item is not None:
        return item.title
    from portal.blueprints.duties.models import ChecklistItem

    found = db.session.get(ChecklistItem, chosen)
    return found.title if found else ""
