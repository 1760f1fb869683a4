"""The audit table: who changed what, when. Written in the same transaction as the change."""

import json
from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.clock import utcnow
from portal.extensions import db
from portal.models import IdMixin
from portal.pathcol import PathString


class AuditEntry(IdMixin, db.Model):
    __tablename__ = "audit_entries"
    __table_args__ = (Index("ix_audit_entries_region_path_at", "region_path", "at"),)

    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    #: e.g. "household.create", "post.end"
    action: Mapped[str] = mapped_column(String(40), nullable=False)
    object_type: Mapped[str] = mapped_column(String(30), nullable=False)
    object_id: Mapped[int | None]
    #: Path of the region the change belongs to, so the audit view can be scoped.
    region_path: Mapped[str] = mapped_column(PathString, nullable=False, default="/")
    #: JSON of what changed; personal numbers are stored masked.
    detail: Mapped[str] = mapped_column(Text, nullable=False, default="{}")

    user = relationship("User", lazy="raise")

    @property
    def detail_dict(self) -> dict:
        return json.loads(self.detail or "{}")


def record(user, action: str, obj, region_path: str = "/", **detail) -> AuditEntry:
    """Add an audit row for ``obj`` to the session (flushes so the object has an id)."""
    db.session.flush()
    entry = AuditEntry(
        user_id=getattr(user, "id", None),
        action=action,
        object_type=type(obj).__name__.lower(),
        object_id=getattr(obj, "id", None),
        region_path=region_path,
        detail=json.dumps(detail, ensure_ascii=False, default=str, sort_keys=True),
    )
    db.session.add(entry)
    return entry


ACTION_LABELS = {
    "checklist.create": "新增清单项", "checklist.update": "修改清单项",
    "contact_rule.create": "新增联系规则", "contact_rule.update": "修改联系规则",
    "contact_rule.delete": "删除联系规则",
    "household.create": "登记联系户", "household.update": "修改住户", "household.move": "住户迁入", "household.move_out": "住户迁出",
    "post.create": "任命岗位", "post.end": "结束岗位",
    "region.create": "新建单位", "region.rename": "单位改名",
    "tag.create": "新增标签", "tag.toggle": "启停标签",
    "request.create": "提交诉求", "request.acknowledged": "响应诉求", "request.escalated": "上报诉求",
    "request.timeout": "超时自动上报", "request.routed": "转交部门", "request.helpers": "发布接单",
    "request.claimed": "接单", "request.released": "退回接单", "request.progress": "接单进展",
    "request.helper_done": "接单办完", "request.closed": "办结答复", "request.rated": "居民评价",
    "request.reopened": "重新打开诉求", "request.mediation": "记录调解",
    "request_settings.update": "修改诉求时限", "category.create": "新增诉求类别",
    "category.update": "修改诉求类别", "department.create": "新增承办部门",
    "department.update": "修改承办部门", "household.renew_link": "更换点单链接",
    "user.create": "新建账号", "user.password": "修改密码", "user.reset_password": "重置密码",
    "venue.create": "新增议事场所", "venue.update": "修改议事场所",
    "agenda.raise": "提出议题", "agenda.accept": "清单外议题准予上会",
    "agenda.decline": "议题不予上会", "agenda.schedule": "议题排期", "agenda.terms": "修改议题表决规则",
    "agenda.unschedule": "撤下议题", "agenda.move": "调整议程顺序", "agenda.decision": "填写决议",
    "agenda.assign": "指定落实负责人", "agenda.answer": "议题答复",
    "meeting.create": "召集会议", "meeting.update": "修改会议", "meeting.open": "开始会议",
    "meeting.end": "结束会议", "meeting.minutes": "记录会议纪要", "meeting.check_in": "参会签到",
    "meeting.undo_check_in": "撤销签到", "vote.open": "开始表决", "vote.cast": "投票",
    "vote.hands": "录入举手票数", "vote.close": "结束表决", "vote.correct": "更正表决结果",
    "points_rule.change": "修改积分规则", "points.reverse": "积分冲正",
    "breach.create": "记录负面清单", "breach.answer": "邻长说明", "breach.withdraw": "撤销负面清单记录",
    "reward.redeem": "兑换奖励", "reward.use": "核销兑换券", "reward.create": "新增奖励",
    "reward.update": "修改奖励", "review.save": "履职评议", "review_settings.update": "修改评议分数线",
    "duty_log.void": "作废履职记录", "review.export": "导出优秀邻长名单",
    "campaign.create": "发起评选", "campaign.update": "修改评选", "campaign.notice": "评选公示", "nomination.create": "推荐人选",
    "nomination.approve": "评定通过", "nomination.reject": "评定不通过",
    "nomination.withdraw": "撤回推荐",
    "objection.create": "提出异议", "objection.resolve": "核实异议",
    "kit.photo": "上传工作证照片", "kit.issue": "登记四个一发放", "kit.clear": "撤销四个一发放登记",
    "policy.update": "修改政策明白卡",
    # 辖区社会资源 (issue 7, ledgers)
    "resource.create": "登记社会资源", "resource.update": "修改社会资源",
    "resource.deactivate": "停用社会资源", "resource.reactivate": "恢复社会资源",
    # roster import (ledgers)
    "import.households": "导入住户名册", "import.chiefs": "导入三长名册",
    "notice.publish": "发布通知", "notice.withdraw": "撤回通知",
    "callout.create": "发起倡议", "callout.cancel": "取消倡议", "callout.log": "倡议记为履职",
}
DETAIL_LABELS = {
    "name": "名称", "level": "级别", "address": "住址", "head": "户主", "head_name": "户主",
    "phone": "电话", "tags": "标签", "old": "原", "new": "新", "from": "从", "to": "到",
    "from_path": "原路径", "holder": "人员", "role": "岗位", "kind": "清单", "title": "名称",
    "description": "说明", "active": "启用", "category": "对象", "method": "方式",
    "period": "周期", "rule": "规则", "member_count": "人数",
    "source": "来源", "household": "住户", "department": "部门", "helper": "接单人",
    "rating": "评价", "outcome": "结果", "hours": "各级时限(小时)", "reopen_days": "重开期限(天)",
    "from_level": "原层级", "to_level": "新层级", "is_dispute": "纠纷类",
    "off_list": "清单外", "note": "说明", "meeting": "会议", "mode": "表决方式",
    "minutes": "时长(分钟)", "from_meeting": "原会议", "position": "顺序", "starts_at": "时间",
    "entitled": "应到户数", "present": "到会户数", "returned": "退回议题数", "length": "字数",
    "item": "议题", "by": "方式", "yes": "赞成", "no": "反对", "abstain": "弃权",
    "result": "结果", "before": "更正前", "after": "更正后", "reason": "理由", "owner": "负责人",
    "due": "期限", "capacity": "容纳人数",
    "event": "事项", "points": "分值", "daily_cap": "每日上限", "monthly_cap": "每月上限",
    "effective_from": "生效日期", "entry": "积分记录", "delta": "分值", "occurred_on": "发生日期",
    "reward": "奖励", "cost": "所需积分", "code": "兑换码", "stock": "库存",
    "valid_from": "开始兑换", "valid_until": "截止兑换", "person": "邻长", "grade": "等次",
    "score": "得分", "excellent_min": "优秀分数线", "competent_min": "称职分数线",
    "basic_min": "基本称职分数线", "excellent_max_breaches": "优秀允许负面次数",
    "reversed": "冲正积分条数", "region": "范围", "people": "人数",
    "honour": "称号", "quota": "名额", "notice_start": "公示开始", "notice_end": "公示结束",
    "period_start": "统计开始", "period_end": "统计截止", "design": "海报样式",
    "campaign": "评选", "visits": "走访服务", "requests": "办理诉求", "disputes": "调解纠纷",
    "households": "联系户", "upheld": "异议成立",
    "kit": "四个一", "issued_on": "发放日期",
    # 辖区社会资源 (issue 7, ledgers)
    "resource_kind": "类别", "contact_name": "联系人", "contact_phone": "联系电话",
    "services": "服务内容", "opening": "开放时间及备注",
    # roster import (ledgers)
    "roster": "名册", "file": "文件", "rows": "行数", "created": "新建", "updated": "更新",
    "unchanged": "未变", "new_regions": "新建单位", "moved": "换邻", "new_users": "新账号",
    "recipients": "收件人数", "read": "已读人数", "signups": "报名数", "place": "地点",
    "cap": "人数上限",
}


