"""Scores a rule-based churn classifier on the staged customers and writes the evaluation report.

Runs as the ScoreChurn processing job: the staged CSV is under /opt/ml/processing/input/customers,
the report goes to /opt/ml/processing/evaluation/evaluation.json. Standard library only.
"""

import csv
import glob
import json
import os

rows = []
for path in glob.glob("/opt/ml/processing/input/customers/*.csv"):
    with open(path, newline="") as fh:
        rows += list(csv.DictReader(fh))
if not rows:
    raise SystemExit("ScoreChurn: no customer rows under /opt/ml/processing/input/customers")
correct = sum((int(r["support_calls"]) >= 3 or float(r["monthly_charge"]) > 85) == (r["churned"] == "1") for r in rows)
os.makedirs("/opt/ml/processing/evaluation", exist_ok=True)
with open("/opt/ml/processing/evaluation/evaluation.json", "w") as fh:
    json.dump({"classification_metrics": {"accuracy": {"value": correct / len(rows)}, "rows": len(rows)}}, fh)
print(f"accuracy {correct}/{len(rows)}")
