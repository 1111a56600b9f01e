"""One try of ``run_local`` in a process of its own, as a worker would run it (for the overlap tests).

``python airsage_run_local_try.py ROOT RUN_ID PARAMS_JSON``; the last stdout line is JSON:
``{"ok": true, "execution_arn", "status"}`` or ``{"ok": false, "error"}``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

from airsage_local_pipeline import deploy
from airsage_test_support import FakeTI

from airsage.operators.run_local import RunLocalPipelineOperator


def main() -> None:
    """Run one try and print its outcome."""
    root, run_id, params = Path(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
    op = RunLocalPipelineOperator(task_id="run_local", pipeline=deploy(root), local_root=str(root),
                                  parameters=params, claim_poll_interval=0.1)
    context = {"dag": SimpleNamespace(dag_id="abalone_pipeline_local"), "run_id": run_id, "ds": "2026-11-01",
               "ti": FakeTI("run_local"), "params": {}}
    try:
        result = op.execute(context)
    except Exception as err:  # noqa: BLE001 - reported to the test, which asserts on it
        print(json.dumps({"ok": False, "error": str(err)}), flush=True)
        return
    print(json.dumps({"ok": True, "execution_arn": result["execution_arn"], "status": result["status"]}), flush=True)


if __name__ == "__main__":
    main()
