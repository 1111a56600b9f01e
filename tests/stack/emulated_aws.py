"""Emulated AWS for the stack tests: moto, whose executions "run" the EvaluateAbalone step.

moto records every pipeline execution as Succeeded at once and runs no step, so the DAG's
read_metrics would find no evaluation.json. This server plays EvaluateAbalone: when an
execution starts, it writes evaluation.json and predictions.csv where docs/CONTRACTS.md puts
that step's output (``s3://{bucket}/{prefix}/executions/{execution id}/EvaluateAbalone/evaluation/``).
It stands in until ``python -m sm_pipeline serve`` runs executions for real.

``python tests/stack/emulated_aws.py [--port 0] [--bucket B] [--prefix P] [--mse X]``: the first
stdout line is the endpoint URL; SIGTERM/SIGINT stop it.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading

ACCOUNT, REGION = "123456789012", "us-east-1"


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--bucket", default="airsage-artifacts")
    parser.add_argument("--prefix", default="abalone")
    parser.add_argument("--mse", type=float, default=4.75, help="the MSE EvaluateAbalone reports")
    args = parser.parse_args(argv)

    from moto.s3.models import s3_backends
    from moto.sagemaker.models import SageMakerModelBackend
    from moto.server import ThreadedMotoServer

    s3 = s3_backends[ACCOUNT]["aws"]
    real_start = SageMakerModelBackend.start_pipeline_execution

    def start_and_evaluate(self, pipeline_name, *rest, **kwargs):
        answer = real_start(self, pipeline_name, *rest, **kwargs)
        execution_id = answer["PipelineExecutionArn"].rsplit("/", 1)[-1]
        base = f"{args.prefix}/executions/{execution_id}/EvaluateAbalone/evaluation"
        report = {"regression_metrics": {"mse": {"value": args.mse, "standard_deviation": 1.0}}}
        s3.put_object(args.bucket, f"{base}/evaluation.json", json.dumps(report).encode())
        s3.put_object(args.bucket, f"{base}/predictions.csv", b"actual,predicted\n9,8.5\n11,12\n7,7\n")
        return answer

    SageMakerModelBackend.start_pipeline_execution = start_and_evaluate
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=args.port, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    s3.create_bucket(args.bucket, REGION)
    print(f"http://{host}:{port}", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
