"""processing_code/preprocess.py on tiny CSVs: outputs, determinism, batch, hosts, and every bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

FEATURE_HEADER = "sex,length,diameter,height,whole_weight,shucked_weight,viscera_weight,shell_weight"
EXPECTED = "sex, length, diameter, height, whole_weight, shucked_weight, viscera_weight, shell_weight, rings"


@pytest.fixture
def dirs(tmp_path):
    """Input and output locations of one run, all under tmp_path."""
    return {
        "input": tmp_path / "input",
        "batch_input": tmp_path / "batch-input",
        "out": tmp_path / "out",
        "resource_config": tmp_path / "resourceconfig.json",
    }


def argv(dirs, seed=42, **overrides) -> list[str]:
    """Command line for preprocess.py with every path inside the test's tmp_path."""
    out = dirs["out"]
    args = {
        "--input-dir": dirs["input"], "--batch-input-dir": dirs["batch_input"],
        "--train-dir": out / "train", "--validation-dir": out / "validation", "--test-dir": out / "test",
        "--batch-dir": out / "batch", "--resource-config": dirs["resource_config"], "--seed": seed,
    }
    args.update({f"--{k.replace('_', '-')}": v for k, v in overrides.items()})
    return [str(part) for pair in args.items() for part in pair]


def read_output(path: Path) -> np.ndarray:
    return np.loadtxt(path, delimiter=",", ndmin=2)


def test_writes_label_first_headerless_70_15_15_splits(preprocess, dirs, make_lines, write_csv, capsys):
    lines = make_lines(20)
    write_csv(dirs["input"] / "abalone.csv", lines)

    assert preprocess.main(argv(dirs)) == 0

    out = dirs["out"]
    train, validation, test = (read_output(out / d / f"{d}.csv") for d in ("train", "validation", "test"))
    assert (len(train), len(validation), len(test)) == (14, 3, 3)
    assert train.shape[1] == validation.shape[1] == test.shape[1] == 1 + 7 + 3
    first_line = (out / "train" / "train.csv").read_text().splitlines()[0]
    float(first_line.split(",")[0])  # no header row: the first field is the label itself
    labels = sorted(float(line.split(",")[-1]) for line in lines)
    assert sorted(np.concatenate([train[:, 0], validation[:, 0], test[:, 0]])) == labels
    one_hot = np.concatenate([train, validation, test])[:, 8:]
    assert set(np.unique(one_hot)) <= {0.0, 1.0}
    assert (one_hot.sum(axis=1) == 1).all()
    # Scaled on the training split: mean ~0, std ~1 there.
    assert np.allclose(train[:, 1:8].mean(axis=0), 0, atol=1e-4)
    assert np.allclose(train[:, 1:8].std(axis=0), 1, atol=1e-3)
    assert not (out / "batch").exists()
    assert "skipping batch output" in capsys.readouterr().out


def test_one_hot_columns_are_sex_f_i_m(preprocess, dirs, make_lines, write_csv):
    write_csv(dirs["input"] / "a.csv", [line.replace(line[0], "I", 1) for line in make_lines(10)])
    assert preprocess.main(argv(dirs)) == 0
    rows = np.concatenate([read_output(dirs["out"] / d / f"{d}.csv") for d in ("train", "validation", "test")])
    assert (rows[:, 8:] == [0, 1, 0]).all()


def test_header_and_headerless_input_give_identical_outputs(preprocess, tmp_path, make_lines, write_csv, header):
    lines = make_lines(15)
    outputs = []
    for name, head in (("plain", None), ("with-header", header.upper().replace(",", ", "))):
        run_dirs = {"input": tmp_path / name / "in.csv", "batch_input": tmp_path / "none",
                    "out": tmp_path / name / "out", "resource_config": tmp_path / "none.json"}
        write_csv(run_dirs["input"], lines, header=head)
        assert preprocess.main(argv(run_dirs)) == 0
        outputs.append([(run_dirs["out"] / d / f"{d}.csv").read_bytes() for d in ("train", "validation", "test")])
    assert outputs[0] == outputs[1]


