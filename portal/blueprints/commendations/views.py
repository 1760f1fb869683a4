"""Staff pages of 好邻: campaigns, nominating a 邻长 (with a photo), opening the 公示, resolving
objections, and the town's decision. Views parse, call one service, commit and redirect (303);
a refusal re-renders with the message (422, nothing saved)."""

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from sqlalchemy import select
from wtforms import (
    BooleanField,
    DateField,
    IntegerField,
    SelectField,
    StringField,
    TextAreaField,
)

from portal.blueprints.commendations import bp
from portal.blueprints.commendations import services as svc
from portal.blueprints.commendations.models import (
    POSTER_DESIGNS,
    STAT_LABELS,
    Campaign,
    Nomination,
    Objection,
)
from portal.blueprints.regions.models import Post, Region
from portal.blueprints.regions.services import where_of
from portal.errors import ServiceError, attempt, show_on_form
from portal.extensions import db
from portal.forms import strip, unix_newlines
from portal.photos import new_photo_name, process_photo, store_photo
from portal.scope import check_path, current_scope, path_range

#: A poster's photo frame is about 9 × 12 cm: fewer pixels than this print blurred.
PHOTO_MIN_SIDE = 480


class CampaignForm(FlaskForm):
    region_id = SelectField("评选范围", coerce=int, validate_choice=False)
    title = StringField("活动名称", filters=[strip], render_kw={"maxlength": 60})
    honour = StringField("荣誉称号（印在海报上）", filters=[strip], render_kw={"maxlength": 20})
    quota = IntegerField("名额", render_kw={"min": 1, "max": 1000, "inputmode": "numeric"})
    period_start = DateField("统计开始日期")
    period_end = DateField("统计截止日期（不含）")
    notice_start = DateField("公示开始日期")
    notice_end = DateField("公示结束日期（含）")
    design = SelectField("海报样式", choices=dict(POSTER_DESIGNS))


class NominateForm(FlaskForm):
    post_id = SelectField("邻长", coerce=int, validate_choice=False)
    deeds = TextAreaField("主要事迹", filters=[strip, unix_newlines],
                          render_kw={"rows": 6, "maxlength": 1500,
                                     "placeholder": "写具体的事：走访了谁、办成了什么（至少 20 字）"})
    photo = FileField("照片（可不填，JPG、PNG 或 WebP）",
                      render_kw={"accept": "image/jpeg,image/png,image/webp"})


class ResolveForm(FlaskForm):
    upheld = BooleanField("异议成立")
    resolution = TextAreaField("核实情况", filters=[strip, unix_newlines], render_kw={"rows": 3,
                                                                    "maxlength": 1000})


class WithdrawForm(FlaskForm):
    reason = StringField("撤回原因", filters=[strip], render_kw={"maxlength": 200})


class DecideForm(FlaskForm):
    note = StringField("说明（可不填）", filters=[strip], render_kw={"maxlength": 200})


def _staff():
    if not current_scope().can_manage_any:
        abort(403)


def _reaches(scope, path: str) -> bool:
    """The user manages ``path`` or a region inside it (a village cadre and the town's
    campaign: they nominate their village's 邻长)."""
    return any(p.startswith(path) or path.startswith(p) for p in scope.top_paths("manage"))


def _campaign_or_404(campaign_id: int) -> Campaign:
    campaign = db.session.get(Campaign, campaign_id)
    if campaign is None:
        abort(404)
    if not _reaches(current_scope(), campaign.path):
        check_path(campaign.path, "manage")  # 404 out of sight, 403 seen but not managed
    return campaign


@bp.get("/haolin/")
def campaigns():
    _staff()
    scope = current_scope()
    towns = scope.town_ids("manage")
    q = select(Campaign)
    if towns is not None:
        q = q.where(Campaign.town_id.in_(towns))
    rows = [c for c in db.session.scalars(q.order_by(Campaign.id.desc()).limit(200))
            if _reaches(scope, c.path)]
    return render_template("commendations/campaigns.html", rows=rows)


@bp.route("/haolin/new", methods=["GET", "POST"])
def campaign_new():
    _staff()
    scope = current_scope()
    regions = list(db.session.scalars(scope.regions("manage").where(
        Region.level.in_(("town", "village"))).order_by(Region.path).limit(500)))
    form = CampaignForm()
    form.region_id.choices = {r.id: r.name for r in regions}
    if request.method == "POST":
        region = next((r for r in regions if r.id == form.region_id.data), None)
        if form.validate_on_submit():
            if region is None:
                show_on_form(form, ServiceError("请选择镇或村(社区)。", "region_id"))
            else:
                data = _form_data(form)
                made = []
                if attempt(form, lambda: made.append(svc.create_campaign(
                        current_user, scope, region, data))):
                    db.session.commit()
                    flash("评选已发起。下一步：推荐人选。")
                    return redirect(url_for("commendations.campaign",
                                            campaign_id=made[0].id), 303)
        db.session.rollback()
        return render_template("commendations/campaign_form.html", form=form), 422
    return render_template("commendations/campaign_form.html", form=form)


