"""The EvaluateAbalone script of airsage_fake_source's pipeline (standard library only: quick to start).

Run by the emulated service as a processing job: ``evaluate.py OUTCOME MSE SLEEP REPORT``.
OUTCOME ``fail`` exits non-zero with a reason (the step fails); SLEEP seconds keep the execution
Executing; REPORT, when not empty, is written verbatim as evaluation.json (``missing``: none at all),
else a report with the MSE given.
"""

import json
import os
import sys
import time

outcome, mse, sleep, report = sys.argv[1:5]
time.sleep(float(sleep))
if outcome == "fail":
    sys.exit("ClientError: AlgorithmError: train data has no rows")
out = "/opt/ml/processing/evaluation"
os.makedirs(out, exist_ok=True)
with open(f"{out}/predictions.csv", "w") as fh:
    fh.write("actual,predicted\n10,9.5\n7,7.4\n12,11\n")
if report != "missing":
    body = report or json.dumps({"regression_metrics": {"mse": {"value": float(mse), "standard_deviation": 0.5},
                                                        "rmse": {"value": 2.06, "standard_deviation": 0.1}}})
    with open(f"{out}/evaluation.json", "w") as fh:
        fh.write(body)
