"""sm_pipeline.abalone.synthetic: abalone-shaped data, deterministic per seed, streamed, written atomically."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sm_pipeline.abalone import synthetic
from sm_pipeline.abalone.synthetic import ABALONE_COLUMNS, write_abalone_like
from sm_pipeline.errors import InvalidInput


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    a = write_abalone_like(rows=50, seed=3, output=tmp_path / "a.csv")
    b = write_abalone_like(rows=50, seed=3, output=tmp_path / "b.csv")
    c = write_abalone_like(rows=50, seed=4, output=tmp_path / "c.csv")
    assert a.read_bytes() == b.read_bytes() != c.read_bytes()


def test_header_by_default_like_the_bundled_data(tmp_path, repo_root):
    path = write_abalone_like(rows=5, seed=0, output=tmp_path / "plain.csv")
    lines = path.read_text().splitlines()
    bundled_header = (repo_root / "data" / "abalone.csv").read_text().splitlines()[0]
    assert lines[0] == bundled_header == ",".join(ABALONE_COLUMNS)
    assert len(lines) == 6
    assert all(len(line.split(",")) == 9 and line[0] in "MFI" for line in lines[1:])


def test_headerless_on_request_with_nine_fields_per_row(tmp_path):
    path = write_abalone_like(rows=5, seed=0, output=tmp_path / "plain.csv", header=False)
    lines = path.read_text().splitlines()
    assert len(lines) == 5
    assert all(len(line.split(",")) == 9 and line[0] in "MFI" for line in lines)


def test_columns_types_and_plausible_values(tmp_path):
    path = write_abalone_like(rows=3000, seed=1, output=tmp_path / "abalone.csv", header=True)
    frame = pd.read_csv(path)
    assert tuple(frame.columns) == ABALONE_COLUMNS
    assert len(frame) == 3000
    assert set(frame["sex"]) == {"M", "F", "I"}
    assert frame["rings"].dtype.kind == "i"
    assert frame["rings"].between(1, 29).all()
    measurements = frame[list(ABALONE_COLUMNS[1:8])]
    assert (measurements.dtypes == np.float64).all()
    assert measurements.notna().all().all()
    assert frame["length"].between(0.075, 0.815).all()
    assert (frame["diameter"] < frame["length"]).mean() > 0.99
    assert (frame[["whole_weight", "shucked_weight", "viscera_weight", "shell_weight"]] > 0).all().all()
    assert frame["whole_weight"].max() < 3
    # The relations a model learns from: weight grows with size, age with shell weight, infants are smaller.
    assert frame["length"].corr(frame["whole_weight"], method="spearman") > 0.9
    assert frame["rings"].corr(frame["shell_weight"]) > 0.4
    by_sex = frame.groupby("sex")["length"].mean()
    assert by_sex["I"] < by_sex["M"] and by_sex["I"] < by_sex["F"]
    assert 8 < frame["rings"].mean() < 12


def test_streams_in_chunks_with_one_header(tmp_path, monkeypatch):
    monkeypatch.setattr(synthetic, "_CHUNK_ROWS", 7)
    path = write_abalone_like(rows=30, seed=2, output=tmp_path / "chunked.csv", header=True)
    lines = path.read_text().splitlines()
    assert len(lines) == 31
    assert lines[0] == ",".join(ABALONE_COLUMNS)
    assert sum(line.startswith("sex,") for line in lines) == 1


def test_creates_the_parent_directory_and_leaves_no_temp_file(tmp_path):
    path = write_abalone_like(rows=3, seed=0, output=tmp_path / "deep" / "er" / "x.csv")
    assert [p.name for p in path.parent.iterdir()] == ["x.csv"]


@pytest.mark.parametrize("rows", [0, -5, True, 2.5, "10"])
def test_rows_must_be_a_whole_number_of_at_least_one(rows, tmp_path):
    with pytest.raises(InvalidInput, match=r"^make-data: --rows must be a whole number of at least 1, got "):
        write_abalone_like(rows=rows, seed=0, output=tmp_path / "x.csv")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("seed", [-1, True, 1.5])
def test_seed_must_be_a_whole_number_of_at_least_zero(seed, tmp_path):
    with pytest.raises(InvalidInput, match=r"^make-data: --seed must be a whole number of at least 0, got "):
        write_abalone_like(rows=3, seed=seed, output=tmp_path / "x.csv")
    assert list(tmp_path.iterdir()) == []


def test_output_ending_in_a_separator_names_a_directory(tmp_path):
    target = f"{tmp_path}/new/"
    with pytest.raises(InvalidInput) as err:
        write_abalone_like(rows=3, seed=0, output=target)
    assert str(err.value) == (f"make-data: output {target} ends with a path separator, expected a file path "
                              f"such as {target}abalone.csv")
    assert list(tmp_path.iterdir()) == []


def test_unwritable_output_is_invalid_input(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(InvalidInput, match=r"^make-data: cannot write .*file/x\.csv: "):
        write_abalone_like(rows=3, seed=0, output=blocker / "x.csv")
    with pytest.raises(InvalidInput, match=r"is a directory"):
        write_abalone_like(rows=3, seed=0, output=tmp_path)


def test_failure_mid_write_leaves_nothing(tmp_path, monkeypatch):
    calls = []
    real_chunk = synthetic._abalone_chunk

    def fail_on_second_chunk(rng, rows):
        calls.append(rows)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real_chunk(rng, rows)

    monkeypatch.setattr(synthetic, "_CHUNK_ROWS", 4)
    monkeypatch.setattr(synthetic, "_abalone_chunk", fail_on_second_chunk)
    with pytest.raises(InvalidInput, match="No space left on device"):
        write_abalone_like(rows=10, seed=0, output=tmp_path / "x.csv")
    assert list(tmp_path.iterdir()) == []


def test_make_data_command(tmp_path, capsys):
    from sm_pipeline.__main__ import main

    out = tmp_path / "cli.csv"
    assert main(["make-data", "--rows", "12", "--seed", "5", "--output", str(out)]) == 0
    assert out.read_text().splitlines()[0] == ",".join(ABALONE_COLUMNS)
    assert out.read_bytes() == write_abalone_like(12, 5, tmp_path / "direct.csv").read_bytes()
    plain = tmp_path / "plain.csv"
    assert main(["make-data", "--rows", "12", "--seed", "5", "--output", str(plain), "--no-header"]) == 0
    assert plain.read_text().splitlines() == out.read_text().splitlines()[1:]
    assert main(["make-data", "--rows", "0", "--output", str(tmp_path / "none.csv")]) == 2
    assert capsys.readouterr().err.endswith("make-data: --rows must be a whole number of at least 1, got 0\n")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param(["--seed", "-1", "--output", "{tmp}/x.csv"],
                     "error: make-data: --seed must be a whole number of at least 0, got -1", id="negative-seed"),
        pytest.param(["--output", "{tmp}/new/"],
                     "error: make-data: output {tmp}/new/ ends with a path separator, expected a file path "
                     "such as {tmp}/new/abalone.csv", id="trailing-separator"),
        pytest.param(["--output", "{tmp}"],
                     "error: make-data: output {tmp} is a directory, expected a file path", id="existing-directory"),
    ],
)
def test_make_data_bad_input_is_one_line_exit_2_nothing_written(tmp_path, repo_root, args, expected):
    import subprocess
    import sys

    out_dir = tmp_path / "out"
    out_dir.mkdir()
    argv = [a.format(tmp=out_dir) for a in ["make-data", "--rows", "5", *args]]
    done = subprocess.run([sys.executable, "-m", "sm_pipeline", *argv], cwd=repo_root, capture_output=True,
                          text=True, timeout=120, check=False)
    assert (done.returncode, done.stderr, done.stdout) == (2, expected.format(tmp=out_dir) + "\n", "")
    assert list(out_dir.iterdir()) == []
