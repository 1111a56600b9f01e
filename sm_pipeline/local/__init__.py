"""Docker-free local runner: executes any SageMaker pipeline definition JSON on this machine.

``run_pipeline`` runs one execution; ``LocalExecutionStore`` reads the records it leaves under the
object root; ``LocalModelRegistry`` is the local model registry; ``register_lambda`` makes a Python
callable stand in for a Lambda function. ``new_execution_id``/``execution_arn`` name an execution before
it runs, ``StopHandle``/``request_stop`` stop one (from a thread / from another process) and
``resume_pipeline`` continues a Failed or Stopped one in place (see ``sm_pipeline.local.control``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__all__ = ["LocalExecutionStore", "LocalModelRegistry", "PipelineResult", "StopHandle", "execution_arn",
           "new_execution_id", "register_lambda", "request_stop", "resume_pipeline", "run_pipeline"]

_CONTROL = ("StopHandle", "execution_arn", "new_execution_id", "request_stop", "resume_pipeline")

if TYPE_CHECKING:
    from sm_pipeline.local.control import (
        StopHandle,
        execution_arn,
        new_execution_id,
        request_stop,
        resume_pipeline,
    )
    from sm_pipeline.local.records import LocalExecutionStore
    from sm_pipeline.local.registry import LocalModelRegistry
    from sm_pipeline.local.runner import PipelineResult, register_lambda, run_pipeline


def __getattr__(name: str):
    # Lazy so that `python -m sm_pipeline --help` does not import the whole runner.
    if name in ("run_pipeline", "PipelineResult", "register_lambda"):
        from sm_pipeline.local import runner

        return getattr(runner, name)
    if name in _CONTROL:
        from sm_pipeline.local import control

        return getattr(control, name)
    if name == "LocalExecutionStore":
        from sm_pipeline.local.records import LocalExecutionStore

        return LocalExecutionStore
    if name == "LocalModelRegistry":
        from sm_pipeline.local.registry import LocalModelRegistry

        return LocalModelRegistry
    raise AttributeError(name)