def test_header_columns_may_come_in_any_order(preprocess, tmp_path, make_lines, write_csv, header):
    lines = make_lines(10)
    names = header.split(",")
    reordered = [",".join(line.split(",")[::-1]) for line in lines]
    plain = {"input": tmp_path / "a.csv", "batch_input": tmp_path / "none", "out": tmp_path / "a",
             "resource_config": tmp_path / "none.json"}
    turned = dict(plain, input=tmp_path / "b.csv", out=tmp_path / "b")
    write_csv(plain["input"], lines)
    write_csv(turned["input"], reordered, header=",".join(names[::-1]))
    assert preprocess.main(argv(plain)) == 0
    assert preprocess.main(argv(turned)) == 0
    assert (plain["out"] / "train" / "train.csv").read_bytes() == (turned["out"] / "train" / "train.csv").read_bytes()


def test_same_seed_same_bytes_other_seed_other_split(preprocess, tmp_path, make_lines, write_csv):
    source = write_csv(tmp_path / "abalone.csv", make_lines(30))

    def run(seed, name):
        run_dirs = {"input": source, "batch_input": tmp_path / "none", "out": tmp_path / name,
                    "resource_config": tmp_path / "none.json"}
        assert preprocess.main(argv(run_dirs, seed=seed)) == 0
        return (tmp_path / name / "train" / "train.csv").read_bytes()

    assert run(7, "a") == run(7, "b")
    assert run(7, "a") != run(8, "c")


def test_reads_every_csv_in_the_input_directory(preprocess, dirs, make_lines, write_csv, header):
    write_csv(dirs["input"] / "part-1.csv", make_lines(10, seed=1))
    write_csv(dirs["input"] / "ds=2024-01-02" / "part-2.csv", make_lines(10, seed=2), header=header)
    write_csv(dirs["input"] / "notes.txt", ["not data"])
    assert preprocess.main(argv(dirs)) == 0
    total = sum(len(read_output(dirs["out"] / d / f"{d}.csv")) for d in ("train", "validation", "test"))
    assert total == 20


def test_missing_feature_values_get_the_training_median(preprocess, dirs, make_lines, write_csv):
    lines = make_lines(20)
    fields = lines[0].split(",")
    fields[1] = ""  # length missing
    lines[0] = ",".join(fields)
    write_csv(dirs["input"] / "a.csv", lines)
    assert preprocess.main(argv(dirs)) == 0
    rows = np.concatenate([read_output(dirs["out"] / d / f"{d}.csv") for d in ("train", "validation", "test")])
    assert np.isfinite(rows).all()


def test_feature_transform_matches_a_column_transformer(preprocess, make_lines):
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    rng = np.random.default_rng(3)
    values = rng.normal(size=(40, 8)).astype(np.float32)
    values[rng.random((40, 8)) < 0.1] = np.nan
    sex_index = rng.integers(0, 3, 40).astype(np.int8)
    rows = np.arange(30)
    ours = preprocess.FeatureTransform().fit(values, sex_index, rows)
    out = np.empty((40, ours.width), dtype=np.float32)
    ours.transform_into(out, values, sex_index, np.arange(40))

    import pandas as pd

    frame = pd.DataFrame(values[:, :7], columns=list(preprocess.NUMERIC_FEATURES))
    frame["sex"] = np.array(["F", "I", "M"], dtype=object)[sex_index]
    reference = ColumnTransformer([
        ("numeric", Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]),
         list(preprocess.NUMERIC_FEATURES)),
        ("sex", OneHotEncoder(categories=[["F", "I", "M"]], handle_unknown="ignore", sparse_output=False), ["sex"]),
    ]).fit(frame.iloc[:30])
    assert np.allclose(out, reference.transform(frame), atol=1e-5)


