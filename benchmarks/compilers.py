"""Chapter 4's GEMM figures: a float32 GEMM scheduled in TVM, step by step, against
NumPy's BLAS in the same run.

Every schedule step is cumulative (each row adds one decision to the row above), built
for this CPU (``tvmkit.host_target()``) unless the row says otherwise, checked against
NumPy in float64, and timed with TVM's own timer; NumPy with ``time.perf_counter``.
Each number is the median of ``--repeat`` runs after warm-up, and every ratio is to
NumPy measured in the same run. The naive loop nest runs at ``--naive-size`` (it takes
seconds per call at 1024³); GFLOP/s compare across sizes.

The second table is the course model (chapter 2's digits CNN) at batch 1 and 32:
PyTorch eager, ONNX Runtime on chapter 3's ONNX file, TVM compiled from the
``torch.export`` program with the course's fusion stages and no tuning, and TVM with the committed MetaSchedule
records of ``model2metal/assets/tuning/course_model`` (``benchmarks/metaschedule.py``
makes them; on a CPU they were not made for, that row says so and shows the untuned
build). Every runtime uses all cores; ratios are to ONNX Runtime in the same run.

    .venv/bin/python benchmarks/compilers.py [--size 1024] [--repeat 15] [--write]

``--write`` saves ``benchmarks/results/compilers.md`` and ``.json``. About two
minutes.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from model2metal import tvmkit
from results_file import emit


#: each step, cumulative: (label, options for schedule())
STEPS = [
    ("tiles + loop order i, j, k, ii, ji", {}),
    ("+ vectorised inner loop, unrolled rows", {"vectorize": True}),
    ("+ local accumulator (cache_write)", {"vectorize": True, "local": True}),
    ("+ threads (parallel outer tile loop)",
     {"vectorize": True, "local": True, "parallel": True}),
    ("+ packed B (cache_read + transform_layout)",
     {"vectorize": True, "parallel": True, "local": True, "pack": True}),
    ("+ column tiles outside row tiles (the hand schedule)",
     {"vectorize": True, "parallel": True, "local": True, "pack": True,
      "j_outer_first": True}),
]


#: the chapter's one matmul module (the same one the tuning records match)
matmul = tvmkit.matmul_module


def schedule(mod, mi, nj, vectorize=False, parallel=False, local=False, pack=False,
             j_outer_first=False):
    """The GEMM schedule with the chosen decisions switched on."""
    sch = tvmkit.schedule(mod)
    block = sch.get_sblock("C")
    i, j, k = sch.get_loops(block)
    io, ii = sch.split(i, factors=[None, mi])
    jo, ji = sch.split(j, factors=[None, nj])
    ko, ki = sch.split(k, factors=[None, 4])
    outer = (jo, io) if j_outer_first else (io, jo)
    sch.reorder(*outer, ko, ki, ii, ji)
    if local:
        acc = sch.cache_write(block, 0, "local")
        sch.reverse_compute_at(acc, outer[1])
        sch.vectorize(sch.get_loops(acc)[-1])
    if pack:
        packed = sch.cache_read(block, 1, "global")
        sch.transform_layout(block, ("read", 1),
                             lambda kk, jj: (jj // nj, kk, jj % nj), pad_value=0.0)
        if parallel:
            sch.parallel(sch.get_loops(packed)[0])
    if vectorize:
        sch.unroll(ki)
        sch.unroll(ii)
        sch.vectorize(ji)
    if parallel:
        sch.parallel(outer[0])
    sch.decompose_reduction(block, ko)
    return sch.mod


#: seconds to wait before each series, so that the other library's worker threads
#: (OpenBLAS and TVM both spin for a while after a parallel call) have gone to sleep
#: and do not compete for the cores; without it, rows varied by 2-5x here
SETTLE_S = 1.0


def tvm_gflops(mod, a, b, repeat, target=None):
    ex = tvmkit.build(mod, target)
    ta, tb = tvmkit.tensor(a), tvmkit.tensor(b)
    out = tvmkit.empty((a.shape[0], b.shape[1]))
    ex["main"](ta, tb, out)
    reference = a.astype(np.float64) @ b
    error = np.abs(out.numpy() - reference).max() / np.abs(reference).max()
    assert error < 1e-5, f"schedule gives a wrong result (relative error {error:.1e})"
    time.sleep(SETTLE_S)
    seconds = tvmkit.time_function(ex, ta, tb, out, repeat=repeat).median
    return 2 * a.shape[0] * b.shape[1] * a.shape[1] / seconds / 1e9


def numpy_gflops(a, b, repeat):
    time.sleep(SETTLE_S)
    for _ in range(3):
        a @ b
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        a @ b
        samples.append(time.perf_counter() - start)
    return 2 * a.shape[0] * b.shape[1] * a.shape[1] / float(np.median(samples)) / 1e9


def course_model_rows(repeat):
    """{(runtime, batch): median seconds} for the course model, and a note on
    the tuned build (which records applied)."""
    import torch

    from model2metal import onnxkit, timing
    from model2metal.data import load_digits_split
    from model2metal.models import load_course_model, preprocess

    model = load_course_model()
    session = onnxkit.session(onnxkit.COURSE_ONNX)
    digits = preprocess(load_digits_split()[1][:32])
    rows, notes = {}, []
    for batch in (1, 32):
        images = digits[:batch]
        relax_mod = tvmkit.relax_from_torch(model, (images,))
        fused = tvmkit.relax_stages(relax_mod)[-1][2]   # tvm.compile on a CPU
        untuned = tvmkit.relax_vm(tvmkit.build(fused))  # does not fuse by itself
        build = tvmkit.compile_relax_tuned(
            relax_mod, os.path.join(tvmkit.TUNING_DIR, "course_model"))
        tuned = tvmkit.relax_vm(build.executable)
        notes.append(f"batch {batch}: {build.reason}")
        x = tvmkit.tensor(images.numpy())
        with torch.no_grad():
            expected = model(images).numpy()
        for vm in (untuned, tuned):
            error = np.abs(vm["main"](x).numpy() - expected).max()
            assert error < 1e-4, f"TVM differs from PyTorch by {error:.1e}"
        runs = {
            "PyTorch eager": (torch.no_grad()(model), images),
            "ONNX Runtime": (lambda feed: session.run(None, feed),
                             {"images": images.numpy()}),
            "TVM, fused, untuned": (untuned["main"], x),
            "TVM, tuned (committed records)": (tuned["main"], x),
        }
        for runtime, (fn, arg) in runs.items():
            time.sleep(SETTLE_S)
            rows[runtime, batch] = timing.measure(fn, arg, repeat=repeat).median
    return rows, notes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--naive-size", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()

    n = args.size
    lanes, registers = tvmkit.simd_lanes(), tvmkit.vector_registers()
    mi, nj = min(8, (registers - 3) // 2), 2 * lanes
    rng = np.random.default_rng(0)
    a = rng.normal(size=(n, n)).astype(np.float32)
    b = rng.normal(size=(n, n)).astype(np.float32)

    numpy_before = numpy_gflops(a, b, args.repeat)
    rows = []
    small = args.naive_size
    rows.append((f"naive loop nest ({small}³)",
                 tvm_gflops(matmul(small, small, small), a[:small, :small],
                            b[:small, :small], max(3, args.repeat // 5))))
    for label, options in STEPS:
        rows.append((label, tvm_gflops(schedule(matmul(n, n, n), mi, nj, **options),
                                       a, b, args.repeat)))
    generic = tvmkit.generic_target()
    g_mi, g_nj = (min(8, (tvmkit.vector_registers(generic) - 3) // 2),
                  2 * tvmkit.simd_lanes(generic))
    rows.append((f"the hand schedule, generic llvm target (tile {g_mi}x{g_nj})",
                 tvm_gflops(schedule(matmul(n, n, n), g_mi, g_nj, **STEPS[-1][1]),
                            a, b, args.repeat, target=generic)))
    numpy_after = numpy_gflops(a, b, args.repeat)
    model_rows, model_notes = course_model_rows(args.repeat)
    # the ratios use NumPy's better measurement: conservative for TVM
    reference = max(numpy_before, numpy_after)

    body = [
        f"float32 GEMM {n}³ (naive row: {small}³); register tile {mi} x {nj} "
        f"({lanes} lanes, {registers} vector registers); host target "
        f"`{tvmkit.host_target().attrs.get('mcpu', 'generic')}`.",
        "",
        "| schedule (cumulative) | GFLOP/s | × NumPy |",
        "|---|---:|---:|",
        f"| NumPy `a @ b` (BLAS) | {reference:.1f} | 1.00 |",
    ]
    body += [f"| {label} | {value:.1f} | {value / reference:.2f} |"
             for label, value in rows]
    body += [
        "",
        f"NumPy was measured before and after the TVM rows ({numpy_before:.1f} and "
        f"{numpy_after:.1f} GFLOP/s); the ratios use the better of the two.",
        "",
        "The course model (digits CNN), median latency per call, all cores:",
        "",
        "| runtime | batch 1 (ms) | × ORT | batch 32 (ms) | × ORT |",
        "|---|---:|---:|---:|---:|",
    ]
    runtimes = dict.fromkeys(name for name, _ in model_rows)
    for runtime in runtimes:
        cells = [f"{model_rows[runtime, b] * 1e3:.3f} | "
                 f"{model_rows[runtime, b] / model_rows['ONNX Runtime', b]:.2f}"
                 for b in (1, 32)]
        body.append(f"| {runtime} | " + " | ".join(cells) + " |")
    body += ["", "Tuned rows: " + "; ".join(model_notes) + "."]
    emit(
        "compilers",
        f"median of {args.repeat} runs after warm-up (TVM time_evaluator; NumPy "
        "perf_counter); every ratio to NumPy in the same run; results verified "
        "against NumPy in float64",
        "\n".join(body),
        args.write,
        data={
            "size": n,
            "tile": [mi, nj],
            "numpy_gflops": reference,
            "numpy_gflops_before_after": [numpy_before, numpy_after],
            "rows": [{"schedule": label, "gflops": value,
                      "ratio_to_numpy": value / reference} for label, value in rows],
            "course_model_ms": [
                {"runtime": runtime, "batch": batch, "ms": seconds * 1e3,
                 "ratio_to_ort": seconds / model_rows["ONNX Runtime", batch]}
                for (runtime, batch), seconds in model_rows.items()],
            "course_model_tuning": model_notes,
        },
    )


if __name__ == "__main__":
    main()
