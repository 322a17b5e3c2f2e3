"""Checks for lab 05_02 "CUDA kernels I: threads, indexing and memory access".

Every kernel is launched by the check itself, with the launch the lab states
(``block`` threads per block, and just enough blocks to cover the data):

* ``vector_add(x, y, out)``: float32 vectors of length ``n``; a 1-D grid of
  ``ceil(n / block)`` blocks; ``out[i] = x[i] + y[i]``.
* ``scale_2d(a, s, out)``: float32 ``a`` and ``out`` of ``rows`` x ``cols``, a
  Python float ``s``; a 2-D grid whose ``x`` runs along the columns and ``y``
  along the rows: ``(ceil(cols / bx), ceil(rows / by))`` blocks of ``(bx, by)``;
  ``out = s * a``.
* ``copy_rows(a, out)``: one thread per row, a 1-D grid of
  ``ceil(rows / 32)`` blocks of 32; thread ``i`` copies row ``i`` of ``a``.
* ``copy_cols(a, out)``: one thread per column, ``ceil(cols / 32)`` blocks of
  32; thread ``j`` copies column ``j``; the warp's accesses must be coalesced.
* ``blur3x3(img, out)``: the 2-D launch of ``scale_2d``; ``out[r, c]`` is the
  mean of the pixels of the 3 x 3 window around ``(r, c)`` that lie inside the
  image (9 inside, 6 on an edge, 4 in a corner).
* ``find_guard(ptx)`` and ``find_loads(ptx)`` take a ``cudakit.Ptx`` and return
  a list of lines of ``ptx.instructions``, in their order: the bounds guard
  (every ``setp`` comparison and every branch on a predicate, ``@%p... bra``;
  the ``and/or/xor/not.pred`` lines that combine predicates may be included or
  not), and the loads of array elements (every ``ld.`` that is not
  ``ld.param``).

Each launch runs in the simulator through :func:`model2metal.cudakit.trace`, so
besides the values the checks see every memory access: which thread touched
which element, races (two threads writing one element), negative indices (which
Numba wraps around) and how many 32-byte sectors each warp's access needs. On a
machine with a GPU the trace runs in a simulator process and the kernel also
runs on the GPU, where the values are compared again. Outputs start as NaN, so
an element no thread wrote shows as NaN.
"""

from __future__ import annotations

import math
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import numpy as np

from .. import cudakit, device
from .core import CheckFailed, call_learner, describe, passed

__all__ = [
    "check_vector_add",
    "check_scale_2d",
    "check_copy_rows",
    "check_copy_cols",
    "check_blur3x3",
    "check_find_guard",
    "check_find_loads",
]

WARP = 32
RTOL, ATOL = 1e-5, 1e-6  # float32 sums of at most 9 values in [0, 1)


# --- running a kernel ------------------------------------------------------------


def _require_kernel(check: str, kernel: Any) -> None:
    if not (callable(kernel) and hasattr(kernel, "py_func")):
        raise CheckFailed(
            check, "the argument",
            f"expected a @cuda.jit kernel, got {describe(kernel)}",
            "decorate the function with @cuda.jit and pass the kernel itself",
        )


def _name(kernel) -> str:
    return getattr(kernel.py_func, "__name__", "kernel")


def _run(check: str, case: str, kernel, grid, block, args, oob_hint: str
         ) -> cudakit.Trace:
    """Launch through the tracer: a learner error (an IndexError in a GPU thread
    included) becomes one CheckFailed, the stub's NotImplementedError passes."""
    def launch():  # no arguments: the message shows the case, not the arrays
        return cudakit.trace(kernel, grid, block, *args)

    return call_learner(
        check, case, launch, label=f"{_name(kernel)}[{grid}, {block}]",
        hint="the message names the GPU thread that failed (tid is threadIdx, "
        "ctaid is blockIdx): work out which index that thread computed",
        evidence=[(r"IndexError", oob_hint)],
    )