def test_batch_rows_get_the_transform_fitted_on_training_rows(preprocess, dirs, make_lines, write_csv):
    labelled = make_lines(20)
    write_csv(dirs["input"] / "a.csv", labelled)
    # The batch repeats the labelled rows without their label: its features must equal theirs.
    unlabelled = [line.rsplit(",", 1)[0] for line in labelled]
    write_csv(dirs["batch_input"] / "batch-1.csv", unlabelled[:12])
    write_csv(dirs["batch_input"] / "batch-2.csv", unlabelled[12:], header=FEATURE_HEADER)
    assert preprocess.main(argv(dirs)) == 0

    batch = read_output(dirs["out"] / "batch" / "batch.csv")
    assert batch.shape == (20, 10)
    labelled_out = np.concatenate([read_output(dirs["out"] / d / f"{d}.csv") for d in ("train", "validation", "test")])
    as_rows = {tuple(np.round(row[1:], 4)) for row in labelled_out}
    assert {tuple(np.round(row, 4)) for row in batch} == as_rows


def test_empty_batch_directory_is_skipped(preprocess, dirs, make_lines, write_csv, capsys):
    write_csv(dirs["input"] / "a.csv", make_lines(10))
    dirs["batch_input"].mkdir()
    assert preprocess.main(argv(dirs)) == 0
    assert not (dirs["out"] / "batch").exists()
    assert "skipping batch output" in capsys.readouterr().out


def test_each_host_writes_its_share_under_a_suffixed_name(preprocess, tmp_path, make_lines, write_csv):
    source = write_csv(tmp_path / "abalone.csv", make_lines(41))
    batch = write_csv(tmp_path / "batch.csv", [line.rsplit(",", 1)[0] for line in make_lines(9, seed=5)])
    single = {"input": source, "batch_input": batch, "out": tmp_path / "single", "resource_config": tmp_path / "none"}
    assert preprocess.main(argv(single)) == 0
    for host in ("algo-1", "algo-2"):
        config = tmp_path / f"{host}.json"
        config.write_text(json.dumps({"current_host": host, "hosts": ["algo-2", "algo-1"]}))
        assert preprocess.main(argv(dict(single, out=tmp_path / "multi", resource_config=config))) == 0

    for name in ("train", "validation", "test", "batch"):
        produced = sorted(p.name for p in (tmp_path / "multi" / name).iterdir())
        assert produced == [f"{name}-algo-1.csv", f"{name}-algo-2.csv"]
        union = b"".join((tmp_path / "multi" / name / f).read_bytes() for f in produced)
        assert union == (tmp_path / "single" / name / f"{name}.csv").read_bytes()


def test_single_host_resource_config_keeps_plain_names(preprocess, dirs, make_lines, write_csv):
    write_csv(dirs["input"] / "a.csv", make_lines(10))
    dirs["resource_config"].write_text(json.dumps({"current_host": "algo-1", "hosts": ["algo-1"]}))
    assert preprocess.main(argv(dirs)) == 0
    assert (dirs["out"] / "train" / "train.csv").is_file()


def test_seven_rows_are_enough_to_split(preprocess, dirs, make_lines, write_csv):
    write_csv(dirs["input"] / "a.csv", make_lines(7))
    assert preprocess.main(argv(dirs)) == 0
    sizes = [len(read_output(dirs["out"] / d / f"{d}.csv")) for d in ("train", "validation", "test")]
    assert sizes == [4, 1, 2]


def test_blank_lines_are_ignored_and_rows_keep_file_line_numbers(preprocess, dirs, make_lines, write_csv, capsys):
    lines = make_lines(10)
    lines.insert(3, "")
    lines[6] = lines[6].replace("0.", "x.", 1)  # file line 7
    write_csv(dirs["input"] / "a.csv", lines)
    assert preprocess.main(argv(dirs)) == 2
    assert "a.csv row 7 column 'length': not a number" in capsys.readouterr().err


# ----------------------------------------------------------------------------- bad input


