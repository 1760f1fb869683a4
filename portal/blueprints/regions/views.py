from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import joinedload, selectinload

from portal.audit import AuditEntry
from portal.blueprints.auth.services import create_user, user_by_phone
from portal.blueprints.regions import bp
from portal.blueprints.regions import services as svc
from portal.blueprints.regions.forms import (
    ConfirmForm,
    HouseholdForm,
    MoveForm,
    PostForm,
    RegionForm,
    TagForm,
)
from portal.blueprints.regions.models import Household, HouseholdTag, Post, Region
from portal.errors import ServiceError, attempt, show_on_form
from portal.extensions import db
from portal.scope import (
    current_scope,
    get_household_or_404,
    get_post_or_404,
    get_region_or_404,
    get_town_or_404,
    visible_ancestors,
)


def _saved(message: str, target: str):
    db.session.commit()
    flash(message)
    return redirect(target, 303)


def _status(form) -> int:
    return 422 if request.method == "POST" else 200


@bp.get("/")
def index():
    scope = current_scope()
    tops = scope.top_paths("manage")
    if not tops:
        abort(403)
    if len(tops) == 1 and tops[0] != "/":
        return redirect(url_for("regions.node", region_id=int(tops[0].strip("/").split("/")[-1])))
    if tops == ["/"]:
        regions = list(db.session.scalars(
            select(Region).where(Region.parent_id.is_(None)).order_by(Region.name)))
    else:
        regions = list(db.session.scalars(
            select(Region).where(Region.path.in_(tops)).order_by(Region.path)))
    return render_template("regions/index.html", regions=regions, form=RegionForm(),
                           can_create_town=tops == ["/"])


@bp.post("/towns")
def town_create():
    if current_scope().top_paths("manage") != ["/"]:
        abort(403)
    form = RegionForm()
    if form.validate_on_submit():
        try:
            town = svc.create_region(current_user, None, form.name.data)
        except ServiceError as e:
            db.session.rollback()
            show_on_form(form, e)
        else:
            return _saved(f"已创建 {town.name}，并装入默认的三张清单和联系规则。",
                          url_for("regions.node", region_id=town.id))
    regions = list(db.session.scalars(select(Region).where(Region.parent_id.is_(None))))
    return render_template("regions/index.html", regions=regions, form=form,
                           can_create_town=True), 422


@bp.get("/<int:region_id>")
def node(region_id: int):
    region = get_region_or_404(region_id, "manage")
    children = svc.children_of(region)
    households = []
    if region.level == "neighborhood":
        households = list(db.session.scalars(
            select(Household).options(selectinload(Household.tags))
            .where(Household.neighborhood_id == region.id).order_by(Household.address)))
    posts = list(db.session.scalars(
        select(Post).options(joinedload(Post.user)).where(Post.region_id == region.id)
        .order_by(Post.ended_at.is_not(None), Post.role, Post.started_at)))
    scope = current_scope()
    trail = visible_ancestors(region, "manage")
    return render_template("regions/node.html", region=region, children=children,
                           households=households, posts=posts, trail=trail, form=RegionForm(),
                           sees_phone=scope.sees_phone(region.path))


@bp.post("/<int:region_id>/children")
def child_create(region_id: int):
    parent = get_region_or_404(region_id, "manage")
    form = RegionForm()
    if form.validate_on_submit():
        try:
            child = svc.create_region(current_user, parent, form.name.data)
        except ServiceError as e:
            db.session.rollback()
            show_on_form(form, e)
        else:
            return _saved(f"已添加{child.level_label}：{child.name}",
                          url_for("regions.node", region_id=parent.id))
    return render_template("regions/region_form.html", form=form, region=parent,
                           action=url_for("regions.child_create", region_id=parent.id),
                           title=f"在{parent.name}下添加"), 422


@bp.route("/<int:region_id>/edit", methods=["GET", "POST"])
def region_edit(region_id: int):
    region = get_region_or_404(region_id, "manage")
    form = RegionForm(obj=region)
    if form.validate_on_submit() and attempt(
            form, lambda: svc.rename_region(current_user, region, form.name.data)):
        return _saved("名称已修改。", url_for("regions.node", region_id=region.id))
    return render_template("regions/region_form.html", form=form, region=region,
                           action=url_for("regions.region_edit", region_id=region.id),
                           title=f"修改{region.level_label}名称"), _status(form)


# -- households --------------------------------------------------------------------------------
def _household_form(town_id: int, obj=None) -> HouseholdForm:
    form = HouseholdForm(obj=obj)
    tags = svc.town_tags(town_id)
    if obj is not None:  # keep a retired tag the household still has
        tags += [t for t in obj.tags if not t.active]
    form.tags.choices = [(t.id, t.name) for t in tags]
    if obj is not None and request.method == "GET":
        form.tags.data = [t.id for t in obj.tags]
    return form


def _household_data(form) -> dict:
    return {"head_name": form.head_name.data, "address": form.address.data,
            "phone": form.phone.data, "member_count": form.member_count.data}


@bp.route("/<int:region_id>/households/new", methods=["GET", "POST"])
def household_new(region_id: int):
    region = get_region_or_404(region_id, "manage")
    if region.level != "neighborhood":
        abort(404)
    form = _household_form(region.town_id)
    if form.validate_on_submit() and attempt(form, lambda: svc.create_household(
            current_user, region, _household_data(form), form.tags.data)):
        return _saved(f"已登记 {form.head_name.data}家。",
                      url_for("regions.node", region_id=region.id))
    return render_template("regions/household_form.html", form=form, region=region,
                           household=None), _status(form)


