"""Forms of 议事. Shared by the parts of issue 4: each part appends its section below (import what
you need here, at the top, so ruff stays quiet)."""

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    DateTimeLocalField,
    HiddenField,
    IntegerField,
    SelectField,
    StringField,
)
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange

from portal.blueprints.agenda.models import MEETING_KINDS, RULES, VENUE_KINDS, VOTE_MODES
from portal.forms import DATETIME_FORMATS, strip, text_area, text_line

# -- A: staff pages (items, venues, meetings, answers, corrections) -------------------------------
#: The services check required text, lengths and the rules (naming the field); the forms parse
#: and cap sizes, so a refusal reads the same from the form or the rule.




def _a_int(label, low, high, message, **kw):
    return IntegerField(label, validators=[InputRequired(message), NumberRange(low, high, message)],
                        invalid_value_message=message,
                        render_kw={"min": low, "max": high, "inputmode": "numeric", **kw})


def _a_select(label, message, coerce=int):
    # choices are set by the view; the service decides what is allowed (and says why)
    return SelectField(label, coerce=coerce, validate_choice=False,
                       invalid_value_message=message)


class ItemForm(FlaskForm):
    region_id = _a_select("议题所在区域", "请选择区域。")
    category_id = _a_select("议事清单（六议）类别", "请选择类别。", coerce=str)
    title = text_line("议题名称", 80, placeholder="如：山塘输水洞修缮")
    background = text_area("背景情况", 2000, 4, placeholder="发生了什么、涉及哪些户")
    proposal = text_area("建议方案", 2000, 4, placeholder="打算怎么办、费用怎么出")


class DecideForm(FlaskForm):
    """Staff decide a matter outside the 议事清单: into a 六议 category, or 不予上会."""

    decision = SelectField("决定", choices={"accept": "准予上会", "decline": "不予上会"},
                           invalid_choice_message="请选择准予上会或不予上会。")
    category_id = _a_select("归入六议类别（准予上会时）", "请选择类别。")
    note = text_area("说明（不予上会须写理由）", 200, 2)


class TermsForm(FlaskForm):
    planned_minutes = _a_int("预计时长（分钟）", 1, 600, "预计时长应在 1 到 600 分钟之间。")
    rule = SelectField("表决规则", choices=dict(RULES), validate_choice=False)
    vote_mode = SelectField("表决方式", choices=dict(VOTE_MODES), validate_choice=False)


class ScheduleForm(TermsForm):
    meeting_id = _a_select("排入会议", "请选择会议。")
    #: where to go back to: "item" or "meeting"
    back = HiddenField()


class UnscheduleForm(FlaskForm):
    note = text_line("撤下说明（可不填）", 200)


class MoveForm(FlaskForm):
    delta = IntegerField(validators=[InputRequired(), NumberRange(-1, 1)])


class AssignForm(FlaskForm):
    owner_id = _a_select("落实负责人", "请选择落实负责人。")
    answer_due = DateField("答复期限", validators=[InputRequired("请填写答复期限。")],
                           invalid_value_message="日期格式不对，请按 2026-11-22 的样子填写。")


class AnswerForm(FlaskForm):
    answer = text_area("答复内容", 2000, 4, placeholder="办了什么、结果如何，会写进会议纪要")


class DecisionForm(FlaskForm):
    decision = text_area("决议内容", 2000, 3, placeholder="如：同意修缮山塘输水洞，费用由…")


class CorrectForm(FlaskForm):
    yes = _a_int("赞成", 0, 100000, "票数应为不小于 0 的整数。")
    no = _a_int("反对", 0, 100000, "票数应为不小于 0 的整数。")
    abstain = _a_int("弃权", 0, 100000, "票数应为不小于 0 的整数。")
    reason = text_area("更正理由", 300, 3, placeholder="如：复核原始记录，3 号户的票录错了")


class VenueForm(FlaskForm):
    region_id = _a_select("所属区域", "请选择区域。")
    name = text_line("场所名称", 60, placeholder="如：樟树下议事亭")
    kind = SelectField("类型", choices=dict(VENUE_KINDS), validate_choice=False)
    capacity = _a_int("可容纳人数", 1, 10000, "可容纳人数应在 1 到 10000 之间。")
    address = text_line("地址（可不填）", 100)
    active = BooleanField("启用", default=True)


class MeetingForm(FlaskForm):
    region_id = _a_select("会议范围（参会户所在区域）", "请选择区域。")
    kind = SelectField("会议类型", choices=dict(MEETING_KINDS), validate_choice=False)
    title = text_line("会议名称", 80, placeholder="如：十一月民情恳谈会")
    starts_at = DateTimeLocalField("开会时间", format=DATETIME_FORMATS,
                                   validators=[InputRequired("请填写开会时间。")],
                                   invalid_value_message="时间格式不对，请按 2026-11-22 19:30 的样子填写。")
    planned_minutes = _a_int("会议时长（分钟）", 10, 600, "会议时长应在 10 到 600 分钟之间。")
    venue_id = _a_select("议事场所", "请选择议事场所。")


class MinutesForm(FlaskForm):
    notes = text_area("会议记录", 10000, 8, placeholder="谁发言、说了什么、有什么意见")
    recorder = text_line("记录人", 40)



# -- B: chair's console and resident voting -------------------------------------------------------
class CheckInForm(FlaskForm):
    """签到: the tap button, with the 户代表's name when it is not the head who came."""

    representative = StringField("户代表（不是户主本人时填）", filters=[strip],
                                 validators=[Length(max=40, message="户代表姓名最多 40 字。")],
                                 render_kw={"maxlength": 40, "autocomplete": "off"})


class ChoiceForm(FlaskForm):
    """One household's vote: the button pressed sends ``choice`` (the service checks it)."""

    choice = StringField("表决", filters=[strip])


def _b_count(label: str):
    return IntegerField(label, validators=[
        InputRequired("请填写票数（没有就填 0）。"),
        NumberRange(min=0, max=100000, message="票数应为不小于 0 的整数。")],
        render_kw={"inputmode": "numeric", "min": 0, "autocomplete": "off"})


class HandsForm(FlaskForm):
    """举手表决: the chair counts the hands and enters the three numbers."""

    yes = _b_count("赞成")
    no = _b_count("反对")
    abstain = _b_count("弃权")


class CodeForm(FlaskForm):
    """The resident's one-time voting code (8 letters and digits, read off the check-in)."""

    code = StringField("投票码", filters=[strip],
                       validators=[DataRequired("请输入签到时拿到的投票码。"),
                                   Length(max=20, message="投票码是 8 位字母和数字。")],
                       render_kw={"autocomplete": "off", "inputmode": "latin",
                                  "autocapitalize": "characters", "autocorrect": "off",
                                  "spellcheck": "false", "maxlength": 20,
                                  "placeholder": "如 ABCD 2345"})

