"""Where a benchmark's results go: printed, and with ``--write`` saved to
``benchmarks/results/<script>.md`` for the book and the README to cite.

The header of every results file comes from the helper package's device report, never
from a hand-written machine name, so a file says truthfully where it was measured.
"""

from __future__ import annotations

import datetime
import json
import sys
from pathlib import Path

from model2metal import device

RESULTS = Path(__file__).resolve().parent / "results"


def header(script: str, method: str, cuda: bool = False) -> str:
    """Markdown header: what ran, when, on which machine, with which method.

    ``cuda``: add the CUDA backend line (GPU name or simulator) of the device report.
    """
    versions = ", ".join(
        f"{name} {sys.modules[name].__version__}"
        for name in ("numpy", "numba", "torch", "onnxruntime", "tvm")
        if name in sys.modules and hasattr(sys.modules[name], "__version__")
    )
    report = device.report(cuda=cuda).splitlines()
    lines = [
        f"# `benchmarks/{script}.py` results",
        "",
        f"- date: {datetime.date.today().isoformat()}",
        f"- machine: {device.hardware_string()}",
        *(f"- {line.split(':', 1)[0].strip()}: {line.split(':', 1)[1].strip()}"
          for line in report if ":" in line),
        f"- packages: {versions}",
        f"- method: {method}",
        "",
        "",
    ]
    return "\n".join(lines)


def emit(
    script: str,
    method: str,
    body: str,
    write: bool,
    cuda: bool = False,
    data: dict | None = None,
) -> None:
    """Print the results; with ``write`` also save them under ``benchmarks/results``.

    ``data``: the numbers behind the table, saved as ``<script>.json`` beside it (with
    the date, machine and method) for pages that plot or quote them.
    """
    text = header(script, method, cuda) + body.rstrip("\n") + "\n"
    print(text)
    if write:
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"{script}.md"
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path.relative_to(RESULTS.parents[1])}")
        if data is not None:
            record = {"date": datetime.date.today().isoformat(),
                      "machine": device.hardware_string(), "method": method, **data}
            json_path = path.with_suffix(".json")
            json_path.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
            print(f"wrote {json_path.relative_to(RESULTS.parents[1])}")
