"""`make test`: every test of the course, phase by phase, with the wall time of each.

Phases (all run, even after a failure, so one run shows every problem):

1. unit       helper package, generator and cleaner, check-rejects-wrong-code tests,
              notebook policy and labs-in-sync (pytest on two cores, no notebooks
              executed; the ten slowest tests are listed)
2. stubs      every generated lab executes and fails only with NotImplementedError
3. nbval      every solution re-executed and its outputs compared (strict)
4. foreign    the same nbval run under settings that make this CPU compute floats as
              another CPU would (other SIMD paths, BLAS kernels, thread counts; see
              tools/foreign_cpu.py): the stored outputs must hold on every machine
5. book       the HTML book builds with warnings as errors, full and student edition
6. browser    headless Chromium opens the built book and checks what a reader sees

The last line is a plain summary, ``N passed, N failed``, of the phases.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
PYTEST = [PY, "-m", "pytest", "-p", "no:cacheprovider", "-q"]

#: nbval over every solution, strict, two notebooks at a time (one per core).
NBVAL = PYTEST + [
    "-p",
    "tests.record_times",
    "--nbval",
    "solutions",
    "--nbval-sanitize-with",
    "tests/nbval_sanitize.cfg",
    "-n",
    "2",
    "--dist",
    "loadfile",
]

#: where the nbval phase records each solution's execution time (tests/conftest.py);
#: the status page and tools/make_nbgrader.py read it
TIMES_FILE = "_build/status/solution_times.json"

PHASES = [
    # two workers, one test file each at a time: module fixtures are built once
    ("unit", PYTEST + ["tests", "-m", "not notebooks and not browser", "-n", "2",
                       "--dist", "loadfile", "--durations", "10"]),
    ("stubs", PYTEST + ["tests", "-m", "notebooks", "-n", "2", "--dist", "load"]),
    ("nbval", NBVAL),
    ("foreign", [PY, "tools/foreign_cpu.py", "--nbval"]),
    ("book", [PY, "tools/build_book.py", "--both"]),
    ("browser", PYTEST + ["tests", "-m", "browser"]),
]


def main(argv: list[str]) -> int:
    wanted = argv or [name for name, _ in PHASES]
    unknown = set(wanted) - {name for name, _ in PHASES}
    if unknown:
        print(f"unknown phase(s) {sorted(unknown)}; phases: {[n for n, _ in PHASES]}")
        return 2
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    results = []
    for name, cmd in PHASES:
        if name not in wanted:
            continue
        print(f"\n=== phase {name}: {' '.join(cmd[1:])}", flush=True)
        start = time.perf_counter()
        phase_env = dict(env, M2M_RECORD_TIMES=TIMES_FILE) if name == "nbval" else env
        status = subprocess.call(cmd, cwd=ROOT, env=phase_env)
        results.append((name, status, time.perf_counter() - start))
    print("\n=== make test summary")
    for name, status, seconds in results:
        print(
            f"{name:8} {'ok' if status == 0 else f'FAILED ({status})':12} "
            f"{seconds:7.1f} s"
        )
    total = sum(s for _, _, s in results)
    failed = sum(1 for _, status, _ in results if status != 0)
    print(f"{'total':8} {'':12} {total:7.1f} s")
    print(f"phases: {len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
