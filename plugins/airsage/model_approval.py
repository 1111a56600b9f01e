"""Model approval bound to the model registry: settings, the registry of either backend, the one decision write.

The approval task (``airsage.operators.approve_model``) asks a human in Airflow (human-in-the-loop) and writes
the answer to the registry through :func:`decide`, the only place a decision is written, for every backend:
the local registry (``sm_pipeline.local.registry``), the emulated SageMaker service and real SageMaker (both
through boto3's ``UpdateModelPackage``).

A decision made by airsage carries a marker at the end of its ``ApprovalDescription``::

    Approved by alice in Airflow (DAG abalone_pipeline, run manual__2026-11-20) at 2026-11-20T10:00:00+00:00
    [airsage run=abalone_pipeline/manual__2026-11-20 clear=0]

so a retried task recognises its own decision and never writes it twice, a cleared DAG run (``clear`` is
the run's ``clear_number``, which Airflow raises on every clear) asks again, and a decision without the
marker was made elsewhere (console, CLI, another tool): :func:`decision_of` says who and where.

The facts of a run (definition, parameter values, input data hashes) live in one place, its pipeline execution
(``airsage.what_changed``). An approved version records which execution made it, in its own
``CustomerMetadataProperties`` (``airsage:execution``), written with the decision; "what changed since the last
approved version" is :func:`airsage.what_changed.changes_since` from that execution to this run's
(:func:`what_changed`).

Settings: the Airflow Variable ``airsage_approval`` (JSON object, optional), read when the task runs:

=================  ==============  ==========================================================================
key                default         meaning
=================  ==============  ==========================================================================
``assigned_users``  anyone          who may answer: user ids (``"alice"``) or ``{"id", "name"}`` objects
``timeout_hours``   72              how long the request waits for an answer
``on_timeout``      ``keep_pending``  ``keep_pending``: the version stays PendingManualApproval, the task fails
                                  (no retry); ``reject``: the version is Rejected ("no answer within ...")
``poll_seconds``    60              how often the waiting task looks at the registry for decisions made
                                  elsewhere (it holds no worker slot in between)
``required``        true            false: never ask (the version stays PendingManualApproval, the task is
                                  skipped with a log line), e.g. in a development Airflow
``notify``          on-call's       ``{"webhook_url", "sns_topic_arn", "aws_conn_id"}``: where approvers are
                                  told; default: the on-call targets (Variable ``airsage_on_call``)
=================  ==============  ==========================================================================
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

VARIABLE = "airsage_approval"
PENDING, APPROVED, REJECTED = "PendingManualApproval", "Approved", "Rejected"
DECIDED = (APPROVED, REJECTED)
ON_TIMEOUT = ("keep_pending", "reject")
KNOWN_KEYS = ("assigned_users", "timeout_hours", "on_timeout", "poll_seconds", "required", "notify")
MAX_DESCRIPTION = 1024  # botocore: ApprovalDescription is at most 1024 characters
_MARKER = re.compile(r"\[airsage run=(?P<run>\S+) clear=(?P<clear>\d+)\]\s*$")
FACT_PREFIX = "airsage:"
# the report's approval section, replaced in place when the decision is known
SECTION_START, SECTION_END = "<!-- airsage:approval -->", "<!-- /airsage:approval -->"


class ApprovalConfigError(ValueError):
    """The Variable airsage_approval is not usable; the message is one line naming the key."""


@dataclass(frozen=True)
class ApprovalSettings:
    """How the approval task asks (see the module doc for every key and its default)."""

    assigned_users: tuple[dict[str, str], ...] = ()
    timeout: timedelta = timedelta(hours=72)
    on_timeout: str = "keep_pending"
    poll_seconds: float = 60.0
    required: bool = True
    notify: dict[str, str] | None = None


def parse_settings(raw: str | None) -> ApprovalSettings:
    """The settings in the Variable's value (defaults when unset or empty); ApprovalConfigError if invalid."""
    from airsage.variables import json_object

    value = json_object(raw, VARIABLE, KNOWN_KEYS, ApprovalConfigError)
    if value is None:
        return ApprovalSettings()
    if not isinstance(value.get("assigned_users") or [], list):
        raise ApprovalConfigError(f"Variable {VARIABLE}: assigned_users must be a list of user ids")
    users = []
    for user in value.get("assigned_users") or []:
        if isinstance(user, str) and user.strip():
            users.append({"id": user.strip(), "name": user.strip()})
        elif isinstance(user, dict) and isinstance(user.get("id"), str) and user["id"].strip():
            users.append({"id": user["id"].strip(), "name": str(user.get("name") or user["id"]).strip()})
        else:
            raise ApprovalConfigError(f"Variable {VARIABLE}: assigned_users entry {user!r} is neither a user id nor "
                                      '{"id": ..., "name": ...}')
    hours = _number(value, "timeout_hours", 72.0, high=24 * 365)
    poll = _number(value, "poll_seconds", 60.0, high=3600)
    on_timeout = value.get("on_timeout", "keep_pending")
    if on_timeout not in ON_TIMEOUT:
        raise ApprovalConfigError(f"Variable {VARIABLE}: on_timeout {on_timeout!r} must be one of "
                                  f"{', '.join(ON_TIMEOUT)}")
    required = value.get("required", True)
    if not isinstance(required, bool):
        raise ApprovalConfigError(f"Variable {VARIABLE}: required must be true or false, got {required!r}")
    notify = value.get("notify")
    if notify is not None:
        from airsage.notifications.on_call import OnCallConfigError, parse_targets

        try:
            parse_targets(json.dumps(notify))
        except OnCallConfigError as err:
            raise ApprovalConfigError(str(err).replace("Variable airsage_on_call", f"Variable {VARIABLE}: notify")) \
                from None
    return ApprovalSettings(assigned_users=tuple(users), timeout=timedelta(hours=hours), on_timeout=on_timeout,
                            poll_seconds=poll, required=required, notify=notify)


