"""Build the HTML book, strictly: the full edition, or the student edition.

    python tools/build_book.py            # full edition  -> _build/html
    python tools/build_book.py --student  # student edition -> _build/student/_build/html
    python tools/build_book.py --both     # both (make test)

``-W -n --keep-going`` turns every Sphinx warning (a broken reference, a missing page)
into a failure and reports all of them, not just the first; ``--all`` rebuilds every
page. Chapters are executed through jupyter-cache, so unchanged pages are not re-run; the
student edition reads the same cache. A plain ``jupyter-book build`` exits 0 even when a
chapter cell raises; with these flags it exits 1.

Before any Sphinx build, every executed chapter page is executed into the
jupyter-cache the builds read (``preexecute``): the pages that time nothing
(``timing_free_pages``: no ``timing.``, ``perf_counter`` or ``timeit`` in their code) two
at a time, then the pages that measure one at a time, alone on the machine, as a reader
who runs them would. With every page cached, the two editions' Sphinx builds (one core
each, nothing timed) run at the same time; if a page failed to pre-execute, it is left to
the full edition's build, which executes and reports it, and the student edition follows.

The **student edition** has no solutions: no *Solutions* part in its table of contents,
no ``solutions/`` page, no page text marked ``% full-edition`` (``_ext/editions.py``),
also not in the page sources that its download buttons offer (``_sources/``, rewritten
after the build by ``student_sources``). ``tests/test_editions.py`` searches
its built files for solution code and answers. Before either build,
``tools/book_extras.py`` writes the status tables and the labs download.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
STUDENT_DIR = ROOT / "_build" / "student"
SOLUTIONS_CAPTION = "Solutions"


CACHE = ROOT / "_build" / ".jupyter_cache"
#: code that measures time: such a page must not share the CPU with another page
TIMING = re.compile(r"\btiming\.|perf_counter|\btimeit\b|time\.time\(|interleave\(")


def executed_pages(root: Path = ROOT) -> tuple[list[Path], list[Path]]:
    """The chapter pages of the toc that myst-nb executes, in book order:
    ``(timing_free, timing)``, split by whether their code measures time. myst-nb's own
    test decides: a MyST notebook header is executed (a kernel started, the result
    cached) even without a code cell, and a page missed here would be executed by both
    editions' builds at once, which then race to create the same cache entry."""
    sys.path.insert(0, str(root))
    from myst_nb.core.read import is_myst_markdown_notebook

    from model2metal.pages import toc_files

    free, timed = [], []
    for entry in toc_files(root):
        path = root / f"{entry}.md"
        if not entry.startswith("chapters/") or not path.exists():
            continue
        text = path.read_text(encoding="utf-8")
        code = "\n".join(re.findall(r"```\{code-cell\}.*?\n(.*?)```", text, re.S))
        if is_myst_markdown_notebook(text):
            (timed if TIMING.search(code) else free).append(path)
    return free, timed


def timing_free_pages(root: Path = ROOT) -> list[Path]:
    """The executed chapter pages of the toc whose code cells time nothing."""
    return executed_pages(root)[0]


def _execute(path: str):
    """Execute one page as myst-nb would; (path, notebook or None, seconds, error)."""
    from jupyter_cache.executors.utils import single_nb_execution
    from myst_nb.core.read import myst_nb_reader_plugin

    nb = myst_nb_reader_plugin(path)
    result = single_nb_execution(nb, cwd=str(Path(path).parent), allow_errors=False,
                                 timeout=300, meta_override=True)
    error = f"{type(result.err).__name__}" if result.err else None
    return path, (None if result.err else nb), result.time, error


def _cached(cache, nb) -> bool:
    try:
        return cache.match_cache_notebook(nb) is not None
    except KeyError:  # jupyter-cache's answer for "no record"
        return False


def preexecute(pages: list[Path], jobs: int = 2, kind: str = "timing-free") -> bool:
    """Execute the pages not yet in the cache, ``jobs`` at a time, and cache them;
    True when every page is now cached."""
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn
    from myst_nb.core.read import myst_nb_reader_plugin

    cache = get_cache(str(CACHE))
    todo = [str(p) for p in pages if not _cached(cache, myst_nb_reader_plugin(str(p)))]
    print(f"pre-executing {len(todo)} of {len(pages)} {kind} pages, {jobs} at a time",
          flush=True)
    start = time.perf_counter()
    complete = True
    with ProcessPoolExecutor(jobs) as pool:
        for path, nb, seconds, error in pool.map(_execute, todo):
            name = Path(path).relative_to(ROOT)
            if nb is None:
                print(f"  {name}: failed ({error}); the build will execute and report it")
                complete = False
                continue
            cache.cache_notebook_bundle(
                CacheBundleIn(nb, path, data={"execution_seconds": seconds}),
                check_validity=False, overwrite=True)
            print(f"  {name}: {seconds:.1f} s", flush=True)
    print(f"pre-executed in {time.perf_counter() - start:.1f} s", flush=True)
    return complete


