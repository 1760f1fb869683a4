"""The audit page speaks Chinese: action names, field names and coded values are translated."""

import json

import pytest

from portal.audit import ACTION_LABELS, AuditEntry, describe


@pytest.mark.parametrize(("action", "detail", "expected"), [
    ("region.create", {"level": "neighborhood", "name": "一邻"},
     ("新建单位", [("级别", "邻"), ("名称", "一邻")])),
    ("household.update", {"tags": [["独居老人"], []], "member_count": [3, 4]},
     ("修改住户", [("标签", "独居老人 → 无"), ("人数", "3 → 4")])),
    ("post.create", {"role": "neighbor_chief", "holder": "胡新林", "phone": "138****0005"},
     ("任命岗位", [("岗位", "邻长"), ("人员", "胡新林"), ("电话", "138****0005")])),
    ("checklist.update", {"active": [True, False]}, ("修改清单项", [("启用", "是 → 否")])),
    ("household.move", {"from": "一邻", "to": "二邻", "from_path": "/1/2/"},
     ("住户迁入", [("从", "一邻"), ("到", "二邻")])),
])
def test_describe(app, action, detail, expected):
    entry = AuditEntry(action=action, detail=json.dumps(detail, ensure_ascii=False))
    assert describe(entry) == expected


def test_every_recorded_action_has_a_label():
    import pathlib
    import re

    root = pathlib.Path(__file__).resolve().parents[2] / "portal"
    source = "\n".join(p.read_text() for p in root.rglob("*.py"))
    actions = set(re.findall(r'record\([^,]+, "([a-z_.]+)"', source))
    assert actions and actions <= set(ACTION_LABELS), actions - set(ACTION_LABELS)