def _on_gpu(check: str, case: str, kernel, grid, block, args: list,
            compare: Callable[[str, list], None]) -> None:
    """On a real GPU, run the kernel there too and compare (the trace above ran
    in the simulator)."""
    if device.select_cuda_backend() != "gpu":
        return
    from numba import cuda

    fresh = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    fresh[-1][...] = np.nan  # the output is the last argument
    # device arrays: a NumPy argument would make Numba warn about the copies
    on_device = [cuda.to_device(a) if isinstance(a, np.ndarray) else a
                 for a in fresh]

    def launch():
        cudakit.launch(kernel, grid, block, *on_device)

    call_learner(check, case + " (on the GPU)", launch,
                 label=f"{_name(kernel)}[{grid}, {block}] on the GPU")
    compare(case + " (on the GPU)",
            [d.copy_to_host() if hasattr(d, "copy_to_host") else d
             for d in on_device])


def _inputs_unchanged(check, case, names, before, after) -> None:
    for name, b, a in zip(names, before, after):
        if not np.array_equal(b, a, equal_nan=True):
            raise CheckFailed(
                check, case, f"the kernel wrote into its input `{name}`",
                "only the output array is written; the inputs stay as they were",
            )


def _index(idx: tuple) -> str:
    return ", ".join(str(int(i)) for i in idx)


def _mismatch(check, case, name, got, expect, hint, rtol=RTOL, atol=ATOL):
    """CheckFailed at the first wrong element (NaN: never written), or None.
    ``hint`` is a string or a function of no arguments that makes one."""
    bad = ~np.isclose(got, expect, rtol=rtol, atol=atol)
    if not bad.any():
        return None
    hint = hint() if callable(hint) else hint
    idx = tuple(int(i) for i in np.argwhere(bad)[0])
    g = got[idx]
    shown = "NaN (never written: outputs start as NaN)" if np.isnan(g) \
        else f"{float(g):.7g}"
    unwritten = int(np.isnan(got).sum())
    extra = f"; {unwritten} never written" if unwritten else ""
    return CheckFailed(
        check, case,
        f"{name}[{_index(idx)}]: expected {float(expect[idx]):.7g}, got {shown}\n"
        f"{int(bad.sum())} of {bad.size} elements wrong{extra}",
        hint,
    )


def _no_races(check, case, tr, hint) -> None:
    races = tr.hazards(limit=1)
    if races:
        raise CheckFailed(check, case, f"two threads wrote one element: "
                          f"{races[0]}", hint)


# --- 1. vector add -----------------------------------------------------------------


def _vector_hint(got, expect, n, block, blocks, tr) -> str:
    nan = np.isnan(got)
    if tr is not None and tr.count("global", "w", "out") == 0:
        if n == 1:
            return ("no thread wrote out[0]: the thread with grid index 0 "
                    "must pass the guard and store its element")
        return "no thread wrote to out: is the store inside the guard reached?"
    first_ok = bool(np.allclose(got[:block], expect[:block], rtol=RTOL, atol=ATOL))
    if blocks > 1 and first_ok and nan[block:].all():
        return (f"only the first block's {block} elements were written: every "
                "block's threads computed the same indices. A thread's index "
                "in the whole grid also counts the threads of the blocks before "
                "its own")
    bad = np.flatnonzero(~np.isclose(got, expect, rtol=RTOL, atol=ATOL))
    if nan[bad].all() and np.array_equal(bad, np.arange(bad[0], n)):
        return (f"the last {len(bad)} element(s) were never written: the guard "
                "must let every index below the length through, and only those")
    return ("out[i] is x[i] + y[i], computed by the thread whose index in the "
            "grid is i")


