"""for_each.json and for_each_jobs.json (SDK v3's ForEachStep): every item through the body steps as children
``<body>-<index>``, CurrentItem fields, sibling references inside an iteration, MaxConcurrency, the Selector
(MaxBy, MinBy), IterationOutputs, the child counts and Status, a failing child."""

from __future__ import annotations

import json

from sm_pipeline.local import LocalExecutionStore, run_pipeline

from .conftest import BUCKET, SCORE_ARN, load, max_concurrency

ITEMS = ["alpha", "beta", "gamma"]


class Scorer:
    """Stands in for the Lambda function of both ForEach bodies: score = rows x len(name)."""

    def __init__(self) -> None:
        self.calls: list[dict] = []

    def __call__(self, inputs: dict) -> dict:
        self.calls.append(dict(inputs))
        return {"score": int(inputs["rows"]) * len(inputs["name"]), "label": f"{inputs['name']}-label"}


def children(result, prefix: str) -> dict[str, dict]:
    return {step["StepName"]: step for step in result.steps if step["StepName"].startswith(prefix)}


def test_the_sdk_writes_a_for_each_step_with_its_body_and_selector():
    step = load("for_each")["Steps"][0]
    assert step["Type"] == "ForEach"
    assert set(step["Arguments"]) == {"IterableItems", "MaxConcurrency", "Selector", "ForEachBody"}
    assert step["Arguments"]["Selector"] == {"Pick": "MaxBy", "Field": {
        "Get": "IterationOutput.ScoreItem.OutputParameters['score']"}}
    assert [body["Name"] for body in step["Arguments"]["ForEachBody"]] == ["CountItem", "ScoreItem"]


def test_every_item_runs_through_the_body_and_the_selected_child_is_read_downstream(store):
    scorer = Scorer()
    result = run_pipeline(load("for_each"), root=store.root, pipeline_name="conf-for-each",
                          lambdas={SCORE_ARN: scorer})
    assert result.status == "Succeeded", result.failure_reason
    summary = result.summary()["steps"]
    assert {name: status for name, status in summary.items() if name[-2:-1] != "-"} == {
        "ScoreEach": "Succeeded", "EachTag": "Succeeded", "AllSucceeded": "Succeeded", "UseBest": "Succeeded",
        "NotAll": "NotExecuted"}
    # Children <body step>-<index>, each with SageMaker's IterationContext; the item as its JSON text.
    scored = children(result, "ScoreItem-")
    assert sorted(scored) == ["ScoreItem-0", "ScoreItem-1", "ScoreItem-2"]
    assert scored["ScoreItem-1"]["IterationContext"] == {
        "ParentStepName": "ScoreEach", "Index": 1, "Item": json.dumps({"name": "beta", "rows": "7"})}
    assert all(step["StepStatus"] == "Succeeded" for step in children(result, "CountItem-").values())
    # CurrentItem fields reach the body steps; a body step's reference to its sibling means the sibling
    # of the same iteration (CountItem-i's output URI).
    by_name = {call["name"]: call for call in scorer.calls if call["name"] in ITEMS}
    assert sorted(by_name) == ITEMS
    for name in ITEMS:
        marker = by_name[name]["marker"]
        assert marker.endswith(f"/CountItem/{name}/out") and marker.startswith(f"{BUCKET}/executions/")
        assert json.loads(store.read_bytes(f"{marker}/item-algo-1.json")) == {
            "name": name, "rows": {"alpha": 3, "beta": 7, "gamma": 5}[name]}
    # The ForEach step's metadata: Status, counts over every child, the selected iteration.
    assert result.step("ScoreEach")["Metadata"] == {"ForEach": {
        "Status": "Succeeded", "InputItemCount": 3, "TotalStepCount": 6, "SucceededStepCount": 6,
        "FailedStepCount": 0, "StoppedStepCount": 0, "Selector": {"StepName": "ScoreItem", "Index": 1}}}
    # MinBy over a literal list: red 3, green 5, blue 4 -> red.
    assert result.step("EachTag")["Metadata"]["ForEach"]["Selector"] == {"StepName": "EchoTag", "Index": 0}
    # Downstream: Selected, IterationOutputs[0].<body step>, the counts (beta scores 28, the highest).
    properties = LocalExecutionStore(store.root).step_properties("conf-for-each", result.execution_id)
    tag = properties["UseBest"]["Properties"]["AppSpecification"]["ContainerArguments"][2]
    first_marker = f"{BUCKET}/executions/{result.execution_id}/CountItem/alpha/out"
    assert tag == f"beta-label|{first_marker}|6|6|3|red-label"
    # MaxConcurrency, read off the recorded times of the children.
    assert max_concurrency(result.steps, set(children(result, "CountItem-")) | set(scored)) <= 2
    assert max_concurrency(result.steps, set(children(result, "EchoTag-"))) == 1


