"""A labelled CSV a run starts from, and the batch-transform rows derived from it.

One rule for every way data enters a run -- the DAG factory's ``stage_input`` task (any team's CSV) and
``python -m sm_pipeline run-local --stage-data`` (the abalone sample) -- so a file that one accepts the
other accepts too: a CSV with a header row naming the label column; the batch rows are the same rows
without that column.
"""

from __future__ import annotations

import csv
import io


def batch_rows(data: bytes, source: str, label: str) -> tuple[bytes, int]:
    """The CSV without its label column (the batch-transform input) and the row count.

    Raises ValueError naming the source when the file is not UTF-8, empty, has no label column
    or no data rows. A UTF-8 byte-order mark (Excel's "CSV UTF-8") is accepted and dropped.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ValueError(f"{source}: not UTF-8 text ({err})") from None
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or not any(cell.strip() for cell in rows[0]):
        raise ValueError(f"{source}: empty file, expected a CSV header with a {label!r} column")
    header = [h.strip() for h in rows[0]]
    lowered = [h.lower() for h in header]
    if label.lower() not in lowered:
        raise ValueError(f"{source}: header {header} has no {label!r} column")
    body = [r for r in rows[1:] if any(c.strip() for c in r)]
    if not body:
        raise ValueError(f"{source}: header only, no data rows")
    index = lowered.index(label.lower())
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for row in [header, *body]:
        writer.writerow(row[:index] + row[index + 1:])
    return out.getvalue().encode("utf-8"), len(body)
