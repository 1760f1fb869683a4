"""Roster import pages: the upload form and templates, the dry run's progress and report, the
confirmation, the import's progress and the result. Rules in ``imports``."""

from __future__ import annotations

import math

from flask import abort, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from sqlalchemy import select
from wtforms import FileField, SelectField

from portal.blueprints.auth.models import User
from portal.blueprints.ledgers import bp
from portal.blueprints.ledgers import imports as imp
from portal.blueprints.regions.models import HouseholdTag, Region
from portal.extensions import db
from portal.htmx import render_page_or_partial
from portal.phones import mask_phone
from portal.scope import current_scope, path_range
from portal.xlsx import download_xlsx

PER_PAGE = 50
UPLOAD_ENDPOINT = "ledgers.import_upload"


class UploadForm(FlaskForm):
    kind = SelectField("名册类别", choices=dict(imp.KINDS))
    town = SelectField("镇(街道)", coerce=int)
    file = FileField("Excel 文件（.xlsx，最大 20 MB）",
                     render_kw={"accept": ".xlsx,application/vnd.openxmlformats-officedocument."
                                          "spreadsheetml.sheet"})


class ConfirmForm(FlaskForm):
    pass


# -- who and where ---------------------------------------------------------------------------------
def _towns() -> list[Region]:
    """Towns the user may import into (any village staff post makes its town one); 403 if none."""
    scope = current_scope()
    ids = scope.town_ids("manage")
    q = select(Region).where(Region.level == "town").order_by(Region.name)
    if ids is not None:
        if not ids:
            abort(403)
        q = q.where(Region.id.in_(ids))
    towns = list(db.session.scalars(q))
    if not towns:
        abort(403)
    return towns


def _town(towns: list[Region], town_id: int | None) -> Region:
    if town_id is None:
        return towns[0]
    for town in towns:
        if town.id == town_id:
            return town
    abort(404)


def _job(token: str) -> dict:
    """The job's state; 404 unless it exists and is the current user's."""
    state = imp.read_state(token)
    if state is None or state.get("user_id") != current_user.id:
        abort(404)
    return state


# -- the upload limit ------------------------------------------------------------------------------
def _upload_limit():
    """Before CSRF reads the form: the import upload may be larger than the app-wide limit (a
    photo's); a declared length above it gets the form with a message, not a 413 page."""
    if request.endpoint != UPLOAD_ENDPOINT or request.method != "POST":
        return None
    request.max_content_length = imp.MAX_BYTES + 1024 * 1024
    if (request.content_length or 0) > request.max_content_length:
        if not current_user.is_authenticated:
            abort(413)
        return _too_big()
    return None


def _too_big():
    towns = _towns()
    form = UploadForm(formdata=None)
    form.town.choices = {t.id: t.name for t in towns}
    form.file.errors = [f"文件太大（最大 {imp.MAX_BYTES // 1024 // 1024} MB）。"
                        "请按村拆成几个文件分别导入。"]
    return _form_page(form, towns[0], 422)


@bp.record_once
def _install(state):
    # first, so it runs before Flask-WTF's CSRF check parses the body
    state.app.before_request_funcs.setdefault(None, []).insert(0, _upload_limit)


@bp.errorhandler(413)
def _entity_too_large(e):
    """A body without a declared length that outgrew the limit while being read."""
    if request.endpoint == UPLOAD_ENDPOINT and current_user.is_authenticated:
        return _too_big()
    from portal.errors import MESSAGES

    title, message = MESSAGES[413]
    return render_template("errors/error.html", code=413, title=title, message=message), 413


# -- the upload form -------------------------------------------------------------------------------
def _form_page(form: UploadForm, town: Region, status: int = 200):
    return render_template("ledgers/import.html", form=form, town=town,
                           several=len(form.town.choices) > 1,
                           max_mb=imp.MAX_BYTES // 1024 // 1024,
                           max_rows=imp.MAX_ROWS), status


@bp.get("/import")
def import_form():
    towns = _towns()
    town = _town(towns, request.args.get("town", type=int))
    form = UploadForm(formdata=None, kind=request.args.get("kind", "households"), town=town.id)
    form.town.choices = {t.id: t.name for t in towns}
    return _form_page(form, town)


