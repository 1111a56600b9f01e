"""The local model registry: model package groups and versions as JSON files under the object root.

``<root>/.airsage/model-registry/<group>/group.json`` and ``<group>/versions/<n>.json``, shaped like
DescribeModelPackageGroup / DescribeModelPackage. Versions count up from 1 per group; concurrent
registrations never get the same version (exclusive file creation); updates of one group are serialized
(a lock per group), so two deciders never interleave a read and a write.

Every registration and every change of a version's ``ModelApprovalStatus`` appends the EventBridge event
SageMaker sends for it ("SageMaker Model Package State Change", source ``aws.sagemaker``, ``detail`` = the
package's description) to ``<root>/.airsage/model-registry/events.jsonl``, one JSON object a line
(:func:`read_events`).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from sm_pipeline.arns import (
    default_region,
    model_package_arn,
    model_package_group_arn,
    parse_model_package_arn,
)
from sm_pipeline.definition_schema import APPROVAL_STATUSES
from sm_pipeline.errors import InvalidInput
from sm_pipeline.local.jobs import JobContext, StepFailed, StepOutcome
from sm_pipeline.locks import FileLock
from sm_pipeline.storage import INTERNAL_DIR
from sm_pipeline.storage_io import write_text_atomic
from sm_pipeline.timestamps import utc_now

_GROUP_RE = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
EVENTS_FILE = "events.jsonl"
STATE_CHANGE = "SageMaker Model Package State Change"


class LocalModelRegistry:
    """Model package groups and versions under ``<root>/.airsage/model-registry``."""

    def __init__(self, root: Path | str, region: str | None = None):
        self.dir = Path(root) / INTERNAL_DIR / "model-registry"
        self.region = region or default_region()

    def register(self, request: dict, created_by: str = "") -> dict:
        """Create the next version in ``request['ModelPackageGroupName']`` (the group is created if new)."""
        group = request.get("ModelPackageGroupName")
        if not isinstance(group, str) or not _GROUP_RE.match(group):
            raise InvalidInput(f"invalid ModelPackageGroupName {group!r}")
        status = _checked_status(request.get("ModelApprovalStatus", "PendingManualApproval"))
        now = utc_now()
        group_dir = self.dir / group
        versions_dir = group_dir / "versions"
        versions_dir.mkdir(parents=True, exist_ok=True)
        group_file = group_dir / "group.json"
        if not group_file.exists():
            self._create_group(group_file, group, now)
        version = self._claim_version(versions_dir)
        arn = self.package_arn(group, version)
        description = {
            **{k: v for k, v in request.items() if k not in ("ModelApprovalStatus",)},
            "ModelPackageGroupName": group,
            "ModelPackageVersion": version,
            "ModelPackageName": group,
            "ModelPackageArn": arn,
            "ModelApprovalStatus": status,
            "ModelPackageStatus": "Completed",
            "ModelPackageStatusDetails": _STATUS_DETAILS,
            "CreationTime": now,
            "LastModifiedTime": now,
            "CreatedBy": created_by,
        }
        write_text_atomic(versions_dir / f"{version}.json", json.dumps(description, indent=2, default=str))
        self._append_event(description)
        return description

    def _create_group(self, group_file: Path, group: str, now: str) -> None:
        try:
            fd = os.open(group_file, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return
        with os.fdopen(fd, "w") as fh:
            json.dump({"ModelPackageGroupName": group,
                       "ModelPackageGroupArn": model_package_group_arn(group, self.region),
                       "ModelPackageGroupStatus": "Completed", "CreationTime": now}, fh, indent=2)

    @staticmethod
    def _claim_version(versions_dir: Path) -> int:
        version = max((int(p.stem) for p in versions_dir.glob("*.json") if p.stem.isdigit()), default=0) + 1
        while True:
            try:
                os.close(os.open(versions_dir / f"{version}.json", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
                return version
            except FileExistsError:
                version += 1

    def package_arn(self, group: str, version: int) -> str:
        """``arn:aws:sagemaker:<region>:000000000000:model-package/<group>/<version>``."""
        return model_package_arn(group, version, self.region)

    def list_groups(self) -> list[str]:
        """Names of all model package groups."""
        return sorted(p.parent.name for p in self.dir.glob("*/group.json")) if self.dir.is_dir() else []

    def list_model_packages(self, group: str) -> list[dict]:
        """Every version of ``group``, oldest first (empty if the group does not exist)."""
        versions_dir = self.dir / group / "versions"
        if not versions_dir.is_dir():
            return []
        packages = []
        for path in sorted(versions_dir.glob("*.json"), key=lambda p: int(p.stem) if p.stem.isdigit() else 0):
            text = path.read_text()
            if text.strip():  # a version being written right now is still empty
                packages.append(json.loads(text))
        return packages

    def describe_model_package(self, arn: str) -> dict:
        """The description of one version, by ARN."""
        group, version = self._parse_arn(arn)
        for package in self.list_model_packages(group):
            if package["ModelPackageVersion"] == version:
                # Versions registered before the record carried it have no validation or image scan either.
                return {"ModelPackageStatusDetails": _STATUS_DETAILS, **package}
        raise InvalidInput(f"no model package {arn}")

    def update_approval_status(self, arn: str, status: str) -> dict:
        """Set a version's ModelApprovalStatus (Approved, Rejected or PendingManualApproval)."""
        return self.update_model_package(arn, {"ModelApprovalStatus": status})

    def update_model_package(self, arn: str, changes: dict) -> dict:
        """Apply UpdateModelPackage's changes to one version; returns the new description.

        ``ModelApprovalStatus`` is checked; ``CustomerMetadataProperties`` are merged and
        ``CustomerMetadataPropertiesToRemove`` removed; ``AdditionalInferenceSpecificationsToAdd`` are
        appended to ``AdditionalInferenceSpecifications``; any other field replaces the stored one.
        """
        group, _ = self._parse_arn(arn)
        with FileLock(self.dir / group / ".update.lock"):
            return self._update(arn, dict(changes))

    def _update(self, arn: str, changes: dict) -> dict:
        package = self.describe_model_package(arn)
        before = package.get("ModelApprovalStatus")
        if "ModelApprovalStatus" in changes:
            package["ModelApprovalStatus"] = _checked_status(changes.pop("ModelApprovalStatus"))
        metadata = dict(package.get("CustomerMetadataProperties") or {})
        metadata.update(changes.pop("CustomerMetadataProperties", None) or {})
        for key in changes.pop("CustomerMetadataPropertiesToRemove", None) or []:
            metadata.pop(key, None)
        if metadata or "CustomerMetadataProperties" in package:
            package["CustomerMetadataProperties"] = metadata
        added = changes.pop("AdditionalInferenceSpecificationsToAdd", None)
        if added:
            package["AdditionalInferenceSpecifications"] = list(package.get("AdditionalInferenceSpecifications") or []) + added
        package.update(changes)
        package["LastModifiedTime"] = utc_now()
        write_text_atomic(self.dir / package["ModelPackageGroupName"] / "versions" / f"{package['ModelPackageVersion']}.json",
                          json.dumps(package, indent=2, default=str))
        if package.get("ModelApprovalStatus") != before:
            self._append_event(package)
        return package

    @property
    def events_file(self) -> Path:
        """The JSON-lines event log (``<root>/.airsage/model-registry/events.jsonl``)."""
        return self.dir / EVENTS_FILE

    def _append_event(self, package: dict) -> None:
        # one write() of one line on an O_APPEND descriptor: concurrent writers never interleave a line
        line = json.dumps(state_change_event(package, self.region), default=str) + "\n"
        self.dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.events_file, os.O_CREAT | os.O_APPEND | os.O_WRONLY, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)

    def read_events(self) -> list[dict]:
        """Every event written so far, oldest first."""
        return read_events(self.events_file)

    def describe_group(self, group: str) -> dict | None:
        """DescribeModelPackageGroup's fields of ``group`` (matched case-insensitively), or None."""
        for name in self.list_groups():
            if name.lower() == group.lower():
                try:
                    return json.loads((self.dir / name / "group.json").read_text())
                except (OSError, json.JSONDecodeError):
                    return None
        return None

    def _parse_arn(self, arn: str) -> tuple[str, int]:
        try:
            wanted, version = parse_model_package_arn(arn)
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None
        for group in self.list_groups():
            if group.lower() == wanted:
                return group, version
        raise InvalidInput(f"no model package group for {arn}")