def _bad_cases(make_lines, header):
    good = make_lines(10)

    def with_field(row: int, column: int, value: str) -> list[str]:
        lines = list(good)
        fields = lines[row].split(",")
        fields[column] = value
        lines[row] = ",".join(fields)
        return lines

    return {
        "empty file": ([], None, "{f}: empty file"),
        "header only": ([], header, "{f}: empty file: no data rows"),
        "missing column": (
            [line.rsplit(",", 1)[0] for line in good], header.rsplit(",", 1)[0],
            f"{{f}}: missing column(s) 'rings' in header; expected {EXPECTED}",
        ),
        "unexpected column": (
            [line + ",1" for line in good], header + ",colour",
            f"{{f}}: unexpected column(s) 'colour' in header; expected {EXPECTED}",
        ),
        "too few columns": (
            [line.rsplit(",", 1)[0] for line in good], None, f"{{f}} row 1: has 8 columns, expected 9 ({EXPECTED})",
        ),
        "extra column later": (
            good[:2] + [good[2] + ",7"] + good[3:], None, f"{{f}} row 3: has 10 columns, expected 9 ({EXPECTED})",
        ),
        "not a number": (with_field(2, 2, "abc"), None, "{f} row 3 column 'diameter': not a number: 'abc'"),
        "not a number in the first row": (with_field(0, 1, "abc"), None, "{f} row 1 column 'length': not a number: 'abc'"),
        "not a number under header": (
            with_field(4, 7, "1,5".replace(",", ";")), header, "{f} row 6 column 'shell_weight': not a number: '1;5'",
        ),
        "not a number in label": (with_field(0, 8, "ten"), None, "{f} row 1 column 'rings': not a number: 'ten'"),
        "not a number after an NA": (
            with_field(1, 4, "NA")[:5] + with_field(5, 4, "1.2.3")[5:], None,
            "{f} row 6 column 'whole_weight': not a number: '1.2.3'",
        ),
        "infinite value": (with_field(1, 3, "inf"), None, "{f} row 2 column 'height': not a finite number"),
        "empty label": (with_field(5, 8, ""), None, "{f} row 6 column 'rings': missing label"),
        "NaN label": (with_field(5, 8, "NaN"), header, "{f} row 7 column 'rings': missing label"),
        "unknown sex": (with_field(3, 0, "X"), None, "{f} row 4 column 'sex': unknown sex code 'X'; expected one of F, I, M"),
        "lower-case sex": (with_field(3, 0, "m"), None, "{f} row 4 column 'sex': unknown sex code 'm'; expected one of F, I, M"),
        "missing sex": (with_field(8, 0, ""), None, "{f} row 9 column 'sex': unknown sex code ''; expected one of F, I, M"),
        "too few rows": (good[:6], None, "{f}: too few rows to split 70/15/15: found 6, need at least 7"),
    }


BAD_CASES = [
    "empty file", "header only", "missing column", "unexpected column", "too few columns", "extra column later",
    "not a number", "not a number in the first row", "not a number under header", "not a number in label", "not a number after an NA", "infinite value", "empty label",
    "NaN label", "unknown sex", "lower-case sex", "missing sex", "too few rows",
]


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_input_fails_with_one_line_and_no_output(case, preprocess, dirs, make_lines, write_csv, header,
                                                     list_files, capsys):
    lines, head, message = _bad_cases(make_lines, header)[case]
    source = write_csv(dirs["input"] / "abalone.csv", lines, header=head)
    assert preprocess.main(argv(dirs, input_dir=source)) == 2
    err = capsys.readouterr().err
    assert err == "preprocess: " + message.format(f=source) + "\n"
    assert list_files(dirs["out"]) == []


def test_missing_input_directory(preprocess, dirs, list_files, capsys):
    assert preprocess.main(argv(dirs)) == 2
    assert capsys.readouterr().err == f"preprocess: input {dirs['input']} does not exist\n"
    assert list_files(dirs["out"]) == []


def test_input_directory_without_csv(preprocess, dirs, write_csv, capsys):
    write_csv(dirs["input"] / "abalone.txt", ["M,1,1,1,1,1,1,1,1"])
    assert preprocess.main(argv(dirs)) == 2
    assert capsys.readouterr().err == f"preprocess: input {dirs['input']} holds no .csv files\n"


