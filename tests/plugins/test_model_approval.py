"""airsage.model_approval on the local registry: settings, the one decision write, who decided, what changed."""

from __future__ import annotations

import json

import pytest

from airsage.model_approval import (
    APPROVED,
    PENDING,
    REJECTED,
    ApprovalConfigError,
    Decider,
    LocalRegistryClient,
    decide,
    decision_of,
    facts_of,
    last_approved,
    parse_marker,
    parse_settings,
    replace_report_section,
    report_section,
    what_changed,
)
from sm_pipeline.local.registry import STATE_CHANGE, LocalModelRegistry

EXECUTION = "arn:aws:sagemaker:us-east-1:000000000000:pipeline/airsage-abalone/execution/abc123"


@pytest.fixture
def registry(tmp_path):
    return LocalRegistryClient(str(tmp_path))


def register(registry: LocalRegistryClient, group: str = "abalone") -> str:
    return registry.registry.register({"ModelPackageGroupName": group})["ModelPackageArn"]


ALICE = Decider(who="alice", dag_id="abalone_pipeline_local", run_id="manual__1", clear=0)


def test_settings_defaults_and_every_key():
    assert parse_settings(None).required and parse_settings("").timeout.total_seconds() == 72 * 3600
    settings = parse_settings(json.dumps({"assigned_users": ["alice", {"id": "7", "name": "Bob"}], "timeout_hours": 2,
                                          "on_timeout": "reject", "poll_seconds": 5, "required": False,
                                          "notify": {"webhook_url": "http://127.0.0.1:1/x"}}))
    assert settings.assigned_users == ({"id": "alice", "name": "alice"}, {"id": "7", "name": "Bob"})
    assert (settings.timeout.total_seconds(), settings.on_timeout, settings.poll_seconds, settings.required) == \
        (7200, "reject", 5, False)


@pytest.mark.parametrize(("raw", "names"), [
    ("{", "not JSON"), ("[]", "JSON object"), ('{"who": 1}', "unknown key"),
    ('{"assigned_users": [3]}', "assigned_users entry 3"), ('{"assigned_users": "alice"}', "list of user ids"),
    ('{"timeout_hours": 0}', "timeout_hours"), ('{"poll_seconds": "5"}', "poll_seconds"),
    ('{"on_timeout": "approve"}', "on_timeout"), ('{"required": "no"}', "required"),
    ('{"notify": {"webhook_url": "ftp://x"}}', "notify"),
])
def test_a_bad_setting_is_one_line_naming_it(raw, names):
    with pytest.raises(ApprovalConfigError) as err:
        parse_settings(raw)
    assert names in str(err.value) and "\n" not in str(err.value) and "airsage_approval" in str(err.value)


def test_an_answer_is_written_once_with_who_which_run_and_when(registry):
    arn = register(registry)
    written = decide(registry, arn, APPROVED, ALICE, when="2026-11-20T10:00:00+00:00", facts=facts_of(EXECUTION))
    assert written.outcome == "written"
    package = registry.describe(arn)
    assert package["ModelApprovalStatus"] == APPROVED
    assert package["ApprovalDescription"].startswith(
        "Approved by alice in Airflow (DAG abalone_pipeline_local, run manual__1) at 2026-11-20T10:00:00+00:00")
    assert parse_marker(package["ApprovalDescription"]) == {"run": "abalone_pipeline_local/manual__1", "clear": 0}
    assert package["LastModifiedBy"] == {"UserProfileName": "alice"}
    assert package["CustomerMetadataProperties"] == {"airsage:execution": EXECUTION}  # the run that made it
    decision = decision_of(package)
    assert (decision.status, decision.by, decision.where) == (
        APPROVED, "alice", "in Airflow, DAG run abalone_pipeline_local/manual__1")
    events = registry.registry.read_events()
    assert [e["detail"]["ModelApprovalStatus"] for e in events] == [PENDING, APPROVED]
    assert {e["detail-type"] for e in events} == {STATE_CHANGE} and events[-1]["source"] == "aws.sagemaker"
    assert events[-1]["resources"] == [arn]


