"""The telemetry swap itself, without building a pipeline (the build is covered in test_definition)."""

from __future__ import annotations

import importlib
import threading

import pytest

from sm_pipeline import telemetry


@pytest.fixture(scope="module")
def sdk_module():
    return importlib.import_module(telemetry.SDK_TELEMETRY_MODULE)


def test_disabled_swaps_the_sender_and_restores_it(sdk_module):
    original = getattr(sdk_module, telemetry.SDK_SENDER)
    with telemetry.sdk_telemetry(False) as swapped:
        assert swapped is True
        assert getattr(sdk_module, telemetry.SDK_SENDER) is telemetry.dropped_sender()
        # Nested use (a build inside a build) keeps the swap until the outermost block exits.
        with telemetry.sdk_telemetry(False):
            pass
        assert getattr(sdk_module, telemetry.SDK_SENDER) is telemetry.dropped_sender()
    assert getattr(sdk_module, telemetry.SDK_SENDER) is original


def test_restored_after_an_exception(sdk_module):
    original = getattr(sdk_module, telemetry.SDK_SENDER)
    with pytest.raises(RuntimeError), telemetry.sdk_telemetry(False):
        raise RuntimeError("boom")
    assert getattr(sdk_module, telemetry.SDK_SENDER) is original


def test_enabled_leaves_the_sdk_alone(sdk_module):
    original = getattr(sdk_module, telemetry.SDK_SENDER)
    with telemetry.sdk_telemetry(True) as ok:
        assert ok is True
        assert getattr(sdk_module, telemetry.SDK_SENDER) is original


def test_the_drop_sender_starts_no_thread_and_sends_nothing():
    before = threading.active_count()
    assert telemetry.dropped_sender()(1, [16], object(), None, None, "extra") is None
    assert threading.active_count() == before


def test_missing_sdk_sender_asks_for_the_config_fallback(sdk_module, monkeypatch):
    monkeypatch.delattr(sdk_module, telemetry.SDK_SENDER)
    with telemetry.sdk_telemetry(False) as swapped:
        assert swapped is False


def test_sdk_decorator_routes_through_the_swappable_global(sdk_module):
    # The swap only works because the SDK's wrapper looks the sender up as a module global at
    # call time. Pin that: if the SDK ever binds it at decoration time, this test fails.
    import inspect

    source = inspect.getsource(sdk_module._telemetry_emitter)
    assert f"{telemetry.SDK_SENDER}(" in source
    assert sdk_module._telemetry_emitter.__globals__ is vars(sdk_module)
