"""What AWS Cost Explorer says a run cost: ``GetCostAndUsage`` filtered by the pipeline's cost tag.

The pipeline puts its cost tag on every step (AWS's tagging best practice); once the tag is activated as a
cost allocation tag, Cost Explorer reports the tagged spend, usually within a day. The figure covers every
resource with that tag on the execution's days, not this execution alone. Asked only on real AWS (an
emulated endpoint has no bill), through the amazon provider's AWS connection; an identity without
``ce:GetCostAndUsage`` gets one line saying so, never a failed task. Each request costs USD 0.01 (AWS's price
for the Cost Explorer API).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

METRIC = "UnblendedCost"


class CostExplorerHook(AwsBaseHook):
    """Cost Explorer (``ce``) on an AWS connection; its API lives in us-east-1 whatever the connection's region."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("region_name", "us-east-1")
        super().__init__(*args, client_type="ce", **kwargs)

    def is_real_aws(self) -> bool:
        """True unless the connection or the environment points Cost Explorer at another endpoint (an emulator)."""
        import os

        configured = self.conn_config.get_service_endpoint_url("ce")
        return not (configured or os.environ.get("AWS_ENDPOINT_URL_COST_EXPLORER") or os.environ.get("AWS_ENDPOINT_URL"))

    def tagged_cost(self, tag_key: str, tag_value: str, first_day: date, last_day: date) -> dict[str, Any]:
        """``{"usd", "estimated", "line"}`` for the tag over ``first_day``..``last_day``; ``usd`` None with a one-line
        reason when there is no figure (no permission, no data yet)."""
        from botocore.exceptions import BotoCoreError, ClientError

        period = {"Start": first_day.isoformat(), "End": (last_day + timedelta(days=1)).isoformat()}
        where = f"tag {tag_key}={tag_value}, {period['Start']} to {last_day.isoformat()}"
        try:
            answer = self.conn.get_cost_and_usage(TimePeriod=period, Granularity="DAILY", Metrics=[METRIC],
                                                  Filter={"Tags": {"Key": tag_key, "Values": [tag_value],
                                                                   "MatchOptions": ["EQUALS"]}})
        except ClientError as err:
            code = err.response.get("Error", {}).get("Code", "")
            if code in ("AccessDeniedException", "AccessDenied", "UnauthorizedOperation"):
                return {"usd": None, "estimated": None,
                        "line": f"Cost Explorer: this identity may not call ce:GetCostAndUsage ({code}); "
                                f"allow it to see what AWS billed for {where}"}
            return {"usd": None, "estimated": None, "line": f"Cost Explorer: no figure for {where}: {code or err}"}
        except BotoCoreError as err:
            return {"usd": None, "estimated": None, "line": f"Cost Explorer: not reachable: {err}"}
        days = answer.get("ResultsByTime") or []
        amounts = [float(day.get("Total", {}).get(METRIC, {}).get("Amount") or 0) for day in days]
        if not days or not any(amounts):
            return {"usd": None, "estimated": None,
                    "line": f"Cost Explorer: no figure yet for {where} (tagged costs appear within about a day, "
                            "once the tag is an activated cost allocation tag)"}
        total = round(sum(amounts), 6)
        estimated = any(day.get("Estimated") for day in days)
        return {"usd": total, "estimated": estimated,
                "line": f"Cost Explorer: ${total:,.2f} {'(estimated, not final) ' if estimated else ''}for {where} "
                        "(every resource with this tag on those days, not only this execution)"}
