"""ARNs are spelled and read in one place."""

from __future__ import annotations

import pytest

from sm_pipeline.arns import execution_arn, execution_id_of, parse_execution_arn, pipeline_arn


def test_arns_are_spelled_as_sagemaker_spells_them():
    assert pipeline_arn("Abalone-Local", "eu-west-1") == "arn:aws:sagemaker:eu-west-1:000000000000:pipeline/abalone-local"
    arn = execution_arn("Abalone", "abc123", "us-east-1")
    assert arn == "arn:aws:sagemaker:us-east-1:000000000000:pipeline/abalone/execution/abc123"
    assert parse_execution_arn(arn) == ("abalone", "abc123")
    assert execution_id_of(arn) == "abc123"


@pytest.mark.parametrize("bad", ["", "abc", "arn:aws:sagemaker:us-east-1:000000000000:pipeline/p", None, 3])
def test_a_malformed_execution_arn_is_named(bad):
    with pytest.raises(ValueError, match="is not a pipeline execution ARN"):
        execution_id_of(bad)
