"""Build the HTML book into _build/html, strictly.

``-W -n --keep-going`` turns every Sphinx warning (a broken reference, a missing page)
into a failure and reports all of them, not just the first; ``--all`` rebuilds every
page. Chapters are executed through jupyter-cache, so unchanged pages are not re-run.
A plain ``jupyter-book build`` exits 0 even when a chapter cell raises; with these
flags it exits 1.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    sys.path.insert(0, str(ROOT))
    from model2metal import device

    device.select_cuda_backend()  # chapters that run CUDA inherit the choice
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jb), "build", str(ROOT), "-W", "-n", "--keep-going", "--all"]
    print("$", " ".join(cmd), flush=True)
    status = subprocess.call(cmd, cwd=ROOT, env=os.environ.copy())
    index = ROOT / "_build" / "html" / "index.html"
    if status != 0:
        reports = sorted((ROOT / "_build" / "html" / "reports").glob("**/*.err.log"))
        for report in reports:
            print(f"--- {report.relative_to(ROOT)}\n{report.read_text()[-3000:]}")
        print("book build FAILED (see the warnings above)")
        return status
    print(f"book built: {index}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
