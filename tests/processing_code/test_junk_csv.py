"""Generated junk thrown at the container scripts' CSV readers: a clean BadInput (or SystemExit with a
one-line message, for the built-in XGBoost emulation) or parsed arrays — never another exception.

Deterministic (``derandomize=True``) and bounded: the example counts are the ``max_examples`` below.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sm_pipeline.local import builtin_xgboost

ABALONE_HEADER = "sex,length,diameter,height,whole_weight,shucked_weight,viscera_weight,shell_weight,rings"
JUNK = settings(max_examples=150, derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

# Cells that look almost right: numbers, NA spellings, quotes, odd characters, encodings.
CELLS = st.one_of(
    st.sampled_from(["M", "F", "I", "0.455", "15", "", "NA", "nan", "inf", "-inf", '"M"', "1_000", "1e999", " 2 ",
                     "\u00e9", "\x00", "\ufeff", "abc", "1,5"]),
    st.text(max_size=6),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)
ROWS = st.lists(st.lists(CELLS, min_size=0, max_size=11).map(",".join), max_size=12)


@st.composite
def csv_files(draw, header: bool) -> bytes:
    lines = draw(ROWS)
    if header and draw(st.booleans()):
        lines = [draw(st.sampled_from([ABALONE_HEADER, ABALONE_HEADER.upper(), ABALONE_HEADER.rsplit(",", 1)[0],
                                       "\ufeff" + ABALONE_HEADER]))] + lines
    text = draw(st.sampled_from(["\n", "\r\n", "\r"])).join(lines) + draw(st.sampled_from(["", "\n"]))
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "latin-1", "utf-32"]))
    data = text.encode(encoding, errors="replace")
    if draw(st.booleans()):
        data += draw(st.binary(max_size=16))
    return data


@JUNK
@given(data=csv_files(header=True), labelled=st.booleans())
@example(data=("\ufeff" + ABALONE_HEADER + "\nM,1,1,1,1,1,1,1,1\n").encode(), labelled=True)
def test_preprocess_reader_never_raises_anything_but_bad_input(tmp_path_factory, preprocess, data, labelled):
    path = tmp_path_factory.mktemp("junk") / "abalone.csv"
    path.write_bytes(data)
    try:
        values, sex = preprocess.read_abalone_csvs([path], labelled=labelled)
    except preprocess.BadInput as exc:
        assert str(exc) and "\n" not in str(exc)
    else:
        assert len(values) == len(sex) and values.dtype == np.float32


@JUNK
@given(data=csv_files(header=False))
def test_evaluate_reader_never_raises_anything_but_bad_input(tmp_path_factory, evaluate, data):
    path = tmp_path_factory.mktemp("junk") / "test.csv"
    path.write_bytes(data)
    try:
        values = evaluate.read_test_csv(path)
    except evaluate.BadInput as exc:
        assert str(exc) and "\n" not in str(exc)
    else:
        assert values.ndim == 2 and values.shape[1] >= 2


@JUNK
@given(data=csv_files(header=False))
def test_builtin_xgboost_reader_exits_with_a_message_or_reads(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("junk") / "train.csv"
    path.write_bytes(data)
    try:
        features, labels = builtin_xgboost.load_csv([path], label_first=True)
    except SystemExit as exc:
        assert isinstance(exc.code, str) and exc.code
    else:
        assert len(features) == len(labels)


def test_junk_strategies_produce_both_outcomes(tmp_path, preprocess):
    """The generators reach the success path too (otherwise the tests above would only probe errors)."""
    path = tmp_path / "abalone.csv"
    path.write_bytes(b"\xef\xbb\xbf" + (ABALONE_HEADER + "\nM,1,1,1,1,1,1,1,1\n").encode())
    values, _ = preprocess.read_abalone_csvs([path], labelled=True)
    assert values.shape == (1, 8)
    with pytest.raises(preprocess.BadInput):
        path.write_bytes(ABALONE_HEADER.encode("utf-16"))
        preprocess.read_abalone_csvs([path], labelled=True)
