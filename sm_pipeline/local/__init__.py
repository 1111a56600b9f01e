"""Docker-free local runner: executes any SageMaker pipeline definition JSON on this machine.

``run_pipeline`` runs one execution and ``resume_pipeline`` continues a Failed or Stopped one in place;
``LocalExecutionStore`` reads the records they leave under the object root; ``LocalModelRegistry`` is the
local model registry; ``register_lambda`` makes a Python callable stand in for a Lambda function.
``new_execution_id`` names an execution before it runs (``execution_arn``, from ``sm_pipeline.arns``, gives
its ARN), ``StopHandle``/``request_stop`` stop one (from a thread / from another process; see
``sm_pipeline.local.control``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__all__ = ["LocalExecutionStore", "LocalModelRegistry", "PipelineResult", "StopHandle", "execution_arn",
           "new_execution_id", "register_lambda", "request_stop", "resume_pipeline", "run_pipeline"]

_RUNNER = ("run_pipeline", "resume_pipeline", "PipelineResult", "register_lambda")
_CONTROL = ("StopHandle", "new_execution_id", "request_stop")

if TYPE_CHECKING:
    from sm_pipeline.arns import execution_arn
    from sm_pipeline.local.control import StopHandle, new_execution_id, request_stop
    from sm_pipeline.local.records import LocalExecutionStore
    from sm_pipeline.local.registry import LocalModelRegistry
    from sm_pipeline.local.runner import PipelineResult, register_lambda, resume_pipeline, run_pipeline


def __getattr__(name: str):
    # Lazy so that `python -m sm_pipeline --help` does not import the whole runner.
    if name in _RUNNER:
        from sm_pipeline.local import runner

        return getattr(runner, name)
    if name in _CONTROL:
        from sm_pipeline.local import control

        return getattr(control, name)
    if name == "execution_arn":
        from sm_pipeline.arns import execution_arn

        return execution_arn
    if name == "LocalExecutionStore":
        from sm_pipeline.local.records import LocalExecutionStore

        return LocalExecutionStore
    if name == "LocalModelRegistry":
        from sm_pipeline.local.registry import LocalModelRegistry

        return LocalModelRegistry
    raise AttributeError(name)