def _number(value: dict, key: str, default: float, *, high: float) -> float:
    number = value.get(key, default)
    if isinstance(number, bool) or not isinstance(number, int | float) or not 0 < number <= high:
        raise ApprovalConfigError(f"Variable {VARIABLE}: {key} must be a number in (0, {high:g}], got {number!r}")
    return float(number)


def read_settings() -> ApprovalSettings:
    """The settings from the Variable, read now (at run time, never at parse time)."""
    from airflow.sdk import Variable

    return parse_settings(Variable.get(VARIABLE, default=None))


# -- the registry of either backend -------------------------------------------------------------
class LocalRegistryClient:
    """The local backend's registry (``sm_pipeline.local.registry``) behind the calls :func:`decide` makes."""

    where = "the local model registry"

    def __init__(self, root: str):
        from sm_pipeline.local.registry import LocalModelRegistry

        self.registry = LocalModelRegistry(root)

    def describe(self, arn: str) -> dict:
        """DescribeModelPackage."""
        return self.registry.describe_model_package(arn)

    def update(self, arn: str, changes: dict, who: str) -> None:
        """UpdateModelPackage; the local registry has no caller, so LastModifiedBy names ``who``."""
        self.registry.update_model_package(arn, {**changes, "LastModifiedBy": {"UserProfileName": who}})

    def approved(self, group: str) -> list[dict]:
        """The group's Approved versions, newest first."""
        packages = [p for p in self.registry.list_model_packages(group) if p.get("ModelApprovalStatus") == APPROVED]
        return sorted(packages, key=lambda p: p["ModelPackageVersion"], reverse=True)


class SageMakerRegistryClient:
    """SageMaker's model registry (or the emulated service's) through a boto3 SageMaker client."""

    where = "the SageMaker Model Registry"

    def __init__(self, client):
        self.client = client

    def describe(self, arn: str) -> dict:
        """DescribeModelPackage."""
        return self.client.describe_model_package(ModelPackageName=arn)

    def update(self, arn: str, changes: dict, who: str) -> None:
        """UpdateModelPackage (SageMaker records the caller as LastModifiedBy; ``who`` is in the description)."""
        self.client.update_model_package(ModelPackageArn=arn, **changes)

    def approved(self, group: str) -> list[dict]:
        """The group's Approved versions, newest first (the first page is enough for "the last one")."""
        listed = self.client.list_model_packages(ModelPackageGroupName=group, ModelApprovalStatus=APPROVED,
                                                 SortBy="CreationTime", SortOrder="Descending", MaxResults=10)
        return listed.get("ModelPackageSummaryList") or []


def registry_client(backend: str, *, hook=None, local_root: str | None = None):
    """The registry of ``backend``: the local registry under ``local_root``, else the hook's SageMaker client."""
    if backend == "local":
        if not local_root:
            raise ValueError("the local backend's registry needs local_root (Variable airsage_local_root)")
        return LocalRegistryClient(local_root)
    return SageMakerRegistryClient(hook.conn)


