"""The approval task: Airflow's human-in-the-loop approval, bound to the model registry.

``ModelApprovalOperator`` is the standard provider's ``ApprovalOperator`` (Approve / Reject, the Required
Actions page, ``PATCH .../hitlDetails``) whose answer goes to the registry through
``airsage.model_approval.decide`` on either backend. While it waits the task is in Airflow 3.3's
``awaiting_input`` state and holds no worker slot. To also count decisions made elsewhere (console, CLI,
another tool), it parks with a response deadline of one poll interval (``poll_seconds``): at each deadline
the scheduler's awaiting-input sweep resumes it for a moment, it reads the version's status
(DescribeModelPackage), and either ends with the decision made elsewhere or parks again, until the
request's own time-out (``timeout_hours``, then ``on_timeout``). The HITL request carries no defaults, so a
deadline never answers it.

The rules (README "Model approval"):

* backfill runs never ask: the version stays PendingManualApproval and the task is skipped with a log line,
  unless the DAG param ``approve_backfills`` is true;
* a version already decided when the task starts is not asked about: a decision of this run at this clear
  (a retry) or one made elsewhere ends the task with it; a decision of this run before it was cleared asks
  again (the request says what the version is now);
* Airflow keeps a cleared task's first request text (apache/airflow#73235): the task compares what Airflow
  stored with what it asked and, when they differ, logs the current text and sends it to the approvers.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators.hitl import ApprovalOperator

from airsage.operators._aws import AWS_TEMPLATE_FIELDS, AwsPipelineMixin

if TYPE_CHECKING:
    from airsage.model_approval import ApprovalSettings, Decider, Decision

BACKFILL = "backfill"


class ModelApprovalOperator(AwsPipelineMixin, ApprovalOperator):
    """Ask for approval of the run's model package version and write the answer to the registry.

    :param execution: the execution task's XCom (``airsage.execution_result``): the package ARN, links, cost,
        inputs.
    :param metrics: read_metrics' XCom (the metric's value).
    :param report: publish_report's XCom (the report's location), or None.
    :param threshold / metric / comparison: the quality gate, for the request's text.
    :param approve_backfills: ask in backfill runs too (the DAG param ``approve_backfills``; templated).
    :param backend / aws_conn_id / region_name / local_root: where the registry is.
    """

    template_fields = (*ApprovalOperator.template_fields, "execution", "metrics", "report",
                       "threshold", "approve_backfills", "local_root", *AWS_TEMPLATE_FIELDS)

    def __init__(self, *, execution: Any, metrics: Any, report: Any = None,
                 threshold: Any, metric: str, comparison: str = "<=", approve_backfills: Any = False,
                 backend: str = "sagemaker", aws_conn_id: str | None = "aws_default", region_name: str | None = None,
                 local_root: str | None = None, subject: str | None = None, **kwargs) -> None:
        super().__init__(subject=subject or "Approve the model package version?", **kwargs)
        self.execution = execution
        self.metrics = metrics
        self.report = report
        self.threshold = threshold
        self.metric = metric
        self.comparison = comparison
        self.approve_backfills = approve_backfills
        self.backend = backend
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name
        self.local_root = local_root

    # -- what the task works on ------------------------------------------------------------------
    def registry(self):
        """The registry of this task's backend."""
        from airsage.model_approval import registry_client

        return registry_client(self.backend, hook=None if self.backend == "local" else self.hook,
                               local_root=self.local_root)

    def package_arn(self) -> str | None:
        """The version the execution registered (None when it registered none)."""
        execution = self.execution if isinstance(self.execution, dict) else {}
        metrics = self.metrics if isinstance(self.metrics, dict) else {}
        return execution.get("model_package_arn") or metrics.get("model_package_arn")

    @staticmethod
    def decider(context, who: str) -> Decider:
        """``who``, answering for this DAG run at its current clear."""
        from airsage.model_approval import Decider

        dag_run = context["dag_run"]
        return Decider(who=who, dag_id=context["dag"].dag_id, run_id=context["run_id"],
                       clear=int(getattr(dag_run, "clear_number", 0) or 0))

    # -- execute: decide whether to ask, then ask ----------------------------------------------
    def execute(self, context) -> Any:
        """Skip (no version, backfill, approval off), adopt a decision already made, or ask and park."""
        from airflow.providers.common.compat.sdk import AirflowSkipException

        from airsage.model_approval import DECIDED, PENDING, decision_of, read_settings

        arn = self.package_arn()
        if not arn:
            raise AirflowSkipException("no model package version was registered by this run: nothing to approve")
        settings = read_settings()
        run_type = getattr(context["dag_run"], "run_type", None)
        # the task SDK's DagRunType is a plain (str, Enum): str() of it is "DagRunType.BACKFILL", its value "backfill"
        if getattr(run_type, "value", run_type) == BACKFILL and not _truthy(self.approve_backfills):
            self.log.info("Backfill run: not asking for approval; %s stays %s (DAG param approve_backfills asks "
                          "in backfills too)", arn, PENDING)
            raise AirflowSkipException(f"backfill run: {arn} stays {PENDING}")
        if not settings.required:
            self.log.info("Approval is off (Variable airsage_approval: required=false): %s stays %s", arn, PENDING)
            raise AirflowSkipException(f"approval off: {arn} stays {PENDING}")
        registry = self.registry()
        package = registry.describe(arn)
        current = decision_of(package)
        me = self.decider(context, "?")
        if current.status in DECIDED:
            if current.marker and current.marker["run"] == me.run and current.marker["clear"] < me.clear:
                self.log.info("This DAG run was cleared since it decided (%s): asking again", current.line())
            else:
                why = ("this run's own decision (a retry): not asked again, not written again"
                       if current.marker and current.marker["run"] == me.run else "decided before the request")
                self.log.info("%s is already %s: %s", arn, current.line(), why)
                return self._finish(context, package, current, source="registry")
        if in_process_test_run():
            self.log.info("airflow dags test / dag.test() runs tasks in-process: no one can answer a request "
                          "there, so none is made; %s stays %s (a running Airflow asks on the Required Actions "
                          "page)", arn, PENDING)
            raise AirflowSkipException(f"in-process test run: {arn} stays {PENDING}")
        return self._ask(context, settings, package, current if current.status in DECIDED else None)

    def _ask(self, context, settings: ApprovalSettings, package: dict, current: Decision | None):
        from airflow.sdk.exceptions import TaskAwaitingInput

        arn = package["ModelPackageArn"]
        self.subject = (f"Approve {context['dag'].dag_id} model version {package.get('ModelPackageVersion')} "
                        f"({_ds(context)})?")
        self.body = self._body(context, package, current)
        self.assigned_users = list(settings.assigned_users) or None
        stored = self._upsert_request(context)
        deadline = datetime.now(UTC) + settings.timeout
        link = self._required_actions_link(context)
        self.log.info("Asked for approval of %s (version %s); who may answer: %s; time-out %s (then %s); "
                      "Required Actions: %s", arn, package.get("ModelPackageVersion"),
                      ", ".join(u["id"] for u in settings.assigned_users) or "anyone with access to the DAG",
                      settings.timeout, settings.on_timeout, link or "n/a ([api] base_url is not set)")
        if stored is not None and (stored.get("body"), stored.get("subject")) != (self.body, self.subject):
            self.log.warning("Airflow kept an earlier try's request text for this task (apache/airflow#73235: a "
                             "cleared HITL task keeps its first subject/body); the current request is:\n%s\n%s",
                             self.subject, self.body)
        from airsage.notifications.approvers import notify_approvers

        notify_approvers(context, settings, subject=self.subject, body=self.body, link=link, arn=arn,
                         version=package.get("ModelPackageVersion"), aws_conn_id=self.aws_conn_id, log=self.log)
        raise TaskAwaitingInput(method_name="execute_complete", timeout=self._park_for(settings, deadline),
                                kwargs={"deadline": deadline.isoformat(),
                                        "asked_on": package.get("ModelApprovalStatus")})

    def _upsert_request(self, context) -> dict | None:
        """Write the HITL request (the standard operator's call); returns what Airflow stored."""
        from airflow.sdk.execution_time.comms import CreateHITLDetailPayload
        from airflow.sdk.execution_time.task_runner import SUPERVISOR_COMMS

        ti_id = context["task_instance"].id
        stored = SUPERVISOR_COMMS.send(msg=CreateHITLDetailPayload(
            ti_id=ti_id, options=self.options, subject=self.subject, body=self.body, defaults=None,
            params=self.serialized_params, multiple=False,
            assigned_users=[{"id": u["id"], "name": u["name"]} for u in self.assigned_users or []]))
        return stored.model_dump() if hasattr(stored, "model_dump") else None

    @staticmethod
    def _park_for(settings: ApprovalSettings, deadline: datetime) -> timedelta:
        left = deadline - datetime.now(UTC)
        return max(timedelta(seconds=1), min(left, timedelta(seconds=settings.poll_seconds)))

    def _required_actions_link(self, context) -> str | None:
        try:
            return self.generate_link_to_ui(task_instance=context["task_instance"])
        except ValueError:
            return None

    def _body(self, context, package: dict, current: Decision | None) -> str:
        from airsage.model_approval import last_approved, request_body, what_changed
        from airsage.what_changed import ExecutionFacts, changes_since
        from sm_pipeline.cost import summary_line

        execution = self.execution if isinstance(self.execution, dict) else {}
        metrics = self.metrics if isinstance(self.metrics, dict) else {}
        report = self.report if isinstance(self.report, dict) else {}
        arn = package["ModelPackageArn"]
        try:
            previous = last_approved(self.registry(), package["ModelPackageGroupName"], arn)
        except Exception as err:  # noqa: BLE001 - the request must go out even if the history cannot be read
            self.log.warning("Could not read the last approved version of %s: %s", package["ModelPackageGroupName"],
                             err)
            previous = None
        facts = ExecutionFacts(self.backend, aws_conn_id=self.aws_conn_id, local_root=self.local_root,
                               hook=self.hook if self.backend == "sagemaker" else None)
        changes = what_changed(previous, lambda earlier: changes_since(
            self.backend, earlier, execution.get("execution_arn"), facts=facts))
        return request_body(
            metric=self.metric, value=metrics.get("value"), threshold=self.threshold, comparison=self.comparison,
            arn=arn, version=package.get("ModelPackageVersion"),
            report_link=report.get("report_location") or report.get("report_uri"),
            execution_link=execution.get("console_url"), execution_arn=execution.get("execution_arn"),
            cost_line=summary_line(execution.get("cost")), changes=changes, ds=_ds(context),
            run_id=context["run_id"], current=current)

    # -- resumed: an answer, or a poll-interval deadline ----------------------------------------
    def execute_complete(self, context, event: dict[str, Any], deadline: str | None = None,
                         asked_on: str | None = None) -> Any:
        """An answer goes to the registry; a poll deadline looks at the registry and parks again."""
        from airsage.model_approval import PENDING

        asked_on = asked_on or PENDING
        if "error" in event:
            return self._poll(context, deadline, asked_on)
        chosen = list(event.get("chosen_options") or [])
        self.validate_chosen_options(chosen)
        user = event.get("responded_by_user") or {}
        who = (user.get("name") or user.get("id")) if isinstance(user, dict) else str(user or "")
        status = "Approved" if chosen == [self.APPROVE] else "Rejected"
        return self._write(context, status, who or "an Airflow user", asked_on)

    def _poll(self, context, deadline: str | None, asked_on: str):
        from airflow.sdk.exceptions import TaskAwaitingInput

        from airsage.model_approval import read_settings

        registry = self.registry()
        arn = self.package_arn()
        package = registry.describe(arn)
        from airsage.model_approval import decision_of

        current = decision_of(package)
        if package.get("ModelApprovalStatus") != asked_on:
            # The Airflow request stays unanswered (a task process cannot answer it in 3.3: the supervisor
            # refuses UpdateHITLDetail); an answer given there now changes nothing, the task has ended.
            self.log.info("Decided elsewhere while waiting: %s is %s; the Airflow request is void (answering it "
                          "now changes nothing)", arn, current.line())
            return self._finish(context, package, current, source="elsewhere")
        settings = read_settings()
        ends = datetime.fromisoformat(deadline) if deadline else datetime.now(UTC)
        if datetime.now(UTC) >= ends:
            return self._timed_out(context, settings, arn, asked_on)
        raise TaskAwaitingInput(method_name="execute_complete", timeout=self._park_for(settings, ends),
                                kwargs={"deadline": deadline, "asked_on": asked_on})

    def _timed_out(self, context, settings: ApprovalSettings, arn: str, asked_on: str):
        from airflow.providers.common.compat.sdk import AirflowFailException

        hours = settings.timeout.total_seconds() / 3600
        if settings.on_timeout == "reject":
            self.log.info("No answer within %g h: rejecting %s (on_timeout=reject)", hours, arn)
            return self._write(context, "Rejected", "airsage (no answer in time)", asked_on,
                               note=f"no answer within {hours:g} h")
        raise AirflowFailException(f"no approval answer within {hours:g} h: {arn} stays {asked_on} "
                                   "(on_timeout=keep_pending); clear this task to ask again, or decide in the "
                                   "registry")

    def _write(self, context, status: str, who: str, asked_on: str, note: str = ""):
        from airsage.model_approval import decide, facts_of

        execution = self.execution if isinstance(self.execution, dict) else {}
        arn = self.package_arn()
        written = decide(self.registry(), arn, status, self.decider(context, who),
                         when=datetime.now(UTC).isoformat(timespec="seconds"), asked_on=asked_on,
                         facts=facts_of(execution.get("execution_arn")), note=note)
        if written.outcome == "written":
            self.log.info("%s: %s in %s", arn, written.decision.line(), self.registry().where)
        elif written.outcome == "already":
            self.log.info("%s already carries this run's decision (%s): not written again", arn,
                          written.decision.line())
        else:
            self.log.warning("%s was decided elsewhere before the answer %s arrived: %s; the registry's decision "
                             "stands, the answer was not written", arn, status, written.decision.line())
        return self._finish(context, written.package, written.decision, source=written.outcome)

    # -- the end: XCom, asset event, report ------------------------------------------------------
    def _finish(self, context, package: dict, decision: Decision, *, source: str) -> dict[str, Any]:
        from airsage.assets import emit_approved_model

        arn = package["ModelPackageArn"]
        result = {"model_package_arn": arn, "model_package_version": package.get("ModelPackageVersion"),
                  "source": source, **decision.as_dict()}
        if decision.status == "Approved":
            emit_approved_model(context, self.outlets, arn, decision.status, ds=_ds(context),
                                model_package_version=package.get("ModelPackageVersion"), decided_by=decision.by)
        self._update_report(decision, arn)
        self.log.info("Model package %s (version %s): %s", arn, package.get("ModelPackageVersion"), decision.line())
        return result

    def _update_report(self, decision: Decision, arn: str) -> None:
        """Replace the report's approval section with the decision (the report was published before it)."""
        report = self.report if isinstance(self.report, dict) else {}
        uri = report.get("report_uri")
        if not uri:
            return
        from airsage.hooks.artifact_store import ArtifactStore
        from airsage.model_approval import replace_report_section, report_section

        try:
            store = ArtifactStore(self.backend, self.aws_conn_id, self.local_root)
            page = store.read_bytes(uri).decode("utf-8")
            store.put_if_changed(uri, replace_report_section(page, report_section(decision, arn)).encode(),
                                 "text/html")
        except Exception as err:  # noqa: BLE001 - the decision is in the registry; the page is a view of it
            self.log.warning("Could not update the report's approval section (%s): %s", uri, err)


def _truthy(value: Any) -> bool:
    return value is True or str(value).strip().lower() in ("true", "1", "yes")


def _ds(context) -> str:
    from airsage.naming import run_ds

    return run_ds(context)


def in_process_test_run() -> bool:
    """True under ``airflow dags test`` / ``dag.test()``: Airflow runs each task in-process there (its in-process
    supervisor), waits out a deferral inline, and nobody can answer a human-in-the-loop request."""
    try:
        from airflow.sdk.execution_time import task_runner
        from airflow.sdk.execution_time.supervisor import InProcessSupervisorComms
    except ImportError:  # another Airflow layout: ask, as in a running Airflow
        return False
    return isinstance(getattr(task_runner, "SUPERVISOR_COMMS", None), InProcessSupervisorComms)
