"""Pages of the 四个一 kit: a village's list of 邻长 with what each was issued and the village's
sheets; one 邻长's page (photo, issued dates, their cards); the town's policy text; and the
public page a work card's QR code opens. Staff who manage the region (village and town cadres)
use them; views parse, call one service, commit and redirect (303); a refusal re-renders with
the message (422, nothing saved)."""

from __future__ import annotations

from datetime import date
from time import perf_counter

from flask import (
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from sqlalchemy import func, select
from wtforms import SelectField, StringField, TextAreaField

from portal import batch
from portal.blueprints.commendations import bp
from portal.blueprints.commendations import kit as svc
from portal.blueprints.commendations.models import KIT_ITEMS, KitIssue
from portal.blueprints.commendations.views import _staff
from portal.blueprints.regions.models import Household, Post, Region
from portal.blueprints.regions.services import path_names
from portal.errors import ServiceError, attempt, show_on_form
from portal.extensions import db
from portal.forms import strip, unix_newlines
from portal.htmx import render_page_or_partial
from portal.pdf import pdf_response
from portal.photos import new_photo_name, photo_dir, process_photo, send_photo, store_photo
from portal.scope import (
    current_scope,
    get_household_or_404,
    get_post_or_404,
    get_region_or_404,
    get_town_or_404,
    path_range,
)


class PhotoForm(FlaskForm):
    photo = FileField("工作证照片（JPG、PNG 或 WebP，正面免冠）", render_kw={"accept": "image/*"})


class IssueForm(FlaskForm):
    #: Both checked by the service (kit.record_issue), which says what is wrong in Chinese.
    item = SelectField("物品", choices=dict(KIT_ITEMS), validate_choice=False)
    issued_on = StringField("发放日期", filters=[strip], render_kw={"type": "date"})


class PolicyForm(FlaskForm):
    title = StringField("标题", filters=[strip], render_kw={"maxlength": 30})
    body = TextAreaField("政策要点", filters=[strip, unix_newlines],
                         render_kw={"rows": 10, "maxlength": svc.POLICY_MAX,
                                    "placeholder": "每条一行，例如：城乡居民医保 每年 9 月至 12 月缴费"})


def _village_or_404(region_id: int) -> Region:
    region = get_region_or_404(region_id, "manage")
    if region.level != "village":
        abort(404)
    return region


def _chief_post_or_404(post_id: int) -> Post:
    post = get_post_or_404(post_id, "manage")
    if post.role != "neighbor_chief":
        abort(404)
    return post


def _timed_pdf(kind: str, cards: list[dict], sheet: bool, filename: str):
    started = perf_counter()
    pdf = svc.cards_pdf(kind, cards, sheet)
    current_app.logger.info("kit %s: %d cards, %.2f s, %d bytes", kind, len(cards),
                            perf_counter() - started, len(pdf))
    return pdf_response(pdf, filename)


# -- staff pages -------------------------------------------------------------------------------
@bp.get("/sige/")
def kit():
    """The villages the user manages, each a link to its kit page."""
    _staff()
    scope = current_scope()
    villages = list(db.session.scalars(scope.regions("manage").where(
        Region.level == "village").order_by(Region.path).limit(500)))
    names = path_names(v.path for v in villages)
    towns = sorted({v.town_id for v in villages})
    return render_template("commendations/kit/index.html", villages=villages, names=names,
                           towns=[(t, names.get(t, "")) for t in towns
                                  if scope.allows("town", f"/{t}/")])


@bp.get("/sige/villages/<int:region_id>")
def kit_village(region_id: int):
    village = _village_or_404(region_id)
    chiefs = svc.chiefs_under(village)
    per_hood = db.session.execute(
        select(Region.path, func.count()).select_from(Household).join(
            Region, Region.id == Household.neighborhood_id)
        .where(path_range(Region.path, village.path)).group_by(Region.path)).all()
    names = path_names([village.path] + [c.path for c in chiefs] + [p for p, _ in per_hood])
    groups: dict[int, int] = {}  # 组 id → households (a big village prints by 组, too)
    for path, n in per_hood:
        ids = [int(i) for i in path.strip("/").split("/")]
        if len(ids) > 3:
            groups[ids[3]] = groups.get(ids[3], 0) + n
    return render_template(
        "commendations/kit/village.html", village=village, chiefs=chiefs,
        where={c.path: svc.where(c.path, names) for c in chiefs},
        households=sum(n for _, n in per_hood),
        groups=sorted(((names.get(g, ""), g, n) for g, n in groups.items())),
        town=names.get(village.town_id, ""), items=KIT_ITEMS, cards=svc.CARDS,
        can_edit_policy=current_scope().allows("town", f"/{village.town_id}/"))


def _chief_page(post: Post, photo_form=None, issue_form=None, status: int = 200):
    issued = dict(db.session.execute(select(KitIssue.item, KitIssue.issued_on).where(
        KitIssue.post_id == post.id)).all())
    households = list(db.session.execute(
        select(Household.id, Household.head_name, Household.address)
        .where(Household.neighborhood_id == post.region_id)
        .order_by(Household.address, Household.id).limit(500)))
    names = path_names([post.region.path])
    village_id = post.region.ancestor_ids[1] if len(post.region.ancestor_ids) > 1 else None
    return render_template(
        "commendations/kit/chief.html", post=post, issued=issued, items=KIT_ITEMS,
        where=svc.where(post.region.path, names), households=households,
        village=(village_id, names.get(village_id, "")) if village_id else None,
        photo_form=photo_form or PhotoForm(formdata=None),
        issue_form=issue_form or IssueForm(formdata=None, issued_on=str(svc.today())),
        min_side=svc.CARD_PHOTO_MIN_SIDE), status


@bp.get("/sige/posts/<int:post_id>")
def kit_chief(post_id: int):
    return _chief_page(_chief_post_or_404(post_id))


@bp.post("/sige/posts/<int:post_id>/photo")
def kit_photo_upload(post_id: int):
    post = _chief_post_or_404(post_id)
    form = PhotoForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        photo = process_photo(form.photo.data, min_side=svc.CARD_PHOTO_MIN_SIDE)
        if photo is None:
            raise ServiceError("请选择一张照片。", "photo")
        name = new_photo_name()
        old = svc.set_card_photo(current_user, current_scope(), post, post.region, name)
        store_photo(svc.PHOTO_KIND, name, photo)
    except ServiceError as e:
        db.session.rollback()
        show_on_form(form, e)
        return _chief_page(_chief_post_or_404(post_id), photo_form=form, status=422)
    db.session.commit()
    if old:
        (photo_dir(svc.PHOTO_KIND) / old).unlink(missing_ok=True)
    flash("照片已保存，工作证上会印这张照片。")
    return redirect(url_for("commendations.kit_chief", post_id=post_id), 303)


@bp.get("/sige/posts/<int:post_id>/photo.jpg")
def kit_photo(post_id: int):
    return send_photo(svc.PHOTO_KIND, _chief_post_or_404(post_id).card_photo)


@bp.post("/sige/posts/<int:post_id>/issue")
def kit_issue(post_id: int):
    """Record the day one of the 四个一 was handed over, or (``clear``) take a record back."""
    post = _chief_post_or_404(post_id)
    form = IssueForm()
    if not form.validate_on_submit():
        abort(400)
    clear = request.form.get("clear") == "1"
    try:
        day = date.fromisoformat(form.issued_on.data or "")
    except ValueError:
        day = None  # the service says what is missing

    def change():
        if clear:
            svc.clear_issue(current_user, current_scope(), post, post.region, form.item.data)
        else:
            svc.record_issue(current_user, current_scope(), post, post.region, form.item.data,
                             day)

    if attempt(form, change):
        db.session.commit()
        flash(f"已{'撤销' if clear else '登记'}{KIT_ITEMS[form.item.data]}的发放。")
        return redirect(url_for("commendations.kit_chief", post_id=post_id, _anchor="kit"), 303)
    return _chief_page(_chief_post_or_404(post_id), issue_form=form, status=422)


# -- printing ----------------------------------------------------------------------------------
def _names_and_town(paths, town_id: int) -> tuple[dict[int, str], Region]:
    names = path_names(list(paths) + [f"/{town_id}/"])
    return names, Region(id=town_id, name=names.get(town_id, ""), level="town",
                         path=f"/{town_id}/")


@bp.get("/sige/villages/<int:region_id>/<kind>.pdf")
def kit_sheet(region_id: int, kind: str):
    """Every current 邻长's work card or policy card, or every household's contact card, of a
    village (or of one of its 组: a big village's contact cards print faster by 组), as A4
    sheets."""
    if kind not in svc.CARDS:
        abort(404)
    region = get_region_or_404(region_id, "manage")
    if region.level not in ("village", "group"):
        abort(404)
    filename = f"{region.name}{svc.CARDS[kind]}.pdf"
    if kind == "contact" and region.level == "village":  # hundreds of cards: the batch's
        parts, state = _contact_batch(region)
        if state["done"] < state["total"] or not parts:
            flash("联户信息卡还没有全部生成，请先生成。")
            return redirect(url_for("commendations.kit_contact", region_id=region.id), 303)
        return pdf_response(batch.merged(parts), filename)
    return _cards(kind, region, None, sheet=True, filename=filename)


def _contact_batch(village: Region) -> tuple[list[batch.Part], dict]:
    """A village's contact cards as a batch print (its parts) and the page's figures."""
    rows = svc.households_under(village)
    svc.fill_intake_tokens([r.household for r in rows])
    cards = svc.contact_cards(rows, path_names(r.path for r in rows))
    db.session.commit()  # the new tokens, once the cards hold them
    parts = svc.contact_parts(cards)
    key = "contact:" + batch.digest([p.path.name for p in parts])
    return parts, {
        "key": key, "total": len(parts), "done": batch.done(parts),
        "running": batch.running(key), "noun": "联户信息卡", "unit": "份",
        "empty": "这个村(社区)还没有住户。先在“管理”里录入住户。",
        "pdf_label": f"下载 {len(cards)} 张联户信息卡（PDF，A4）", "cards": len(cards),
        "poll_url": url_for("commendations.kit_contact", region_id=village.id),
        "start_url": url_for("commendations.kit_contact", region_id=village.id),
        "pdf_url": url_for("commendations.kit_sheet", region_id=village.id, kind="contact")}


@bp.route("/sige/villages/<int:region_id>/contact", methods=["GET", "POST"])
def kit_contact(region_id: int):
    """A whole village's contact cards, rendered in the background in parts of 40 with a
    progress bar, then downloaded as one PDF."""
    village = _village_or_404(region_id)
    parts, state = _contact_batch(village)
    if request.method == "POST":
        if not FlaskForm().validate_on_submit():
            abort(400)
        batch.start(state["key"], parts)
        return redirect(url_for("commendations.kit_contact", region_id=village.id), 303)
    return render_page_or_partial("commendations/kit/contact.html", "_batch.html", "batch",
                                  village=village, **state)


@bp.get("/sige/posts/<int:post_id>/<kind>.pdf")
def kit_card(post_id: int, kind: str):
    """One 邻长's work card or policy card; ``contact``: the contact cards of every household
    of their 邻 as a sheet."""
    if kind not in svc.CARDS:
        abort(404)
    post = _chief_post_or_404(post_id)
    if post.ended_at is not None and kind != "contact":
        abort(404)  # an ended post gets no new card
    name = f"{post.user.name}{svc.CARDS[kind]}.pdf"
    if kind == "contact":
        return _cards(kind, post.region, None, sheet=True, filename=name)
    return _cards(kind, post.region, post.id, sheet=False, filename=name)


@bp.get("/sige/households/<int:household_id>/card.pdf")
def kit_household_card(household_id: int):
    household = get_household_or_404(household_id, "manage")
    return _cards("contact", household.neighborhood, household.id, sheet=False,
                  filename=f"{household.head_name}家联户信息卡.pdf")


def _cards(kind: str, region: Region, one: int | None, sheet: bool, filename: str):
    """Load what the cards print (a fixed number of queries however many), make the missing
    link tokens (one statement), commit them and render."""
    if kind == "contact":
        rows = svc.households_under(region, household_id=one)
        svc.fill_intake_tokens([r.household for r in rows])
        cards = svc.contact_cards(rows, path_names(r.path for r in rows))
        db.session.commit()  # the new tokens, once the cards hold them (nothing reloads)
        return _timed_pdf(kind, cards, sheet, filename)
    chiefs = svc.chiefs_under(region, post_id=one)
    if kind == "work":
        svc.fill_card_tokens([c.post for c in chiefs])
        cards = svc.work_cards(chiefs, path_names(c.path for c in chiefs))
        db.session.commit()
        return _timed_pdf(kind, cards, sheet, filename)
    names, town = _names_and_town((c.path for c in chiefs), region.town_id)
    policy = svc.policy_of(town)
    cards = svc.policy_cards(chiefs, names, town, policy, svc.checklists(town.id))
    return _timed_pdf(kind, cards, sheet, filename)


# -- the town's policy text ------------------------------------------------------------------------
@bp.route("/sige/towns/<int:town_id>/policy", methods=["GET", "POST"])
def kit_policy(town_id: int):
    town = get_town_or_404(town_id, "town")
    policy = svc.policy_of(town)
    form = PolicyForm(obj=policy) if policy else PolicyForm(
        title=svc.default_policy_title(town))
    if request.method == "POST":
        if form.validate_on_submit() and attempt(form, lambda: svc.save_policy(
                current_user, current_scope(), town, form.title.data, form.body.data)):
            db.session.commit()
            flash("政策明白卡已保存，之后打印的卡片都印新的内容。")
            return redirect(url_for("commendations.kit_policy", town_id=town.id), 303)
        db.session.rollback()
        return _policy_page(town, form, 422)
    return _policy_page(town, form)


def _policy_page(town: Region, form, status: int = 200):
    from portal.blueprints.duties.models import CHECKLIST_KINDS

    return render_template("commendations/kit/policy.html", town=town, form=form,
                           lists=svc.checklists(town.id), kinds=CHECKLIST_KINDS,
                           limit=svc.POLICY_MAX), status


# -- public: where a work card's QR code leads ---------------------------------------------------
def _card_holder(token: str):
    if not token or len(token) > 32:
        abort(404)
    from portal.blueprints.auth.models import User

    row = db.session.execute(
        select(Post, User.name, Region.path).join(User, User.id == Post.user_id)
        .join(Region, Region.id == Post.region_id)
        .where(Post.card_token == token, Post.role == "neighbor_chief")).first()
    if row is None:
        abort(404)
    return row


@bp.get("/zheng/<token>")
def card_check(token: str):
    """Says whether the work card's post is current; shows name, post, region and photo only."""
    post, name, path = _card_holder(token)
    names = path_names([path])
    return render_template("commendations/kit/check.html", post=post, name=name,
                           where=svc.where(path, names),
                           town=names.get(int(path.strip("/").split("/")[0]), ""), token=token)


@bp.get("/zheng/<token>/photo.jpg")
def card_check_photo(token: str):
    post, _, _ = _card_holder(token)
    return send_photo(svc.PHOTO_KIND, post.card_photo, max_age=3600)