def _form_data(form: CampaignForm) -> dict:
    return {k: getattr(form, k).data for k in (
        "title", "honour", "quota", "period_start", "period_end", "notice_start", "notice_end",
        "design")}


@bp.route("/haolin/<int:campaign_id>/edit", methods=["GET", "POST"])
def campaign_edit(campaign_id: int):
    """Correct a campaign before its 公示: the cadres who manage its town or village."""
    campaign = _campaign_or_404(campaign_id)
    if not current_scope().allows("manage", campaign.path):
        abort(403)  # a village cadre sees the town's campaign, its own village's part of it
    form = CampaignForm(obj=campaign)
    del form.region_id
    if request.method == "POST":
        if form.validate_on_submit() and attempt(form, lambda: svc.update_campaign(
                current_user, current_scope(), campaign, _form_data(form))):
            db.session.commit()
            flash("评选已修改。")
            return redirect(url_for("commendations.campaign", campaign_id=campaign.id), 303)
        db.session.rollback()
        return render_template("commendations/campaign_form.html", form=form,
                               campaign=campaign), 422
    return render_template("commendations/campaign_form.html", form=form, campaign=campaign)


def _campaign_page(campaign: Campaign, status: int = 200, errors: dict | None = None):
    from portal.blueprints.auth.models import User

    scope = current_scope()
    q = select(Nomination).where(Nomination.campaign_id == campaign.id)
    if not scope.allows("manage", campaign.path):  # a village's cadre: their village's own
        q = q.where(scope.region_clause(Nomination.path, "manage"))
    rows = list(db.session.scalars(q.order_by(Nomination.path, Nomination.id)))
    names = dict(db.session.execute(select(User.id, User.name).where(
        User.id.in_([n.user_id for n in rows]))).all())
    objections: dict[int, list[Objection]] = {}
    for o in db.session.scalars(select(Objection).where(
            Objection.nomination_id.in_([n.id for n in rows])).order_by(Objection.id)):
        objections.setdefault(o.nomination_id, []).append(o)
    return render_template(
        "commendations/campaign.html", campaign=campaign, rows=rows, names=names,
        where=where_of(n.path for n in rows), objections=objections, labels=STAT_LABELS,
        errors=errors or {}, resolve=ResolveForm(formdata=None), decide=DecideForm(formdata=None),
        withdraw=WithdrawForm(formdata=None),
        can_decide=scope.allows("town", f"/{campaign.town_id}/"),
        can_publish=scope.allows("manage", campaign.path),
        after_notice=svc.today() > campaign.notice_end), status


@bp.get("/haolin/<int:campaign_id>")
def campaign(campaign_id: int):
    return _campaign_page(_campaign_or_404(campaign_id))


def _refused(campaign, key: str, error: ServiceError):
    db.session.rollback()
    return _campaign_page(campaign, 422, {key: error.message})


@bp.post("/haolin/<int:campaign_id>/notice")
def open_notice(campaign_id: int):
    campaign = _campaign_or_404(campaign_id)
    if not FlaskForm().validate_on_submit():
        abort(400)
    try:
        svc.open_notice(current_user, current_scope(), campaign)
    except ServiceError as e:
        return _refused(campaign, "notice", e)
    db.session.commit()
    flash("已公示。公示期内任何人都可以在公示页提出异议。")
    return redirect(url_for("commendations.campaign", campaign_id=campaign.id), 303)


def _nomination_or_404(nomination_id: int) -> tuple[Campaign, Nomination]:
    nomination = db.session.get(Nomination, nomination_id)
    if nomination is None:
        abort(404)
    return _campaign_or_404(nomination.campaign_id), nomination


def _act(campaign: Campaign, nomination: Nomination, form: FlaskForm, call, done: str,
         error_key: str):
    """One action on a nomination: CSRF and the form checked, the service called; then commit
    and back to the nomination (303), or the campaign page with the refusal (422)."""
    if not form.validate_on_submit():
        abort(400)
    try:
        call()
    except ServiceError as e:
        return _refused(campaign, error_key, e)
    db.session.commit()
    flash(done)
    return redirect(url_for("commendations.campaign", campaign_id=campaign.id,
                            _anchor=f"n{nomination.id}"), 303)


