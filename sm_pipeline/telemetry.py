"""Keep the SageMaker SDK's usage telemetry off the network while we build a definition.

SDK v3 wraps public calls (``Processor.run``, ``ModelTrainer.train``, ``ModelBuilder.build``,
``ModelBuilder.register`` ...) in ``@_telemetry_emitter``. After each call the wrapper hands
the event to ``sagemaker.core.telemetry.telemetry_logging._send_telemetry_request``, which
starts a thread doing an STS GetCallerIdentity and an HTTPS GET to an AWS-owned S3 host.

The documented opt-out (``TelemetryOptOut`` in the SDK defaults config) works, but a
non-empty SDK config makes every one of the SDK's many config lookups re-validate the whole
JSON schema, about 8 s per build. Instead we replace that one module attribute for the
duration of the build: the wrapper looks the sender up as a module global at call time, so
every decorated function -- however it imported the decorator -- goes through the swap, and
it is the single point every event, success or failure, leaves through. Nothing else in the
SDK's behaviour (and so nothing in the definition JSON) changes.

If a future SDK renames the sender, :func:`sdk_telemetry` reports that it could not swap it
and the builder falls back to the documented (slow but certain) config opt-out rather than
letting events out.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator

log = logging.getLogger(__name__)

SDK_TELEMETRY_MODULE = "sagemaker.core.telemetry.telemetry_logging"
SDK_SENDER = "_send_telemetry_request"

_lock = threading.Lock()
_depth = 0
_saved: dict[str, object] = {}


def _drop_event(*_args, **_kwargs) -> None:
    """Stands in for the SDK's sender: the event is discarded, no thread, no socket."""
    return None


def dropped_sender():
    """The function installed in place of the SDK sender (tests identify the swap by it)."""
    return _drop_event


@contextlib.contextmanager
def sdk_telemetry(enabled: bool) -> Iterator[bool]:
    """Within the block, SDK telemetry is sent only if ``enabled``.

    Yields True when telemetry is off by the cheap swap (or simply on, as asked); False when it
    should be off but the SDK no longer has the expected sender, so the caller must opt out
    through the SDK config instead. Re-entrant and thread-safe: the original sender comes
    back when the outermost block exits.
    """
    if enabled:
        yield True
        return
    import importlib

    module = importlib.import_module(SDK_TELEMETRY_MODULE)
    if not callable(getattr(module, SDK_SENDER, None)):
        log.warning("%s.%s not found; falling back to the SDK config TelemetryOptOut", SDK_TELEMETRY_MODULE, SDK_SENDER)
        yield False
        return
    global _depth
    with _lock:
        if _depth == 0:
            _saved["sender"] = getattr(module, SDK_SENDER)
            # The SDK logs "will collect telemetry" once per process; it would be false here.
            _saved["msg_shown"] = getattr(module, "_telemetry_msg_shown", False)
            setattr(module, SDK_SENDER, _drop_event)
            module._telemetry_msg_shown = True
        _depth += 1
    try:
        yield True
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                setattr(module, SDK_SENDER, _saved.pop("sender"))
                module._telemetry_msg_shown = _saved.pop("msg_shown")
