"""The one container script of the conformance pipelines: ``conformance_step.py MODE [options]``.

Modes: ``shard`` (count the rows of the objects this host received, per host), ``sum`` (add the
hosts' counts up into report.json, the PropertyFile), ``touch`` (write a marker), ``sleep`` (take a
moment, then write a marker), ``item`` (a ForEach body step: write the item's name and rows to a marker,
per host, or fail with one line when ``--name`` is ``--fail-on``). Standard library only; paths are container paths.
"""

import argparse
import glob
import json
import os
import sys
import time

BASE = "/opt/ml/processing"


def host() -> str:
    with open("/opt/ml/config/resourceconfig.json") as fh:
        return json.load(fh)["current_host"]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["shard", "sum", "touch", "sleep", "item"])
    parser.add_argument("--seconds", type=float, default=0.0)
    parser.add_argument("--tag", default="")
    parser.add_argument("--name", default="")
    parser.add_argument("--rows", default="0")
    parser.add_argument("--fail-on", default="")
    args = parser.parse_args()
    if args.mode == "shard":
        files = sorted(os.path.relpath(p, f"{BASE}/rows") for p in glob.glob(f"{BASE}/rows/**/*.csv", recursive=True))
        rows = 0
        for name in files:
            with open(os.path.join(f"{BASE}/rows", name)) as fh:
                rows += sum(1 for line in fh if line.strip())
        me = host()
        with open(f"{BASE}/counts/count-{me}.json", "w") as fh:
            json.dump({"host": me, "files": files, "rows": rows}, fh)
    elif args.mode == "sum":
        counts = [json.load(open(p)) for p in sorted(glob.glob(f"{BASE}/counts/*.json"))]
        if not counts:
            print("sum: no counts in /opt/ml/processing/counts", file=sys.stderr)
            return 2
        report = {"rows": sum(c["rows"] for c in counts), "files_by_host": {c["host"]: c["files"] for c in counts}}
        with open(f"{BASE}/report/report.json", "w") as fh:
            json.dump(report, fh)
    elif args.mode == "item":
        if args.name == args.fail_on:
            print(f"item: refusing item {args.name!r} (--fail-on)", file=sys.stderr)
            return 3
        with open(f"{BASE}/out/item-{host()}.json", "w") as fh:
            json.dump({"name": args.name, "rows": int(args.rows)}, fh)
    else:
        time.sleep(args.seconds)
        with open(f"{BASE}/out/marker.txt", "w") as fh:
            fh.write(f"{args.mode} {args.tag}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
