"""Where a benchmark's record goes: one JSON file per run, under ``benchmarks/results/`` by default."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def write_record(record: dict[str, Any], benchmark: str, out: Path | None = None) -> Path:
    """Write `record` as JSON to `out` (default ``results/<benchmark>-<UTC time>.json``) and say where."""
    out = Path(out) if out else RESULTS_DIR / f"{benchmark}-{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%SZ}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {out}")
    return out