@bp.post("/haolin/objections/<int:objection_id>/resolve")
def resolve(objection_id: int):
    objection = db.session.get(Objection, objection_id)
    if objection is None:
        abort(404)
    campaign, nomination = _nomination_or_404(objection.nomination_id)
    form = ResolveForm()
    return _act(campaign, nomination, form, lambda: svc.resolve_objection(
        current_user, current_scope(), objection, nomination, form.upheld.data,
        form.resolution.data), "异议已处理。", f"o{objection.id}")


@bp.post("/haolin/nominations/<int:nomination_id>/decide")
def decide(nomination_id: int):
    campaign, nomination = _nomination_or_404(nomination_id)
    form = DecideForm()
    return _act(campaign, nomination, form, lambda: svc.decide(
        current_user, current_scope(), campaign, nomination,
        request.form.get("approve") == "1", form.note.data), "已审定。", f"n{nomination.id}")


@bp.post("/haolin/nominations/<int:nomination_id>/withdraw")
def withdraw(nomination_id: int):
    campaign, nomination = _nomination_or_404(nomination_id)
    form = WithdrawForm()
    return _act(campaign, nomination, form, lambda: svc.withdraw(
        current_user, current_scope(), campaign, nomination, form.reason.data),
        "已撤回推荐。", f"n{nomination.id}")


@bp.route("/haolin/<int:campaign_id>/nominate", methods=["GET", "POST"])
def nominate(campaign_id: int):
    campaign = _campaign_or_404(campaign_id)
    scope = current_scope()
    from portal.blueprints.auth.models import User

    chiefs = db.session.execute(
        select(Post, User.name, Region.path).join(User, User.id == Post.user_id)
        .join(Region, Region.id == Post.region_id)
        .where(Post.role == "neighbor_chief", Post.ended_at.is_(None),
               path_range(Region.path, campaign.path),
               scope.region_clause(Region.path, "manage"))
        .order_by(Region.path, User.name).limit(2000)).all()
    where = where_of(path for _, _, path in chiefs)
    excellent = _excellent(campaign, {p.user_id: (p, f"{name}（{where[path]}）")
                                      for p, name, path in chiefs})
    form = NominateForm()
    form.post_id.choices = {0: "请选择邻长", **{p.id: f"{name}（{where[path]}）"
                                            for p, name, path in chiefs}}
    if request.method == "GET" and request.args.get("post", type=int):
        form.post_id.data = request.args.get("post", type=int)
    page = {"campaign": campaign, "form": form, "excellent": excellent}
    if request.method == "POST":
        post = next((p for p, _, _ in chiefs if p.id == form.post_id.data), None)
        if form.validate_on_submit():
            try:
                photo = process_photo(form.photo.data, min_side=PHOTO_MIN_SIDE)
                if post is None:
                    raise ServiceError("请选择要推荐的邻长。", "post_id")
                name = new_photo_name() if photo else None
                review = next((r for r, p, *_ in excellent if p.id == post.id), None)
                svc.nominate(current_user, scope, campaign, post, form.deeds.data, name,
                             review_id=review.id if review else None)
                if photo:
                    store_photo("commendation", name, photo)
            except ServiceError as e:
                db.session.rollback()
                show_on_form(form, e)
            else:
                db.session.commit()
                flash("已推荐。")
                return redirect(url_for("commendations.campaign", campaign_id=campaign.id),
                                303)
        db.session.rollback()
        return render_template("commendations/nominate.html", **page), 422
    return render_template("commendations/nominate.html", **page)


def _excellent(campaign: Campaign, posts: dict) -> list[tuple]:
    """履职评议 优秀 of periods within the campaign's, for the 邻长 the user may nominate
    (``posts``: user id → (post, label)): (review, post, label, already nominated?, period),
    best score first."""
    from portal.blueprints.points.models import Review
    from portal.blueprints.points.services import period_label

    if not posts:
        return []
    reviews = db.session.scalars(
        select(Review).where(Review.result == "excellent", Review.town_id == campaign.town_id,
                             Review.user_id.in_(posts), path_range(Review.path, campaign.path),
                             Review.period_start >= campaign.period_start,
                             Review.period_end <= campaign.period_end)
        .order_by(Review.score.desc(), Review.period_end.desc())).all()
    taken = set(db.session.scalars(select(Nomination.user_id).where(
        Nomination.campaign_id == campaign.id, Nomination.user_id.in_(posts))))
    seen, rows = set(), []
    for r in reviews:  # a person's best period once
        if r.user_id not in seen:
            seen.add(r.user_id)
            rows.append((r, *posts[r.user_id], r.user_id in taken,
                         period_label(r.period_start, r.period_end)))
    return rows