def _value_labels() -> dict[str, dict]:
    from portal.blueprints.commendations.models import KIT_ITEMS
    from portal.blueprints.duties.models import (
        CATEGORIES,
        CHECKLIST_KINDS,
        METHODS,
        PERIODS,
        RULE_METHODS,
    )
    from portal.blueprints.regions.models import LEVEL_LABELS, ROLE_LABELS
    from portal.blueprints.requests.models import SOURCES

    return {"source": SOURCES, "level": LEVEL_LABELS, "role": ROLE_LABELS, "kind": CHECKLIST_KINDS,
            "category": CATEGORIES, "period": PERIODS, "method": {**METHODS, **RULE_METHODS},
            "kit": KIT_ITEMS}


def _show(key: str, value, labels: dict[str, dict]):
    if key == "tags" and isinstance(value, list):  # a list of names, or [old list, new list]
        if value and isinstance(value[0], list):
            return " → ".join("、".join(v) or "无" for v in value)
        return "、".join(value) or "无"
    if isinstance(value, list):
        return " → ".join(str(_show(key, v, labels)) for v in value)
    if isinstance(value, bool):
        return "是" if value else "否"
    return labels.get(key, {}).get(value, value) if isinstance(value, str) else value


def describe(entry: AuditEntry) -> tuple[str, list[tuple[str, str]]]:
    """(action label, [(field label, value)]) for showing an audit row to staff, in Chinese."""
    labels = _value_labels()
    items = [(DETAIL_LABELS.get(k, k), _show(k, v, labels))
             for k, v in entry.detail_dict.items() if k != "from_path"]
    return ACTION_LABELS.get(entry.action, entry.action), items
