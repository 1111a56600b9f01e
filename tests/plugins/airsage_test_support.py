"""Test helpers shared by tests/plugins and tests/dags (and the processes they start).

(Sharing the parsed botocore models across hooks is the kit's: ``airsage.testing.share_botocore_models``.)
"""

from __future__ import annotations


class FakeTI:
    """Just enough of a TaskInstance for operators run outside the task runner."""

    def __init__(self, task_id: str = "task", try_number: int = 1):
        self.task_id = task_id
        self.try_number = try_number
        self.xcoms: dict[str, object] = {}

    def get_first_reschedule_date(self, context):
        return None

    def xcom_push(self, key, value, **_):
        self.xcoms[key] = value

    def xcom_pull(self, task_ids=None, key="return_value", **_):
        return self.xcoms.get(key)


class WebhookInbox:
    """A loopback HTTP server that records the JSON POSTed to it: ``with WebhookInbox() as inbox: inbox.url``.

    ``status`` is the HTTP status it answers, ``delay`` how long it waits before answering,
    ``location`` makes it answer a redirect.
    """

    def __init__(self, status: int = 200, delay: float = 0.0, location: str | None = None):
        self.status, self.delay, self.location = status, delay, location
        self.received: list[dict] = []
        self.headers: list[dict] = []

    def __enter__(self) -> WebhookInbox:
        import json
        import threading
        import time
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        inbox = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                inbox.headers.append(dict(self.headers))
                inbox.received.append(json.loads(body))
                time.sleep(inbox.delay)
                self.send_response(inbox.status)
                if inbox.location:
                    self.send_header("Location", inbox.location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hooks/T0/B0/secret-token"
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()


def sns_inbox(endpoint: str, topic: str | None = None) -> tuple[str, callable]:
    """An SNS topic with an SQS queue subscribed (on moto or the emulated service); returns (topic ARN, receive()).

    The topic is this call's own unless named (the emulated service keeps its state across tests).

    ``receive()`` returns the SNS envelopes (Subject, Message, MessageAttributes) in the queue.
    """
    import json
    import uuid

    import boto3

    topic = topic or f"airsage-on-call-{uuid.uuid4().hex[:10]}"
    sns = boto3.client("sns", endpoint_url=endpoint, region_name="us-east-1")
    sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1")
    topic_arn = sns.create_topic(Name=topic)["TopicArn"]
    queue_url = sqs.create_queue(QueueName=f"{topic}-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)

    def receive() -> list[dict]:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        return [json.loads(m["Body"]) for m in messages]

    return topic_arn, receive


def asset_events(dag_run) -> dict[str, dict]:
    """``{asset uri: extra}`` of the asset events a DAG run emitted (from the metadata DB). By DAG and run id:
    both DAGs' runs of one date can have the same run id."""
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        return {event.asset.uri: dict(event.extra)
                for event in session.scalars(select(AssetEvent).where(AssetEvent.source_dag_id == dag_run.dag_id,
                                                                     AssetEvent.source_run_id == dag_run.run_id)).all()}
