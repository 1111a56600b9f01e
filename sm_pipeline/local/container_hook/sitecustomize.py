"""Startup hook for scripts run by the local runner: ``/opt/ml/...`` paths are redirected to the sandbox.

Python imports ``sitecustomize`` at start-up from the first ``sys.path`` entry that has it; the runner
puts this directory first on PYTHONPATH and sets AIRSAGE_CONTAINER_ROOT to the step's sandbox, so a
script that hard-codes ``/opt/ml/processing/input`` reads ``<sandbox>/opt/ml/processing/input``
without root privileges, on Linux and macOS alike.

What is covered: ``open``/``io.open`` and the ``os`` functions that take paths (and therefore
``os.path``, ``pathlib``, ``shutil``, ``glob``, ``tarfile``, pandas and numpy file IO, which go through
them). What is not: C extensions that open files themselves (e.g. ``xgboost.Booster.load_model`` with
an ``/opt/ml`` path string), subprocesses the script starts, and ``os.path.realpath``/``abspath``
results (they still show ``/opt/ml``, which keeps working for the calls above).

Being first on PYTHONPATH, this module shadows any ``sitecustomize`` the job would otherwise have
run (coverage measurement, an audit hook, a site's own setup); it runs that one too, see
:func:`_chain_next_sitecustomize`.
"""

import builtins
import io
import os

_ROOT = os.environ.get("AIRSAGE_CONTAINER_ROOT", "")
_PREFIX = "/opt/ml"


def _remap(path):
    if isinstance(path, int):
        return path
    if isinstance(path, os.PathLike):
        path = os.fspath(path)
    if isinstance(path, str):
        if path == _PREFIX or path.startswith(_PREFIX + "/"):
            return _ROOT + path
    elif isinstance(path, bytes):
        if path == _PREFIX.encode() or path.startswith(_PREFIX.encode() + b"/"):
            return os.fsencode(_ROOT) + path
    return path


def _wrap_first(function):
    def wrapper(path, *args, **kwargs):
        return function(_remap(path), *args, **kwargs)

    wrapper.__name__ = getattr(function, "__name__", "wrapper")
    wrapper.__doc__ = function.__doc__
    wrapper.__wrapped__ = function
    return wrapper


def _wrap_two(function):
    def wrapper(src, dst, *args, **kwargs):
        return function(_remap(src), _remap(dst), *args, **kwargs)

    wrapper.__name__ = getattr(function, "__name__", "wrapper")
    wrapper.__wrapped__ = function
    return wrapper


def _scandir(path=".", *args, **kwargs):
    # scandir entries carry the path as given, so keep reporting /opt/ml paths to the script.
    return _original_scandir(_remap(path), *args, **kwargs)


def _install():
    global _original_scandir
    patched_open = _wrap_first(builtins.open)
    builtins.open = patched_open
    io.open = patched_open
    for name in ("stat", "lstat", "listdir", "mkdir", "makedirs", "remove", "unlink", "rmdir", "chdir",
                 "chmod", "access", "utime", "truncate", "open", "readlink", "removedirs", "statvfs",
                 "mkfifo", "chown", "lchown"):
        if hasattr(os, name):
            setattr(os, name, _wrap_first(getattr(os, name)))
    for name in ("rename", "replace", "link", "symlink"):
        if hasattr(os, name):
            setattr(os, name, _wrap_two(getattr(os, name)))
    _original_scandir = os.scandir
    os.scandir = _scandir


def _die_with_parent():
    # Processes a job starts die with the job (Linux), as the job dies with the runner: a runner
    # killed with SIGKILL leaves nothing running. See sm_pipeline/local/processes.py.
    import sys

    if not sys.platform.startswith("linux"):
        return
    import signal

    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    # The parent may have died before the signal was armed: then this process is an orphan already.
    expected = os.environ.get("AIRSAGE_PARENT_PID", "")
    parent = os.getppid()
    if parent == 1 or (expected.isdigit() and int(expected) != parent and not _alive(int(expected))):
        os.kill(os.getpid(), signal.SIGKILL)
    os.environ["AIRSAGE_PARENT_PID"] = str(os.getpid())  # what this process's children check


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _chain_next_sitecustomize():
    """Run the ``sitecustomize`` that Python would have found without this directory on the path."""
    import importlib.machinery
    import importlib.util
    import sys

    here = os.path.dirname(os.path.abspath(__file__))
    # Only the entries after this directory: those before it were searched already (looking
    # there again would find the sitecustomize that chained to this one, and loop).
    entries = [os.path.abspath(entry or os.curdir) for entry in sys.path]
    rest = sys.path[entries.index(here) + 1:] if here in entries else []
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", rest)
    if spec is None or spec.loader is None or spec.origin == os.path.abspath(__file__):
        return
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules["_airsage_chained_sitecustomize"] = module


_chain_next_sitecustomize()
if _ROOT:
    _original_scandir = None
    _install()
    _die_with_parent()