def test_a_failing_child_fails_the_for_each_and_the_counts_say_so(store):
    result = run_pipeline(load("for_each"), {"FailOn": "beta"}, root=store.root, pipeline_name="conf-for-each",
                          lambdas={SCORE_ARN: Scorer()})
    assert result.status == "Failed"
    assert result.step("CountItem-1")["StepStatus"] == "Failed"
    # Its sibling needs CountItem-1's output: never created. The other iterations run to the end.
    assert "ScoreItem-1" not in {step["StepName"] for step in result.steps}
    assert {name: step["StepStatus"] for name, step in children(result, "ScoreItem-").items()} == {
        "ScoreItem-0": "Succeeded", "ScoreItem-2": "Succeeded"}
    each = result.step("ScoreEach")
    assert each["StepStatus"] == "Failed"
    assert each["Metadata"] == {"ForEach": {
        "Status": "Failed", "InputItemCount": 3, "TotalStepCount": 5, "SucceededStepCount": 4,
        "FailedStepCount": 1, "StoppedStepCount": 0}}
    assert each["FailureReason"].startswith("1 of 5 child step(s) failed: CountItem-1: AlgorithmError: ")
    assert each["FailureReason"].endswith("item: refusing item 'beta' (--fail-on)")
    assert result.failure_reason.startswith("Step failure: ScoreEach: 1 of 5 child step(s) failed: CountItem-1:")
    assert "AllSucceeded" not in result.summary()["steps"]


def test_json_object_strings_as_items_set_a_jobs_instance_count(store):
    result = run_pipeline(load("for_each_jobs"), root=store.root, pipeline_name="conf-for-each-jobs")
    assert result.status == "Succeeded", result.failure_reason
    properties = LocalExecutionStore(store.root).step_properties("conf-for-each-jobs", result.execution_id)
    counts = {name: properties[name]["Properties"]["ProcessingResources"]["ClusterConfig"]["InstanceCount"]
              for name in ("ItemOnHosts-0", "ItemOnHosts-1", "ItemOnHosts-2")}
    assert counts == {"ItemOnHosts-0": 2, "ItemOnHosts-1": 1, "ItemOnHosts-2": 2}
    # MinBy InstanceCount: south (index 1); each of its hosts wrote its own marker.
    assert result.step("EachOnHosts")["Metadata"]["ForEach"]["Selector"] == {"StepName": "ItemOnHosts", "Index": 1}
    tag = properties["AfterEach"]["Properties"]["AppSpecification"]["ContainerArguments"][2]
    south = f"{BUCKET}/executions/{result.execution_id}/ItemOnHosts/south/out"
    assert tag == f"{south}|3"
    assert store.list(f"{south}/") == [f"{south}/item-algo-1.json"]
    assert sorted(store.list(f"{BUCKET}/executions/{result.execution_id}/ItemOnHosts/north/out/")) == [
        f"{BUCKET}/executions/{result.execution_id}/ItemOnHosts/north/out/item-algo-{i}.json" for i in (1, 2)]


def test_a_resumed_execution_keeps_a_succeeded_for_each_with_its_children(store):
    scorer = Scorer()
    definition = load("for_each")
    first = run_pipeline(definition, root=store.root, pipeline_name="conf-for-each", lambdas={SCORE_ARN: scorer})
    assert first.status == "Succeeded", first.failure_reason
    # Resuming a Succeeded execution is refused; resume one that failed after its ForEach steps instead.
    failing = run_pipeline(definition, {"FailOn": "nobody"}, root=store.root, pipeline_name="conf-for-each",
                           lambdas={SCORE_ARN: lambda inputs: (_ for _ in ()).throw(RuntimeError("down"))
                                    if inputs["name"] == "green" else scorer(inputs)})
    assert failing.status == "Failed"
    assert failing.step("ScoreEach")["StepStatus"] == "Succeeded"
    assert failing.step("EachTag")["StepStatus"] == "Failed"
    calls = len(scorer.calls)
    resumed = run_pipeline(definition, {"FailOn": "nobody"}, root=store.root, pipeline_name="conf-for-each",
                           lambdas={SCORE_ARN: scorer}, execution_id=failing.execution_id, resume=True)
    assert resumed.status == "Succeeded", resumed.failure_reason
    # ScoreEach and its six children were kept (not run again); only EachTag's three children ran.
    assert len(scorer.calls) - calls == 3
    assert sorted(children(resumed, "ScoreItem-")) == ["ScoreItem-0", "ScoreItem-1", "ScoreItem-2"]
    assert resumed.step("ScoreItem-0")["StartTime"] == failing.step("ScoreItem-0")["StartTime"]
