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

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
PYTEST = [PY, "-m", "pytest", "-p", "no:cacheprovider", "-q"]

#: where the nbval phase records each solution's execution time (tests/record_times.py);
#: the status page, tools/make_nbgrader.py and the order of the next nbval run read it
TIMES_FILE = "_build/status/solution_times.json"


#: the thread-pool sizes of the libraries the course uses (OpenMP for torch, MKL,
#: OpenBLAS, Numba, TVM); tools/foreign_cpu.py sets them too
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                    "NUMBA_NUM_THREADS", "TVM_NUM_THREADS")

#: one thread per pytest worker, for the phases that time nothing: two workers already
#: fill the two cores, and a worker's second OpenMP thread spins while it waits, taking
#: the core from the other worker (the unit phase here: 151 s -> 103 s, CPU 260 -> 170
#: core-seconds; a check that trains a tiny net took 13 s beside another worker instead
#: of 0.15 s alone). The nbval phase keeps the machine's own counts: it runs the
#: solutions as a learner does, and their timing claims are made with them.
ONE_THREAD_EACH = {name: "1" for name in THREAD_VARIABLES}


def budget_s(notebook: str) -> int:
    """The course's execution budget of a solution in seconds (developers' guide)."""
    if "lab06_01" in notebook:
        return 120
    return 90 if "/04_compilers/" in notebook else 60


def solutions_longest_first(root: Path = ROOT) -> list[str]:
    """Every solution, the longest-running first, so that two workers that take them in
    turn end together. Longest as recorded by the last nbval run, else by budget (then
    path), which on the recorded times of this machine orders as well."""
    notebooks = sorted(p.relative_to(root).as_posix()
                       for p in (root / "solutions").rglob("*.ipynb")
                       if ".ipynb_checkpoints" not in p.parts)
    try:
        recorded = json.loads((root / TIMES_FILE).read_text(encoding="utf-8"))["notebooks"]
    except (OSError, ValueError, KeyError, TypeError):
        recorded = {}

    def cost(nb: str) -> tuple[float, float]:
        seconds = recorded.get(nb, {}).get("seconds") if isinstance(recorded, dict) else None
        return (-(seconds if isinstance(seconds, (int, float)) else budget_s(nb)),
                -budget_s(nb))

    return sorted(notebooks, key=cost)


def nbval_command(root: Path = ROOT) -> list[str]:
    """nbval over every solution, strict, two notebooks at a time (one per core)."""
    # --no-loadscope-reorder: xdist would otherwise hand out the notebooks with the
    # most cells first, not in this order (simulated on the recorded times: 189 s
    # against 181 s for the phase)
    return PYTEST + ["-p", "tests.record_times", "--nbval", *solutions_longest_first(root),
                     "--nbval-sanitize-with", "tests/nbval_sanitize.cfg",
                     "-n", "2", "--dist", "loadfile", "--no-loadscope-reorder"]


def marked_files(mark: str, root: Path = ROOT) -> list[str]:
    """The test files that spell ``mark.<mark>``: a phase that runs only marked tests
    collects just these (tests/conftest.py refuses a marked test elsewhere)."""
    return [p.relative_to(root).as_posix() for p in sorted((root / "tests").glob("test_*.py"))
            if f"mark.{mark}" in p.read_text(encoding="utf-8")]


PHASES = [
    # two workers, one test file each at a time: module fixtures are built once
    ("unit", PYTEST + ["tests", "-m", "not notebooks and not browser", "-n", "2",
                       "--dist", "loadfile", "--durations", "10"]),
    ("stubs", PYTEST + [*marked_files("notebooks"), "-m", "notebooks", "-n", "2",
                        "--dist", "load"]),
    ("nbval", nbval_command()),
    ("foreign", [PY, "tools/foreign_cpu.py", "--nbval"]),
    ("book", [PY, "tools/build_book.py", "--both"]),
    # nothing is timed: two browsers, one per core
    ("browser", PYTEST + [*marked_files("browser"), "-m", "browser", "-n", "2",
                          "--dist", "load"]),
]


def phase_env(name: str, env: dict[str, str]) -> dict[str, str]:
    """The environment of phase ``name``: nbval records the solutions' times, the
    phases that time nothing run one thread per worker."""
    if name == "nbval":
        return dict(env, M2M_RECORD_TIMES=TIMES_FILE)
    if name in ("unit", "stubs"):
        return dict(env, **ONE_THREAD_EACH)
    return dict(env)


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
        status = subprocess.call(cmd, cwd=ROOT, env=phase_env(name, env))
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
