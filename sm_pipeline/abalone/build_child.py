"""Build the abalone definition in a child process: ``python -m sm_pipeline.abalone.build_child CONFIG OUT``.

Why a child: a process that imported the SageMaker SDK and built a pipeline takes 1-2 s to exit
(the interpreter tears its object graph down) and keeps a few hundred MB; an Airflow task that
deploys the definition should pay neither. The parent (:func:`build_in_child`) hands over the
resolved config; the child writes the definition JSON atomically to OUT and leaves with
``os._exit`` once it is on disk, skipping the teardown (nothing of it remains to be written).

Exit codes: 0 written, 2 invalid config (one line on stderr), 1 anything else (traceback).
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from sm_pipeline.errors import InvalidInput, one_line


def build_in_child(config) -> str:
    """``definition_json(config)``, built by a child Python process; InvalidInput/RuntimeError name the failure."""
    with tempfile.TemporaryDirectory(prefix="airsage-build-") as scratch:
        config_file, out = Path(scratch) / "config.json", Path(scratch) / "definition.json"
        config_file.write_text(json.dumps(dataclasses.asdict(config), default=str), encoding="utf-8")
        done = subprocess.run([sys.executable, "-m", __name__, str(config_file), str(out)],  # noqa: S603
                              capture_output=True, text=True, check=False)
        if done.returncode == 2:
            raise InvalidInput(one_line(done.stderr.strip().removeprefix("error: ")))
        if done.returncode != 0 or not out.is_file():
            raise RuntimeError(f"building the abalone definition failed (exit {done.returncode}): "
                               f"{done.stderr.strip()[-2000:]}")
        return out.read_text(encoding="utf-8")


def main(argv: list[str]) -> int:
    """Build the definition for the config file ``argv[0]`` into ``argv[1]``."""
    from sm_pipeline.abalone.config import load_config
    from sm_pipeline.abalone.definition import definition_json
    from sm_pipeline.storage_io import write_text_atomic

    config_file, out = argv
    try:
        # the resolved config, as given: no AIRSAGE_* variable of this process's environment applies again
        config = load_config(env={}, overrides=json.loads(Path(config_file).read_text(encoding="utf-8")))
        write_text_atomic(Path(out), definition_json(config))
    except InvalidInput as exc:
        print(f"error: {one_line(str(exc))}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    code = main(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
