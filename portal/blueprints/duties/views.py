from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from portal.blueprints.auth.models import User
from portal.blueprints.duties import bp
from portal.blueprints.duties import services as svc
from portal.blueprints.duties.forms import ChecklistItemForm, DutyLogForm, RulesForm, VoidLogForm
from portal.blueprints.duties.models import CHECKLIST_KINDS, ChecklistItem, DutyLog
from portal.blueprints.regions.models import Region
from portal.blueprints.requests import services as request_svc
from portal.clock import local_to_utc, to_local, utcnow
from portal.errors import ServiceError, attempt, show_on_form
from portal.extensions import db
from portal.htmx import hx_target, render_page_or_partial
from portal.photos import send_photo
from portal.scope import (
    current_scope,
    get_household_or_404,
    get_region_or_404,
    get_town_or_404,
    town_id_of,
    visible_ancestors,
)


def _row_id(household) -> str:
    return f"hh-{household.id}"


# -- 邻长 home ---------------------------------------------------------------------------------
@bp.get("/")
def home():
    scope = current_scope()
    nids = scope.neighborhood_ids()
    if not nids:
        return redirect(url_for("duties.dashboard"))
    now = utcnow()
    rows = _my_rows(scope, now)
    return render_template("duties/home.html", rows=rows, counts=_counts(rows), now=now,
                           logs_month=svc.logs_this_month(current_user.id, now),
                           pending=request_svc.pending_count(scope, now))


def _my_rows(scope, now):
    """The 邻长's households with their contact states, most urgent first."""
    town_of = {gr.region_id: town_id_of(gr.path) for gr in scope.grants
               if gr.role == "neighbor_chief"}
    windows = {t: svc.rule_windows(t, now) for t in set(town_of.values())}
    households = svc.neighborhood_households(scope.neighborhood_ids())
    return svc.sort_households(households, lambda h: windows[town_of[h.neighborhood_id]])


def _counts(rows) -> dict[str, int]:
    return {k: sum(1 for _, st in rows if st.state == k) for k in svc.STATE_ORDER}


@bp.get("/summary")
def summary():
    """The 邻长 home's counters, refreshed by htmx after a row changes (event contacts-changed)."""
    if hx_target() != "summary":
        return redirect(url_for("duties.home"))
    scope = current_scope()
    now = utcnow()
    return render_template("duties/_summary.html", counts=_counts(_my_rows(scope, now)),
                           logs_month=svc.logs_this_month(current_user.id, now))


@bp.get("/households/<int:household_id>/row")
def household_row(household_id: int):
    household = get_household_or_404(household_id)
    if hx_target() != _row_id(household):
        return redirect(url_for("duties.household", household_id=household.id))
    now = utcnow()
    state = svc.contact_state(household, svc.rule_windows(household.neighborhood.town_id, now))
    # the row, plus (out of band) the message area with the "已记录" confirmation, if any;
    # the event tells the page's counters to refresh themselves
    html = render_template("duties/_row_update.html", h=household, st=state, now=now)
    return html, 200, {"HX-Trigger": "contacts-changed"}


# -- logging a duty -----------------------------------------------------------------------------
def _log_form(household, submitted: bool):
    form = DutyLogForm() if submitted else DutyLogForm(formdata=None)
    items = svc.checklist(household.neighborhood.town_id, "duty")
    form.duty_item_id.choices = {str(i.id): i.title for i in items}
    form.duty_items = items  # keeps them in the session's identity map for log_duty's get()
    if not submitted:
        contact = next((i for i in items if i.title == "民情联络员"), items[0] if items else None)
        form.duty_item_id.data = contact.id if contact else None
        form.occurred_at.data = to_local(utcnow()).replace(tzinfo=None, second=0, microsecond=0)
        form.token.data = svc.new_form_token()
    return form


def _render_log_form(household, form, status=200):
    return render_page_or_partial("duties/log.html", "duties/_log_form.html", _row_id(household),
                                  status, h=household, form=form,
                                  back_url=_after_log_url(household))


