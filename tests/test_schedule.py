"""The phase plan: parsing, scaling to a run, and errors."""

from __future__ import annotations

import pytest

from hf_quads.schedule import NAMED_PLANS, PhasePlan, ScheduleError


def test_quads_plan_is_the_reference_on_20_epochs():
    plan = PhasePlan.parse("quads")
    # 20 epochs of one step each: distil on epochs 1-3 and 7-12, quantize on 4-6 and 13-20.
    phases = [plan.phase_at(step, 20) for step in range(20)]
    assert phases == ["distill"] * 3 + ["quant"] * 3 + ["distill"] * 6 + ["quant"] * 8
    assert plan.boundaries(20) == [(0, "distill"), (3, "quant"), (6, "distill"), (12, "quant")]
    assert plan.quantizes and plan.phases == {"distill", "quant"}


def test_plan_scales_to_any_run_length():
    plan = PhasePlan.parse("distill:3,quant:3,distill:6,quant:8")
    assert plan.boundaries(200) == [(0, "distill"), (30, "quant"), (60, "distill"), (120, "quant")]
    assert plan.describe(200) == "distill 0-29 | quant 30-59 | distill 60-119 | quant 120-199"
    # Segments too short for a tiny run are dropped and neighbours of one phase merge.
    assert PhasePlan.parse("distill:1,quant:100,distill:1").boundaries(10) == [(0, "quant")]


def test_joint_and_single_phase_plans():
    assert PhasePlan.parse("joint").boundaries(7) == [(0, "joint")]
    assert not PhasePlan.parse("distill").quantizes
    assert PhasePlan.parse("quant").phase_at(0, 5) == "quant"
    assert set(NAMED_PLANS) >= {"quads", "joint", "distill", "quant"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "plan name"),
        ("distil:3", "unknown phase 'distil'"),
        ("distill:3,quant", None),  # a missing length means 1: valid
        ("distill:0", "length 0"),
        ("distill:-1", "cannot read"),
        ("distill;quant", "cannot read"),
    ],
)
def test_schedule_errors(text, message):
    if message is None:
        assert PhasePlan.parse(text).boundaries(4) == [(0, "distill"), (3, "quant")]
        return
    with pytest.raises(ScheduleError, match=message):
        PhasePlan.parse(text)
