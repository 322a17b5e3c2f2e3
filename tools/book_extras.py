"""What the book build adds besides the pages: the status tables and the labs download.

``tools/build_book.py`` calls :func:`write_all` before Sphinx runs:

* ``_build/status/status_tables.md``, included by ``chapters/status.md``: this machine
  (CPU, SIMD, cores, the CUDA backend), the pinned versions of the course's main packages
  beside the installed ones, and each solution's execution time from the last
  ``make test`` (its nbval phase writes ``_build/status/solution_times.json``) against
  the course's time budget. Generated on every build, never written by hand.
* ``_build/extra/model2metal-labs.zip`` (copied to the root of the HTML by
  ``html_extra_path``): every lab notebook, the helper package with its assets and
  ``pyproject.toml``, and a ``START_HERE.txt``, so that a learner without git can unzip,
  install and open the labs. Deterministic: the same tree gives the same bytes.

* ``_build/quizzes/<chapter>.html``: each chapter's self-check quiz
  (``chapters/<chapter>/quiz.json``) as static HTML and JavaScript rendered by
  JupyterQuiz, which the chapter's ``quiz.md`` page includes with a ``raw`` directive:
  nothing is executed or cached, so the page always shows the JSON as it is, and it
  works offline. Our fields ``page`` and ``evidence`` (where the point is taught; see
  ``tests/test_quizzes.py``) are not shipped.

Usage: ``python tools/book_extras.py`` writes all three (as the build does).
"""

from __future__ import annotations

import html
import importlib.metadata as metadata
import json
import random
import re
import sys
import zipfile
from pathlib import Path

from run_tests import TIMES_FILE, budget_s  # the solutions' recorded times, budgets

ROOT = Path(__file__).resolve().parents[1]
STATUS_DIR = Path("_build/status")
TABLES_FILE = STATUS_DIR / "status_tables.md"
EXTRA_DIR = Path("_build/extra")
ZIP_NAME = "model2metal-labs.zip"
MAIN_PACKAGES = [
    "numpy", "scikit-learn", "torch", "onnx", "onnxruntime", "apache-tvm", "numba",
    "numba-cuda", "fastapi", "jupyter-book", "nbval", "nbgrader",
]
ZIP_TIME = (2026, 1, 1, 0, 0, 0)  # fixed, so the archive depends on its content only
START_HERE = """\
Model to Metal: the labs
========================

labs/         one Jupyter notebook per lab, by chapter (start with labs/00_start_here)
model2metal/  the course's helper package: checks, timing, data, plotting, assets
pyproject.toml  its installation, with the `labs` extra that pins what the labs need

Set-up (Python 3.11, Linux or macOS; about 6 GB of disk for PyTorch, TVM and Numba):

    python3.11 -m venv .venv
    .venv/bin/pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
    .venv/bin/pip install -e ".[labs]" jupyterlab
    .venv/bin/jupyter lab labs/

(On macOS leave out the --index-url part.) A lab's first cell also installs the package
from this folder when it is missing. Each exercise is followed by a check cell; see
how far you are with:  .venv/bin/python -m model2metal.progress labs/
The book with the chapters and solutions: the site you downloaded this from.
"""


def _pins(root: Path = ROOT) -> dict[str, str]:
    """Exact pins from requirements.txt and constraints.txt, by lower-case name."""
    pins = {}
    for name in ("requirements.txt", "constraints.txt"):
        for line in (root / name).read_text(encoding="utf-8").splitlines():
            match = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s#;]+)", line.strip())
            if match:
                pins[match[1].lower().replace("_", "-")] = match[2]
    return pins


