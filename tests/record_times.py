"""pytest plugin: the execution time of every solution notebook, for the status page.

``tools/run_tests.py`` loads it into the nbval runs (``-p tests.record_times``) and sets
``M2M_RECORD_TIMES`` (a path under the repository) for the nbval phase only, so the
foreign-CPU run, which is slower on purpose, records nothing. Each nbval item is one
cell; the controller (not an xdist worker) sums the cells per notebook and writes JSON:
date, machine, CUDA backend, and per notebook its seconds, slowest cell and cells.
"""

from __future__ import annotations

import datetime
import json
import os
from pathlib import Path

_cell_seconds: dict[str, list[float]] = {}


def pytest_runtest_logreport(report):
    if report.when == "call" and ".ipynb::" in report.nodeid:
        notebook = report.nodeid.split("::", 1)[0]
        _cell_seconds.setdefault(notebook, []).append(report.duration)


def pytest_sessionfinish(session):
    target = os.environ.get("M2M_RECORD_TIMES")
    if not target or not _cell_seconds or hasattr(session.config, "workerinput"):
        return
    from model2metal import device

    cpu = device.cpu_info()
    now = datetime.datetime.now(datetime.timezone.utc)
    record = {
        "date": now.strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{cpu.model} ({cpu.usable_cores} usable cores, {cpu.widest_simd})",
        "cuda": device.cuda_backend(),
        "notebooks": {
            notebook: {
                "seconds": round(sum(cells), 2),
                "slowest_cell_s": round(max(cells), 2),
                "cells": len(cells),
            }
            for notebook, cells in sorted(_cell_seconds.items())
        },
    }
    path = Path(session.config.rootpath) / target
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
