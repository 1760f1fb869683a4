"""履职评议 pages: the 邻长 of a region with their figures for a period and where their review
stands; one 邻长's figures, how the score is made, and the supervisor's grading form; the town's
thresholds; the 优秀 list (好邻 nominations, 村级后备干部 pool) and its XLSX export.

Who: supervisors (组长, 片长, 村(社区) and 镇 staff, admin) see and grade the 邻长 of their
subtree; a 邻长 sees only their own review, read-only; town staff edit the thresholds; staff who
manage the region export the 优秀 list. The figures come from ``services.review_metrics``; a graded
review shows the figures as they stood when it was graded (they are kept with the grade)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from sqlalchemy import and_, false, or_, select
from sqlalchemy.orm import joinedload
from wtforms import IntegerField, RadioField, TextAreaField
from wtforms.validators import InputRequired, Length

from portal.audit import record
from portal.blueprints.auth.models import User
from portal.blueprints.points import bp
from portal.blueprints.points import services as svc
from portal.blueprints.points.models import (
    DEFAULT_THRESHOLDS,
    GRADES,
    RESULTS,
    Review,
    ReviewSettings,
)
from portal.blueprints.regions.models import Post, Region
from portal.blueprints.regions.services import node_name, path_names
from portal.clock import local_today, to_local, utcnow
from portal.errors import ServiceError, attempt
from portal.extensions import db
from portal.forms import strip, unix_newlines
from portal.scope import ACTIONS, current_scope, get_town_or_404, town_id_of
from portal.xlsx import download_xlsx

#: Roles that see and grade the 邻长 of their subtree (``services.may_review``).
#: Result → the card colour (app.css: ok green, due amber, overdue red, plain grey).
RESULT_CLASS = {"excellent": "ok", "competent": "plain", "basic": "due",
                "incompetent": "overdue"}
#: Result → the headline colour on the review page (app.css: res-ok green, res-no red).
RESULT_HEADLINE = {"excellent": "res-ok", "competent": "", "basic": "", "incompetent": "res-no"}
#: What each figure is and how it is counted, one line each (shown on the review page).
EXPLAIN = {
    "contact_share": "按联系规则（特殊人群户每月上门或每周联系，其他户每季度上门），"
                     "评议期内每个已结束的周期都联系到了的户数 ÷ 应联系的户数。",
    "on_time_share": "评议期内本邻登记的诉求中，邻长在 4 小时时限内响应的条数 ÷ 诉求条数。",
    "neighborhood_share": "已办结的诉求中，在邻级办结的条数 ÷ 已办结条数（微事不出邻）。",
    "satisfaction_share": "居民评价为“满意”或“基本满意”的条数 ÷ 已评价条数。",
    "breaches": "评议期内记录的负面清单（六不得）次数，已撤销的不算；每次扣 10 分。",
    "points": "评议期内获得的积分（含冲正），仅供参考，不计入得分。",
}
SHARE_LABELS = {"contact_share": "联系按时率", "on_time_share": "按时响应率",
                "neighborhood_share": "邻级办结率", "satisfaction_share": "群众满意率"}
#: A town's thresholds before its staff change them.
SETTINGS_DEFAULTS = DEFAULT_THRESHOLDS
FIRST_YEAR, LAST_YEAR = 2000, 2099
GRADE_MESSAGE = "请选择评议等次。"


# -- forms ------------------------------------------------------------------------------------
class GradeForm(FlaskForm):
    """The supervisor's grade and comment; the service checks both (and the period)."""

    grade = RadioField("评议等次", choices={k: f"{k} {label}（+{pts} 分）"
                                        for k, (label, pts) in GRADES.items()},
                       validate_choice=False)
    comment = TextAreaField("评语", filters=[unix_newlines, strip],
                            validators=[Length(max=1000, message="评语最多 1000 字。")],
                            render_kw={"rows": 4, "maxlength": 1000,
                                       "placeholder": "履职亮点、群众反映、需要改进的地方"})


def _threshold(label: str, message: str, high: int = 100) -> IntegerField:
    """A whole number; the range and order are the service's (same messages)."""
    return IntegerField(label, validators=[InputRequired(message)],
                        invalid_value_message=message,
                        render_kw={"min": 0, "max": high, "inputmode": "numeric"})