def student_files(root: Path = ROOT, out: Path = STUDENT_DIR) -> tuple[Path, Path]:
    """Write the student edition's _toc.yml and _config.yml under ``out``."""
    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    toc["parts"] = [p for p in toc["parts"] if p.get("caption") != SOLUTIONS_CAPTION]
    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))
    config["title"] = f"{config['title']} (student edition)"
    config["exclude_patterns"] = config["exclude_patterns"] + ["solutions"]
    config["execute"]["cache"] = str(root / "_build" / ".jupyter_cache")  # shared
    sphinx = config["sphinx"]
    sphinx["local_extensions"] = {
        name: str(root / path) for name, path in sphinx["local_extensions"].items()
    }
    out.mkdir(parents=True, exist_ok=True)
    paths = out / "_toc.yml", out / "_config.yml"
    for path, data in zip(paths, (toc, config)):
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return paths


def student_sources(html: Path) -> int:
    """Apply the student edition to the page sources Sphinx copied (the download
    buttons' .md and .ipynb files); returns how many files changed."""
    import json

    sys.path.insert(0, str(ROOT / "_ext"))
    from editions import student_text

    changed = 0
    for path in sorted((html / "_sources").rglob("*")):
        if path.suffix not in (".md", ".ipynb") or not path.is_file():
            continue
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".md":
            new = student_text(text, str(path))
        else:
            nb, new = json.loads(text), text
            for cell in nb["cells"]:
                source = "".join(cell["source"])
                if cell["cell_type"] == "markdown" and student_text(source) != source:
                    cell["source"] = student_text(source, str(path))
                    new = None
            new = new or json.dumps(nb, indent=1, ensure_ascii=False) + "\n"
        if new != text:
            path.write_text(new, encoding="utf-8")
            changed += 1
    return changed


def build_command(student: bool) -> tuple[list[str], dict, Path]:
    """The jupyter-book command of one edition, its environment and its HTML folder."""
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jb), "build", str(ROOT), "-W", "-n", "--keep-going", "--all"]
    env = os.environ.copy()
    html = ROOT / "_build" / "html"
    if student:
        toc, config = student_files()
        cmd += ["--toc", str(toc), "--config", str(config), "--path-output", str(STUDENT_DIR)]
        env["M2M_EDITION"] = "student"
        html = STUDENT_DIR / "_build" / "html"
    else:
        env.pop("M2M_EDITION", None)
    return cmd, env, html


def finish(student: bool, status: int, html: Path) -> int:
    """Report one edition's build (and rewrite the student sources); its status."""
    if status != 0:
        for report in sorted((html / "reports").glob("**/*.err.log")):
            print(f"--- {report.relative_to(ROOT)}\n{report.read_text()[-3000:]}")
        print(f"book build FAILED ({'student' if student else 'full'} edition; "
              "see the warnings above)")
        return status
    if student:
        print(f"student edition: {student_sources(html)} copied page sources rewritten")
    print(f"book built: {html / 'index.html'}", flush=True)
    return 0


def build(student: bool) -> int:
    """One edition, its output streamed; returns the exit status."""
    cmd, env, html = build_command(student)
    print("$", " ".join(cmd), flush=True)
    return finish(student, subprocess.call(cmd, cwd=ROOT, env=env), html)


def build_together(editions: list[bool]) -> list[int]:
    """The editions' builds at the same time (every executed page must be cached: they
    would otherwise execute pages side by side); each one's output is printed whole
    when it ends, so the logs do not interleave."""
    import tempfile

    runs = []
    for student in editions:
        cmd, env, html = build_command(student)
        print("$", " ".join(cmd), "(in parallel)", flush=True)
        log = tempfile.TemporaryFile("w+", encoding="utf-8")  # a pipe could fill up
        runs.append((student, html, log, subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)))
    statuses = []
    for student, html, log, proc in runs:
        proc.wait()
        log.seek(0)
        print(f"=== {'student' if student else 'full'} edition\n{log.read()}", end="",
              flush=True)
        log.close()
        statuses.append(finish(student, proc.returncode, html))
    return statuses


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--student", action="store_true", help="the student edition only")
    group.add_argument("--both", action="store_true", help="full, then student edition")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from model2metal import device

    device.select_cuda_backend()  # chapters that run CUDA inherit the choice
    sys.path.insert(0, str(ROOT / "tools"))
    import book_extras

    book_extras.write_all(ROOT)  # the status tables and the labs download
    editions = [False, True] if args.both else [args.student]
    cached = True
    if False in editions:  # the student edition alone reads what is cached
        free, timed = executed_pages()
        cached = preexecute(free)
        cached = preexecute(timed, jobs=1, kind="timing") and cached
    if cached and len(editions) > 1:
        statuses = build_together(editions)
    else:
        statuses = [build(student) for student in editions]
    return next((s for s in statuses if s), 0)


if __name__ == "__main__":
    sys.exit(main())