@bp.post("/import")
def import_upload():
    towns = _towns()
    form = UploadForm()
    form.town.choices = {t.id: t.name for t in towns}
    if "town" not in request.form:  # one town: the form does not ask
        form.town.data = towns[0].id
    if not form.validate_on_submit():
        return _form_page(form, towns[0], 422)
    town = _town(towns, form.town.data)
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        form.file.errors = ["请选择要导入的 Excel 文件。"]
        return _form_page(form, town, 422)
    imp.sweep()
    token = imp.new_token()
    xlsx, _, _ = imp.job_paths(token)
    upload.save(xlsx)
    try:
        if xlsx.stat().st_size > imp.MAX_BYTES:
            raise imp.FileRefused(f"文件太大（最大 {imp.MAX_BYTES // 1024 // 1024} MB）。"
                                  "请按村拆成几个文件分别导入。")
        imp.check_file(xlsx)  # cheap (the zip's directory): junk is refused here, at once
    except imp.FileRefused as e:
        xlsx.unlink(missing_ok=True)
        form.file.errors = [str(e)]
        return _form_page(form, town, 422)
    file_name = (upload.filename or "名册.xlsx").replace("/", "_").replace("\\", "_")[-80:]
    # the dry run (reading and checking every row) goes on in the background; its page shows
    # the progress, then the report
    imp.start_dry_run(token, {
        "user_id": current_user.id, "kind": form.kind.data, "town_id": town.id,
        "town_name": town.name, "file_name": file_name, "rows": 0}, current_user.id)
    return redirect(url_for("ledgers.import_job", token=token), 303)


# -- the template ----------------------------------------------------------------------------------
def _example(kind: str, town: Region) -> list[str]:
    """One example row: the user's first village of the town and, below it, the first existing
    片 · 组 · 邻 (so importing the template as-is adds one household where the roster will go),
    or 一片 · 一组 · 一邻, which the dry run lists as new."""
    scope = current_scope()
    names = ["", "一片", "一组", "一邻"]
    regions = list(db.session.execute(
        select(Region.level, Region.name, Region.path, Region.parent_id)
        .where(path_range(Region.path, town.path), Region.level != "town")
        .order_by(Region.path).limit(2000)))
    villages = sorted((r for r in regions if r.level == "village" and
                       scope.allows("manage", r.path)), key=lambda r: r.name)
    if villages:
        names[0] = villages[0].name
        prefix = villages[0].path
        for i, level in enumerate(("area", "group", "neighborhood"), start=1):
            below = sorted((r for r in regions if r.level == level and r.path.startswith(prefix)),
                           key=lambda r: r.name)
            if not below:
                break
            names[i], prefix = below[0].name, below[0].path
    else:
        names[0] = "（填本镇已有的村或社区名）"
    if kind == "households":
        tag = db.session.scalar(select(HouseholdTag.name).where(
            HouseholdTag.town_id == town.id, HouseholdTag.active)
            .order_by(HouseholdTag.sort, HouseholdTag.id).limit(1))
        return [*names, "示例路 1 号", "张示例", "13800000000", 3, tag or ""]
    return ["李示例", "13900000000", "邻长", *names]


@bp.get("/import/template/<kind>.xlsx")
def import_template(kind: str):
    if kind not in imp.KINDS:
        abort(404)
    towns = _towns()
    town = _town(towns, request.args.get("town", type=int))
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(imp.KINDS[kind])
    columns = imp.COLUMNS[kind]
    for i, c in enumerate(columns, start=1):
        ws.column_dimensions[get_column_letter(i)].width = c.width
    ws.freeze_panes = "A2"
    bold = Font(bold=True)
    header = []
    for c in columns:
        cell = WriteOnlyCell(ws, value=c.header)
        cell.font = bold
        header.append(cell)
    ws.append(header)
    ws.append(_example(kind, town))
    notes = wb.create_sheet("填写说明")
    notes.column_dimensions["A"].width = 90
    for line in _notes(kind):
        notes.append([line])
    return download_xlsx(wb, f"{imp.KINDS[kind]}模板_{town.name}.xlsx", f"{kind}-template.xlsx")


