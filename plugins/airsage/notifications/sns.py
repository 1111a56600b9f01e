"""SNS delivery of on-call notifications: the amazon provider's SnsNotifier, not templated.

Imported only when a topic is configured: the provider's SNS hook imports boto3.
"""

from __future__ import annotations

import re

from airflow.providers.amazon.aws.notifications.sns import SnsNotifier

# SNS: a subject is at most 100 printable ASCII characters, without line breaks
MAX_SUBJECT = 100
_NOT_SUBJECT = re.compile(r"[^\x20-\x7e]+")


class OnCallSnsNotifier(SnsNotifier):
    """The provider's SnsNotifier with nothing templated.

    The message carries failure reasons and step logs' last lines: data, which Jinja must never
    render (a ``{{`` in a reason would break or, worse, be evaluated).
    """

    template_fields = ()


def subject_for(text: str) -> str:
    """``text`` as a valid SNS subject."""
    cleaned = _NOT_SUBJECT.sub(" ", text).strip() or "airsage on-call"
    return cleaned if len(cleaned) <= MAX_SUBJECT else cleaned[: MAX_SUBJECT - 3] + "..."


def on_call_sns_notifier(payload: dict, *, subject: str, topic_arn: str, aws_conn_id: str | None) -> OnCallSnsNotifier:
    """The SNS notifier for one payload: ``subject`` (made a valid SNS subject), the payload's message, and
    its kind, DAG, run and date as message attributes for filtering.

    The region is the topic's own (from its ARN), whatever the connection's default region is.
    """
    attributes = {key: str(payload[key]) for key in ("kind", "dag_id", "run_id", "ds") if payload.get(key)}
    return OnCallSnsNotifier(
        aws_conn_id=aws_conn_id,
        target_arn=topic_arn,
        message=payload["message"],
        subject=subject_for(subject),
        message_attributes=attributes,
        region_name=topic_arn.split(":")[3],
    )
