"""Everything chapter 5 wants from a GPU, in one command for a short GPU loan.

1. Runs the code cells of the CUDA labs' solutions (05_02, 05_03) on the GPU, each
   notebook in a fresh process with ``M2M_CUDA=gpu``, and saves what they print
   (their timing cells print GPU times there) to ``<out>/<lab>.log``. It needs no
   Jupyter: the cells run in order in one namespace, an IPython magic line becomes ``pass``.
2. Runs ``benchmarks/gpu_kernels.py --write`` (copy bandwidth, matrix kernels
   against cuBLAS) and copies its results files to ``<out>``.

    PYTHONPATH=. python3 benchmarks/gpu_session.py --out "$OUT"

``--simulate`` runs step 1 in the CUDA simulator instead (to try this script on a
machine without a GPU) and skips step 2. Exit status: the number of failed steps.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LABS = ("lab05_02_cuda_kernels_1", "lab05_03_cuda_kernels_2")

RUNNER = r"""
import json, linecache, sys
cells = json.load(open(sys.argv[1]))["cells"]
scope = {"__name__": "__main__"}
for number, cell in enumerate(cells):
    if cell["cell_type"] != "code":
        continue
    lines = "".join(cell["source"]).splitlines()
    code = "\n".join(
        l[: len(l) - len(l.lstrip())] + "pass" if l.lstrip()[:1] in ("%", "!") else l
        for l in lines)
    print(f"--- cell {number}", flush=True)
    name = f"<cell {number}>"  # kept in linecache, as IPython does, for getsource
    linecache.cache[name] = (len(code), None, code.splitlines(True), name)
    exec(compile(code, name, "exec"), scope)
"""


def run_lab(name: str, out: Path, backend: str) -> bool:
    notebook = ROOT / "solutions" / "05_hardware" / f"{name}.ipynb"
    env = dict(os.environ, M2M_CUDA=backend, MPLBACKEND="Agg",
               PYTHONPATH=f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    env.pop("NUMBA_ENABLE_CUDASIM", None)
    t0 = time.perf_counter()
    with open(out / f"{name}.log", "w") as log:
        done = subprocess.run([sys.executable, "-c", RUNNER, str(notebook)],
                              cwd=notebook.parent, env=env, stdout=log,
                              stderr=subprocess.STDOUT, timeout=540)
    seconds = time.perf_counter() - t0
    ok = done.returncode == 0
    print(f"{name}: {'ran' if ok else 'FAILED'} on the {backend} in {seconds:.1f} s"
          f" (log {out / (name + '.log')})", flush=True)
    return ok


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "gpu_out")))
    p.add_argument("--simulate", action="store_true")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    failed = 0
    backend = "simulator" if args.simulate else "gpu"
    if not args.simulate and shutil.which("nvidia-smi"):
        print(subprocess.run(["nvidia-smi", "-L"], capture_output=True,
                             text=True).stdout, flush=True)
    for name in LABS:
        failed += not run_lab(name, args.out, backend)
    if args.simulate:
        return failed
    bench = ROOT / "benchmarks" / "gpu_kernels.py"
    done = subprocess.run([sys.executable, str(bench), "--write"], cwd=ROOT)
    failed += done.returncode != 0
    for suffix in (".md", ".json"):
        result = ROOT / "benchmarks" / "results" / f"gpu_kernels{suffix}"
        if result.exists():
            shutil.copy(result, args.out)
    summary = {"failed_steps": failed, "labs": list(LABS)}
    (args.out / "summary.json").write_text(json.dumps(summary))
    return failed


if __name__ == "__main__":
    raise SystemExit(main())
