"""Pages of the 辖区社会资源 registry: the list of a region (with the 议事场所 of the agenda domain,
read-only here), add, edit, deactivate and reactivate (with a confirmation step). Staff who
manage a region change its resources; 组长 and 片长 read them (phones masked)."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length

from portal.blueprints.ledgers import bp
from portal.blueprints.ledgers import ledgers as svc
from portal.blueprints.ledgers.models import RESOURCE_KINDS, VENUE_KIND_LABEL, SocialResource
from portal.blueprints.points.reviews import _pick_region
from portal.blueprints.regions.models import Region
from portal.errors import attempt
from portal.extensions import db
from portal.forms import strip, unix_newlines
from portal.scope import check_path, current_scope, get_region_or_404

#: The list's kind filter: the registry's kinds and the 议事场所.
KIND_FILTER = {**RESOURCE_KINDS, "venue": VENUE_KIND_LABEL}


def _line(label, limit, **kw):
    return StringField(label, filters=[strip],
                       validators=[Length(max=limit, message=f"{label.split('（')[0]}最多 {limit} 字。")],
                       render_kw={"maxlength": limit, **kw})


class ResourceForm(FlaskForm):
    """Parsing and sizes only: the service checks what is required and the phone (and says
    why, on the field)."""

    region_id = SelectField("所属区域", coerce=int, validate_choice=False,
                            invalid_value_message="请选择所属区域。")
    kind = SelectField("类别", choices=dict(RESOURCE_KINDS), validate_choice=False)
    name = _line("名称", 60, placeholder="如：特立村新时代文明实践站")
    address = _line("地址（可不填）", 100, placeholder="如：特立村村部一楼")
    contact_name = _line("联系人（可不填）", 40)
    contact_phone = _line("联系电话（可不填）", 20, inputmode="tel",
                          placeholder="手机号或 0731-86543210", autocomplete="off")
    services = TextAreaField("服务内容", filters=[unix_newlines, strip],
                             validators=[Length(max=500, message="服务内容最多 500 字。")],
                             render_kw={"rows": 3, "maxlength": 500,
                                        "placeholder": "如：免费理发、代办医保、场地借用"})
    opening = _line("开放时间及备注（可不填）", 200, placeholder="如：每周六上午 9:00—11:30")


class ConfirmForm(FlaskForm):
    confirm = BooleanField("我确认", validators=[DataRequired("请勾选确认。")])


def _me():
    return current_user._get_current_object()


def _resource_or_404(resource_id: int, action: str) -> SocialResource:
    """404 outside the user's subtrees, 403 visible but without ``action``."""
    resource = svc.load_resource(resource_id)
    if resource is None:
        abort(404)
    check_path(resource.path, action)
    return resource


def _region_choices(scope) -> dict[int, str]:
    """Regions the user manages a resource may belong to (town to 组), indented, tree order."""
    tops = scope.top_paths("manage")
    top = min((p.count("/") for p in tops), default=2)
    rows = db.session.execute(
        scope.regions("manage").with_only_columns(Region.id, Region.name, Region.path)
        .where(Region.level.in_(svc.RESOURCE_LEVELS)).order_by(Region.path)).all()
    return {r.id: "　" * max(0, r.path.count("/") - top) + r.name for r in rows}


# -- the list ------------------------------------------------------------------------------------
@bp.get("/resources")
def resources():
    scope = current_scope()
    if not scope.top_paths("supervise"):
        abort(403)
    pick = _pick_region(scope, "supervise")
    kind = request.args.get("kind") or None
    if kind not in KIND_FILTER:
        kind = None
    entries = svc.registry(pick.region, kind)
    rows = []
    for e in entries:
        if scope.allows("manage", e.path):
            rows.append((e, e.contact_phone, True,
                         svc.tel_uri(e.contact_phone) if e.contact_phone else None))
        else:
            rows.append((e, svc.mask_contact(e.contact_phone), False, None))
    return render_template("ledgers/resources.html", pick=pick, region=pick.region, kind=kind,
                           kinds=KIND_FILTER, rows=rows,
                           can_add=bool(scope.top_paths("manage")))


# -- add and edit --------------------------------------------------------------------------------
def _form_page(resource: SocialResource | None):
    scope = current_scope()
    choices = _region_choices(scope)
    if not choices:
        abort(403)
    if request.method == "POST":
        form = ResourceForm()
    else:
        form = ResourceForm(formdata=None, obj=resource)
        if resource is None:
            asked = request.args.get("region", type=int)
            form.region_id.data = asked if asked in choices else next(iter(choices))
            form.kind.data = "place"
    form.region_id.choices = choices
    if request.method == "POST" and form.validate_on_submit():
        # outside the user's subtrees 404; a node they cannot manage 403; a 邻 they manage
        # is the service's refusal (422, on the field)
        region = get_region_or_404(form.region_id.data, "manage")
        data = {k: getattr(form, k).data for k in svc.FIELDS}
        done = {}
        if attempt(form, lambda: done.setdefault(
                "r", svc.save_resource(_me(), scope, resource, region, data))):
            db.session.commit()
            saved = done["r"]
            flash(f"社会资源“{saved.name}”已保存。")
            return redirect(url_for("ledgers.resources", region=_list_region(scope, saved),
                                    _anchor=f"r{saved.id}"), 303)
    status = 422 if request.method == "POST" else 200
    return render_template("ledgers/resource_form.html", form=form, resource=resource), status


def _list_region(scope, resource: SocialResource) -> int | None:
    """The region whose list shows the saved resource: the user's top region over it."""
    for top in scope.top_paths("supervise"):
        if resource.path.startswith(top) and top != "/":
            return int(top.strip("/").split("/")[-1])
    return None


@bp.route("/resources/new", methods=["GET", "POST"])
def resource_new():
    return _form_page(None)


@bp.route("/resources/<int:resource_id>/edit", methods=["GET", "POST"])
def resource_edit(resource_id: int):
    return _form_page(_resource_or_404(resource_id, "manage"))


# -- deactivate / reactivate ---------------------------------------------------------------------
@bp.route("/resources/<int:resource_id>/<any(deactivate, reactivate):change>",
          methods=["GET", "POST"])
def resource_active(resource_id: int, change: str):
    resource = _resource_or_404(resource_id, "manage")
    form = ConfirmForm()
    active = change == "reactivate"
    if form.validate_on_submit():
        if attempt(form, lambda: svc.set_active(_me(), current_scope(), resource, active)):
            db.session.commit()
            flash(f"“{resource.name}”已{'恢复在用' if active else '停用'}。")
            return redirect(url_for("ledgers.resources",
                                    region=_list_region(current_scope(), resource),
                                    _anchor=f"r{resource.id}"), 303)
        resource = _resource_or_404(resource_id, "manage")  # the rollback expired it
    status = 422 if request.method == "POST" else 200
    return render_template("ledgers/resource_active.html", form=form, resource=resource,
                           active=active), status