# -- who decided --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Decider:
    """Who answers, from which DAG run (``clear``: the run's clear_number)."""

    who: str
    dag_id: str
    run_id: str
    clear: int

    @property
    def run(self) -> str:
        """``<dag id>/<run id>``."""
        return f"{self.dag_id}/{self.run_id}"


def approval_description(status: str, decider: Decider, when: str, note: str = "") -> str:
    """The ``ApprovalDescription`` airsage writes: who, which DAG run, when, then the marker."""
    marker = f"[airsage run={decider.run} clear={decider.clear}]"
    head = (f"{status} by {decider.who} in Airflow (DAG {decider.dag_id}, run {decider.run_id}) at {when}"
            + (f"; {note}" if note else ""))
    return head[: MAX_DESCRIPTION - len(marker) - 1] + " " + marker


def parse_marker(description: str | None) -> dict | None:
    """``{"run": "<dag>/<run>", "clear": n}`` of an airsage decision, None for any other description."""
    match = _MARKER.search(description or "")
    return {"run": match["run"], "clear": int(match["clear"])} if match else None


@dataclass(frozen=True)
class Decision:
    """A version's approval state as the registry tells it, and who set it where."""

    status: str
    by: str
    where: str
    at: str | None
    description: str = ""
    marker: dict | None = field(default=None)

    def line(self) -> str:
        """``Approved by alice (in Airflow, DAG run x/y) at t``."""
        return f"{self.status} by {self.by} ({self.where})" + (f" at {self.at}" if self.at else "")

    def as_dict(self) -> dict[str, Any]:
        """The XCom/JSON form."""
        return {"approval_status": self.status, "decided_by": self.by, "decided_where": self.where,
                "decided_at": self.at, "approval_description": self.description}


def decision_of(package: dict) -> Decision:
    """The version's approval status and who set it: airsage's marker, else LastModifiedBy, else unknown."""
    description = package.get("ApprovalDescription") or ""
    marker = parse_marker(description)
    at = _iso(package.get("LastModifiedTime"))
    status = package.get("ModelApprovalStatus") or PENDING
    if marker:
        by = description.split(" by ", 1)[1].split(" in Airflow", 1)[0] if " by " in description else "?"
        return Decision(status, by, f"in Airflow, DAG run {marker['run']}", at, description, marker)
    if status == PENDING:
        return Decision(status, "the pipeline's RegisterModel step", "at registration", _iso(package.get("CreationTime")),
                        description)
    return Decision(status, _principal(package.get("LastModifiedBy")) or "unknown",
                    "outside Airflow (console, CLI or another tool)", at, description)


def _principal(user: Any) -> str:
    if not isinstance(user, dict):
        return ""
    identity = user.get("IamIdentity") or {}
    return (user.get("UserProfileName") or identity.get("SourceIdentity") or identity.get("Arn")
            or user.get("UserProfileArn") or "")


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


# -- the one decision write ---------------------------------------------------------------------
@dataclass(frozen=True)
class Written:
    """What :func:`decide` did: ``"written"``, ``"already"`` (this run's own decision, a retry) or
    ``"decided_elsewhere"`` (the version left the status the request was asked on), and the version's state."""

    outcome: str
    decision: Decision
    package: dict


def decide(registry, arn: str, status: str, decider: Decider, *, when: str, asked_on: str = PENDING,
           facts: dict[str, str] | None = None, note: str = "") -> Written:
    """Write ``status`` (Approved or Rejected) for ``arn`` as ``decider``'s answer: the only decision write.

    Idempotent: when the version already carries this run's decision at this clear (a retried task), or
    its status is no longer ``asked_on`` because someone decided elsewhere meanwhile, nothing is written.
    With Approved, ``facts`` (:func:`facts_of`) go to the version's CustomerMetadataProperties.
    """
    if status not in DECIDED:
        raise ValueError(f"a decision is {' or '.join(DECIDED)}, not {status!r}")
    package = registry.describe(arn)
    current = decision_of(package)
    if current.marker == {"run": decider.run, "clear": decider.clear}:
        return Written("already", current, package)
    if package.get("ModelApprovalStatus") != asked_on:
        return Written("decided_elsewhere", current, package)
    changes: dict[str, Any] = {"ModelApprovalStatus": status,
                               "ApprovalDescription": approval_description(status, decider, when, note)}
    if status == APPROVED and facts:
        changes["CustomerMetadataProperties"] = facts
    registry.update(arn, changes, decider.who)
    package = registry.describe(arn)
    return Written("written", decision_of(package), package)


