"""积分 rewards store: what can be redeemed today, a confirmation step, the voucher with its
code; for staff the rewards of their town (stock, validity, issued/used) and the voucher desk
(look up a code, mark it used).

Who does what:

* anyone with a post in a town sees that town's store and redeems with their own points; the
  redemption is booked on the post in the reward's town (their 邻长 post first);
* the voucher (and its code) is shown to its owner and to staff (村/镇干部) over its path;
* village and town staff see the rewards list and the voucher desk, and mark vouchers used;
* only town staff (and admins) create and edit rewards (``scope.allows("town", town.path)``);
  a village cadre gets 403 there.

Every change is a POST: parse, one service call, commit, 303; a rule's refusal re-renders the
page with the message (422, nothing saved)."""

import re

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import case, func, select
from sqlalchemy.orm import aliased
from wtforms import (
    BooleanField,
    DateField,
    HiddenField,
    IntegerField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import InputRequired, Length

from portal.blueprints.auth.models import User
from portal.blueprints.points import bp
from portal.blueprints.points import services as svc
from portal.blueprints.points.models import Redemption, Reward
from portal.blueprints.regions.models import Region
from portal.clock import local_today
from portal.errors import ServiceError, attempt
from portal.extensions import db
from portal.forms import strip
from portal.scope import current_scope, get_town_or_404, town_id_of

#: Voucher statuses as people say them.
VOUCHER_STATUS = {"issued": "未使用", "used": "已核销", "cancelled": "作废"}
#: Vouchers per page on the voucher desk; my own vouchers shown on the store page.
DESK_PAGE = 30
MY_VOUCHERS = 50
DATE_HINT = "日期格式不对，请按 2026-11-22 的样子填写。"


def _int(label, message):
    # the service checks the range (and names the field); the form only parses
    return IntegerField(label, validators=[InputRequired(message)],
                        invalid_value_message=message,
                        render_kw={"inputmode": "numeric", "min": 0})


class RewardForm(FlaskForm):
    town_id = SelectField("所属镇", coerce=int, validate_choice=False,
                          invalid_value_message="请选择镇。")
    name = StringField("奖励名称", filters=[strip],
                       validators=[Length(max=60, message="名称最多 60 字。")],
                       render_kw={"maxlength": 60, "placeholder": "如：村BA观赛门票"})
    description = TextAreaField("说明（可不填）", filters=[strip],
                                validators=[Length(max=1000, message="说明最多 1000 字。")],
                                render_kw={"rows": 3, "maxlength": 1000,
                                           "placeholder": "在哪里领、怎么用"})
    cost = _int("所需积分", "所需积分应为 1 到 100000 之间的整数。")
    stock = _int("剩余数量", "数量应为 0 到 100000 之间的整数。")
    valid_from = DateField("开始兑换日期", validators=[InputRequired("请填写开始兑换日期。")],
                           invalid_value_message=DATE_HINT)
    valid_until = DateField("截止兑换日期", validators=[InputRequired("请填写截止兑换日期。")],
                            invalid_value_message=DATE_HINT)
    active = BooleanField("上架（可以兑换）", default=True)
    #: The stock the editor saw: redemptions made meanwhile are not overwritten.
    stock_seen = HiddenField()


class ConfirmForm(FlaskForm):
    """A POST with nothing but its CSRF token (redeem, mark used)."""

    #: where to go back to after marking a voucher used: "voucher" or "desk"
    back = HiddenField()


def _me():
    return current_user._get_current_object()


def spaced(code: str) -> str:
    """ABCDEFGH23 → "ABCD EFGH 23", easier to read out and to type."""
    return " ".join(code[i:i + 4] for i in range(0, len(code), 4))


def normal_code(text: str | None) -> str:
    """What staff typed, as stored: capitals, no spaces or dashes."""
    return re.sub(r"[\s\-]+", "", text or "").upper()[:20]


@bp.context_processor
def _store_labels():
    return {"voucher_status": VOUCHER_STATUS, "spaced": spaced}


# -- the store ---------------------------------------------------------------------------------
def _my_towns(scope) -> list[int]:
    """Towns where the user holds a post on a region (a deployment-wide admin holds none)."""
    return sorted({town_id_of(gr.path) for gr in scope.grants if gr.region_id})


def _redeem_path(scope, town_id: int) -> str | None:
    """The post the spending is booked on: in the reward's town, the 邻长 post first, then the
    most specific one."""
    paths = [(gr.role != "neighbor_chief", -gr.path.count("/"), gr.path)
             for gr in scope.grants if gr.region_id and town_id_of(gr.path) == town_id]
    return min(paths)[2] if paths else None


def _town_names(town_ids) -> dict[int, str]:
    if not town_ids:
        return {}
    return dict(db.session.execute(select(Region.id, Region.name).where(
        Region.id.in_(town_ids))).all())


def _render_store(error: str | None = None, failed: int | None = None, status: int = 200):
    scope = current_scope()
    me = current_user.id
    towns = _my_towns(scope)
    today = local_today()
    offers = svc.rewards(towns, available_on=today) if towns else []
    mine = db.session.execute(
        select(Redemption, Reward.name).join(Reward, Reward.id == Redemption.reward_id)
        .where(Redemption.user_id == me)
        .order_by(Redemption.created_at.desc(), Redemption.id.desc()).limit(MY_VOUCHERS)).all()
    return render_template(
        "points/store.html", balance=svc.balance(me), offers=offers, mine=mine,
        unused=sum(1 for red, _ in mine if red.status == "issued"),
        towns=_town_names(towns) if len(towns) > 1 else {}, has_town=bool(towns),
        form=ConfirmForm(formdata=None), error=error, failed=failed, today=today), status


@bp.get("/store")
def store():
    return _render_store()


@bp.post("/store/<int:reward_id>/redeem")
def redeem(reward_id: int):
    scope = current_scope()
    reward = db.session.get(Reward, reward_id)
    towns = _my_towns(scope)
    if reward is None or (reward.town_id not in towns and not scope.can_view(
            f"/{reward.town_id}/")):
        abort(404)
    form = ConfirmForm()
    if not form.validate_on_submit():
        abort(400)
    path = _redeem_path(scope, reward.town_id)
    if path is None:
        return _render_store("您在这个镇没有岗位，不能兑换这里的奖励。", reward_id, 422)
    done = {}
    try:
        done["voucher"] = svc.redeem(_me(), reward.id, path, today=local_today())
    except ServiceError as e:
        db.session.rollback()
        return _render_store(e.message, reward_id, 422)
    db.session.commit()
    flash(f"兑换成功，已扣 {done['voucher'].cost} 分。领取时向村(社区)干部出示兑换码。")
    return redirect(url_for("points.voucher", redemption_id=done["voucher"].id), 303)


# -- one voucher -------------------------------------------------------------------------------
def _load_voucher(redemption_id: int):
    """(redemption, reward name, owner name, name of who marked it used)."""
    owner, user_by = aliased(User), aliased(User)
    row = db.session.execute(
        select(Redemption, Reward.name, owner.name, user_by.name)
        .join(Reward, Reward.id == Redemption.reward_id)
        .join(owner, owner.id == Redemption.user_id)
        .outerjoin(user_by, user_by.id == Redemption.used_by_id)
        .where(Redemption.id == redemption_id)).one_or_none()
    if row is None:
        abort(404)
    return row


def _may_see_voucher(scope, redemption) -> bool:
    return redemption.user_id == current_user.id or scope.allows("manage", redemption.path)


def _render_voucher(row, error: str | None = None, status: int = 200):
    scope = current_scope()
    redemption = row[0]
    return render_template(
        "points/voucher.html", r=redemption, reward_name=row[1], owner_name=row[2],
        used_by=row[3], mine=redemption.user_id == current_user.id,
        staff=scope.allows("manage", redemption.path), form=ConfirmForm(formdata=None),
        error=error), status


@bp.get("/vouchers/<int:redemption_id>")
def voucher(redemption_id: int):
    row = _load_voucher(redemption_id)
    if not _may_see_voucher(current_scope(), row[0]):
        abort(404)
    return _render_voucher(row)


@bp.post("/vouchers/<int:redemption_id>/use")
def voucher_use(redemption_id: int):
    scope = current_scope()
    row = _load_voucher(redemption_id)
    redemption = row[0]
    if redemption.user_id != current_user.id and not scope.can_view(redemption.path):
        abort(404)
    form = ConfirmForm()
    if not form.validate_on_submit():
        abort(400)
    if not attempt(form, lambda: svc.mark_used(_me(), scope, redemption)):
        return _render_voucher(_load_voucher(redemption_id), form.form_errors[0], 422)
    db.session.commit()
    flash(f"兑换券 {spaced(redemption.code)} 已核销。")
    if form.back.data == "desk":
        return redirect(url_for("points.vouchers_admin", code=redemption.code), 303)
    return redirect(url_for("points.voucher", redemption_id=redemption_id), 303)


# -- staff: the voucher desk -------------------------------------------------------------------
def _need_staff(scope) -> None:
    if not scope.can_manage_any:
        abort(403)


@bp.get("/vouchers")
def vouchers_admin():
    scope = current_scope()
    _need_staff(scope)
    in_scope = scope.region_clause(Redemption.path, "manage")
    asked = request.args.get("code", "")
    code = normal_code(asked)
    page = max(1, request.args.get("page", 1, type=int) or 1)
    status = request.args.get("status")
    if status not in VOUCHER_STATUS:
        status = None
    columns = (Redemption, Reward.name, User.name)

    def q():
        return (select(*columns).join(Reward, Reward.id == Redemption.reward_id)
                .join(User, User.id == Redemption.user_id).where(in_scope))

    found = db.session.execute(q().where(Redemption.code == code)).one_or_none() \
        if code else None
    recent_q = q()
    if status:
        recent_q = recent_q.where(Redemption.status == status)
    rows = db.session.execute(
        recent_q.order_by(Redemption.created_at.desc(), Redemption.id.desc())
        .offset((page - 1) * DESK_PAGE).limit(DESK_PAGE + 1)).all()
    return render_template(
        "points/vouchers_admin.html", asked=asked.strip(), code=code, found=found,
        rows=rows[:DESK_PAGE], more=len(rows) > DESK_PAGE, page=page, status=status,
        form=ConfirmForm(formdata=None))


# -- staff: the rewards of their town ----------------------------------------------------------
def _town_choices(scope) -> dict[int, str]:
    """Towns whose rewards the user may edit (town staff; every town for an admin)."""
    towns = scope.town_ids("town")
    q = select(Region.id, Region.name).where(Region.level == "town")
    if towns is not None:
        q = q.where(Region.id.in_(towns or [0]))
    return dict(db.session.execute(q.order_by(Region.id)).all())


@bp.get("/rewards")
def rewards():
    scope = current_scope()
    _need_staff(scope)
    towns = scope.town_ids("manage")
    counts = (select(Redemption.reward_id,
                     func.count().label("issued"),
                     func.sum(case((Redemption.status == "used", 1), else_=0)).label("used"))
              .group_by(Redemption.reward_id).subquery())
    q = (select(Reward, Region.name, func.coalesce(counts.c.issued, 0),
                func.coalesce(counts.c.used, 0))
         .join(Region, Region.id == Reward.town_id)
         .outerjoin(counts, counts.c.reward_id == Reward.id))
    if towns is not None:
        q = q.where(Reward.town_id.in_(towns or [0]))
    rows = db.session.execute(q.order_by(
        Reward.active.desc(), Reward.valid_until.desc(), Reward.id.desc())).all()
    editable = {t for t in {r[0].town_id for r in rows} | set(towns or ())
                if scope.allows("town", f"/{t}/")}
    return render_template(
        "points/rewards.html", rows=rows, editable=editable,
        can_create=scope.can_edit_town_settings, several=len({r[0].town_id for r in rows}) > 1,
        today=local_today())


def _reward_data(form, reward) -> dict:
    """The form's values for the service, with the stock the editor was shown (the service
    keeps redemptions made while the form was open)."""
    try:
        seen = int(form.stock_seen.data) if reward is not None else None
    except (TypeError, ValueError):
        seen = reward.stock
    return {"name": form.name.data, "description": form.description.data,
            "cost": form.cost.data, "stock": form.stock.data, "stock_seen": seen,
            "valid_from": form.valid_from.data, "valid_until": form.valid_until.data,
            "active": form.active.data}


def _save_reward(form, reward, towns: dict[int, str]):
    """POST of the reward form: validate, save, 303 to the list; 422 with the message."""
    scope = current_scope()
    town_id = reward.town_id if reward is not None else form.town_id.data
    if reward is None and town_id not in towns:
        form.town_id.errors.append("请选择镇。")
        return None
    town = get_town_or_404(town_id, "town")
    if not scope.allows("town", town.path):
        abort(403)
    done = {}
    if form.validate_on_submit() and attempt(
            form, lambda: done.setdefault("r", svc.save_reward(_me(), town, reward,
                                                               _reward_data(form, reward)))):
        db.session.commit()
        flash(f"奖励“{done['r'].name}”已保存。")
        return redirect(url_for("points.rewards"), 303)
    db.session.rollback()
    return None


@bp.route("/rewards/new", methods=["GET", "POST"])
def reward_new():
    scope = current_scope()
    if not scope.can_edit_town_settings:
        abort(403)
    towns = _town_choices(scope)
    if not towns:
        abort(403)
    form = RewardForm()
    form.town_id.choices = towns
    if request.method == "POST":
        done = _save_reward(form, None, towns)
        if done is not None:
            return done
        return render_template("points/reward_form.html", form=form, reward=None,
                               towns=towns), 422
    asked = request.args.get("town", type=int)
    form.town_id.data = asked if asked in towns else next(iter(towns))
    today = local_today()
    form.valid_from.data = today
    return render_template("points/reward_form.html", form=form, reward=None, towns=towns)


@bp.route("/rewards/<int:reward_id>", methods=["GET", "POST"])
def reward_edit(reward_id: int):
    scope = current_scope()
    reward = db.session.get(Reward, reward_id)
    reach = scope.town_ids("any")
    if reward is None or (reach is not None and reward.town_id not in reach):
        abort(404)
    town = get_town_or_404(reward.town_id, "town")  # 403 unless town staff
    form = RewardForm(obj=reward if request.method == "GET" else None)
    if request.method == "GET":
        form.stock_seen.data = reward.stock
    form.town_id.choices = {town.id: town.name}
    form.town_id.data = town.id
    issued, used = db.session.execute(
        select(func.count(), func.coalesce(func.sum(case(
            (Redemption.status == "used", 1), else_=0)), 0))
        .where(Redemption.reward_id == reward.id)).one()
    if request.method == "POST":
        done = _save_reward(form, reward, {town.id: town.name})
        if done is not None:
            return done
        reward = db.session.get(Reward, reward_id)
        form.stock_seen.data = reward.stock
        return render_template("points/reward_form.html", form=form, reward=reward,
                               towns={town.id: town.name}, issued=issued, used=used), 422
    return render_template("points/reward_form.html", form=form, reward=reward,
                           towns={town.id: town.name}, issued=issued, used=used)