def _notes(kind: str) -> list[str]:
    common = ["第一个工作表是名册：第 1 行是表头，从第 2 行起每行一条。示例行可以改写或删掉。",
              "村(社区)必须是本镇已有的；片、组、邻没有的会在导入时新建（先试导入会列出名称，请核对有无错字）。",
              f"一个文件最多 {imp.MAX_ROWS:,} 行、{imp.MAX_BYTES // 1024 // 1024} MB。",
              "先“试导入”核对，没有问题才能正式导入；正式导入要么全部成功，要么一条都不保存。"]
    if kind == "households":
        return [*common,
                "同一个村里“地址 + 户主”相同的视为同一户：再次导入会更新这户的邻、电话、人口和标签，没有变化的不动。",
                "联系电话可空；11 位手机号，可带空格、横线或 +86。人口填 1 到 30。",
                "特殊标签用顿号、逗号或空格分隔，须是本镇设置的标签（如 留守儿童、独居老人）。"]
    return [*common,
            "岗位填 邻长、组长 或 片长：片长填到“片”，组长填到“组”，邻长填到“邻”，更低的列留空。",
            "按手机号认人：已有账号的沿用原密码；新账号没有密码，导入后请在单位页面对本人点“重置密码”设初始密码，当面告知。",
            "同一人在同一单位已任同一岗位的，再次导入不会重复任命。"]



# -- the job ---------------------------------------------------------------------------------------
@bp.get("/import/<token>")
def import_job(token: str):
    state = _job(token)
    pageno = max(request.args.get("page", 1, type=int), 1)
    problems, pages = [], 1
    if state.get("problem_count"):
        problems = imp.read_problems(token)
        pages = max(1, math.ceil(len(problems) / PER_PAGE))
        pageno = min(pageno, pages)
        problems = problems[(pageno - 1) * PER_PAGE:pageno * PER_PAGE]
    users = []
    if state["status"] == "done" and state.get("new_user_ids"):
        users = [(u.id, u.name, mask_phone(u.phone)) for u in db.session.execute(
            select(User.id, User.name, User.phone).where(User.id.in_(state["new_user_ids"]))
            .order_by(User.id))]
    context = dict(state=state, token=token, problems=problems, pageno=pageno, pages=pages,
                   kind_label=imp.KINDS[state["kind"]], accounts=users,
                   running=state["status"] in ("checking", "running"), form=ConfirmForm())
    return render_page_or_partial("ledgers/import_job.html", "ledgers/_import_job.html",
                                  "import-job", **context)


@bp.get("/import/<token>/problems.xlsx")
def import_problems(token: str):
    state = _job(token)
    if not state.get("problem_count"):
        abort(404)
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("问题清单")
    for col, width in zip("ABC", (10, 14, 60), strict=True):
        ws.column_dimensions[col].width = width
    ws.freeze_panes = "A2"
    bold = Font(bold=True)
    header = []
    for text in ("行号", "列", "问题"):
        cell = WriteOnlyCell(ws, value=text)
        cell.font = bold
        header.append(cell)
    ws.append(header)
    for row, column, message in imp.read_problems(token):
        ws.append([row, column, message])
    return download_xlsx(wb, f"问题清单_{state['file_name'].rsplit('.', 1)[0]}.xlsx",
                 "problems.xlsx")


@bp.route("/import/<token>/run", methods=["GET", "POST"])
def import_run(token: str):
    state = _job(token)
    xlsx, _, _ = imp.job_paths(token)
    if state["status"] != "checked" or state.get("problem_count") or not xlsx.exists():
        return redirect(url_for("ledgers.import_job", token=token), 303)
    form = ConfirmForm()
    if form.validate_on_submit():
        imp.start(token, state, current_user.id)
        return redirect(url_for("ledgers.import_job", token=token), 303)
    return render_template("ledgers/import_confirm.html", state=state, token=token, form=form,
                           kind_label=imp.KINDS[state["kind"]]), \
        422 if request.method == "POST" else 200