class ThresholdsForm(FlaskForm):
    excellent_min = _threshold("优秀（不低于，分）", "优秀分数线应为 0 到 100 之间的整数。")
    competent_min = _threshold("称职（不低于，分）", "称职分数线应为 0 到 100 之间的整数。")
    basic_min = _threshold("基本称职（不低于，分）", "基本称职分数线应为 0 到 100 之间的整数。")
    excellent_max_breaches = _threshold("评为优秀允许的负面清单次数（不超过）",
                                        "评为优秀允许的负面清单次数应为 0 到 10。", high=10)


# -- period and region --------------------------------------------------------------------------


def _period(now: datetime) -> svc.Period:
    """``?period=`` ("2026Q3" or "2026"); the last whole quarter when absent."""
    asked = (request.args.get("period") or "").strip().upper()
    code = asked or svc.previous_quarter(local_today(now))
    period = svc.quarter_or_year(code)
    if not FIRST_YEAR <= period.start.year <= LAST_YEAR:
        raise ServiceError(f"评议期应在 {FIRST_YEAR} 到 {LAST_YEAR} 年之间。", "period")
    return period


def _period_choices(today: date, current: str | None) -> list[tuple[str, str]]:
    """This year's and last year's quarters (newest first) and the two years."""
    out = []
    for year in (today.year, today.year - 1):
        last = (today.month - 1) // 3 + 1 if year == today.year else 4
        for q in range(last, 0, -1):
            code = f"{year}Q{q}"
            label = svc.period_label(*svc.period_bounds(code))
            out.append((code, label + ("（进行中）" if year == today.year and q == last else "")))
        out.append((str(year), f"{year} 年度" + ("（进行中）" if year == today.year else "")))
    if current and current not in dict(out):
        out.insert(0, (current, svc.period_label(*svc.period_bounds(current))))
    return out


def _covers(tops: list[str], path: str) -> bool:
    return any(path.startswith(t) for t in tops)


def _refuse(scope, path: str):
    """Visible but not allowed → 403; outside the user's subtrees → 404."""
    abort(403 if scope.can_view(path) else 404)


@dataclass
class RegionPick:
    region: Region
    #: (region id, indented label) for the selector: the user's top regions, the parent, the
    #: region and its children (not single 邻).
    options: list[tuple[int, str]] = field(default_factory=list)
    parent: Region | None = None


def _pick_region(scope, action: str) -> RegionPick:
    """``?region=`` (default: the user's top region for ``roles``), with its parent and children
    in one query; 404 outside the user's subtrees, 403 inside them without ``action``."""
    tops = scope.top_paths(action)
    if not tops:
        abort(403)
    region_id = request.args.get("region", type=int)
    admin = tops[0] == "/"
    if region_id is None and not admin:
        region_id = int(tops[0].strip("/").split("/")[-1])
    if region_id is None:  # a deployment-wide admin: the first town
        target = select(Region.id).where(Region.parent_id.is_(None)).order_by(Region.id) \
            .limit(1).scalar_subquery()
    else:
        target = region_id
    parent = select(Region.parent_id).where(Region.id == target).scalar_subquery()
    cond = [Region.id == target, Region.parent_id == target, Region.id == parent]
    if admin:
        cond.append(Region.parent_id.is_(None))
    rows = list(db.session.scalars(select(Region).where(or_(*cond)).order_by(Region.path)))
    if region_id is None:
        region = min((r for r in rows if r.parent_id is None), key=lambda r: r.id, default=None)
    else:
        region = next((r for r in rows if r.id == region_id), None)
    if region is None:
        abort(404)
    if not _covers(tops, region.path):
        _refuse(scope, region.path)
    known = {r.id: r for r in rows}
    for post in getattr(current_user, "posts", []):
        if post.ended_at is None and post.role in ACTIONS[action] and post.region_id is not None:
            known.setdefault(post.region_id, post.region)
    shown = sorted((r for r in known.values() if _covers(tops, r.path) and (
        r.id == region.id or r.level != "neighborhood")), key=lambda r: r.path)
    top = min((r.path.count("/") for r in shown), default=2)
    pick = RegionPick(region, [(r.id, "　" * (r.path.count("/") - top) + r.name) for r in shown])
    pick.parent = next((r for r in shown if r.id == region.parent_id), None)
    return pick


# -- the list -----------------------------------------------------------------------------------
@dataclass
class Row:
    metrics: svc.Metrics
    review: Review | None

    @property
    def figures(self):
        """The figures the result was computed from, once graded; the live ones before."""
        return self.review or self.metrics