@bp.route("/households/<int:household_id>/edit", methods=["GET", "POST"])
def household_edit(household_id: int):
    household = get_household_or_404(household_id, "manage")
    form = _household_form(household.neighborhood.town_id, household)
    if form.validate_on_submit():
        data = _household_data(form)
        if attempt(form, lambda: svc.update_household(current_user, household, data,
                                                      form.tags.data)):
            return _saved("住户信息已保存。",
                          url_for("duties.household", household_id=household.id))
        # the rollback expired the household; reload it (relationships raise)
        household = get_household_or_404(household_id, "manage")
    return render_template("regions/household_form.html", form=form,
                           region=household.neighborhood, household=household), _status(form)


@bp.route("/households/<int:household_id>/move", methods=["GET", "POST"])
def household_move(household_id: int):
    household = get_household_or_404(household_id, "manage")
    targets = [r for r in svc.subtree_neighborhoods(current_scope(),
                                                     household.neighborhood.town_id)
               if r.id != household.neighborhood_id]
    form = MoveForm()
    form.neighborhood_id.choices = [(r.id, r.name) for r in targets]
    if form.validate_on_submit():
        target = get_region_or_404(form.neighborhood_id.data, "manage")
        if attempt(form, lambda: svc.move_household(current_user, household, target)):
            return _saved(f"{household.head_name}家已移到 {target.name}。",
                          url_for("duties.household", household_id=household.id))
        # the rollback expired the household; reload it (relationships raise)
        household = get_household_or_404(household_id, "manage")
    return render_template("regions/household_move.html", form=form, household=household,
                           has_targets=bool(targets)), _status(form)


# -- posts and accounts ------------------------------------------------------------------------
@bp.route("/<int:region_id>/posts/new", methods=["GET", "POST"])
def post_new(region_id: int):
    region = get_region_or_404(region_id, "manage")
    form = PostForm()
    if request.method == "GET":
        form.role.data = {"neighborhood": "neighbor_chief", "group": "group_chief",
                          "area": "area_chief", "village": "village_staff",
                          "town": "town_staff"}[region.level]
    if form.role.data == "admin":
        form.role.errors = ["管理员只能用命令行 flask create-user 设置。"]
    elif form.validate_on_submit():
        try:
            user = user_by_phone(form.phone.data)
            if user is not None:
                svc.check_can_appoint(current_scope(), user)
            else:
                if not form.name.data:
                    raise ServiceError("新账号请填写姓名。", "name")
                user = create_user(current_user, form.phone.data, form.name.data,
                                   form.password.data or "", region.path)
            post = svc.create_post(current_user, region, form.role.data, user)
        except ServiceError as e:
            db.session.rollback()
            show_on_form(form, e)
        else:
            return _saved(f"已设 {user.name} 为{post.role_label}。",
                          url_for("regions.node", region_id=region.id))
    return render_template("regions/post_form.html", form=form, region=region), _status(form)


@bp.route("/posts/<int:post_id>/end", methods=["GET", "POST"])
def post_end(post_id: int):
    post = get_post_or_404(post_id, "manage")
    form = ConfirmForm()
    if form.validate_on_submit():
        if attempt(form, lambda: svc.end_post(current_user, post)):
            return _saved(f"{post.user.name}的{post.role_label}岗位已结束。",
                          url_for("regions.node", region_id=post.region_id)
                          if post.region_id else url_for("regions.index"))
        # the rollback expired the post; reload it with its user and region
        post = get_post_or_404(post_id, "manage")
    return render_template("regions/post_end.html", form=form, post=post), _status(form)


# -- town settings: special tags ----------------------------------------------------------------
@bp.route("/towns/<int:town_id>/tags", methods=["GET", "POST"])
def tags(town_id: int):
    town = get_town_or_404(town_id, "town")
    form = TagForm()
    if form.validate_on_submit() and attempt(
            form, lambda: svc.add_tag(current_user, town, form.name.data)):
        return _saved("标签已添加。", url_for("regions.tags", town_id=town.id))
    return render_template("regions/tags.html", form=form, town=town,
                           tags=svc.town_tags(town.id, active_only=False)), _status(form)


@bp.post("/tags/<int:tag_id>/toggle")
def tag_toggle(tag_id: int):
    tag = db.session.get(HouseholdTag, tag_id)
    if tag is None:
        abort(404)
    town = get_town_or_404(tag.town_id, "town")
    svc.toggle_tag(current_user, town, tag)
    return _saved(f"标签“{tag.name}”已{'启用' if tag.active else '停用'}。",
                  url_for("regions.tags", town_id=town.id))


# -- audit -------------------------------------------------------------------------------------
@bp.get("/audit")
def audit():
    scope = current_scope()
    if not scope.can_manage_any:
        abort(403)
    page = max(request.args.get("page", 1, type=int), 1)
    entries = list(db.session.scalars(
        select(AuditEntry).options(joinedload(AuditEntry.user))
        .where(scope.region_clause(AuditEntry.region_path, "manage"))
        .order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
        .limit(51).offset((page - 1) * 50)))
    return render_template("regions/audit.html", entries=entries[:50], page=page,
                           more=len(entries) > 50)
