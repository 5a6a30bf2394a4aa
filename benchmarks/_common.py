"""Helpers shared by the benchmark scripts: machine description and JSON output."""

from __future__ import annotations

import sys

import datetime as _dt
import json
import os
import platform
from pathlib import Path


def machine() -> dict:
    import torch

    info = {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        flags = Path("/proc/cpuinfo").read_text()
        info["amx"] = "amx_bf16" in flags
    except OSError:
        pass
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def write_result(name: str, result: dict, out: str | None = None) -> Path:
    path = Path(out or f"bench-out/{name}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    result = {"benchmark": name, "machine": machine(), **result}
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {path}")
    return path


def run(main) -> None:
    """Run a benchmark's `main`: Ctrl-C ends it with one line and exit status 130 instead of a traceback (results
    are written once, at the end, by `write_result`, so nothing half-written is left)."""
    try:
        main()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        raise SystemExit(130) from None