def _filters(now: datetime, period: svc.Period | None, pick: RegionPick, endpoint: str,
             error: str | None = None) -> dict:
    return {"now": now, "period": period, "pick": pick, "region": pick.region,
            "filter_endpoint": endpoint, "error": error, "weights": svc.WEIGHTS,
            "share_labels": SHARE_LABELS, "grades": GRADES, "penalty": svc.BREACH_PENALTY,
            "period_choices": _period_choices(local_today(now), period.key if period else None)}


@bp.get("/reviews")
def reviews():
    """The 邻长 under a region for a period: figures, review state, result counts."""
    scope = current_scope()
    now = utcnow()
    if not scope.top_paths("supervise"):
        if scope.is_neighbor_chief:  # a 邻长 has only their own review
            return redirect(url_for("points.review", user_id=current_user.id,
                                    period=request.args.get("period") or None))
        abort(403)
    pick = _pick_region(scope, "supervise")
    try:
        period = _period(now)
    except ServiceError as e:
        return render_template("points/reviews.html", rows=[], counts={}, over=False,
                               results=RESULTS, classes=RESULT_CLASS,
                               **_filters(now, None, pick, "points.reviews", e.message)), 422
    metrics = svc.review_metrics(pick.region.path, period.start, period.end, now)
    done = svc.reviews_of(pick.region.path, period.start, period.end) if metrics else {}
    rows = [Row(m, done.get(m.user_id)) for m in metrics]
    counts = {key: sum(1 for r in rows if r.review and r.review.result == key) for key in RESULTS}
    counts["pending"] = sum(1 for r in rows if r.review is None)
    return render_template("points/reviews.html", rows=rows, counts=counts,
                           over=period.end <= local_today(now), results=RESULTS,
                           classes=RESULT_CLASS,
                           **_filters(now, period, pick, "points.reviews"))


# -- one 邻长 ------------------------------------------------------------------------------------
@dataclass
class Target:
    user_id: int
    name: str
    #: The path reviews and grading use (as ``services.save_review`` picks it).
    path: str
    neighborhoods: list[str]
    review: Review | None
    #: The town's thresholds when the same query could load them.
    settings: ReviewSettings | None = None


def _target_or_404(user_id: int, period: svc.Period | None) -> Target:
    """The 邻长, their 邻, their review for the period and — when the viewer's posts are all in
    one town — that town's thresholds, in one query; 404 if the person is not a 邻长."""
    towns = current_scope().town_ids("any")
    town = next(iter(towns)) if towns is not None and len(towns) == 1 else None
    q = (select(User.name, Region.path, Region.name, Review, ReviewSettings)
         .select_from(Post).join(User, User.id == Post.user_id)
         .join(Region, Region.id == Post.region_id)
         .outerjoin(Review, and_(Review.user_id == Post.user_id,
                                 Review.period_start == period.start,
                                 Review.period_end == period.end) if period else false())
         .outerjoin(ReviewSettings, ReviewSettings.town_id == town if town else false())
         .options(joinedload(Review.reviewer))
         .where(Post.user_id == user_id, Post.role == "neighbor_chief")
         .order_by(Post.ended_at.is_not(None), Region.path))
    rows = db.session.execute(q).unique().all()
    if not rows:
        abort(404)
    review = rows[0][3]
    hoods = []
    for row in rows:
        if row[2] not in hoods:
            hoods.append(row[2])
    path = review.path if review else rows[0][1]
    settings = None
    if town is not None and town == town_id_of(path):
        # never saved: the defaults (``services.review_settings`` would query to learn that)
        settings = rows[0][4] or ReviewSettings(town_id=town, **SETTINGS_DEFAULTS)
    return Target(user_id, rows[0][0], path, hoods, review, settings)


def _stored(target: Target) -> svc.Metrics:
    """A graded review's figures as Metrics (what its score was computed from)."""
    r = target.review
    return svc.Metrics(r.user_id, target.name, r.path, target.neighborhoods, **{
        k: getattr(r, k) for k in ("households", "contacted_on_time", "requests",
                                   "requests_on_time", "requests_at_neighborhood",
                                   "requests_closed", "rated", "satisfied", "breaches",
                                   "points")})