def _installed(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def status_tables(root: Path = ROOT) -> str:
    """The Markdown of the status tables for this machine and its last test run."""
    sys.path.insert(0, str(root))
    from model2metal import device

    cpu = device.cpu_info()
    lines = [
        "## This machine", "",
        f"- **CPU**: {cpu.model} ({cpu.arch}), {cpu.usable_cores} usable of "
        f"{cpu.logical_cores} logical cores",
        f"- **SIMD**: {', '.join(cpu.simd) or 'none found'}; widest {cpu.widest_simd}",
        f"- **CUDA**: {device.cuda_backend().removeprefix('CUDA backend: ')}",
        f"- **Python**: {sys.version.split()[0]}",
        "", "## Pinned versions", "",
        "Pinned in `requirements.txt`/`constraints.txt`, and what this build ran with.", "",
        "| package | pinned | installed | |", "|---|---|---|---|",
    ]
    pins = _pins(root)
    for name in MAIN_PACKAGES:
        pinned, installed = pins.get(name, "not pinned"), _installed(name)
        same = "✔" if pinned == installed.split("+")[0] else "✘ differs"
        lines.append(f"| {name} | {pinned} | {installed} | {same} |")
    lines += ["", "## Solutions: execution time in the last test run", ""]
    try:
        times = json.loads((root / TIMES_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        lines.append("No test run is recorded on the machine that built this book: "
                     "`make test` records one (its *nbval* phase).")
        return "\n".join(lines) + "\n"
    lines += [
        f"Measured {times['date']} on {times['machine']}; {times['cuda']}. The time is "
        "the sum of the notebook's cells (kernel start-up excluded); the budget is the "
        "course's limit for one solution.", "",
        "| solution | seconds | slowest cell (s) | cells | budget (s) | within |",
        "|---|---|---|---|---|---|",
    ]
    for notebook, row in times["notebooks"].items():
        budget = budget_s(notebook)
        within = "✔" if row["seconds"] <= budget else "✘ over"
        lines.append(f"| `{Path(notebook).stem}` | {row['seconds']:.1f} | "
                     f"{row['slowest_cell_s']:.1f} | {row['cells']} | {budget} | {within} |")
    total = sum(row["seconds"] for row in times["notebooks"].values())
    count = len(times["notebooks"])
    lines += ["", f"{count} solution{'s' if count != 1 else ''}: {total:.0f} s of cells."]
    return "\n".join(lines) + "\n"


def _zip_members(root: Path) -> list[tuple[Path, str]]:
    """(file, name in the archive) of everything the labs download holds, sorted."""
    members = []
    for folder in ("labs", "model2metal"):
        for path in sorted((root / folder).rglob("*")):
            skip = {"__pycache__", ".ipynb_checkpoints"} & set(path.parts)
            if path.is_file() and not skip and path.suffix != ".pyc":
                members.append((path, path.relative_to(root).as_posix()))
    members.append((root / "pyproject.toml", "pyproject.toml"))
    return members


def write_labs_zip(root: Path = ROOT, out: Path | None = None) -> Path:
    """Write the labs download; returns its path."""
    out = out or root / EXTRA_DIR / ZIP_NAME
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        entries = [(None, "START_HERE.txt")] + _zip_members(root)
        for path, name in entries:
            info = zipfile.ZipInfo(f"model2metal-labs/{name}", date_time=ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            data = START_HERE.encode() if path is None else path.read_bytes()
            archive.writestr(info, data)
    return out


QUIZ_DIR = Path("_build/quizzes")
#: JupyterQuiz's palette with darker question bars and feedback colours that read on white
QUIZ_COLOURS = {
    "--jq-multiple-choice-bg": "#345995", "--jq-many-choice-bg": "#345995",
    "--jq-numeric-bg": "#345995", "--jq-correct-color": "#1b7a2e",
    "--jq-incorrect-color": "#b00020",
}
QUIZ_TEXT_KEYS = ("question", "answer", "feedback")
OUR_QUIZ_KEYS = ("page", "evidence")


def _markup(text: str) -> str:
    """Quiz text for JupyterQuiz, which inserts it as HTML: special characters escaped,
    `code` and **bold** as tags, $math$ left for MathJax."""
    text = html.escape(text, quote=False)
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", text)


def quiz_questions(path: Path) -> list[dict]:
    """The questions of a quiz file, as JupyterQuiz takes them."""
    questions = json.loads(path.read_text(encoding="utf-8"))
    shipped = []
    for question in questions:
        question = {k: v for k, v in question.items() if k not in OUR_QUIZ_KEYS}
        question["question"] = _markup(question["question"])
        question["answers"] = [
            {k: _markup(v) if k in QUIZ_TEXT_KEYS else v for k, v in answer.items()}
            for answer in question["answers"]
        ]
        shipped.append(question)
    return shipped


def quiz_html(path: Path) -> str:
    """A quiz file as one block of HTML and inline JavaScript (no network needed)."""
    from jupyterquiz.dynamic import display as quiz_display

    shown = []
    saved_display, saved_state = quiz_display.display, random.getstate()
    quiz_display.display = shown.append  # keep what display_quiz would show
    random.seed(path.parent.name)  # the quiz's element id: the same on every build
    try:
        quiz_display.display_quiz(quiz_questions(path), shuffle_answers=True,
                                  max_width=680, colors=QUIZ_COLOURS)
    finally:
        quiz_display.display, _ = saved_display, random.setstate(saved_state)
    markup, script = shown[0].data, shown[1].data
    script = script.replace("</script", "<\\/script")
    return f'{markup}\n<script type="text/javascript">\n{script}\n</script>\n'


def write_quizzes(root: Path = ROOT) -> list[Path]:
    """Render every chapters/*/quiz.json into _build/quizzes/; returns the files."""
    written = []
    (root / QUIZ_DIR).mkdir(parents=True, exist_ok=True)
    for path in sorted((root / "chapters").glob("*/quiz.json")):
        target = root / QUIZ_DIR / f"{path.parent.name}.html"
        target.write_text(quiz_html(path), encoding="utf-8")
        written.append(target)
    return written


def write_all(root: Path = ROOT) -> None:
    """The extras, as the book build needs them."""
    (root / STATUS_DIR).mkdir(parents=True, exist_ok=True)
    (root / TABLES_FILE).write_text(status_tables(root), encoding="utf-8")
    path = write_labs_zip(root)
    quizzes = write_quizzes(root)
    print(f"wrote {TABLES_FILE}, {len(quizzes)} quizzes in {QUIZ_DIR} and "
          f"{path.relative_to(root)} ({path.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    write_all()