def test_a_retry_never_flips_nor_writes_again(registry):
    arn = register(registry)
    decide(registry, arn, APPROVED, ALICE, when="t1")
    before = registry.describe(arn)
    # the retried try answers differently (a second human, a stale event): this run's decision stands
    again = decide(registry, arn, REJECTED, Decider("bob", ALICE.dag_id, ALICE.run_id, 0), when="t2")
    assert again.outcome == "already" and again.decision.status == APPROVED
    assert registry.describe(arn) == before
    assert len(registry.registry.read_events()) == 2  # registration + the one decision


def test_a_decision_made_elsewhere_first_is_not_overwritten(registry):
    arn = register(registry)
    LocalModelRegistry(registry.registry.dir.parent.parent).update_model_package(
        arn, {"ModelApprovalStatus": REJECTED, "LastModifiedBy": {"UserProfileName": "carol"}})
    written = decide(registry, arn, APPROVED, ALICE, when="t")
    assert written.outcome == "decided_elsewhere"
    assert (written.decision.status, written.decision.by) == (REJECTED, "carol")
    assert "outside Airflow" in written.decision.where
    assert registry.describe(arn)["ModelApprovalStatus"] == REJECTED


def test_after_a_clear_the_new_answer_is_written(registry):
    arn = register(registry)
    decide(registry, arn, APPROVED, ALICE, when="t1")
    cleared = Decider("bob", ALICE.dag_id, ALICE.run_id, clear=1)
    written = decide(registry, arn, REJECTED, cleared, when="t2", asked_on=APPROVED)
    assert written.outcome == "written" and written.decision.status == REJECTED and written.decision.by == "bob"
    assert parse_marker(registry.describe(arn)["ApprovalDescription"])["clear"] == 1


def test_what_changed_since_the_last_approved_version(registry):
    """The approved version records its execution; what changed is airsage.what_changed from there to this run."""
    asked = []

    def changes_since(earlier):
        asked.append(earlier)
        return {"summary": ["definition: 1 step changed", "parameter MseThreshold: 6.0 -> 5.0"]}

    first = register(registry)
    assert what_changed(last_approved(registry, "abalone", first), changes_since) == [
        "no earlier approved version: this would be the first"]
    decide(registry, first, APPROVED, ALICE, when="t", facts=facts_of(EXECUTION))
    assert registry.describe(first)["CustomerMetadataProperties"] == {"airsage:execution": EXECUTION}
    second = register(registry)
    assert what_changed(last_approved(registry, "abalone", second), changes_since) == [
        f"since version 1 ({EXECUTION}):", "definition: 1 step changed", "parameter MseThreshold: 6.0 -> 5.0"]
    assert asked == [EXECUTION]

    def unreadable(earlier):
        raise FileNotFoundError(f"no records of {earlier}")

    assert what_changed(last_approved(registry, "abalone", second), unreadable) == [
        f"since version 1 ({EXECUTION}): not known: no records of {EXECUTION}"]
    elsewhere = register(registry)
    registry.update(elsewhere, {"ModelApprovalStatus": APPROVED}, "console-user")
    assert what_changed(last_approved(registry, "abalone", register(registry)), changes_since) == [
        "version 3 was approved outside airsage: the execution that made it is not recorded"]


def test_the_report_section_is_replaced_in_place():
    page = f"<html><body><h1>r</h1>{report_section(None, 'arn:x')}<p>tail</p></body></html>"
    assert PENDING in page
    decision = decision_of({"ModelApprovalStatus": APPROVED, "ApprovalDescription": "Approved by alice in Airflow "
                            "(DAG d, run r) at t [airsage run=d/r clear=0]", "LastModifiedTime": "t"})
    updated = replace_report_section(page, report_section(decision, "arn:x"))
    assert "Approved</b> by alice" in updated and PENDING not in updated and updated.endswith("<p>tail</p></body></html>")
    assert updated.count("<h2>Approval</h2>") == 1