def _review_page(target: Target, period: svc.Period | None, now: datetime, form=None,
                 status: int = 200, error: str | None = None):
    scope = current_scope()
    me = current_user.id
    over = period is not None and period.end <= local_today(now)
    may_grade = svc.may_review(scope, target.path) and target.user_id != me
    metrics = None
    if period is not None:
        if target.review is not None:
            metrics = _stored(target)
        else:
            metrics = next((m for m in svc.review_metrics(target.path, period.start, period.end,
                                                          now)
                            if m.user_id == target.user_id), None)
    settings = target.settings or svc.review_settings(town_id_of(target.path))
    parts, preview = [], []
    if metrics is not None:
        for key, weight in svc.WEIGHTS.items():
            share = getattr(metrics, key)
            parts.append((key, SHARE_LABELS[key], share, weight,
                          weight * (1.0 if share is None else share)))
        for code, (label, pts) in GRADES.items():
            score = svc.score_of(metrics, code)
            preview.append((code, label, pts, score,
                            svc.result_of(score, metrics.breaches, settings)))
    if form is None and may_grade and over and metrics is not None:
        form = GradeForm(formdata=None, data={
            "grade": target.review.grade if target.review else None,
            "comment": target.review.comment if target.review else ""})
    return render_template(
        "points/review.html", target=target, period=period, metrics=metrics, now=now,
        over=over, may_grade=may_grade and over and metrics is not None, form=form,
        settings=settings, parts=parts, preview=preview, grades=GRADES, results=RESULTS,
        classes=RESULT_CLASS, headline=RESULT_HEADLINE, explain=EXPLAIN, weights=svc.WEIGHTS,
        penalty=svc.BREACH_PENALTY, supervisor=bool(scope.top_paths("supervise")),
        own=target.user_id == me, error=error,
        period_choices=_period_choices(local_today(now), period.key if period else None),
        can_edit_settings=scope.allows("town", f"/{town_id_of(target.path)}/")), status


@bp.route("/reviews/<int:user_id>", methods=["GET", "POST"])
def review(user_id: int):
    """One 邻长's figures and review for ``?period=``; supervisors grade it (POST)."""
    scope = current_scope()
    now = utcnow()
    try:
        period = _period(now)
    except ServiceError as e:
        period, error = None, e.message
    else:
        error = None
    target = _target_or_404(user_id, period)
    own = target.user_id == current_user.id
    if not own and not svc.may_review(scope, target.path):
        _refuse(scope, target.path)
    if error:
        return _review_page(target, None, now, status=422, error=error)
    if request.method == "GET":
        return _review_page(target, period, now)

    if own or not svc.may_review(scope, target.path):
        abort(403)  # nobody grades themselves
    form = GradeForm()
    if form.validate_on_submit():
        done = {}
        if attempt(form, lambda: done.setdefault("review", svc.save_review(
                current_user, scope, target.user_id, period.start, period.end,
                form.grade.data or "", form.comment.data or "", now))):
            db.session.commit()
            saved = done["review"]
            flash(f"已评定 {target.name} {period.label}：{saved.grade_label}，"
                  f"{saved.score} 分，{saved.result_label}。")
            return redirect(url_for("points.review", user_id=target.user_id,
                                    period=period.key), 303)
        # rolled back: load again what the page shows
        target = _target_or_404(user_id, period)
    return _review_page(target, period, now, form=form, status=422)


# -- thresholds ---------------------------------------------------------------------------------
@bp.route("/reviews/settings", methods=["GET", "POST"])
def review_settings():
    """A town's 履职评议 thresholds: town staff (and admins) only."""
    # a town the user holds no post in is 404; one they are in but do not run is 403
    town = get_town_or_404(request.args.get("town", type=int), "town")
    if request.method == "GET":
        row = svc.review_settings(town.id)
        form = ThresholdsForm(formdata=None, obj=row)
        return _settings_page(town, form)
    form = ThresholdsForm()
    if form.validate_on_submit():
        data = {k: getattr(form, k).data for k in (
            "excellent_min", "competent_min", "basic_min", "excellent_max_breaches")}
        if attempt(form, lambda: svc.save_review_settings(current_user, town, data)):
            db.session.commit()
            flash("评议分数线已保存，对此后的评定生效；已评定的结果不变。")
            return redirect(url_for("points.review_settings", town=town.id), 303)
    return _settings_page(town, form, 422)


def _settings_page(town, form, status: int = 200):
    return render_template("points/review_settings.html", town=town, form=form,
                           grades=GRADES, weights=svc.WEIGHTS, labels=SHARE_LABELS,
                           penalty=svc.BREACH_PENALTY), status


# -- the 优秀 list --------------------------------------------------------------------------------
def _excellent_rows(region, period: svc.Period):
    """(review, 村, 组, 邻) of the 优秀 under the region, best first; names in one query."""
    found = svc.excellent(region.path, period.start, period.end)
    names = path_names(r.path for r in found)
    return [(r, node_name(r.path, names, 1), node_name(r.path, names, 3), node_name(r.path, names, 4))
            for r in found]


