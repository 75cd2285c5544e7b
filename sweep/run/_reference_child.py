"""``python -m sweep.run._reference_child``: the child-process entry point of the reference.

Reads one JSON request on stdin (the study's split and the reference's settings, see
:func:`sweep.run.reference.run_reference`), splits the data file as every trial does, refuses a
split whose hash differs from the study's, fits and scores the supervised reference
(:func:`sweep.train.reference.reference_result`), and writes one JSON line on stdout: ``{"type":
"result", "result": ...}`` or ``{"type": "error", "message": ...}``. Only this process imports
scikit-learn; the launching process stays free of it.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from typing import Any


def main() -> int:
    """Read the request, fit and score the reference, write the answer; exit status."""
    channel = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # stray prints go to stderr; stdout carries the answer only
    sys.stdout = sys.stderr
    try:
        result = _run(json.loads(sys.stdin.readline()))
    except Exception as e:  # every failure is reported, not raised
        text = " ".join(str(e).split())[:500]
        message = text if type(e).__name__ == "DataError" else f"{type(e).__name__}: {text}"
        channel.write(json.dumps({"type": "error", "message": message}) + "\n")
        return 1
    channel.write(json.dumps({"type": "result", "result": result}) + "\n")
    return 0


def _run(request: Mapping[str, Any]) -> dict[str, Any]:
    from sweep.train.data import check_split_sha256
    from sweep.train.data import load_dataset
    from sweep.train.reference import reference_result

    data = load_dataset(
        request["data_path"],
        val_fraction=request["val_fraction"],
        test_fraction=request["test_fraction"],
        split_seed=request["split_seed"],
    )
    check_split_sha256(data, request.get("split_sha256") or "")
    return reference_result(
        data,
        C=request["C"],
        bin_width=request["bin_width"],
        score_test=bool(request.get("score_test")),
    )


if __name__ == "__main__":
    raise SystemExit(main())