def state_change_event(package: dict, region: str) -> dict:
    """The EventBridge event SageMaker sends when a model package is created or its approval status changes."""
    import uuid

    from sm_pipeline.arns import ACCOUNT_ID

    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": STATE_CHANGE, "source": "aws.sagemaker",
            "account": ACCOUNT_ID, "time": utc_now(), "region": region,
            "resources": [package["ModelPackageArn"]], "detail": package}


def read_events(path: Path | str) -> list[dict]:
    """The events of a JSON-lines event log (none when it does not exist)."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.splitlines() if line.strip()]


# DescribeModelPackage's ModelPackageStatusDetails (required in botocore's model): a package registered by a
# pipeline step has run no validation and no image scan.
_STATUS_DETAILS = {"ValidationStatuses": [], "ImageScanStatuses": []}


def _checked_status(status: str) -> str:
    if status not in APPROVAL_STATUSES:
        raise InvalidInput(f"ModelApprovalStatus {status!r} must be one of {', '.join(APPROVAL_STATUSES)}")
    return status


def run_register_model(arguments: dict, ctx: JobContext) -> StepOutcome:
    """A RegisterModel step: the next version in the local registry."""
    try:
        package = LocalModelRegistry(ctx.store.root, ctx.execution.region).register(arguments, created_by=ctx.execution.execution_arn)
    except InvalidInput as exc:
        raise StepFailed(str(exc)) from exc
    return StepOutcome(package, ctx.step_metadata(Arn=package["ModelPackageArn"]))
