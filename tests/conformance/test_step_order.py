"""The step-order check itself: it sees a dependent that starts before its dependency ended, and a ForEach child
outside its ForEach or before a sibling of its iteration it needs."""

from __future__ import annotations

from .conftest import load
from .step_order import step_order_problems


def step(name, start, end, **extra):
    return {"StepName": name, "StartTime": f"2026-01-01T00:00:{start:09.6f}+00:00",
            "EndTime": f"2026-01-01T00:00:{end:09.6f}+00:00", **extra}


def test_a_dependent_starting_before_its_dependency_ended_is_named():
    definition = load("control_flow")
    steps = [step("ShardCount", 1, 2), step("SumCounts", 1.9999, 3)]
    assert step_order_problems(definition, steps) == [
        "SumCounts starts at 2026-01-01T00:00:01.999900+00:00, before ShardCount ends at 2026-01-01T00:00:02+00:00"]
    assert step_order_problems(definition, [step("ShardCount", 1, 2), step("SumCounts", 2, 3)]) == []


def test_for_each_children_are_checked_against_their_for_each_and_their_siblings():
    definition = load("for_each")

    def child(name, index, start, end):
        return step(f"{name}-{index}", start, end, IterationContext={"ParentStepName": "ScoreEach", "Index": index,
                                                                      "Item": "{}"})

    good = [step("ScoreEach", 1, 9), child("CountItem", 0, 2, 3), child("ScoreItem", 0, 3, 4)]
    assert step_order_problems(definition, good) == []
    bad = [step("ScoreEach", 1, 3.5), child("CountItem", 0, 0.5, 3), child("ScoreItem", 0, 2.5, 4)]
    assert step_order_problems(definition, bad) == [
        "CountItem-0 starts at 2026-01-01T00:00:00.500000+00:00, before ScoreEach starts at "
        "2026-01-01T00:00:01+00:00",
        "ScoreEach ends at 2026-01-01T00:00:03.500000+00:00, before its child ScoreItem-0 ends",
        "ScoreItem-0 starts at 2026-01-01T00:00:02.500000+00:00, before CountItem-0 ends at "
        "2026-01-01T00:00:03+00:00"]