def _reserve_request(scope, action: str):
    """(now, region pick, period, None) of a request for the 优秀 list, or a 422 page as the
    last item when ``?period=`` is bad."""
    now = utcnow()
    pick = _pick_region(scope, action)
    try:
        return now, pick, _period(now), None
    except ServiceError as e:
        return now, pick, None, (render_template(
            "points/reserve.html", rows=[], can_export=False,
            **_filters(now, None, pick, "points.reserve_pool", e.message)), 422)


@bp.get("/reviews/excellent")
def reserve_pool():
    """The 优秀 of a period: for 好邻 nominations and the 村级后备干部 pool."""
    scope = current_scope()
    now, pick, period, refused = _reserve_request(scope, "supervise")
    if refused:
        return refused
    return render_template("points/reserve.html", rows=_excellent_rows(pick.region, period),
                           can_export=scope.allows("manage", pick.region.path),
                           **_filters(now, period, pick, "points.reserve_pool"))


#: (header, column width in characters)
POOL_COLUMNS = (("序号", 6), ("姓名", 10), ("村(社区)", 14), ("组", 12), ("邻", 12),
                ("得分", 7), ("评议结果", 9), ("积分", 7), ("联系按时率", 11), ("评语", 40),
                ("评议人", 10), ("评议时间", 17))


def _text(value: str | None) -> str:
    return ILLEGAL_CHARACTERS_RE.sub("", value or "")


def _pool_workbook(region, period: svc.Period, rows, reviewers: dict[int, str]) -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.title = "优秀邻长（后备干部人选）"
    last = get_column_letter(len(POOL_COLUMNS))
    ws.append([f"{region.name} {period.label} 优秀邻长名单（村级后备干部人选）"])
    ws.merge_cells(f"A1:{last}1")
    ws["A1"].font = Font(bold=True, size=14)
    ws["A1"].alignment = Alignment(horizontal="center", vertical="center")
    ws.row_dimensions[1].height = 28
    thin = Side(style="thin", color="999999")
    border = Border(left=thin, right=thin, top=thin, bottom=thin)
    ws.append([title for title, _ in POOL_COLUMNS])
    for i, (_, width) in enumerate(POOL_COLUMNS, 1):
        ws.column_dimensions[get_column_letter(i)].width = width
        cell = ws.cell(row=2, column=i)
        cell.font = Font(bold=True)
        cell.fill = PatternFill("solid", fgColor="F2DCDB")
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
        cell.border = border
    for n, (r, village, group, hood) in enumerate(rows, 1):
        share = svc.share(r.contacted_on_time, r.households)
        values = [n, r.user.name, village, group, hood, r.score, RESULTS[r.result], r.points,
                  share, r.comment, reviewers.get(r.reviewer_id, ""),
                  to_local(r.reviewed_at).replace(tzinfo=None)]
        ws.append([_text(v) if isinstance(v, str) else v for v in values])
        row = ws.max_row
        for col, value in enumerate(values, 1):
            cell = ws.cell(row=row, column=col)
            if isinstance(value, str):
                cell.data_type = "s"  # a name or comment starting with "=" stays text
            cell.border = border
            cell.alignment = Alignment(vertical="top", wrap_text=col == 10)
        ws.cell(row=row, column=9).number_format = "0%"
        ws.cell(row=row, column=12).number_format = "yyyy-mm-dd hh:mm"
    ws.freeze_panes = "A3"
    ws.print_title_rows = "1:2"
    ws.page_setup.orientation = "landscape"
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    return wb


@bp.get("/reviews/excellent.xlsx")
def reserve_pool_xlsx():
    """The 优秀 list as XLSX, for staff who manage the region (audited: a list of people)."""
    scope = current_scope()
    now, pick, period, refused = _reserve_request(scope, "manage")
    if refused:
        return refused
    region = pick.region
    rows = _excellent_rows(region, period)
    ids = {r.reviewer_id for r, *_ in rows}
    reviewers = dict(db.session.execute(
        select(User.id, User.name).where(User.id.in_(ids))).all()) if ids else {}
    wb = _pool_workbook(region, period, rows, reviewers)
    record(current_user, "review.export", region, region.path, region=region.name,
           period=period.label, people=len(rows))
    db.session.commit()
    return download_xlsx(wb, f"优秀邻长名单_{region.name}_{period.key}.xlsx",
                         f"reserve_pool_{period.key}.xlsx")
