"""Shared helpers of the benchmark scripts: machine facts and the JSON result file."""

from __future__ import annotations

import json
import os
import platform
import resource
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def peak_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine() -> dict[str, object]:
    return {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def record(area: str, result: dict[str, object]) -> Path:
    """Print the result and write it to bench/results/<area>.json."""
    payload = {"area": area, **result, "peak_mb": round(peak_mb(), 1), "machine": machine()}
    RESULTS_DIR.mkdir(exist_ok=True)
    out = RESULTS_DIR / f"{area}.json"
    out.write_text(json.dumps(payload, indent=2) + "\n")
    print(json.dumps(payload, indent=2))
    return out
