"""Chapter 4's MetaSchedule figures: tuned TVM kernels against NumPy and the hand
schedule in one run, and the committed tuning databases the book and lab 04_03 apply.

Three parts, each tuned here with MetaSchedule (evolutionary search with an XGBoost
cost model; ``tvmkit.tune_tir`` / ``tvmkit.tune_relax``) for this CPU's target:

1. float32 GEMM 1024³: tuned, the hand schedule of the GEMM page (``compilers.py``),
   and NumPy's BLAS;
2. uncommon shapes where a BLAS kernel is weak: many tiny products at once (batched
   8×8×8) and a skinny product with an odd size (3×1000 times 1000×1000); tuned and
   untuned TVM against NumPy;
3. the course model through Relax, tuned at batch 1 and 32 (one database);
   measured at batch 1: untuned, tuned, and PyTorch eager.

Each database is pruned to the best record per workload and written to
``model2metal/assets/tuning/<name>/`` with ``target.json`` (the target it was made
for); the figures are then measured from those committed records, as the book
applies them. NumPy is measured before and after the TVM rows; the ratios use the
better of the two. Every result is checked against NumPy or PyTorch.

    .venv/bin/python benchmarks/metaschedule.py [--write] [--quick] [--reuse]

Each workload is tuned in a fresh process. ``--quick`` tunes a handful of trials
into a temporary folder (a smoke test, about two minutes); without it, about 20
minutes on two cores. ``--reuse`` keeps a committed database that was tuned for this
target with the same budget (its ``target.json`` records the trials and the tuning
time) and only measures. ``--write`` saves ``benchmarks/results/metaschedule.md``
and ``.json``.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from model2metal import tvmkit
from compilers import SETTLE_S, STEPS, matmul, numpy_gflops, schedule
from results_file import emit

ASSETS = Path(__file__).resolve().parents[1] / "model2metal" / "assets" / "tuning"

#: name -> (batch or None, m, n, k, what it stands for)
SHAPES = {
    "gemm1024": (None, 1024, 1024, 1024, "square GEMM 1024³"),
    "bmm512x8": (512, 8, 8, 8, "512 products 8×8 times 8×8 at once"),
    "skinny3x1000": (None, 3, 1000, 1000,
                     "3×1000 times 1000×1000 (odd size, 3 rows)"),
}


def gflop(batch, m, n, k):
    return 2 * (batch or 1) * m * n * k / 1e9


def numpy_seconds(a, b, repeat):
    """NumPy's median time for ``a @ b`` (after SETTLE_S), from compilers.py's
    measurement; its GFLOP/s formula is undone, so any shape works."""
    flop = 2 * a.shape[0] * b.shape[1] * a.shape[1]
    return flop / 1e9 / numpy_gflops(a, b, repeat)


def tvm_seconds(mod, a, b, repeat):
    ex = tvmkit.build(mod)
    ta, tb = tvmkit.tensor(a), tvmkit.tensor(b)
    out = tvmkit.empty((a @ b).shape)
    ex["main"](ta, tb, out)
    reference = a.astype(np.float64) @ b
    error = np.abs(out.numpy() - reference).max() / np.abs(reference).max()
    assert error < 1e-5, f"wrong result (relative error {error:.1e})"
    time.sleep(SETTLE_S)
    return tvmkit.time_function(ex, ta, tb, out, repeat=repeat).median


def tune_one(name, trials, work, out_dir):
    """Tune one workload in this process; write its pruned database with
    target.json (which records the trials and the tuning time)."""
    start = time.perf_counter()
    if name == "course_model":
        model, x = course_model()
        for batch in COURSE_BATCHES:   # one database, ``trials`` per batch
            example = x.expand(batch, *x.shape[1:]).contiguous()
            tvmkit.tune_relax(tvmkit.relax_from_torch(model, (example,)),
                              trials, work / name, per_iter=16)
    else:
        batch, m, n, k, _ = SHAPES[name]
        tvmkit.tune_tir(tvmkit.matmul_module(m, n, k, batch), trials,
                        work / name)
    seconds = time.perf_counter() - start
    tvmkit.write_target_info(work / name, tvmkit.tuning_target(),
                             trials=trials, tuning_s=round(seconds, 1))
    size = tvmkit.prune_database(work / name, out_dir / name)
    print(f"{name}: {trials} trials in {seconds:.0f} s; committed database "
          f"{size / 1024:.1f} KiB", flush=True)


def tuned(name, trials, work, out_dir, reuse):
    """(tuning seconds, database bytes) of a committed database, tuning it
    first in a fresh process (a crash in one tuning cannot take the others
    with it) unless ``reuse`` finds one made here with the same budget."""
    folder = out_dir / name
    info = {}
    if reuse and tvmkit.tuning_target_matches(folder):
        info = tvmkit.read_target_info(folder)
    if info.get("trials") != trials:
        subprocess.run([sys.executable, __file__, "--tune-one", name,
                        "--trials", str(trials), "--work", str(work),
                        "--out", str(out_dir)], check=True)
        info = tvmkit.read_target_info(folder)
    else:
        print(f"{name}: reusing the committed database ({trials} trials)")
    size = sum(f.stat().st_size for f in folder.iterdir())
    return info["tuning_s"], size


#: The batch sizes the course model's records are tuned for (lab 04_03 and
#: benchmarks/compilers.py run both).
COURSE_BATCHES = (1, 32)


def course_model():
    from model2metal.data import load_digits_split
    from model2metal.models import load_course_model, preprocess

    _, x_test, _, _ = load_digits_split()
    model = load_course_model()
    x = preprocess(x_test[:1])
    return model, x


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gemm-trials", type=int, default=256)
    parser.add_argument("--shape-trials", type=int, default=64)
    parser.add_argument("--model-trials", type=int, default=160)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--quick", action="store_true",
                        help="a few trials, databases to a temporary folder")
    parser.add_argument("--reuse", action="store_true",
                        help="keep committed databases tuned here with the "
                        "same budget")
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--tune-one", help=argparse.SUPPRESS)
    parser.add_argument("--trials", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.tune_one:
        tune_one(args.tune_one, args.trials, Path(args.work), Path(args.out))
        return
    if args.quick:
        args.gemm_trials = args.shape_trials = 4
        args.model_trials = 8
    wall = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="m2m_tuning_"))
    out_dir = work / "committed" if args.quick else ASSETS
    target = tvmkit.tuning_target()
    rng = np.random.default_rng(0)

    budgets = {"gemm1024": args.gemm_trials, "bmm512x8": args.shape_trials,
               "skinny3x1000": args.shape_trials,
               "course_model": args.model_trials}
    tuning = {name: tuned(name, trials, work, out_dir, args.reuse)
              for name, trials in budgets.items()}
    model_tune_s, model_size = tuning.pop("course_model")

    import torch

    model, x = course_model()
    relax_mod = tvmkit.relax_from_torch(model, (x,))

    # ---- measurements, from the committed (pruned) records ----
    rows, data_rows = [], []
    for name, (batch, m, n, k, what) in SHAPES.items():
        shape_a = (m, k) if batch is None else (batch, m, k)
        shape_b = (k, n) if batch is None else (batch, k, n)
        a = rng.standard_normal(shape_a, dtype=np.float32)
        b = rng.standard_normal(shape_b, dtype=np.float32)
        mod = tvmkit.matmul_module(m, n, k, batch)
        tuned_mod = tvmkit.apply_tuning(mod, out_dir / name)
        assert tuned_mod is not None, f"{name}: no record applies"
        before = numpy_seconds(a, b, args.repeat)
        times = {"MetaSchedule-tuned": tvm_seconds(tuned_mod, a, b,
                                                   args.repeat)}
        if name == "gemm1024":
            lanes, registers = tvmkit.simd_lanes(), tvmkit.vector_registers()
            mi, nj = min(8, (registers - 3) // 2), 2 * lanes
            times["hand schedule (GEMM page)"] = tvm_seconds(
                schedule(matmul(m, n, k), mi, nj, **STEPS[-1][1]), a, b,
                args.repeat)
        else:
            times["untuned TVM (loops as written)"] = tvm_seconds(
                mod, a, b, max(3, args.repeat // 3))
        after = numpy_seconds(a, b, args.repeat)
        numpy_s = min(before, after)
        work_gflop = gflop(batch, m, n, k)
        rows.append((what, "NumPy `a @ b`", numpy_s, work_gflop, 1.0))
        entry = {"name": name, "shape": [batch, m, n, k], "what": what,
                 "trials": budgets[name], "tuning_s": tuning[name][0],
                 "database_bytes": tuning[name][1],
                 "numpy_s_before_after": [before, after], "numpy_s": numpy_s,
                 "rows": []}
        for label, seconds in times.items():
            rows.append((what, label, seconds, work_gflop, numpy_s / seconds))
            entry["rows"].append({"variant": label, "seconds": seconds,
                                  "gflops": work_gflop / seconds,
                                  "ratio_to_numpy": numpy_s / seconds})
        data_rows.append(entry)
        print(f"{name}: NumPy {work_gflop / numpy_s:.1f} GFLOP/s; " + "; ".join(
            f"{label} {numpy_s / s:.2f}x" for label, s in times.items()),
            flush=True)

    # ---- the course model ----
    vm_input = tvmkit.tensor(x.numpy())
    with torch.no_grad():
        expected = model(x).numpy()
    builds = {
        "untuned TVM": tvmkit.compile_relax_tuned(relax_mod, work / "none"),
        "MetaSchedule-tuned TVM": tvmkit.compile_relax_tuned(
            relax_mod, out_dir / "course_model"),
    }
    assert builds["MetaSchedule-tuned TVM"].applied, builds[
        "MetaSchedule-tuned TVM"].reason

    def median_call(fn, repeat=200):
        for _ in range(20):
            fn()
        samples = []
        for _ in range(repeat):
            start = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - start)
        return float(np.median(samples))

    model_times = {}
    time.sleep(SETTLE_S)
    with torch.no_grad():
        model_times["PyTorch eager"] = median_call(lambda: model(x))
    for label, built in builds.items():
        vm = tvmkit.relax_vm(built.executable)
        got = vm["main"](vm_input).numpy()
        assert np.abs(got - expected).max() < 1e-4, label
        time.sleep(SETTLE_S)
        model_times[label] = median_call(lambda: vm["main"](vm_input))
    tuned_build = builds["MetaSchedule-tuned TVM"]
    print("course model: " + "; ".join(f"{k} {v * 1e3:.3f} ms"
                                       for k, v in model_times.items()))

    wall_s = time.perf_counter() - wall
    body = [
        f"Target `{target}`; TVM {tvmkit.version()}. Tuning budgets: "
        + ", ".join(f"{name} {t} trials ({tuning[name][0]:.0f} s)"
                    for name, t in budgets.items() if name in tuning)
        + f", course model {args.model_trials} trials ({model_tune_s:.0f} s). "
        f"Whole script: {wall_s / 60:.1f} min.",
        "",
        "| workload | variant | time | GFLOP/s | × NumPy |",
        "|---|---|---:|---:|---:|",
    ]
    for what, label, seconds, work_gflop, ratio in rows:
        body.append(f"| {what} | {label} | {seconds * 1e3:.3f} ms | "
                    f"{work_gflop / seconds:.1f} | {ratio:.2f} |")
    body += [
        "",
        "NumPy was measured before and after the TVM rows of each workload; the "
        "ratios use the better (faster) of the two.",
        "",
        f"Course model, batch 1 ({tuned_build.reason}):",
        "",
        "| variant | median latency | × PyTorch |",
        "|---|---:|---:|",
    ]
    for label, seconds in model_times.items():
        body.append(f"| {label} | {seconds * 1e3:.3f} ms | "
                    f"{model_times['PyTorch eager'] / seconds:.2f} |")
    sizes = {name: size for name, (_, size) in tuning.items()}
    sizes["course_model"] = model_size
    body += ["", "Committed databases (best record per workload): " + ", ".join(
        f"`{name}/` {size / 1024:.0f} KiB" for name, size in sizes.items())]
    emit(
        "metaschedule",
        f"tuned here (MetaSchedule, evolutionary search + XGBoost cost model); "
        f"kernels timed with TVM time_evaluator, median of {args.repeat}; NumPy "
        "and the model with perf_counter (median); every ratio in the same run; "
        "results checked against NumPy / PyTorch"
        + ("; QUICK smoke run, tiny budgets" if args.quick else ""),
        "\n".join(body),
        args.write,
        data={"target": str(target), "wall_s": wall_s, "shapes": data_rows,
              "course_model": {
                  "trials": args.model_trials, "tuning_s": model_tune_s,
                  "database_bytes": model_size,
                  "kernels": tuned_build.n_kernels,
                  "kernels_tuned": tuned_build.n_tuned,
                  "latency_s": model_times}},
    )
    print(f"wall time {wall_s:.0f} s")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