@bp.route("/households/<int:household_id>/log", methods=["GET", "POST"])
def log(household_id: int):
    household = get_household_or_404(household_id, "log")
    if request.method == "GET":
        return _render_log_form(household, _log_form(household, submitted=False))
    form = _log_form(household, submitted=True)
    if form.validate_on_submit():
        try:
            photo = svc.process_photo(form.photo.data)
            entry, created = svc.log_duty(
                current_user, household, duty_item_id=form.duty_item_id.data,
                method=form.method.data, occurred_at=local_to_utc(form.occurred_at.data),
                note=form.note.data or "", photo=photo, token=form.token.data)
        except ServiceError as e:
            db.session.rollback()
            show_on_form(form, e)
        else:
            # everything the response needs is read before the commit expires the objects
            if created:
                message = f"已记录：{household.head_name}家 · {entry.method_label}"
            else:
                message = f"{household.head_name}家的这次履职已经记录过了，没有重复保存。"
            if hx_target() == _row_id(household):
                target = url_for("duties.household_row", household_id=household.id)
            else:
                target = _after_log_url(household)
            db.session.commit()
            flash(message)
            return redirect(target, 303)
    return _render_log_form(household, form, 422)


def _after_log_url(household) -> str:
    if household.neighborhood_id in current_scope().neighborhood_ids():
        return url_for("duties.home", _anchor=_row_id(household))
    return url_for("duties.household", household_id=household.id)


# -- household history --------------------------------------------------------------------------
@bp.get("/households/<int:household_id>")
def household(household_id: int):
    household = get_household_or_404(household_id)
    now = utcnow()
    scope = current_scope()
    state = svc.contact_state(household, svc.rule_windows(household.neighborhood.town_id, now))
    logs = svc.household_logs(household.id)
    return render_template(
        "duties/household.html", h=household, st=state, now=now, logs=logs,
        voidable=_voidable(scope, household, logs, now),
        requests=request_svc.household_requests(household.id),
        sees_phone=scope.sees_phone(household.neighborhood.path),
        can_log=scope.allows("log", household.neighborhood.path),
        can_manage=scope.allows("manage", household.neighborhood.path))


@bp.route("/logs/<int:log_id>/void", methods=["GET", "POST"])
def log_void(log_id: int):
    """作废 a duty log: a confirmation page with the reason (GET), then the void (POST)."""
    entry = db.session.get(DutyLog, log_id)
    if entry is None:
        abort(404)
    household = get_household_or_404(entry.household_id)
    scope = current_scope()
    now = utcnow()
    hood = db.session.get(Region, entry.neighborhood_id)
    if not svc.may_void(current_user.id, scope, entry, hood.path, now):
        abort(403)
    form = VoidLogForm()
    back = url_for("duties.household", household_id=household.id)
    if request.method == "POST" and form.validate_on_submit():
        label = f"{to_local(entry.occurred_at):%m月%d日} {entry.method_label}"
        done = {}
        if attempt(form, lambda: done.setdefault(
                "n", svc.void_log(current_user, scope, entry, form.reason.data, now))):
            db.session.commit()
            flash(f"已作废 {label} 的履职记录" + (
                f"，收回积分 {done['n']} 条。" if done["n"] else "。"))
            return redirect(back, 303)
    status = 422 if request.method == "POST" else 200
    return render_template("duties/log_void.html", h=household, log=entry, form=form,
                           item=db.session.get(ChecklistItem, entry.duty_item_id),
                           author=db.session.get(User, entry.user_id), back=back), status


def _voidable(scope, household, logs, now) -> set[int]:
    """Ids of the logs the viewer may void (作废). A household that moved has logs from its
    earlier 邻; their paths take one query, and only then."""
    paths = {household.neighborhood_id: household.neighborhood.path}
    others = {entry.neighborhood_id for entry in logs} - set(paths)
    if others:
        paths.update(db.session.execute(select(Region.id, Region.path)
                                        .where(Region.id.in_(others))).all())
    return {entry.id for entry in logs if entry.voided_at is None and svc.may_void(
        current_user.id, scope, entry, paths[entry.neighborhood_id], now)}


@bp.get("/logs/<int:log_id>/photo")
def photo(log_id: int):
    entry = db.session.get(DutyLog, log_id)
    if entry is None or not entry.photo:
        abort(404)
    get_household_or_404(entry.household_id)
    return send_photo("duty", entry.photo)


# -- supervisors' view --------------------------------------------------------------------------
@bp.get("/dashboard")
def dashboard():
    scope = current_scope()
    region_id = request.args.get("region", type=int)
    if region_id is None:
        tops = scope.top_paths("view")
        if not tops:
            return redirect(url_for("duties.checklists"))
        if tops == ["/"]:
            region_ids = list(db.session.scalars(
                select(Region.id).where(Region.parent_id.is_(None)).order_by(Region.name)))
            if len(region_ids) != 1:
                towns = list(db.session.scalars(
                    select(Region).where(Region.parent_id.is_(None)).order_by(Region.name)))
                return render_template("duties/towns.html", towns=towns)
            region_id = region_ids[0]
        elif len(tops) == 1:
            region_id = int(tops[0].strip("/").split("/")[-1])
        else:
            regions = list(db.session.scalars(scope.regions().where(
                Region.path.in_(tops)).order_by(Region.path)))
            return render_template("duties/towns.html", towns=regions)
    region = get_region_or_404(region_id)
    if region.level == "neighborhood":
        return redirect(url_for("duties.neighborhood", region_id=region.id))
    now = utcnow()
    total, rows = svc.dashboard_rows(region, now)
    return render_template("duties/dashboard.html", region=region, total=total, rows=rows,
                           trail=visible_ancestors(region), now=now)


