"""Cost Explorer's figure for the run's cost tag, against a loopback stand-in (never AWS): the request AWS gets,
the figure, and an identity without ce:GetCostAndUsage getting one line instead of a failed task."""

from __future__ import annotations

import json
import threading
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


class StandIn:
    """A loopback HTTP server answering Cost Explorer's JSON protocol with a canned answer; keeps the requests."""

    def __init__(self, status: int, answer: dict):
        self.requests: list[tuple[str, dict]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append((self.headers.get("X-Amz-Target", ""), body))
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def cost_explorer(monkeypatch):
    """``cost_explorer(status, answer)`` -> the stand-in, with the connection aws_ce pointing Cost Explorer at it."""
    started = []

    def start(status: int, answer: dict) -> StandIn:
        stand_in = StandIn(status, answer)
        started.append(stand_in)
        monkeypatch.setenv("AIRFLOW_CONN_AWS_CE", json.dumps({
            "conn_type": "aws", "login": "AKIAFAKE", "password": "fake",
            "extra": {"region_name": "eu-west-1", "service_config": {"ce": {"endpoint_url": stand_in.url}}}}))
        return stand_in

    yield start
    for stand_in in started:
        stand_in.close()


def test_the_request_filters_by_the_cost_tag_over_the_executions_days_and_sums_them(cost_explorer):
    from airsage.hooks.cost_explorer import CostExplorerHook

    stand_in = cost_explorer(200, {"ResultsByTime": [
        {"TimePeriod": {"Start": "2026-11-01", "End": "2026-11-02"}, "Total": {"UnblendedCost": {"Amount": "0.41", "Unit": "USD"}}, "Estimated": True},
        {"TimePeriod": {"Start": "2026-11-02", "End": "2026-11-03"}, "Total": {"UnblendedCost": {"Amount": "0.2", "Unit": "USD"}}, "Estimated": False}]})
    hook = CostExplorerHook(aws_conn_id="aws_ce")
    assert not hook.is_real_aws()  # a configured endpoint is an emulator: "auto" would not ask
    figure = hook.tagged_cost("cost-center", "ml-abalone", date(2026, 11, 1), date(2026, 11, 2))
    ((target, body),) = stand_in.requests
    assert target == "AWSInsightsIndexService.GetCostAndUsage"
    assert body == {"TimePeriod": {"Start": "2026-11-01", "End": "2026-11-03"}, "Granularity": "DAILY",
                    "Metrics": ["UnblendedCost"],
                    "Filter": {"Tags": {"Key": "cost-center", "Values": ["ml-abalone"], "MatchOptions": ["EQUALS"]}}}
    assert figure["usd"] == pytest.approx(0.61) and figure["estimated"]
    assert figure["line"].startswith("Cost Explorer: $0.61 (estimated, not final) for tag cost-center=ml-abalone")


def test_an_identity_without_the_permission_gets_one_line_not_a_failure(cost_explorer):
    from airsage.hooks.cost_explorer import CostExplorerHook

    cost_explorer(400, {"__type": "AccessDeniedException",
                        "Message": "User is not authorized to perform: ce:GetCostAndUsage"})
    figure = CostExplorerHook(aws_conn_id="aws_ce").tagged_cost("cost-center", "x", date(2026, 11, 1), date(2026, 11, 1))
    assert figure["usd"] is None
    assert figure["line"] == ("Cost Explorer: this identity may not call ce:GetCostAndUsage (AccessDeniedException); "
                              "allow it to see what AWS billed for tag cost-center=x, 2026-11-01 to 2026-11-01")


def test_no_figure_yet_is_said_as_such(cost_explorer):
    from airsage.hooks.cost_explorer import CostExplorerHook

    cost_explorer(200, {"ResultsByTime": [{"Total": {"UnblendedCost": {"Amount": "0", "Unit": "USD"}}, "Estimated": True}]})
    figure = CostExplorerHook(aws_conn_id="aws_ce").tagged_cost("cost-center", "x", date(2026, 11, 1), date(2026, 11, 1))
    assert figure["usd"] is None and "no figure yet" in figure["line"]


def test_the_report_adds_the_line_and_never_fails_for_it(cost_explorer, monkeypatch):
    from airsage.operators.publish_report import PublishReportOperator, lineage_section

    cost_explorer(400, {"__type": "AccessDeniedException", "Message": "no"})
    report = PublishReportOperator(task_id="publish_report", metrics={}, threshold=6, report_prefix="s3://b/p/reports/ds=x",
                                   backend="sagemaker", aws_conn_id="aws_ce", cost_explorer=True)
    # the cost tag's value comes from the execution's definition (a SageMaker call, not this test's subject)
    monkeypatch.setattr(PublishReportOperator, "_cost_tag", lambda self, arn: "ml-abalone")
    execution = {"execution_arn": "arn:aws:sagemaker:eu-west-1:123456789012:pipeline/p/execution/e1",
                 "steps": [{"name": "Train", "start": "2026-11-01T23:50:00+00:00", "end": "2026-11-02T00:10:00+00:00"}]}
    line = report.billed_line(execution)
    assert line.startswith("Cost Explorer: this identity may not call ce:GetCostAndUsage")
    assert "2026-11-01 to 2026-11-02" in line
    assert "<tr><td>billed</td><td>Cost Explorer: this identity" in lineage_section(execution, None, billed=line)
    # "auto" asks only real AWS: the stand-in is an endpoint of its own, so nothing is asked
    assert PublishReportOperator(task_id="r", metrics={}, threshold=6, report_prefix="s3://b/p/reports/ds=x",
                                 backend="sagemaker", aws_conn_id="aws_ce").billed_line(execution) is None
