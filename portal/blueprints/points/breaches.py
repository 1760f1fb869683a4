"""六不得 (负面清单) pages: the list of breaches, recording one against a 邻长, one breach with
its points, the 邻长's answer and staff's withdrawal.

Who sees what:

* supervisors — 组长, 片长 and 村/镇干部 (``services.may_review``) — see the breaches under
  their posts and record new ones against the 邻长 there;
* a 邻长 sees only their own breaches (not another 邻长's, even in the same 邻) and answers
  them; recording is refused (403);
* withdrawing (the points go back) is for 村/镇干部 over the breach, with a reason; a 组长 or
  片长 gets 403.

A breach outside all that is 404, so its existence does not leak."""

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import aliased
from wtforms import DateField, SelectField
from wtforms.validators import InputRequired

from portal.blueprints.auth.models import User
from portal.blueprints.duties.models import ChecklistItem
from portal.blueprints.points import bp
from portal.blueprints.points import services as svc
from portal.blueprints.points.models import KINDS, Breach, PointsEntry
from portal.blueprints.regions.models import Post, Region
from portal.clock import local_today
from portal.errors import attempt
from portal.extensions import db
from portal.forms import text_area
from portal.scope import current_scope, town_id_of

#: Breaches per page of the list; 邻长 choices on the form.
PAGE = 50
MAX_CHIEFS = 2000
SHORT = 40



class BreachForm(FlaskForm):
    post_id = SelectField("邻长", coerce=int, validate_choice=False,
                          invalid_value_message="请选择邻长。")
    item_id = SelectField("负面清单（六不得）", coerce=int, validate_choice=False,
                          invalid_value_message="请选择负面清单中的一项。")
    occurred_on = DateField("发生日期", validators=[InputRequired("请填写发生日期。")],
                            invalid_value_message="日期格式不对，请按 2026-11-22 的样子填写。")
    evidence = text_area("事实和证据", 2000, 4,
                     placeholder="什么时间、什么事、谁看到了、有什么照片或证言")


class AnswerForm(FlaskForm):
    response = text_area("我的说明", 2000, 4, placeholder="情况说明或申辩，会附在这条记录上")


class WithdrawForm(FlaskForm):
    reason = text_area("撤销理由", 200, 2, placeholder="如：复核查无实据")


def _me():
    return current_user._get_current_object()


def _may_see(scope, breach) -> bool:
    return breach.user_id == current_user.id or svc.may_review(scope, breach.path)


# -- the list ------------------------------------------------------------------------------------
@bp.get("/breaches")
def breaches():
    scope = current_scope()
    supervisor = bool(scope.top_paths("supervise"))
    if not supervisor and not scope.is_neighbor_chief:
        abort(403)
    status = request.args.get("status")
    if status not in ("open", "unanswered", "withdrawn"):
        status = None
    page = max(1, request.args.get("page", 1, type=int) or 1)
    mine = Breach.user_id == current_user.id
    q = (select(Breach, User.name, ChecklistItem.title)
         .join(User, User.id == Breach.user_id)
         .join(ChecklistItem, ChecklistItem.id == Breach.item_id)
         .where(or_(scope.region_clause(Breach.path, "supervise"), mine)))
    if status == "open":
        q = q.where(Breach.withdrawn_at.is_(None))
    elif status == "unanswered":
        q = q.where(Breach.withdrawn_at.is_(None), Breach.responded_at.is_(None))
    elif status == "withdrawn":
        q = q.where(Breach.withdrawn_at.is_not(None))
    rows = db.session.execute(
        q.order_by(Breach.occurred_on.desc(), Breach.id.desc())
        .offset((page - 1) * PAGE).limit(PAGE + 1)).all()
    return render_template("points/breaches.html", rows=rows[:PAGE], more=len(rows) > PAGE,
                           page=page, status=status, supervisor=supervisor, short=SHORT)


# -- recording one -------------------------------------------------------------------------------
def _chief_choices(scope) -> dict[int, str]:
    """Active 邻长 posts under the user's supervised nodes: post id → "name（邻）"."""
    rows = db.session.execute(
        select(Post.id, User.name, Region.name)
        .join(User, User.id == Post.user_id).join(Region, Region.id == Post.region_id)
        .where(Post.role == "neighbor_chief", Post.ended_at.is_(None), User.active.is_(True),
               scope.region_clause(Region.path, "supervise"))
        .order_by(Region.path, User.name, Post.id).limit(MAX_CHIEFS)).all()
    return {pid: f"{name}（{hood}）" for pid, name, hood in rows}


def _item_choices(scope) -> dict[int, str]:
    """六不得 items of the towns the user supervises (named by town when there are several)."""
    tops = scope.top_paths("supervise")
    q = (select(ChecklistItem.id, ChecklistItem.title, Region.name)
         .join(Region, Region.id == ChecklistItem.town_id)
         .where(ChecklistItem.kind == "negative", ChecklistItem.active.is_(True)))
    if "/" not in tops:
        q = q.where(ChecklistItem.town_id.in_({town_id_of(p) for p in tops} or {0}))
    rows = db.session.execute(q.order_by(ChecklistItem.town_id, ChecklistItem.sort,
                                         ChecklistItem.id)).all()
    several = len({town for _, _, town in rows}) > 1
    return {i: f"{town} · {title}" if several else title for i, title, town in rows}