@bp.get("/neighborhoods/<int:region_id>")
def neighborhood(region_id: int):
    region = get_region_or_404(region_id)
    if region.level != "neighborhood":
        return redirect(url_for("duties.dashboard", region=region.id))
    now = utcnow()
    windows = svc.rule_windows(region.town_id, now)
    rows = svc.sort_households(svc.neighborhood_households([region.id]), lambda h: windows)
    chiefs = svc.neighborhood_chiefs(region.id)
    return render_template("duties/neighborhood.html", region=region, rows=rows, now=now,
                           chiefs=chiefs, trail=visible_ancestors(region),
                           logs_month=svc.neighborhood_logs_this_month(region.id, now))


# -- 三张清单 -------------------------------------------------------------------------------------
@bp.get("/checklists")
def checklists():
    scope = current_scope()
    town_id = request.args.get("town", type=int)
    if town_id is None and scope.town_ids("any") == set():
        # where "/" sends an account without any post: say so instead of "not found"
        return render_template("duties/no_post.html")
    town = get_town_or_404(town_id)
    items = svc.checklist(town.id, active_only=not scope.allows("town", town.path))
    by_kind = {k: [i for i in items if i.kind == k] for k in CHECKLIST_KINDS}
    return render_template("duties/checklists.html", town=town, by_kind=by_kind,
                           kinds=CHECKLIST_KINDS, can_edit=scope.allows("town", town.path),
                           rules=svc.town_rules(town.id))


@bp.route("/checklists/new", methods=["GET", "POST"])
@bp.route("/checklists/<int:item_id>/edit", methods=["GET", "POST"])
def checklist_edit(item_id: int | None = None):
    item = None
    if item_id is not None:
        item = db.session.get(ChecklistItem, item_id)
        if item is None:
            abort(404)
        town = get_town_or_404(item.town_id, "town")
    else:
        town = get_town_or_404(request.args.get("town", type=int), "town")
    form = ChecklistItemForm(obj=item)
    if item is None and request.method == "GET" and request.args.get("kind") in CHECKLIST_KINDS:
        form.kind.data = request.args["kind"]
    if item is not None:
        del form.kind
    status = 200
    if form.validate_on_submit():
        data = {"title": form.title.data, "description": form.description.data or "",
                "active": form.active.data,
                "kind": item.kind if item else form.kind.data}
        if attempt(form, lambda: svc.save_checklist_item(current_user, town, item, data)):
            db.session.commit()
            flash("清单已保存。")
            return redirect(url_for("duties.checklists", town=town.id), 303)
    if request.method == "POST":
        status = 422
    return render_template("duties/checklist_edit.html", form=form, item=item, town=town,
                           kinds=CHECKLIST_KINDS), status


@bp.route("/rules", methods=["GET", "POST"])
def rules():
    town = get_town_or_404(request.args.get("town", type=int), "town")
    existing = svc.town_rules(town.id, active_only=False)
    if request.method == "GET":
        data = [{"id": r.id, "category": r.category, "period": r.period, "method": r.method,
                 "active": r.active} for r in existing]
        data.append({"id": "", "category": "special", "period": "month", "method": "visit",
                     "active": False})
        form = RulesForm(data={"rules": data})
    else:
        form = RulesForm()
    status = 200
    if form.validate_on_submit():
        rows = []
        for sub in form.rules:
            rid = int(sub.form.id.data) if (sub.form.id.data or "").isdigit() else None
            if rid is None and not sub.form.active.data:
                continue  # the blank "add" row left unticked
            rows.append({"id": rid, "category": sub.form.category.data,
                         "period": sub.form.period.data, "method": sub.form.method.data,
                         "active": sub.form.active.data, "delete": sub.form.delete.data})
        if attempt(form, lambda: svc.save_rules(current_user, town, rows)):
            db.session.commit()
            flash("联系规则已保存，各户状态已按新规则计算。")
            return redirect(url_for("duties.checklists", town=town.id, _anchor="rules"), 303)
    if request.method == "POST":
        status = 422
    return render_template("duties/rules.html", form=form, town=town), status
