"""Stand-in for AWS's abalone preprocessing.py: same hard-coded /opt/ml paths, no sklearn pipeline."""

import numpy as np
import pandas as pd

base_dir = "/opt/ml/processing"
columns = ["sex", "length", "diameter", "height", "whole_weight", "shucked_weight", "viscera_weight",
           "shell_weight", "rings"]

if __name__ == "__main__":
    df = pd.read_csv(f"{base_dir}/input/abalone-dataset.csv", header=None, names=columns)
    y = df.pop("rings").astype(float)
    sex = pd.get_dummies(df.pop("sex"), dtype=float).reindex(columns=["F", "I", "M"], fill_value=0.0)
    X = pd.concat([df.astype(float), sex], axis=1)
    data = np.concatenate([y.to_numpy().reshape(-1, 1), X.to_numpy()], axis=1)
    np.random.default_rng(0).shuffle(data)
    n = len(data)
    train, validation, test = np.split(data, [int(0.7 * n), int(0.85 * n)])
    pd.DataFrame(train).to_csv(f"{base_dir}/train/train.csv", header=False, index=False)
    pd.DataFrame(validation).to_csv(f"{base_dir}/validation/validation.csv", header=False, index=False)
    pd.DataFrame(test).to_csv(f"{base_dir}/test/test.csv", header=False, index=False)