def _render_form(form, status: int = 200):
    scope = current_scope()
    form.post_id.choices = {0: "请选择…"} | _chief_choices(scope)
    form.item_id.choices = {0: "请选择…"} | _item_choices(scope)
    return render_template("points/breach_form.html", form=form, today=local_today()), status


def _load_post(post_id: int):
    """The post chosen on the form; 404 when it lies outside the user's subtrees (whether
    they may record against it is the service's question: 403 or a message)."""
    row = db.session.execute(
        select(Post, Region.path).join(Region, Region.id == Post.region_id)
        .where(Post.id == post_id)).one_or_none()
    if row is None or not current_scope().can_view(row[1]):
        abort(404)
    return row[0]


@bp.route("/breaches/new", methods=["GET", "POST"])
def breach_new():
    scope = current_scope()
    if not scope.top_paths("supervise"):
        abort(403)
    form = BreachForm()
    if request.method == "GET":
        form.occurred_on.data = local_today()
        form.post_id.data = request.args.get("post", 0, type=int)
        return _render_form(form)
    if not form.validate_on_submit() or not form.post_id.data or not form.item_id.data:
        if not form.post_id.data and not form.post_id.errors:
            form.post_id.errors.append("请选择邻长。")
        if not form.item_id.data and not form.item_id.errors:
            form.item_id.errors.append("请选择负面清单中的一项。")
        return _render_form(form, 422)
    post = _load_post(form.post_id.data)
    done = {}
    if attempt(form, lambda: done.setdefault("b", svc.record_breach(
            _me(), scope, post, form.item_id.data, form.occurred_on.data, form.evidence.data,
            today=local_today()))):
        db.session.commit()
        breach = done["b"]
        took = db.session.scalar(select(PointsEntry.delta).where(
            PointsEntry.source_type == "breach", PointsEntry.source_id == breach.id,
            PointsEntry.kind == "award"))
        flash("已记录负面清单" + (f"，扣 {-took} 分。" if took else "（按规则本次不扣分）。"))
        return redirect(url_for("points.breach", breach_id=breach.id), 303)
    return _render_form(form, 422)


# -- one breach ----------------------------------------------------------------------------------
def _load_breach(breach_id: int):
    """(breach, the 邻长's name, item title, recorder's name); 404 unless the user may see it."""
    chief, recorder = aliased(User), aliased(User)
    row = db.session.execute(
        select(Breach, chief.name, ChecklistItem.title, recorder.name, Region.name)
        .join(chief, chief.id == Breach.user_id)
        .join(recorder, recorder.id == Breach.recorded_by_id)
        .join(ChecklistItem, ChecklistItem.id == Breach.item_id)
        .outerjoin(Region, Region.path == Breach.path)
        .where(Breach.id == breach_id)).one_or_none()
    if row is None or not _may_see(current_scope(), row[0]):
        abort(404)
    return row


def _render_breach(row, failed: str | None = None, form=None, status: int = 200):
    scope = current_scope()
    breach = row[0]
    award_ids = select(PointsEntry.id).where(PointsEntry.source_type == "breach",
                                             PointsEntry.source_id == breach.id)
    ledger = list(db.session.scalars(
        select(PointsEntry).where(or_(
            and_(PointsEntry.source_type == "breach", PointsEntry.source_id == breach.id),
            PointsEntry.reverses_id.in_(award_ids))).order_by(PointsEntry.id)))
    forms = {}
    if breach.user_id == current_user.id and breach.withdrawn_at is None:
        f = AnswerForm(formdata=None)
        f.response.data = breach.response
        forms["answer"] = f
    if scope.allows("manage", breach.path) and breach.withdrawn_at is None:
        forms["withdraw"] = WithdrawForm(formdata=None)
    if failed is not None:
        forms[failed] = form
    return render_template(
        "points/breach.html", b=breach, chief_name=row[1], item_title=row[2],
        recorder_name=row[3], hood_name=row[4], ledger=ledger,
        total=sum(e.delta for e in ledger), kinds=KINDS, forms=forms, failed=failed,
        mine=breach.user_id == current_user.id,
        supervisor=svc.may_review(scope, breach.path)), status


@bp.get("/breaches/<int:breach_id>")
def breach(breach_id: int):
    return _render_breach(_load_breach(breach_id))


def _change(breach_id: int, name: str, form, change, message: str):
    if form.validate_on_submit() and attempt(form, change):
        db.session.commit()
        flash(message)
        return redirect(url_for("points.breach", breach_id=breach_id), 303)
    db.session.rollback()
    return _render_breach(_load_breach(breach_id), failed=name, form=form, status=422)


@bp.post("/breaches/<int:breach_id>/answer")
def breach_answer(breach_id: int):
    b = _load_breach(breach_id)[0]
    form = AnswerForm()
    return _change(breach_id, "answer", form,
                   lambda: svc.answer_breach(_me(), b, form.response.data),
                   "说明已保存，会附在这条记录上。")


@bp.post("/breaches/<int:breach_id>/withdraw")
def breach_withdraw(breach_id: int):
    scope = current_scope()
    b = _load_breach(breach_id)[0]
    form = WithdrawForm()
    return _change(breach_id, "withdraw", form,
                   lambda: svc.withdraw_breach(_me(), scope, b, form.reason.data),
                   "已撤销这条负面清单记录，扣的积分已退回。")
