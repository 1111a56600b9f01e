"""The DAG factory: any team's pipeline, its quality gate checked when the DAG file is parsed.

A bad configuration is one line naming the field, raised while the DAG file is parsed (an import
error in Airflow's UI), never a failed run. The definition used here is the churn pipeline of the
user project in tests/package (a classifier gated with >=), written to a definition JSON file.
"""

from __future__ import annotations

import importlib.util
import json
import textwrap
from pathlib import Path

import pytest

from airsage.dag_factory import CsvPartition, DagConfigError, PipelineSpec, build_pipeline_dag
from airsage.quality_gate import GateConfigError, QualityGate, outcome_line, passes

PROJECT = Path(__file__).resolve().parents[1] / "package" / "user_project"


def churn_definition() -> dict:
    spec = importlib.util.spec_from_file_location("churn_pipeline_for_factory_tests",
                                                  PROJECT / "pipelines" / "churn_pipeline.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return json.loads(module.build({"bucket": "b", "prefix": "p"}).definition)


def gate(**changes) -> QualityGate:
    fields = {"step": "ScoreChurn", "property_file": "ChurnEvaluation", "json_path": "classification_metrics.accuracy.value",
              "metric": "accuracy", "comparison": ">=", "threshold": 0.7, "threshold_param": "accuracy_threshold",
              "pipeline_parameter": "AccuracyThreshold", "fail_steps": ("AccuracyTooLow",)}
    return QualityGate(**{**fields, **changes})


@pytest.fixture
def definition_file(tmp_path) -> Path:
    path = tmp_path / "churn.json"
    path.write_text(json.dumps(churn_definition()))
    return path


def spec(definition_file: Path, **changes) -> PipelineSpec:
    fields = {"name": "churn", "source": str(definition_file), "pipeline_name": "churn-classifier", "gate": gate(),
              "stage": CsvPartition(default_source="/data/customers.csv", input_parameter="Customers")}
    return PipelineSpec(**{**fields, **changes})


def test_a_definition_file_pipeline_gives_the_same_task_shape_on_both_backends(definition_file):
    sagemaker = build_pipeline_dag("churn", spec(definition_file), backend="sagemaker")
    local = build_pipeline_dag("churn_local", spec(definition_file), backend="local")
    assert sagemaker.task_ids == ["stage_input", "upsert_pipeline", "start_execution", "wait_for_execution",
                                  "read_metrics", "gate", "publish_report", "alert_on_call", "approve_model"]
    assert local.task_ids == ["stage_input", "upsert_pipeline", "run_local", "read_metrics", "gate",
                              "publish_report", "alert_on_call", "approve_model"]
    approve = sagemaker.get_task("approve_model")
    assert "publish_report" in approve.upstream_task_ids and approve.comparison == ">="
    assert [o.name for o in approve.outlets] == ["airsage.churn.approved-model.alias"]
    assert sagemaker.params["approve_backfills"] is False
    assert sagemaker.params["accuracy_threshold"] == 0.7 and "source" in sagemaker.params
    read = sagemaker.get_task("read_metrics")
    assert (read.step_name, read.property_file, read.json_path, read.metric) == (
        "ScoreChurn", "ChurnEvaluation", "classification_metrics.accuracy.value", "accuracy")
    assert sagemaker.get_task("gate").comparison == ">=" and sagemaker.get_task("alert_on_call").comparison == ">="
    assert sagemaker.get_task("start_execution").quality_gate_steps == ("AccuracyTooLow",)
    assert sagemaker.get_task("start_execution").parameters == {"AccuracyThreshold": "{{ params.accuracy_threshold }}"}
    assert sagemaker.get_task("upsert_pipeline").source == str(definition_file)
    assert sagemaker.get_task("stage_input").batch_uri is None  # no label column: no batch rows


@pytest.mark.parametrize(("changes", "message"), [
    ({"gate": gate(step="ScoreCustomers")},
     "quality gate: step 'ScoreCustomers' is not in the pipeline definition (steps: ['AccuracyCheck', 'AccuracyTooLow', "
     "'RegisterChurnModel', 'ScoreChurn'])"),
    ({"gate": gate(property_file="Evaluation")},
     "quality gate: step 'ScoreChurn' declares no PropertyFile 'Evaluation' (declared: ['ChurnEvaluation'])"),
    ({"gate": gate(fail_steps=("AccuracyCheck",))},
     "quality gate fail_steps: step 'AccuracyCheck' is a Condition step, not a Fail step"),
    ({"gate": gate(fail_steps=("TooLow",))}, "quality gate fail_steps: step 'TooLow' is not in the pipeline definition"),
    ({"gate": gate(pipeline_parameter="Threshold")},
     "quality gate pipeline_parameter: the pipeline declares no parameter 'Threshold' (parameters: "
     "['AccuracyThreshold', 'Customers'])"),
    ({"pipeline_name": None}, "a definition file needs pipeline_name"),
    ({"stage": CsvPartition(default_source="x", input_parameter="AccuracyThreshold")},
     "the gate's pipeline_parameter 'AccuracyThreshold' is also filled by the stage step"),
])
def test_a_gate_that_does_not_fit_the_definition_is_one_line_at_parse_time(definition_file, changes, message):
    with pytest.raises(DagConfigError) as failed:
        build_pipeline_dag("churn", spec(definition_file, **changes), backend="sagemaker")
    assert message in str(failed.value) and str(failed.value).startswith("DAG 'churn': ")
    assert "\n" not in str(failed.value)


def test_the_json_path_is_checked_against_an_example_report(definition_file, tmp_path):
    report = tmp_path / "evaluation.json"
    report.write_text(json.dumps({"classification_metrics": {"auc": {"value": 0.8}}}))
    with pytest.raises(DagConfigError, match=r"quality gate json_path: .*evaluation.json: JSON path "
                                             r"'classification_metrics.accuracy.value' not found: no key 'accuracy' at "
                                             r"classification_metrics \(found: \['auc'\]\)"):
        build_pipeline_dag("churn", spec(definition_file, example_report=str(report)), backend="local")
    report.write_text(json.dumps({"classification_metrics": {"accuracy": {"value": 0.8}}}))
    build_pipeline_dag("churn", spec(definition_file, example_report=str(report)), backend="local")


@pytest.mark.parametrize(("changes", "message"), [
    ({"comparison": "<"}, "quality gate comparison '<': expected '<=' (lower is better) or '>=' (higher is better)"),
    ({"json_path": "metrics..auc"}, "quality gate json_path: empty or malformed JSON path 'metrics..auc'"),
    ({"threshold": float("nan")}, "quality gate threshold nan: expected a finite number"),
    ({"threshold_param": "accuracy threshold"}, "quality gate threshold_param 'accuracy threshold': expected a DAG param"),
    ({"step": ""}, "quality gate step '': expected 1-256 letters, digits"),
])
def test_a_malformed_gate_is_refused_where_it_is_written(changes, message):
    with pytest.raises(GateConfigError) as failed:
        gate(**changes)
    assert message in str(failed.value)


def test_missing_or_broken_files_name_themselves(tmp_path, definition_file):
    with pytest.raises(DagConfigError, match=r"definition file .*missing.json does not exist"):
        build_pipeline_dag("churn", spec(tmp_path / "missing.json"), backend="local")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(DagConfigError, match=r"definition file .*bad.json is not valid JSON: .* at line 1 column 2"):
        build_pipeline_dag("churn", spec(tmp_path / "bad.json"), backend="local")
    with pytest.raises(DagConfigError, match="source 'churn' is neither a definition .json file"):
        build_pipeline_dag("churn", spec(definition_file, source="churn"), backend="local")
    with pytest.raises(DagConfigError, match="backend must be 'sagemaker' or 'local'"):
        build_pipeline_dag("churn", spec(definition_file), backend="docker")


def test_lower_and_higher_is_better_gates_judge_and_word_alike():
    assert passes(4.2, 6.0, "<=") and not passes(6.5, 6.0, "<=")
    assert passes(0.9, 0.8, ">=") and not passes(0.7, 0.8, ">=")
    assert outcome_line("mse", 7.123456, 6, "<=") == "mse 7.123 > threshold 6"
    assert outcome_line("auc", 0.71, 0.8, ">=") == "auc 0.71 < threshold 0.8"
    assert outcome_line("auc", 0.91, 0.8, ">=") == "auc 0.91 >= threshold 0.8"


def test_airflow_reports_a_bad_dag_file_as_one_import_error_line(tmp_path, definition_file):
    from airflow.dag_processing.dagbag import DagBag

    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "churn.py").write_text(textwrap.dedent(f'''
        """Airflow DAG file with a gate on a step the pipeline does not have."""
        from airsage.dag_factory import CsvPartition, PipelineSpec, build_pipeline_dag
        from airsage.quality_gate import QualityGate

        churn = build_pipeline_dag("churn", PipelineSpec(
            name="churn", source={str(definition_file)!r}, pipeline_name="churn-classifier",
            gate=QualityGate(step="Evaluate", property_file="ChurnEvaluation", json_path="a.b", metric="auc",
                             comparison=">="),
            stage=CsvPartition(default_source="/data/x.csv")), backend="local")
    '''))
    bag = DagBag(str(dags))
    (error,) = bag.import_errors.values()
    assert "DagConfigError: DAG 'churn': pipeline 'churn'" in error
    assert "quality gate: step 'Evaluate' is not in the pipeline definition" in error
    assert not bag.dags
