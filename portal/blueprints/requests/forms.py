"""Forms of 民情诉求. Shared by the helpers of issue 3: each part appends its section below
(import what you need here, at the top, so ruff stays quiet)."""

from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import (
    BooleanField,
    DateField,
    DateTimeLocalField,
    HiddenField,
    IntegerField,
    RadioField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    Regexp,
)

from portal.blueprints.requests.models import OUTCOMES, RATINGS
from portal.forms import strip, text_area, unix_newlines
from portal.phones import PHONE_RE

# -- A: resident side (public intake, record for a household, rating, reopening) ---------------
CATEGORY_MESSAGE = "请选择诉求类别。"
FORM_EXPIRED = "表单已失效，请重新打开。"
RATING_MESSAGE = "请选择满意、基本满意或不满意。"


class RequestForm(FlaskForm):
    """点单: the resident's form behind the household link, and the 邻长's for a household."""

    # choices (the town's active categories) are set by the view
    category_id = RadioField("类别", coerce=int, validators=[InputRequired(CATEGORY_MESSAGE)],
                             invalid_choice_message=CATEGORY_MESSAGE,
                             invalid_value_message=CATEGORY_MESSAGE)
    description = TextAreaField(
        "遇到了什么问题", filters=[unix_newlines, strip],
        validators=[DataRequired("请写一下遇到的问题。"),
                    Length(min=4, message="请多写几个字，说清楚问题（至少 4 个字）。"),
                    Length(max=1000, message="最多 1000 字。")],
        render_kw={"rows": 4, "maxlength": 1000})
    photo = FileField("照片（可不拍）", render_kw={"accept": "image/*"})
    contact_name = StringField("怎么称呼（可不填）", filters=[strip],
                               validators=[Length(max=40, message="称呼最多 40 字。")],
                               render_kw={"maxlength": 40})
    contact_phone = StringField(
        "联系电话（可不填）", filters=[strip],
        validators=[Optional(), Regexp(PHONE_RE, message="手机号应为 11 位数字，以 1 开头，"
                                                         "如 13800138000。")],
        render_kw={"inputmode": "numeric", "maxlength": 11, "type": "tel"})
    contact_note = StringField("方便联系的时间或方式（可不填）", filters=[strip],
                               validators=[Length(max=100, message="最多 100 字。")],
                               render_kw={"maxlength": 100, "placeholder": "如：晚上在家，微信同号"})
    token = HiddenField(validators=[DataRequired(FORM_EXPIRED),
                                    Regexp(r"^[0-9a-f-]{36}$", message=FORM_EXPIRED)])


class RateForm(FlaskForm):
    rating = RadioField("您对这次答复满意吗", choices=RATINGS,
                        validators=[InputRequired(RATING_MESSAGE)],
                        invalid_choice_message=RATING_MESSAGE)
    note = StringField("意见（可不填）", filters=[strip],
                       validators=[Length(max=200, message="意见最多 200 字。")],
                       render_kw={"maxlength": 200})


class ReopenForm(FlaskForm):
    reason = TextAreaField(
        "为什么要重新打开", filters=[unix_newlines, strip],
        validators=[DataRequired("请写一下重新打开的原因。"),
                    Length(min=4, message="请写清楚原因（至少 4 个字）。"),
                    Length(max=500, message="最多 500 字。")],
        render_kw={"rows": 3, "maxlength": 500})


# -- C: town settings of 民情诉求 (deadlines, reopen window, categories, departments) -----------
def _hours(label: str) -> IntegerField:
    message = f"{label}响应时限须是 1 到 720 之间的整数（小时）。"
    return IntegerField(f"{label}（小时）", validators=[InputRequired(message),
                                                    NumberRange(1, 720, message)],
                        invalid_value_message=message,
                        render_kw={"min": 1, "max": 720, "inputmode": "numeric"})


class RequestSettingsForm(FlaskForm):
    hours_neighborhood = _hours("邻级")
    hours_group = _hours("组级")
    hours_village = _hours("村级")
    hours_town = _hours("镇级")
    reopen_days = IntegerField(
        "办结后可重新打开（天）",
        validators=[InputRequired("重新打开期限须是 0 到 90 之间的整数（天）。"),
                    NumberRange(0, 90, "重新打开期限须是 0 到 90 之间的整数（天）。")],
        invalid_value_message="重新打开期限须是 0 到 90 之间的整数（天）。",
        render_kw={"min": 0, "max": 90, "inputmode": "numeric"})


class OptionForm(FlaskForm):
    """One category or department: add (the blank form) or rename / switch on or off."""

    name = StringField("名称", filters=[strip],
                       validators=[DataRequired("请填写名称。"),
                                   Length(max=40, message="名称最多 40 字。")])
    is_dispute = BooleanField("纠纷类（可记录调解）")
    active = BooleanField("启用", default=True)


# -- B: handlers (acting on a request: respond, escalate, route, 接单, answer, mediation) -----------
#: The handlers' text fields are checked by the services (required, length), which name the
#: field; the forms only cap the size, so a refusal reads the same from the form or the rule.
DEPARTMENT_MESSAGE = "请选择承办部门。"
OUTCOME_MESSAGE = "请选择调解结果。"



class NoteForm(FlaskForm):
    """响应 / 发布接单 / 办理进展 / 办完了: one note."""

    note = text_area("说明（可不填）", 500, 2)


class EscalateForm(FlaskForm):
    reason = text_area("上报原因", 500, 3, placeholder="如：需要村里协调抽水设备")


class RouteForm(FlaskForm):
    # choices (the town's active departments) are set by the view; the service checks the
    # department belongs to the request's town
    department_id = SelectField("承办部门", coerce=int, validate_choice=False,
                                invalid_value_message=DEPARTMENT_MESSAGE)
    note = text_area("说明（可不填）", 500, 2)


class CloseForm(FlaskForm):
    answer = text_area("给居民的答复", 1000, 4, placeholder="怎么解决的、结果如何，居民会看到这段话")


class ReleaseForm(FlaskForm):
    note = text_area("退回原因（可不填）", 500, 2)
    #: "yes" once the helper has seen the confirmation
    confirm = HiddenField()


class MediationForm(FlaskForm):
    parties = StringField("当事人", filters=[strip],
                          validators=[Length(max=200, message="最多 200 字。")],
                          render_kw={"maxlength": 200, "placeholder": "如：周奶奶及六名子女"})
    mediators = StringField("调解人（可不填）", filters=[strip],
                            validators=[Length(max=200, message="最多 200 字。")],
                            render_kw={"maxlength": 200})
    held_at = DateTimeLocalField(
        "调解时间（不填为现在）", format=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M",
                                         "%Y-%m-%dT%H:%M:%S"],
        validators=[Optional()],
        invalid_value_message="时间格式不对，请按 2026-11-22 09:30 的样子填写。")
    outcome = RadioField("调解结果", choices=dict(OUTCOMES),
                         validators=[InputRequired(OUTCOME_MESSAGE)],
                         invalid_choice_message=OUTCOME_MESSAGE)
    agreement_title = StringField("协议名称", filters=[strip],
                                  validators=[Length(max=60, message="最多 60 字。")],
                                  render_kw={"maxlength": 60, "placeholder": "如：赡养协议"})
    agreement_terms = text_area("协议内容", 2000, 3)
    signed_on = DateField("签订日期", validators=[Optional()],
                          invalid_value_message="日期格式不对，请按 2026-11-22 的样子填写。")
    note = text_area("调解经过（可不填）", 2000, 3)