def check_vector_add(kernel) -> None:
    """Right for lengths that are and are not multiples of the block, for two
    block sizes, each element written by one thread."""
    check = "check_vector_add"
    _require_kernel(check, kernel)
    rng = np.random.default_rng(52)
    cases = [(1, 32), (31, 32), (32, 32), (33, 32), (1000, 32), (33, 128),
             (1000, 128)]
    for n, block in cases:
        blocks = math.ceil(n / block)
        case = f"n = {n}, {blocks} block(s) of {block}"
        x = rng.random(n, dtype=np.float32)
        y = rng.random(n, dtype=np.float32)
        out = np.full(n, np.nan, np.float32)
        expect = x + y
        before = [x.copy(), y.copy()]
        spare = blocks * block - n
        tr = _run(
            check, case, kernel, blocks, block, (x, y, out),
            f"a thread indexed past the end of an array. {blocks} block(s) of "
            f"{block} threads are {blocks * block} threads for {n} element(s): "
            f"the last block has {spare} thread(s) with no element, and they "
            "must not touch the arrays (a bounds guard)" if spare else
            "a thread indexed past the end of an array: which index did the "
            "thread named in the message compute?",
        )
        _inputs_unchanged(check, case, ("x", "y"), before, (x, y))

        def compare(case, args, tr=None):
            failure = _mismatch(check, case, "out", args[2], expect,
                                lambda: _vector_hint(args[2], expect, n, block,
                                                     blocks, tr))
            if failure:
                raise failure

        compare(case, [x, y, out], tr)
        _no_races(check, case, tr, "each element is the job of one thread: the "
                  "thread whose index in the grid equals the element's index")
        _on_gpu(check, case, kernel, blocks, block, [x, y, out], compare)
    passed(check, len(cases))


# --- 2. 2-D indexing ---------------------------------------------------------------


def _launch_2d(rows: int, cols: int, block: tuple[int, int]):
    bx, by = block
    return (math.ceil(cols / bx), math.ceil(rows / by)), (bx, by)


def _swapped(a_expect: np.ndarray, grid, block) -> np.ndarray:
    """What a kernel that takes its row from x and its column from y (with a
    guard on both) leaves in out."""
    rows, cols = a_expect.shape
    x_threads, y_threads = grid[0] * block[0], grid[1] * block[1]
    got = np.full_like(a_expect, np.nan)
    r, c = min(rows, x_threads), min(cols, y_threads)
    got[:r, :c] = a_expect[:r, :c]
    return got


_TWO_D_CASES = [((5, 37), (8, 4)), ((33, 17), (8, 8)), ((1, 1), (4, 4)),
                ((16, 8), (8, 8)), ((37, 5), (8, 4))]


def _grid_hint(got, expect, grid, block, default) -> str:
    swapped = _swapped(expect, grid, block)
    same = np.array_equal(np.isnan(got), np.isnan(swapped)) and np.allclose(
        got[~np.isnan(got)], swapped[~np.isnan(swapped)], rtol=RTOL, atol=ATOL)
    if same and not np.array_equal(np.isnan(swapped), np.isnan(expect)):
        return ("exactly the cells of a kernel that takes its row from the x "
                "index were written: in this launch x runs along the columns "
                "(the fast axis of a row-major array) and y along the rows")
    return default


def check_scale_2d(kernel) -> None:
    """out = s * a on non-square shapes and blocks: x along the columns, y along
    the rows, a guard on both."""
    check = "check_scale_2d"
    _require_kernel(check, kernel)
    rng = np.random.default_rng(521)
    for k, ((rows, cols), blk) in enumerate(_TWO_D_CASES):
        s = (-1.5, 2.0, 0.5)[k % 3]
        grid, block = _launch_2d(rows, cols, blk)
        case = (f"{rows} x {cols}, s = {s}, {grid[0]} x {grid[1]} blocks of "
                f"{block[0]} x {block[1]}")
        a = rng.random((rows, cols), dtype=np.float32)
        out = np.full((rows, cols), np.nan, np.float32)
        expect = (np.float64(s) * a).astype(np.float32)
        before = a.copy()
        tr = _run(
            check, case, kernel, grid, block, (a, s, out),
            f"a thread indexed past the end of an axis. The launch has "
            f"{grid[0] * block[0]} threads along x for {cols} columns and "
            f"{grid[1] * block[1]} along y for {rows} rows: guard both indices, "
            "each with the length of its own axis",
        )
        _inputs_unchanged(check, case, ("a",), (before,), (a,))

        def compare(case, args):
            got = args[2]
            failure = _mismatch(
                check, case, "out", got, expect,
                lambda: _grid_hint(got, expect, grid, block,
                                   "out[r, c] is s * a[r, c], computed by the "
                                   "thread whose grid index is (x, y) = (c, r)"))
            if failure:
                raise failure

        compare(case, [a, s, out])
        _no_races(check, case, tr, "each cell is the job of one thread")
        _on_gpu(check, case, kernel, grid, block, [a, s, out], compare)
    passed(check, len(_TWO_D_CASES))


