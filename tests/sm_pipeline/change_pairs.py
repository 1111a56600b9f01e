"""Build the definition pairs the diff and plan tests compare, with the SDK v3, in one child process.

    python tests/sm_pipeline/change_pairs.py OUT_DIR CODE_DIR

Writes ``<variant>.json`` for every variant of :data:`VARIANTS` (the abalone pipeline with one config field
changed, built by ``sm_pipeline.abalone.definition``) and ``step_added.json`` (the base pipeline with one more
SDK ``FailStep``). ``CODE_DIR``: a copy of processing_code/ with preprocess.py edited (the code change).
One process imports the SDK once (about 10 s) instead of once per definition.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root, for sm_pipeline

VARIANTS = {
    "base": {},
    "image": {"sklearn_version": "1.0-1"},
    "instance": {"transform_instance_type": "ml.m5.2xlarge"},
    "cache": {"cache_expire_after": "P7D"},
    "parameter": {"mse_threshold": 5.5},
}


def main(out: Path, code_dir: str) -> int:
    from sm_pipeline.abalone.config import load_config
    from sm_pipeline.abalone.definition import (
        _build,
        _no_throwaway_local_sessions,
        _quiet_sdk,
        _sdk_variables,
        definition_json,
    )
    from sm_pipeline.offline_aws import offline_aws
    from sm_pipeline.telemetry import sdk_telemetry

    out.mkdir(parents=True, exist_ok=True)
    variants = {**VARIANTS, "code": {"code_dir": code_dir}}
    for name, overrides in variants.items():
        (out / f"{name}.json").write_text(definition_json(load_config(env={}, overrides=overrides)), encoding="utf-8")
    config = load_config(env={}, overrides={})
    with offline_aws(_sdk_variables(config)), _quiet_sdk(), sdk_telemetry(config.telemetry) as swapped, \
            _no_throwaway_local_sessions():
        from sagemaker.mlops.workflow.fail_step import FailStep

        pipeline = _build(config, telemetry_opt_out_by_config=not swapped)
        pipeline.steps.append(FailStep(name="AuditFail", error_message="audit"))
        (out / "step_added.json").write_text(json.dumps(json.loads(pipeline.definition()), indent=2, sort_keys=True),
                                             encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), sys.argv[2]))
