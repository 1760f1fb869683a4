"""The pass rules of a vote, as a table: services.outcome(rule, yes, no, abstain, present, entitled).

* cast_majority — 赞成 more than half of the votes cast (赞成 + 反对); 弃权 is not a vote cast.
* present_majority — 赞成 more than half (过半数, strictly) of the households present.
* present_two_thirds — 赞成 two thirds of those present or more (exactly ⅔ passes).
* assembly — 村民委员会组织法 第二十二条: "本村三分之二以上的户的代表参加" (以上 includes the figure,
  so exactly ⅔ of the entitled households is a quorum; one fewer is 流会), and "经到会人员的过半数
  通过" (strictly more than half of those present).
"""

import pytest

from portal.blueprints.agenda.models import RULES
from portal.blueprints.agenda.services import outcome, quorum_needed
from portal.errors import ServiceError

P, R, Q = "passed", "rejected", "no_quorum"

#: (id, rule, yes, no, abstain, present, entitled, expected)
TABLE = [
    # -- cast_majority ------------------------------------------------------------------------
    ("cast-clear-majority", "cast_majority", 6, 4, 0, 10, 30, P),
    ("cast-tie-fails", "cast_majority", 5, 5, 0, 10, 30, R),
    ("cast-one-more-passes", "cast_majority", 6, 5, 0, 11, 30, P),
    ("cast-abstentions-not-cast", "cast_majority", 3, 2, 10, 15, 30, P),
    ("cast-abstentions-not-cast-tie", "cast_majority", 2, 2, 11, 15, 30, R),
    ("cast-only-abstentions", "cast_majority", 0, 0, 8, 8, 30, R),
    ("cast-nobody-voted", "cast_majority", 0, 0, 0, 8, 30, R),
    ("cast-one-yes-alone", "cast_majority", 1, 0, 0, 8, 30, P),
    ("cast-all-no", "cast_majority", 0, 7, 1, 8, 30, R),
    ("cast-no-quorum-rule-few-present", "cast_majority", 2, 1, 0, 3, 300, P),
    # -- present_majority ---------------------------------------------------------------------
    ("present-maj-exactly-half-fails", "present_majority", 5, 0, 0, 10, 30, R),
    ("present-maj-half-plus-one", "present_majority", 6, 4, 0, 10, 30, P),
    ("present-maj-odd-just-over", "present_majority", 8, 7, 0, 15, 30, P),
    ("present-maj-odd-just-under", "present_majority", 7, 0, 0, 15, 30, R),
    ("present-maj-abstentions-count-against", "present_majority", 5, 1, 4, 10, 30, R),
    ("present-maj-not-voted-count-against", "present_majority", 5, 0, 0, 11, 30, R),
    ("present-maj-one-of-one", "present_majority", 1, 0, 0, 1, 30, P),
    ("present-maj-one-of-two", "present_majority", 1, 1, 0, 2, 30, R),
    # -- present_two_thirds -------------------------------------------------------------------
    ("two-thirds-10-of-15-passes", "present_two_thirds", 10, 5, 0, 15, 30, P),
    ("two-thirds-9-of-15-fails", "present_two_thirds", 9, 6, 0, 15, 30, R),
    ("two-thirds-9-of-14-fails", "present_two_thirds", 9, 5, 0, 14, 30, R),
    ("two-thirds-10-of-14-passes", "present_two_thirds", 10, 4, 0, 14, 30, P),
    ("two-thirds-2-of-3-passes", "present_two_thirds", 2, 1, 0, 3, 30, P),
    ("two-thirds-1-of-2-fails", "present_two_thirds", 1, 1, 0, 2, 30, R),
    ("two-thirds-200-of-300-passes", "present_two_thirds", 200, 0, 100, 300, 300, P),
    ("two-thirds-199-of-300-fails", "present_two_thirds", 199, 0, 0, 300, 300, R),
    ("two-thirds-abstentions-count-against", "present_two_thirds", 8, 0, 4, 12, 30, P),
    ("two-thirds-abstentions-count-against-2", "present_two_thirds", 7, 0, 5, 12, 30, R),
    ("two-thirds-unanimous", "present_two_thirds", 5, 0, 0, 5, 30, P),
    # -- assembly (村民会议) --------------------------------------------------------------------
    # quorum: ceil(2/3 · entitled) households present
    ("assembly-exact-quorum-30-passes", "assembly", 11, 9, 0, 20, 30, P),
    ("assembly-one-short-30-no-quorum", "assembly", 19, 0, 0, 19, 30, Q),
    ("assembly-exact-quorum-31", "assembly", 12, 9, 0, 21, 31, P),  # ceil(62/3) = 21
    ("assembly-one-short-31-no-quorum", "assembly", 20, 0, 0, 20, 31, Q),
    ("assembly-exact-quorum-3", "assembly", 2, 0, 0, 2, 3, P),
    ("assembly-one-short-3-no-quorum", "assembly", 1, 0, 0, 1, 3, Q),
    ("assembly-exact-quorum-300", "assembly", 101, 99, 0, 200, 300, P),
    ("assembly-one-short-300-no-quorum", "assembly", 199, 0, 0, 199, 300, Q),
    # passed by more than half of those present
    ("assembly-exactly-half-of-present-fails", "assembly", 10, 10, 0, 20, 30, R),
    ("assembly-half-yes-rest-abstain-fails", "assembly", 10, 0, 10, 20, 30, R),
    ("assembly-over-half-passes", "assembly", 11, 0, 9, 20, 30, P),
    ("assembly-abstentions-count-against", "assembly", 12, 2, 11, 25, 30, R),
    ("assembly-everyone-present", "assembly", 16, 14, 0, 30, 30, P),
    ("assembly-majority-of-cast-not-enough", "assembly", 8, 2, 10, 20, 30, R),
    # -- nobody present: no quorum under every rule -------------------------------------------
    *[(f"nobody-present-{rule}", rule, 0, 0, 0, 0, 30, Q) for rule in RULES],
    ("nobody-present-nobody-entitled", "assembly", 0, 0, 0, 0, 0, Q),
]