# --- 3. coalescing -----------------------------------------------------------------


def _copy_case(check, case, kernel, shape, threads, rng):
    a = rng.random(shape, dtype=np.float32)
    out = np.full(shape, np.nan, np.float32)
    before = a.copy()
    blocks = math.ceil(threads / WARP)
    tr = _run(
        check, case, kernel, blocks, WARP, (a, out),
        f"a thread indexed past the end of an axis: {blocks * WARP} threads "
        f"were launched for {threads}, so the guard compares the thread's index "
        "with the length of the axis it walks along",
    )
    _inputs_unchanged(check, case, ("a",), (before,), (a,))

    def compare(case, args):
        failure = _mismatch(check, case, "out", args[1], a,
                            "out must end as an exact copy of a")
        if failure:
            raise failure

    compare(case, [a, out])
    _no_races(check, case, tr, "each element is copied by one thread")
    _on_gpu(check, case, kernel, blocks, WARP, [a, out], compare)
    return tr


def _owner_mismatch(tr: cudakit.Trace, shape, axis: int):
    """The first read of `a` by a thread whose index in the grid differs from
    the element's index along ``axis`` (0: row, 1: column), or None."""
    for acc in tr.accesses:
        if acc.space != "global" or acc.array != "a":
            continue
        g = acc.block[0] * WARP + acc.thread[0]
        idx = np.unravel_index(acc.offset, shape)
        if int(idx[axis]) != g:
            return g, idx
    return None


