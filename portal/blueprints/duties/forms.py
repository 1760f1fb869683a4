from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import (
    BooleanField,
    DateTimeLocalField,
    FieldList,
    FormField,
    HiddenField,
    RadioField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length, Regexp

from portal.blueprints.duties.models import (
    CATEGORIES,
    CHECKLIST_KINDS,
    METHODS,
    PERIODS,
    RULE_METHODS,
)

TOKEN = Regexp(r"^[0-9a-f-]{36}$", message="表单已失效，请重新打开。")


class DutyLogForm(FlaskForm):
    duty_item_id = RadioField("职责", coerce=int,
                              validators=[InputRequired("请选择一项七员职责。")])
    method = RadioField("方式", choices=list(METHODS.items()), default="visit",
                        validators=[InputRequired("请选择联系方式。")])
    occurred_at = DateTimeLocalField("时间", format="%Y-%m-%dT%H:%M",
                                     validators=[InputRequired("请填写时间，如 2026-11-22 09:30。")])
    note = TextAreaField("情况记录（可不填）",
                         validators=[Length(max=500, message="记录最多 500 字。")],
                         render_kw={"rows": 2, "maxlength": 500})
    photo = FileField("照片（可不拍）", render_kw={"accept": "image/*"})
    token = HiddenField(validators=[DataRequired("表单已失效，请重新打开。"), TOKEN])


class ChecklistItemForm(FlaskForm):
    kind = SelectField("清单", choices=list(CHECKLIST_KINDS.items()))
    title = StringField("名称", validators=[DataRequired("请填写名称。"),
                                            Length(max=40, message="名称最多 40 字。")])
    description = TextAreaField("说明", validators=[Length(max=500, message="说明最多 500 字。")],
                                render_kw={"rows": 3})
    active = BooleanField("启用", default=True)


class ContactRuleForm(FlaskForm):
    """One row of the rules editor; the page holds several, prefixed rule-<n>-."""

    class Meta:
        csrf = False

    id = HiddenField()
    category = SelectField("对象", choices=list(CATEGORIES.items()))
    period = SelectField("周期", choices=list(PERIODS.items()))
    method = SelectField("方式", choices=list(RULE_METHODS.items()))
    active = BooleanField("启用")
    delete = BooleanField("删除")


class RulesForm(FlaskForm):
    """The town's rules, plus one blank row at the end for adding a rule."""

    rules = FieldList(FormField(ContactRuleForm), min_entries=0, max_entries=20)
