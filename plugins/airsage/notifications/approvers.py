"""Telling approvers that a model version waits for them: the subject and the Required Actions link.

Targets: ``notify`` in the Variable ``airsage_approval`` (``webhook_url``, ``sns_topic_arn``, ``aws_conn_id``,
checked like the on-call Variable), else the on-call targets (Variable ``airsage_on_call``). Delivery is the
on-call path's (``airsage.notifications.on_call.send``): never raises, one line per target.

Payload keys: ``kind`` ("approval_request"), ``dag_id``, ``run_id``, ``ds``, ``task_id``, ``try_number``,
``subject``, ``required_actions_url``, ``model_package_arn``, ``model_package_version``, ``message`` (the
subject, the link, then the request's Markdown body).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airsage.model_approval import ApprovalSettings

KIND = "approval_request"


def approval_payload(context, *, subject: str, body: str, link: str | None, arn: str, version: Any) -> dict:
    """What approvers receive."""
    from airsage.naming import run_ds

    ti = context.get("ti")
    payload = {
        "kind": KIND, "dag_id": context["dag"].dag_id, "run_id": context.get("run_id"), "ds": run_ds(context),
        "task_id": getattr(ti, "task_id", None), "try_number": getattr(ti, "try_number", None),
        "subject": subject, "required_actions_url": link, "model_package_arn": arn, "model_package_version": version,
    }
    payload["message"] = "\n".join([subject, f"Answer on the Required Actions page: {link or 'n/a'}", "", body])
    return payload


def notify_approvers(context, settings: ApprovalSettings, *, subject: str, body: str, link: str | None, arn: str,
                     version: Any, aws_conn_id: str | None, log) -> list[str]:
    """Send the request to the approvers' targets; returns what was delivered (never raises)."""
    from airsage.notifications.on_call import OnCallConfigError, parse_targets, send

    targets = None
    if settings.notify:
        try:
            targets = parse_targets(json.dumps(settings.notify))
        except OnCallConfigError as err:  # checked when the settings were read; kept for safety
            log.error("approvers not notified: %s", err)
            return []
    payload = approval_payload(context, subject=subject, body=body, link=link, arn=arn, version=version)
    delivered = send(payload, aws_conn_id=aws_conn_id, context=context, log=log, targets=targets, subject=subject)
    if delivered:
        log.info("Approvers notified (%s)", "; ".join(delivered))
    return delivered