# -- what changed since the last approved version -------------------------------------------------
EXECUTION_FACT = f"{FACT_PREFIX}execution"


def facts_of(execution_arn: str | None) -> dict[str, str]:
    """What an approved version records (CustomerMetadataProperties): the execution that made it."""
    return {EXECUTION_FACT: execution_arn} if execution_arn else {}


def last_approved(registry, group: str, exclude_arn: str) -> dict | None:
    """The newest Approved version of ``group`` other than ``exclude_arn`` (described), or None."""
    for summary in registry.approved(group):
        if summary.get("ModelPackageArn") != exclude_arn:
            return registry.describe(summary["ModelPackageArn"])
    return None


def what_changed(previous: dict | None, changes_since) -> list[str]:
    """Lines saying what changed since ``previous`` (the last approved version, described, or None).

    ``changes_since(earlier_execution_arn)`` is :func:`airsage.what_changed.changes_since` to this run's
    execution (definition diff, parameter values, input data hashes); its failure is a line, never an error.
    """
    if previous is None:
        return ["no earlier approved version: this would be the first"]
    label = f"version {previous.get('ModelPackageVersion')}"
    earlier = (previous.get("CustomerMetadataProperties") or {}).get(EXECUTION_FACT)
    if not earlier:
        return [f"{label} was approved outside airsage: the execution that made it is not recorded"]
    try:
        found = changes_since(earlier)
    except Exception as err:  # noqa: BLE001 - the request must go out even when the history cannot be read
        return [f"since {label} ({earlier}): not known: {err}"]
    return [f"since {label} ({earlier}):", *found["summary"]]


# -- the request and the report -----------------------------------------------------------------
def request_body(*, metric: str, value: Any, threshold: Any, comparison: str, arn: str, version: Any,
                 report_link: str | None, execution_link: str | None, execution_arn: str | None, cost_line: str,
                 changes: list[str], ds: str, run_id: str, current: Decision | None = None) -> str:
    """The Markdown body of the approval request."""
    from airsage.quality_gate import outcome_line

    rows = [
        ("Quality gate", f"`{outcome_line(metric, value, threshold, comparison)}` (passed)"),
        ("Model package", f"`{arn}`"),
        ("Version", str(version)),
        ("Report", _md_link(report_link)),
        ("Execution", _md_link(execution_link, execution_arn)),
        ("Cost", cost_line),
        ("Run date", f"{ds} (DAG run `{run_id}`)"),
    ]
    table = "\n".join(f"| {k} | {v} |" for k, v in rows)
    asked_again = (f"\n\n**Asked again after the run was cleared**: the version is now {current.line()}."
                   if current is not None and current.status in DECIDED else "")
    changed = "\n".join(f"- {line}" for line in changes)
    return (f"| | |\n|---|---|\n{table}\n\n**What changed since the last approved version**\n\n{changed}"
            f"{asked_again}\n\nApprove sets the version's ModelApprovalStatus to Approved, Reject to Rejected.")


def _md_link(url: str | None, text: str | None = None) -> str:
    if not url:
        return f"`{text}`" if text else "n/a"
    if url.startswith(("http://", "https://")):
        return f"[{text or url}]({url})"
    return f"`{url}`"


def report_section(decision: Decision | None, arn: str | None) -> str:
    """The report's approval section (between markers, so the approval task can replace it)."""
    esc = html.escape
    if not arn:
        body = "<p>No model package was registered.</p>"
    elif decision is None:
        body = (f"<p><b>{PENDING}</b>: the DAG run's <code>approve_model</code> task asks for approval "
                "(the registry has the current state).</p>")
    else:
        body = (f"<p><b>{esc(decision.status)}</b> by {esc(decision.by)} ({esc(decision.where)})"
                + (f" at {esc(decision.at)}" if decision.at else "") + "</p>"
                + (f"<p>{esc(decision.description)}</p>" if decision.description else ""))
    return f"{SECTION_START}<h2>Approval</h2>{body}{SECTION_END}"


def replace_report_section(page: str, section: str) -> str:
    """``page`` with its approval section replaced by ``section`` (appended before ``</body>`` if it has none)."""
    start, end = page.find(SECTION_START), page.find(SECTION_END)
    if start >= 0 and end > start:
        return page[:start] + section + page[end + len(SECTION_END):]
    head, sep, tail = page.rpartition("</body>")
    return head + section + sep + tail if sep else page + section