def _ideal_efficiency(rows: int, cols: int, itemsize: int = 4) -> float:
    """Bytes used over bytes moved when each warp reads 32 consecutive columns
    of one row at a time (a row-major array)."""
    used = moved = 0
    for r in range(rows):
        for start in range(0, cols, WARP):
            stop = min(start + WARP, cols)
            lo, hi = (r * cols + start) * itemsize, (r * cols + stop) * itemsize
            used += hi - lo
            moved += (math.ceil(hi / 32) - lo // 32) * 32
    return used / moved


def _traffic(tr: cudakit.Trace) -> str:
    return f": {tr.sectors_per_request('a'):.1f} sectors of 32 B per warp read"


def check_copy_rows(kernel) -> None:
    """A correct copy in which thread i copies row i; reports how many sectors
    each warp's read needs."""
    check = "check_copy_rows"
    _require_kernel(check, kernel)
    rng = np.random.default_rng(522)
    shapes = [(64, 64), (100, 5), (1, 1), (40, 33)]
    first = None
    for rows, cols in shapes:
        case = f"a of {rows} x {cols}, one thread per row"
        tr = _copy_case(check, case, kernel, (rows, cols), rows, rng)
        wrong = _owner_mismatch(tr, (rows, cols), 0)
        if wrong:
            g, (r, c) = wrong
            raise CheckFailed(
                check, case, f"thread {g} of the grid read a[{r}, {c}]",
                "in copy_rows, the thread with grid index i copies row i, "
                "walking along it, column after column",
            )
        first = first or tr
    passed(check, len(shapes), _traffic(first))


def check_copy_cols(kernel) -> None:
    """A correct copy whose warps read and write consecutive addresses: as few
    32-byte sectors per request as the array's layout allows."""
    check = "check_copy_cols"
    _require_kernel(check, kernel)
    rng = np.random.default_rng(523)
    shapes = [(64, 64), (5, 100), (1, 1), (33, 40)]
    first = None
    for rows, cols in shapes:
        case = f"a of {rows} x {cols}, one thread per column"
        tr = _copy_case(check, case, kernel, (rows, cols), cols, rng)
        ideal = _ideal_efficiency(rows, cols)
        for array, kind, verb in (("a", "r", "reads of a"),
                                  ("out", "w", "writes to out")):
            eff = tr.efficiency(array, kind)
            if eff < 0.9 * ideal:
                spr = tr.sectors_per_request(array, kind)
                raise CheckFailed(
                    check, case,
                    f"the warps' {verb} are not coalesced: "
                    f"{spr:.1f} sectors of 32 bytes per warp request, "
                    f"{eff:.1%} of the moved bytes used (this layout allows "
                    f"{ideal:.1%})",
                    "at each step, the 32 threads of a warp should touch 32 "
                    "neighbouring elements of one row: neighbouring threads "
                    "differ in the column, and every thread goes down the "
                    "rows in the same order",
                )
        first = first or tr
    passed(check, len(shapes), _traffic(first))


# --- 4. blur -----------------------------------------------------------------------


def _box_sums(img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sums and counts of the in-image pixels of each 3 x 3 window (float64)."""
    rows, cols = img.shape
    pad = np.zeros((rows + 2, cols + 2))
    pad[1:-1, 1:-1] = img
    inside = np.zeros_like(pad)
    inside[1:-1, 1:-1] = 1.0
    sums = np.zeros((rows, cols))
    counts = np.zeros((rows, cols))
    for dr in range(3):
        for dc in range(3):
            sums += pad[dr:dr + rows, dc:dc + cols]
            counts += inside[dr:dr + rows, dc:dc + cols]
    return sums, counts


_BLUR_CASES = [((7, 9), (8, 4)), ((1, 1), (4, 4)), ((1, 6), (8, 2)),
               ((13, 5), (4, 8)), ((16, 16), (8, 8))]


def check_blur3x3(kernel) -> None:
    """The mean of the in-image 3 x 3 neighbours on odd shapes; no neighbour
    index may go below 0 (Numba would wrap it to the other edge)."""
    check = "check_blur3x3"
    _require_kernel(check, kernel)
    rng = np.random.default_rng(524)
    for (rows, cols), blk in _BLUR_CASES:
        grid, block = _launch_2d(rows, cols, blk)
        case = (f"image {rows} x {cols}, {grid[0]} x {grid[1]} blocks of "
                f"{block[0]} x {block[1]}")
        img = rng.random((rows, cols), dtype=np.float32)
        out = np.full((rows, cols), np.nan, np.float32)
        sums, counts = _box_sums(img.astype(np.float64))
        expect = (sums / counts).astype(np.float32)
        over_nine = (sums / 9).astype(np.float32)
        before = img.copy()
        tr = _run(
            check, case, kernel, grid, block, (img, out),
            "a thread indexed past the last row or column. The launch has "
            f"{grid[0] * block[0]} threads along x and {grid[1] * block[1]} "
            f"along y for {cols} columns and {rows} rows: the threads outside "
            "the image must not compute, and a neighbour past the last row or "
            "column is outside the image",
        )
        _inputs_unchanged(check, case, ("img",), (before,), (img,))

        def compare(case, args, tr=tr):
            got = args[1]
            negative = tr.negative_indices if tr is not None else 0
            if negative:
                hint = (f"the kernel indexed img with a negative index "
                        f"{negative} time(s). Numba, like Python, wraps img[-1] "
                        "around to the last row or column, so a border pixel "
                        "averaged pixels of the opposite edge: a neighbour "
                        "below index 0 is outside the image")
            elif rows * cols > 1 and np.allclose(got, over_nine, rtol=RTOL,
                                                 atol=ATOL):
                hint = ("every pixel was divided by 9: a pixel on an edge or "
                        "in a corner has fewer neighbours inside the image, "
                        "and its mean divides by how many it has")
            else:
                hint = ("out[r, c] is the mean of the pixels of rows r-1..r+1 "
                        "and columns c-1..c+1 that are inside the image")
            failure = _mismatch(check, case, "out", got, expect, hint)
            if failure:
                raise failure

        compare(case, [img, out])
        if tr.negative_indices:
            raise CheckFailed(
                check, case,
                f"the values are right, but the kernel indexed img with a "
                f"negative index {tr.negative_indices} time(s)",
                "Numba wraps a negative index around to the other end of the "
                "axis (a read of real memory, so no error): test a neighbour's "
                "index before reading it, not after")
        _no_races(check, case, tr, "each output pixel is the job of one thread")
        _on_gpu(check, case, kernel, grid, block, [img, out],
                lambda case, args: compare(case, args, tr=None))
    passed(check, len(_BLUR_CASES))


# --- 5. reading PTX ----------------------------------------------------------------

SIG_1D = "void(float32[:], float32[:], float32[:])"
SIG_1D_CONTIGUOUS = "void(float32[::1], float32[::1], float32[::1])"
SIG_2D = "void(float32[:, :], float32[:, :])"
_PTX: dict[str, cudakit.Ptx] = {}


def _reference_kernels():
    """Python functions for cudakit.ptx: guarded and unguarded 1-D adds, a 2-D
    copy with a guard on both axes."""
    from numba import cuda

    def add_guarded(x, y, out):
        i = cuda.grid(1)
        if i < out.size:
            out[i] = x[i] + y[i]

    def add_unguarded(x, y, out):
        i = cuda.grid(1)
        out[i] = x[i] + y[i]

    def copy_guarded_2d(a, out):
        col, row = cuda.grid(2)
        if row < out.shape[0] and col < out.shape[1]:
            out[row, col] = a[row, col]

    return [
        ("vector add with a bounds guard", add_guarded, SIG_1D),
        ("vector add without a bounds guard", add_unguarded, SIG_1D),
        ("vector add, contiguous arrays (float32[::1])", add_guarded,
         SIG_1D_CONTIGUOUS),
        ("2-D copy, a guard on both indices", copy_guarded_2d, SIG_2D),
    ]


def _ptx_cases() -> list[tuple[str, cudakit.Ptx]]:
    """The PTX of the reference kernels, compiled once per process (in
    parallel: each compile is a fresh Python process under the simulator)."""
    specs = _reference_kernels()
    missing = [s for s in specs if s[0] not in _PTX]
    if missing:
        with ThreadPoolExecutor(max_workers=len(missing)) as pool:
            done = pool.map(lambda s: cudakit.ptx(s[1], s[2]), missing)
            for (case, _, _), p in zip(missing, done):
                _PTX[case] = p
    return [(case, _PTX[case]) for case, _, _ in specs]


_SETP = re.compile(r"^setp\.")
_PRED_BRANCH = re.compile(r"^@!?%p\w*\s+bra\b")
_PRED_LOGIC = re.compile(r"^(and|or|xor|not)\.pred\b")
_LOAD = re.compile(r"^ld\.")
_PARAM = re.compile(r"^ld\.param\b")


def _norm(line: str) -> str:
    return " ".join(line.split())


def _learner_lines(check, case, fn, p: cudakit.Ptx) -> list[str]:
    fresh = cudakit.Ptx(p.name, p.cc, p.text)  # the learner may change theirs
    got = call_learner(
        check, case, fn, fresh,
        label=f"{fn.__name__}(ptx)" if hasattr(fn, "__name__") else None,
        hint="your function receives a cudakit.Ptx; ptx.instructions is its "
        "list of instruction lines (strings)")
    if got is None:
        raise CheckFailed(check, case, "got None",
                          "did you forget a `return` statement?")
    if isinstance(got, (str, bytes)) or not isinstance(got, (list, tuple)):
        raise CheckFailed(
            check, case, f"expected a list of instruction lines, got "
            f"{describe(got)}",
            "return a list of strings, each one line of ptx.instructions "
            "(an empty list when there is none)")
    wrong = next((g for g in got if not isinstance(g, str)), None)
    if wrong is not None:
        raise CheckFailed(
            check, case, f"expected a list of strings, got an element "
            f"{describe(wrong)}",
            "return the lines themselves (strings), not their positions or "
            "match objects")
    return [_norm(g) for g in got]


def _compare_lines(check, case, got, want, optional, hints) -> None:
    """``got`` must be ``want`` in order, with lines of ``optional`` allowed
    anywhere; ``hints(missing, extra)`` gives the hint."""
    kept = [g for g in got if g not in optional]
    if kept == want:
        return
    missing = [w for w in want if w not in got]
    extra = [g for g in kept if g not in want]
    lines = [f"expected {len(want)} line(s), got {len(got)}"]
    if missing:
        lines.append(f"missing ({len(missing)}): {missing[0]!r}"
                     + (" ..." if len(missing) > 1 else ""))
    if extra:
        lines.append(f"not asked for ({len(extra)}): {extra[0]!r}"
                     + (" ..." if len(extra) > 1 else ""))
    if not missing and not extra:
        lines.append(f"the right lines in another order or repeated: expected "
                     f"{want}")
    raise CheckFailed(check, case, "\n".join(lines), hints(missing, extra))


def check_find_guard(find_guard) -> None:
    """``find_guard(ptx)`` returns the guard's comparisons and predicated
    branches of three kernels' PTX, and nothing for a kernel without a guard."""
    check = "check_find_guard"
    cases = _ptx_cases()
    for case, p in cases:
        lines = [_norm(s) for s in p.instructions]
        want = [s for s in lines if _SETP.match(s) or _PRED_BRANCH.match(s)]
        optional = {s for s in lines if _PRED_LOGIC.match(s)}
        got = _learner_lines(check, case, find_guard, p)

        def hints(missing, extra, want=want, lines=lines, got=got):
            if got and len(got) >= len(lines) - 1:
                return ("that is (nearly) every instruction: keep only the "
                        "comparisons and the branches taken on their result")
            if not want:
                return ("this kernel has no bounds guard, so nothing compares "
                        "the index and nothing branches: return an empty list")
            if extra and all(_LOAD.match(e) for e in extra):
                return "loads are not part of the guard"
            if missing and all(_SETP.match(m) for m in missing):
                return ("a guard starts with comparisons (setp); a 2-D guard "
                        "compares both indices")
            if missing and all(_PRED_BRANCH.match(m) for m in missing):
                return ("the branch is written with its predicate first: "
                        "@%p1 bra $L__BB0_2; look for lines that start with @")
            return ("the guard is every setp comparison and every branch "
                    "taken on a predicate (@%p... bra), in their order")

        _compare_lines(check, case, got, want, optional, hints)
    passed(check, len(cases))


def check_find_loads(find_loads) -> None:
    """``find_loads(ptx)`` returns the element loads (``ld.``, not
    ``ld.param``) of four kernels' PTX, generic and ``.global`` ones alike."""
    check = "check_find_loads"
    cases = _ptx_cases()
    for case, p in cases:
        lines = [_norm(s) for s in p.instructions]
        want = [s for s in lines if _LOAD.match(s) and not _PARAM.match(s)]
        got = _learner_lines(check, case, find_loads, p)

        def hints(missing, extra, lines=lines, got=got):
            if got and len(got) >= len(lines) - 1:
                return ("that is (nearly) every instruction: a load's opcode "
                        "starts with ld.")
            if extra and all(_PARAM.match(e) for e in extra):
                return ("ld.param reads the kernel's arguments (each array "
                        "arrives as a pointer, its shape and its strides), "
                        "not the arrays' elements")
            if extra and all(e.startswith("st.") for e in extra):
                return "st. is a store; the question asks for the loads"
            if missing and all(".global" in m for m in missing):
                return ("with contiguous arrays Numba emits ld.global.f32: a "
                        "state space can sit between ld and the type")
            if missing:
                return ("Numba's loads here are generic: ld.f32, with no state "
                        "space (not ld.global.f32)")
            return "every ld. instruction that is not ld.param, in order"

        _compare_lines(check, case, got, want, set(), hints)
    passed(check, len(cases))
