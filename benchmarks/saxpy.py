"""saxpy three ways (lab 00_01, part 6): Numba loop, NumPy with out=, NumPy a*x+y.

Prints, for an in-cache and a DRAM-sized problem, each variant's median time, its
bandwidth and its speed-up over the allocating NumPy expression, with the hardware and
the date. Ratios measured in one run are what the course quotes; absolute numbers
depend on the machine.

    .venv/bin/python benchmarks/saxpy.py [--repeat 25] [--write]

``--write`` saves the table to ``benchmarks/results/saxpy.md``.
"""

from __future__ import annotations

import argparse

import numpy as np
from numba import njit

from model2metal import timing
from results_file import emit


@njit
def saxpy_numba(a, x, y, out):
    for i in range(x.shape[0]):
        out[i] = a * x[i] + y[i]


def saxpy_numpy_out(a, x, y, out):
    np.multiply(x, a, out=out)
    np.add(out, y, out=out)


def saxpy_numpy_expr(a, x, y, out):
    out[:] = a * x + y


VARIANTS = {
    "Numba loop": saxpy_numba,
    "NumPy out=": saxpy_numpy_out,
    "NumPy a*x+y": saxpy_numpy_expr,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=25)
    parser.add_argument("--write", action="store_true", help="save the results file")
    args = parser.parse_args()
    a = np.float32(2.0)
    rows = ["| elements | variant | median | GB/s | vs NumPy a*x+y |",
            "|---:|---|---:|---:|---:|"]
    for n in (1 << 14, 1 << 24):  # 64 KiB per array (in cache), 64 MiB (DRAM)
        x, y = np.ones(n, np.float32), np.ones(n, np.float32)
        out = np.empty_like(x)
        results = [
            timing.measure(fn, a, x, y, out, name=name, repeat=args.repeat)
            for name, fn in VARIANTS.items()
        ]
        base = results[-1].median
        for r in results:
            gbs = 3 * n * 4 / r.median / 1e9
            rows.append(
                f"| {n:,} | {r.name} | {timing.format_seconds(r.median)} | "
                f"{gbs:.1f} | {base / r.median:.2f}× |"
            )
    method = (f"saxpy in float32; 3 warm-up calls, median of {args.repeat} samples "
              "(timing.measure); GB/s counts 3 arrays of 4-byte floats moved per call")
    emit("saxpy", method, "\n".join(rows), args.write)


if __name__ == "__main__":
    main()