def test_defaults_are_the_container_paths(preprocess, capsys):
    if Path("/opt/ml").exists():
        pytest.skip("running inside a SageMaker-like container")
    assert preprocess.main([]) == 2
    assert capsys.readouterr().err == "preprocess: input /opt/ml/processing/input does not exist\n"


def test_batch_rows_with_a_label_column_are_rejected(preprocess, dirs, make_lines, write_csv, list_files, capsys):
    write_csv(dirs["input"] / "a.csv", make_lines(10))
    batch = write_csv(dirs["batch_input"] / "b.csv", make_lines(3))
    assert preprocess.main(argv(dirs)) == 2
    expected = EXPECTED.rsplit(", ", 1)[0]
    assert capsys.readouterr().err == f"preprocess: {batch} row 1: has 9 columns, expected 8 ({expected})\n"
    assert list_files(dirs["out"]) == []


def test_batch_rows_with_an_unknown_sex_are_rejected(preprocess, dirs, make_lines, write_csv, capsys):
    write_csv(dirs["input"] / "a.csv", make_lines(10))
    batch = write_csv(dirs["batch_input"] / "b.csv", ["Q,0.5,0.4,0.1,0.5,0.2,0.1,0.1"], header=FEATURE_HEADER)
    assert preprocess.main(argv(dirs)) == 2
    assert capsys.readouterr().err == (
        f"preprocess: {batch} row 2 column 'sex': unknown sex code 'Q'; expected one of F, I, M\n"
    )


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        ("{not json", "not a valid resource config"),
        ('{"hosts": ["algo-1"]}', "not a valid resource config"),
        ('{"current_host": "algo-3", "hosts": ["algo-1", "algo-2"]}', "current_host 'algo-3' is not in hosts"),
    ],
)
def test_bad_resource_config(config, problem, preprocess, dirs, make_lines, write_csv, list_files, capsys):
    write_csv(dirs["input"] / "a.csv", make_lines(10))
    dirs["resource_config"].write_text(config)
    assert preprocess.main(argv(dirs)) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"preprocess: {dirs['resource_config']}: {problem}")
    assert err.count("\n") == 1
    assert list_files(dirs["out"]) == []