@pytest.mark.parametrize(("rule", "yes", "no", "abstain", "present", "entitled", "expected"),
                         [pytest.param(*row[1:], id=row[0]) for row in TABLE])
def test_outcome(rule, yes, no, abstain, present, entitled, expected):
    assert outcome(rule, yes, no, abstain, present, entitled) == expected


def test_every_rule_is_in_the_table():
    assert {row[1] for row in TABLE} == set(RULES)


@pytest.mark.parametrize(("rule", "yes", "no", "abstain", "present"), [
    pytest.param("cast_majority", 6, 5, 0, 10, id="cast-above-present"),
    pytest.param("present_majority", 0, 0, 11, 10, id="abstain-above-present"),
    pytest.param("present_two_thirds", 4, 4, 3, 10, id="sum-above-present"),
    pytest.param("assembly", 21, 0, 0, 20, id="assembly-above-present"),
    pytest.param("present_majority", 1, 0, 0, 0, id="votes-with-nobody-present"),
    pytest.param("present_majority", -1, 2, 0, 10, id="negative-count"),
    pytest.param("cast_majority", 1, 0, 0, -1, id="negative-present"),
])
def test_counts_above_present_are_refused(rule, yes, no, abstain, present):
    with pytest.raises(ServiceError):
        outcome(rule, yes, no, abstain, present, 30)


def test_unknown_rule_is_refused():
    with pytest.raises(ServiceError):
        outcome("unanimous", 3, 0, 0, 3, 3)


@pytest.mark.parametrize(("rule", "entitled", "needed"), [
    pytest.param("assembly", 30, 20, id="30→20"),
    pytest.param("assembly", 31, 21, id="31→21-ceil"),
    pytest.param("assembly", 32, 22, id="32→22-ceil"),
    pytest.param("assembly", 33, 22, id="33→22"),
    pytest.param("assembly", 3, 2, id="3→2"),
    pytest.param("assembly", 1, 1, id="1→1"),
    pytest.param("assembly", 2, 2, id="2→2-ceil"),
    pytest.param("assembly", 0, 0, id="0→0"),
    pytest.param("assembly", 300, 200, id="300→200"),
    pytest.param("assembly", 301, 201, id="301→201"),
    pytest.param("cast_majority", 30, None, id="cast-none"),
    pytest.param("present_majority", 30, None, id="present-maj-none"),
    pytest.param("present_two_thirds", 30, None, id="two-thirds-none"),
])
def test_quorum_needed(rule, entitled, needed):
    assert quorum_needed(rule, entitled) == needed


@pytest.mark.parametrize("entitled", range(1, 61))
def test_assembly_quorum_boundary(entitled):
    """For any village size: ⅔ present (rounded up) is a quorum, one fewer is 流会."""
    need = quorum_needed("assembly", entitled)
    assert 3 * need >= 2 * entitled > 3 * (need - 1)
    assert outcome("assembly", need, 0, 0, need, entitled) == P
    assert outcome("assembly", 0, 0, 0, need - 1, entitled) == Q
    if need > 1:
        assert outcome("assembly", need - 1, 0, 0, need - 1, entitled) == Q
