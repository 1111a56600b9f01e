"""Generated junk thrown at the PropertyFile reader: a PropertyFileError of one line or a finite number —
never another exception (which read_metrics would retry instead of failing clearly).

Deterministic (``derandomize=True``) and bounded: the example counts are the ``max_examples`` below.
"""

from __future__ import annotations

import json
import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airsage.property_files import (
    PropertyFileError,
    json_path_value,
    numeric_value,
    parse_report,
    property_file_location,
    resolve_uri,
)

JUNK = settings(max_examples=400, derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])
URI = "s3://bucket/abalone/executions/e1/EvaluateAbalone/evaluation/evaluation.json"
PATHS = st.one_of(st.sampled_from(["regression_metrics.mse.value", "a[0].b", "regression_metrics.rmse.value",
                                   "", ".", "a..b", "a[x]", "[0]"]), st.text(max_size=12))
JSONISH = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=6)),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.sampled_from(["regression_metrics", "mse", "value", "a", "b"]), inner,
                                            max_size=3)),
    max_leaves=12)
DOCUMENTS = st.one_of(
    st.binary(max_size=80),
    JSONISH.map(lambda v: json.dumps(v).encode()),
    st.integers(min_value=1, max_value=3000).map(lambda n: b'{"regression_metrics": {"mse": {"value": ' + b"7" * n + b"}}}"),
    st.integers(min_value=1, max_value=5000).map(lambda n: b"[" * n + b"]" * n),
    st.floats().map(lambda f: json.dumps({"regression_metrics": {"mse": {"value": f}}}).encode()),
)


@JUNK
@given(data=DOCUMENTS, path=PATHS)
def test_reader_fails_only_with_property_file_error(data, path):
    try:
        value = numeric_value(json_path_value(parse_report(data, URI), path, URI), path, URI)
    except PropertyFileError as exc:
        assert str(exc) and "\n" not in str(exc)
    else:
        assert math.isfinite(value)


@JUNK
@given(definition=JSONISH, step=st.sampled_from(["EvaluateAbalone", "a"]), name=st.sampled_from(["EvaluationReport", "b"]))
def test_location_fails_only_with_property_file_error(definition, step, name):
    try:
        output, expression, file_path = property_file_location(
            definition if isinstance(definition, dict) else {"Steps": definition}, step, name)
        resolve_uri(expression, execution_id="e1", execution_arn="arn:e1", pipeline_name="p", parameters={},
                    definition=definition if isinstance(definition, dict) else {})
    except PropertyFileError as exc:
        assert str(exc) and "\n" not in str(exc)