def test_failure_while_writing_leaves_no_output(preprocess, dirs, make_lines, write_csv, list_files, monkeypatch,
                                                capsys):
    write_csv(dirs["input"] / "a.csv", make_lines(10))
    real_write = preprocess.write_transformed
    calls = []

    def write_then_fail(fh, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # train is complete, validation is half-way
            fh.write("half a row")
            raise OSError(28, "No space left on device", str(dirs["out"] / "validation"))
        return real_write(fh, *args, **kwargs)

    monkeypatch.setattr(preprocess, "write_transformed", write_then_fail)
    assert preprocess.main(argv(dirs)) == 2
    assert capsys.readouterr().err == f"preprocess: {dirs['out'] / 'validation'} No space left on device\n"
    assert list_files(dirs["out"]) == []


# ----------------------------------------------------------------------------- as a process


def test_runs_as_a_standalone_script(preprocess, tmp_path, make_lines, write_csv, list_files):
    """The container runs the file alone: no repo on sys.path, bad input gives one line, no traceback."""
    script = Path(preprocess.__file__)
    work = tmp_path / "work"
    work.mkdir()
    good = write_csv(tmp_path / "good.csv", make_lines(10))
    bad = write_csv(tmp_path / "bad.csv", make_lines(10)[:4] + ["F,0.5,0.4,0.1,0.5,0.2,0.1,0.1,NA"])
    out = tmp_path / "out"
    common = ["--batch-input-dir", str(tmp_path / "nb"), "--train-dir", str(out / "train"),
              "--validation-dir", str(out / "validation"), "--test-dir", str(out / "test"),
              "--batch-dir", str(out / "batch"), "--resource-config", str(tmp_path / "nrc")]
    env = {"PATH": "/usr/bin:/bin", "PYTHONNOUSERSITE": "1"}

    failed = subprocess.run([sys.executable, str(script), "--input-dir", str(bad), *common],
                            cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert failed.returncode == 2
    assert failed.stderr == f"preprocess: {bad} row 5 column 'rings': missing label\n"
    assert list_files(out) == []

    ok = subprocess.run([sys.executable, str(script), "--input-dir", str(good), *common],
                        cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert "split train=7 validation=1 test=2" in ok.stdout
    assert [p.name for p in list_files(out)] == ["test.csv", "train.csv", "validation.csv"]


# ----------------------------------------------------------------------------- numpy transform and parser


def test_feature_transform_matches_sklearn_on_constant_empty_columns_and_unknown_sex(preprocess):
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    rng = np.random.default_rng(5)
    values = rng.normal(size=(25, 7)).astype(np.float32)
    values[:, 2] = 0.3  # constant: scale 1
    values[:, 5] = np.nan  # all missing: imputed 0
    values[rng.random((25, 7)) < 0.15] = np.nan
    sex_index = rng.integers(0, 3, 25).astype(np.int8)
    rows = np.arange(20)
    ours = preprocess.FeatureTransform().fit(values, sex_index, rows)
    sex_index[[21, 23]] = -1  # unknown at transform time: all-zero one-hot
    out = np.empty((25, ours.width), dtype=np.float32)
    ours.transform_into(out, values, sex_index, np.arange(25))

    sex = np.array(["F", "I", "M", "X"], dtype=object)[sex_index].reshape(-1, 1)
    reference = ColumnTransformer([
        ("numeric", Pipeline([("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
                              ("scale", StandardScaler())]), list(range(7))),
        ("sex", OneHotEncoder(categories=[["F", "I", "M"]], handle_unknown="ignore", sparse_output=False), [7]),
    ])
    frame = np.concatenate([values.astype(object), sex], axis=1)
    reference.fit(frame[:20])
    assert np.allclose(out, reference.transform(frame).astype(np.float64), atol=1e-5)
    assert (out[[21, 23], 7:] == 0).all()


def test_fast_and_line_by_line_parsers_agree(preprocess, tmp_path):
    lines = ["M,0.455,0.365,0.095,0.514,0.2245,0.101,0.15,15",
             "F, 0.53 ,NA,0.135,,0.2565,1e-3,-0.21,7",
             "I,0.33,0.255,nan,0.205,N/A,0.0395,+0.055,9"]
    block = ("\r\n".join(lines) + "\r\n").encode()
    fast = preprocess._parse_fast(block, 9)
    assert fast is not None
    slow = preprocess._parse_slow(tmp_path / "x.csv", block, 1, preprocess.LABELLED_COLUMNS, None)
    assert np.array_equal(fast[0], slow[0], equal_nan=True)
    assert np.array_equal(fast[1], slow[1]) and list(fast[1]) == [2, 0, 1]


@pytest.mark.parametrize("line", ["M,1,2,3,4,5,6,7", "M,1,2,3,4,5,6,7,8,9,10", "X,1,2,3,4,5,6,7,8", "",
                                  'M,"1",2,3,4,5,6,7,8', "MM,1,2,3,4,5,6,7,8", "M,0x1,2,3,4,5,6,7,8"])
def test_fast_parser_leaves_unusual_blocks_to_the_line_by_line_path(preprocess, line):
    block = ("M,1,2,3,4,5,6,7,8\n" + line + "\nF,1,2,3,4,5,6,7,8\n").encode()
    assert preprocess._parse_fast(block, 9) is None


def test_errors_name_the_file_line_across_many_read_blocks(preprocess, dirs, make_lines, write_csv, header,
                                                           monkeypatch, capsys):
    monkeypatch.setattr(preprocess, "_READ_BLOCK_BYTES", 100)  # a block every two lines or so
    lines = make_lines(60)
    lines[47] = lines[47].replace("0.", "o.", 1)
    lines.insert(10, "")
    source = write_csv(dirs["input"] / "a.csv", lines, header=header)
    assert preprocess.main(argv(dirs, input_dir=source)) == 2
    assert "a.csv row 50 column 'length': not a number: 'o." in capsys.readouterr().err


def test_many_small_blocks_give_the_same_output_as_one(preprocess, tmp_path, make_lines, write_csv, monkeypatch):
    lines = make_lines(80)
    fields = lines[5].split(",")
    fields[3] = "NA"  # a missing cell: that block takes the NA-normalising fast path
    lines[5] = ",".join(fields)
    source = write_csv(tmp_path / "a.csv", lines)
    outputs = []
    for name, block_bytes in (("one", 1 << 20), ("many", 90)):
        monkeypatch.setattr(preprocess, "_READ_BLOCK_BYTES", block_bytes)
        run_dirs = {"input": source, "batch_input": tmp_path / "none", "out": tmp_path / name,
                    "resource_config": tmp_path / "none.json"}
        assert preprocess.main(argv(run_dirs)) == 0
        outputs.append([(tmp_path / name / d / f"{d}.csv").read_bytes() for d in ("train", "validation", "test")])
    assert outputs[0] == outputs[1]


def test_does_not_import_pandas_or_sklearn(preprocess, tmp_path, make_lines, write_csv):
    source = write_csv(tmp_path / "a.csv", make_lines(10))
    code = ("import runpy, sys; sys.argv = sys.argv[1:]\n"
            "try:\n    runpy.run_path(sys.argv[0], run_name='__main__')\nexcept SystemExit:\n    pass\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'pandas', 'sklearn', 'scipy', 'pyarrow'}))")
    done = subprocess.run([sys.executable, "-c", code, preprocess.__file__, "--input-dir", str(source),
                           "--batch-input-dir", str(tmp_path / "nb"), "--train-dir", str(tmp_path / "o" / "train"),
                           "--validation-dir", str(tmp_path / "o" / "v"), "--test-dir", str(tmp_path / "o" / "t"),
                           "--resource-config", str(tmp_path / "nrc")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


# ----------------------------------------------------------------------------- sharded input


def test_sharded_hosts_each_process_all_of_their_own_files(preprocess, tmp_path, make_lines, write_csv):
    shards = {"algo-1": make_lines(30, seed=1), "algo-2": make_lines(23, seed=2)}
    for host, lines in shards.items():
        write_csv(tmp_path / host / "input" / "part.csv", lines)
        config = tmp_path / f"{host}.json"
        config.write_text(json.dumps({"current_host": host, "hosts": ["algo-1", "algo-2"]}))
        host_dirs = {"input": tmp_path / host / "input", "batch_input": tmp_path / "none", "out": tmp_path / "multi",
                     "resource_config": config}
        assert preprocess.main(argv(host_dirs, input_distribution="sharded")) == 0
        # The same rows through a single-host run: same split, same transform, same bytes.
        alone = dict(host_dirs, out=tmp_path / f"alone-{host}", resource_config=tmp_path / "none.json")
        assert preprocess.main(argv(alone)) == 0
        for name in ("train", "validation", "test"):
            ours = (tmp_path / "multi" / name / f"{name}-{host}.csv").read_bytes()
            assert ours == (tmp_path / f"alone-{host}" / name / f"{name}.csv").read_bytes()
    rows = sum(len(read_output(p)) for p in (tmp_path / "multi").rglob("*.csv"))
    assert rows == 30 + 23


def test_sharded_host_without_objects_says_so(preprocess, dirs, list_files, capsys):
    dirs["resource_config"].write_text(json.dumps({"current_host": "algo-3", "hosts": ["algo-1", "algo-2", "algo-3"]}))
    assert preprocess.main(argv(dirs, input_distribution="sharded")) == 2
    assert capsys.readouterr().err == (
        f"preprocess: input {dirs['input']} does not exist (sharded input: this host got no object; "
        "give at least 3 objects, one per host)\n")
    assert list_files(dirs["out"]) == []


def test_unknown_input_distribution_is_a_usage_error(preprocess, dirs):
    with pytest.raises(SystemExit) as exc:
        preprocess.main(argv(dirs, input_distribution="scattered"))
    assert exc.value.code == 2
