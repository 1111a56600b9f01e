"""Stand-in for AWS's abalone evaluation.py: hard-coded paths, extracts to cwd and unpickles the model."""

import json
import pathlib
import pickle
import tarfile

import numpy as np
import pandas as pd
import xgboost

if __name__ == "__main__":
    model_path = "/opt/ml/processing/model/model.tar.gz"
    with tarfile.open(model_path) as tar:
        tar.extractall(path=".")  # noqa: S202 - exactly what AWS's script does
    model = pickle.load(open("xgboost-model", "rb"))  # noqa: S301 - the 1.0 container's pickle, as AWS loads it

    df = pd.read_csv("/opt/ml/processing/test/test.csv", header=None)
    y_test = df.iloc[:, 0].to_numpy()
    df.drop(df.columns[0], axis=1, inplace=True)
    predictions = model.predict(xgboost.DMatrix(df.values))
    mse = float(np.mean((y_test - predictions) ** 2))
    report_dict = {"regression_metrics": {"mse": {"value": mse, "standard_deviation": float(np.std(y_test - predictions))}}}

    output_dir = "/opt/ml/processing/evaluation"
    pathlib.Path(output_dir).mkdir(parents=True, exist_ok=True)
    with open(f"{output_dir}/evaluation.json", "w") as f:
        f.write(json.dumps(report_dict))
