"""The definition diff and the cache-impact plan on pairs of real SDK v3 definitions (``change_pairs.py``):
an image change, an instance change, a code change, a cache-config change, a parameter default change, a step
added; and ``python -m sm_pipeline diff`` / ``plan`` as subprocesses (exit codes, bad input lines)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sm_pipeline.definition_diff import diff_definitions
from sm_pipeline.plan import Reference, plan_definition
from sm_pipeline.step_graph import flatten_steps

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
CACHED = ("PreprocessAbalone", "TrainAbalone", "EvaluateAbalone", "TransformAbalone")


@pytest.fixture(scope="module")
def pairs(tmp_path_factory) -> Path:
    """The SDK-built definitions, one child process for all."""
    out = tmp_path_factory.mktemp("pairs")
    code = tmp_path_factory.mktemp("code") / "processing_code"
    shutil.copytree(REPO / "processing_code", code)
    (code / "preprocess.py").write_text((code / "preprocess.py").read_text() + "\n# a changed script\n")
    done = subprocess.run([sys.executable, str(REPO / "tests/sm_pipeline/change_pairs.py"), str(out), str(code)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def load(pairs: Path, name: str) -> dict:
    return json.loads((pairs / f"{name}.json").read_text())


def changed(diff) -> dict[str, dict]:
    return {step.name: step.changes for step in diff.steps_with("changed")}


def reference(definition: dict, *, ran: datetime = NOW - timedelta(hours=1), status: dict | None = None) -> Reference:
    """An execution of ``definition`` in which every step of the pass branch succeeded at ``ran``."""
    steps = [{"StepName": e.name, "StepStatus": (status or {}).get(e.name, "Succeeded"),
              "StartTime": ran.isoformat(), "EndTime": (ran + timedelta(minutes=5)).isoformat()}
             for e in flatten_steps(definition) if e.type != "Fail"]
    return Reference("arn:aws:sagemaker:us-east-1:000000000000:pipeline/airsage-abalone/execution/ref1",
                     "Succeeded", definition, {}, steps)


def outcomes(plan) -> dict[str, str]:
    return {step.name: step.outcome for step in plan.steps}


# -- diff -----------------------------------------------------------------------------------------------------
def test_the_same_definition_is_an_empty_diff(pairs):
    diff = diff_definitions(load(pairs, "base"), load(pairs, "base"))
    assert diff.is_empty
    assert diff.summary_lines() == ["definitions are the same"]
    assert diff.to_json()["same"] is True


def test_an_image_change_is_the_steps_image(pairs):
    diff = diff_definitions(load(pairs, "base"), load(pairs, "image"))
    assert list(changed(diff)) == ["PreprocessAbalone"]
    (image,) = changed(diff)["PreprocessAbalone"]["image"]
    assert image.old.endswith("sagemaker-scikit-learn:1.2-1-cpu-py3")
    assert image.new.endswith("sagemaker-scikit-learn:1.0-1-cpu-py3")
    assert "arguments" not in changed(diff)["PreprocessAbalone"]  # the image is its own aspect, not an argument
    assert diff.summary_lines()[1] == ("~ step PreprocessAbalone (Processing): image sagemaker-scikit-learn:1.2-1-cpu-py3 "
                                       "-> sagemaker-scikit-learn:1.0-1-cpu-py3")


def test_an_instance_change_is_the_steps_instances(pairs):
    diff = diff_definitions(load(pairs, "base"), load(pairs, "instance"))
    (instance,) = changed(diff)["TransformAbalone"]["instance"]
    assert (instance.old, instance.new) == ("1 x ml.m5.xlarge", "1 x ml.m5.2xlarge")
    # the model package lists the instances it supports: an argument of its own step
    paths = [c.path for c in changed(diff)["RegisterAbaloneModel"]["arguments"]]
    assert "InferenceSpecification.SupportedTransformInstanceTypes[0]" in paths


def test_a_code_change_is_the_scripts_content_hash(pairs):
    base, new = load(pairs, "base"), load(pairs, "code")
    diff = diff_definitions(base, new)
    assert list(changed(diff)) == ["PreprocessAbalone"]
    (code,) = changed(diff)["PreprocessAbalone"]["code"]
    assert code.path == "preprocess.py"
    uris = [i["S3Input"]["S3Uri"] for i in new["Steps"][0]["Arguments"]["ProcessingInputs"] if i["InputName"] == "code"]
    assert code.new == uris[0].split("/code/")[1].split("/")[0]  # the content-addressed key's hash
    assert "arguments" not in changed(diff)["PreprocessAbalone"]


def test_code_is_hashed_by_content_when_it_can_be_read(pairs):
    base = load(pairs, "base")
    blobs = {"before": b"print(1)\n", "after": b"print(2)\n"}
    state = {"now": "before"}
    diff = diff_definitions(base, base, read_code=lambda uri: blobs[state["now"]])
    assert diff.is_empty
    # the same URI, other bytes: a change only reading the objects can see
    old_reads = {}

    def reader(uri):
        old_reads[uri] = old_reads.get(uri, 0) + 1
        return blobs["before"] if old_reads[uri] == 1 else blobs["after"]

    assert not diff_definitions(base, base, read_code=reader).is_empty


def test_a_cache_config_change_is_listed_per_step(pairs):
    diff = diff_definitions(load(pairs, "base"), load(pairs, "cache"))
    assert sorted(changed(diff)) == sorted(CACHED)
    for changes in changed(diff).values():
        assert [(c.path, c.old, c.new) for c in changes["CacheConfig"]] == [("CacheConfig.ExpireAfter", "P30D", "P7D")]


def test_a_parameter_default_change(pairs):
    diff = diff_definitions(load(pairs, "base"), load(pairs, "parameter"))
    assert not diff.steps
    assert diff.parameters == [{"name": "MseThreshold", "change": "default", "old": 6.0, "new": 5.5}]
    assert diff.summary_lines()[1] == "~ parameter MseThreshold default: 6.0 -> 5.5"


def test_a_step_added(pairs):
    diff = diff_definitions(load(pairs, "base"), load(pairs, "step_added"))
    assert [(s.name, s.type, s.status) for s in diff.steps] == [("AuditFail", "Fail", "added")]
    reverse = diff_definitions(load(pairs, "step_added"), load(pairs, "base"))
    assert reverse.summary_lines()[1] == "- step AuditFail (Fail)"
    assert json.loads(json.dumps(reverse.to_json()))["steps"]["removed"][0]["name"] == "AuditFail"


# -- plan -----------------------------------------------------------------------------------------------------
def test_an_unchanged_definition_hits_every_cached_step(pairs):
    base = load(pairs, "base")
    plan = plan_definition(base, reference(base), now=NOW)
    assert plan.hits == list(CACHED)
    assert outcomes(plan)["CheckMseAbalone"] == "runs"
    assert next(s.reason for s in plan.steps if s.name == "RegisterAbaloneModel") == "RegisterModel steps are not cached"


def test_an_image_change_misses_its_step_and_everything_reading_it(pairs):
    plan = plan_definition(load(pairs, "image"), reference(load(pairs, "base")), now=NOW)
    got = outcomes(plan)
    assert [got[name] for name in CACHED] == ["miss", "miss", "miss", "miss"]
    reasons = {s.name: s.reason for s in plan.steps}
    assert "AppSpecification.ImageUri" in reasons["PreprocessAbalone"]
    assert reasons["TrainAbalone"] == "it reads properties of PreprocessAbalone, new in this run"


def test_an_instance_change_misses_only_its_step(pairs):
    plan = plan_definition(load(pairs, "instance"), reference(load(pairs, "base")), now=NOW)
    assert plan.hits == ["PreprocessAbalone", "TrainAbalone", "EvaluateAbalone"]
    assert "TransformResources.InstanceType" in next(s.reason for s in plan.steps if s.name == "TransformAbalone")


def test_a_code_change_misses_the_step_that_runs_it(pairs):
    plan = plan_definition(load(pairs, "code"), reference(load(pairs, "base")), now=NOW)
    assert outcomes(plan)["PreprocessAbalone"] == "miss"
    assert "preprocess.py" in next(s.reason for s in plan.steps if s.name == "PreprocessAbalone")
    assert plan.hits == []  # everything downstream reads its outputs


def test_a_cache_config_change_expires_older_runs(pairs):
    cache = load(pairs, "cache")
    assert plan_definition(cache, reference(load(pairs, "base")), now=NOW).hits == list(CACHED)
    old = plan_definition(cache, reference(load(pairs, "base"), ran=NOW - timedelta(days=8)), now=NOW)
    assert old.hits == []
    assert "older than its ExpireAfter P7D" in old.steps[0].reason


def test_a_parameter_default_change_that_no_cached_step_reads_keeps_the_hits(pairs):
    plan = plan_definition(load(pairs, "parameter"), reference(load(pairs, "base")), now=NOW)
    assert plan.hits == list(CACHED)


def test_a_parameter_value_a_step_reads_misses_it(pairs):
    base = load(pairs, "base")
    plan = plan_definition(base, reference(base), now=NOW,
                           parameters={"InputData": "s3://airsage-artifacts/abalone/input/ds=2026-12-07/input.csv"})
    assert outcomes(plan)["PreprocessAbalone"] == "miss"
    assert "ProcessingInputs[InputName=input].S3Input.S3Uri" in plan.steps[0].reason


def test_a_step_added_runs_and_the_others_hit(pairs):
    plan = plan_definition(load(pairs, "step_added"), reference(load(pairs, "base")), now=NOW)
    assert plan.hits == list(CACHED)
    assert outcomes(plan)["AuditFail"] == "runs"


def test_a_step_that_failed_in_the_reference_misses(pairs):
    base = load(pairs, "base")
    plan = plan_definition(base, reference(base, status={"TrainAbalone": "Failed"}), now=NOW)
    assert plan.hits == ["PreprocessAbalone"]
    assert "did not succeed in the reference execution (Failed)" in plan.steps[1].reason


def test_without_a_reference_every_cached_step_misses(pairs):
    plan = plan_definition(load(pairs, "base"), None, now=NOW)
    assert plan.hits == [] and plan.reference is None
    assert plan.summary_lines()[0].startswith("plan with no earlier successful execution: 0 cache hit(s)")


# -- the CLI --------------------------------------------------------------------------------------------------
def cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sm_pipeline", *args], cwd=cwd, capture_output=True, text=True,
                          check=False)


def test_diff_exit_codes_and_json(pairs):
    same = cli("diff", str(pairs / "base.json"), str(pairs / "base.json"))
    assert (same.returncode, same.stdout, same.stderr) == (0, "definitions are the same\n", "")
    different = cli("diff", str(pairs / "base.json"), str(pairs / "image.json"), "--json")
    assert different.returncode == 1, different.stderr
    assert json.loads(different.stdout)["steps"]["changed"][0]["name"] == "PreprocessAbalone"


@pytest.mark.parametrize(("args", "line"), [
    (("missing.json", "{base}"), "error: OLD missing.json: no such file (expected a definition file, "
                                 "pipeline:NAME or execution:ARN)"),
    (("{base}", "{junk}"), "error: {junk}: "),
    (("{base}", "pipeline:"), "error: NEW 'pipeline:': pipeline: needs a name (pipeline:NAME)"),
    (("{base}", "execution:not-an-arn", "--root", "{tmp}"), "error: NEW: "),
])
def test_diff_bad_input_is_one_line_and_exit_2(pairs, tmp_path, args, line):
    junk = tmp_path / "junk.json"
    junk.write_text("{not json")
    names = {"base": str(pairs / "base.json"), "junk": str(junk), "tmp": str(tmp_path)}
    done = cli("diff", *(a.format(**names) for a in args))
    assert done.returncode == 2, done.stdout
    assert done.stdout == ""
    assert len(done.stderr.splitlines()) == 1
    assert done.stderr.startswith(line.format(**names))


def test_plan_needs_a_reference_and_reads_one_from_local_records(pairs, tmp_path):
    done = cli("plan", str(pairs / "base.json"))
    assert done.returncode == 2
    assert done.stderr == ("error: plan: name the reference: --against EXECUTION_ARN, or --pipeline NAME "
                           "(its last Succeeded execution)\n")
    none_yet = cli("plan", str(pairs / "base.json"), "--pipeline", "airsage-abalone", "--root", str(tmp_path), "--json")
    assert none_yet.returncode == 0, none_yet.stderr
    assert json.loads(none_yet.stdout)["reference"] is None
    unknown = cli("plan", str(pairs / "base.json"), "--root", str(tmp_path), "--against",
                  "arn:aws:sagemaker:us-east-1:000000000000:pipeline/p/execution/nope")
    assert unknown.returncode == 2
    assert unknown.stderr.startswith("error: execution arn:aws:sagemaker:us-east-1:000000000000:pipeline/p/execution/"
                                     "nope: no local records of it under ")
