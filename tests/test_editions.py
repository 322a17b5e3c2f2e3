"""The student edition of the book has no solutions: not a page, a link, a line of code
or an answer.

The fast tests read the sources: the ``% full-edition`` markers of ``_ext/editions.py``
and what the student edition's pages say after them. The tests marked ``browser`` read
the books that ``tools/build_book.py --both`` built (the book phase of ``make test``):
they search every HTML file, the search index and the downloadable page sources
(``_sources/``) of the student edition for solution code and reflection answers taken
from the solution notebooks, and check on the full edition that the same search does
find them there (so the search itself works).
"""

import html
import re
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "_ext"))
sys.path.insert(0, str(ROOT / "tools"))
import build_book  # noqa: E402
import editions  # noqa: E402

FULL_HTML = ROOT / "_build" / "html"
STUDENT_HTML = build_book.STUDENT_DIR / "_build" / "html"
TOC_PAGES = sorted(
    p for p in [ROOT / "intro.md", *ROOT.glob("chapters/**/*.md")] if p.is_file()
)


def test_marked_lines_are_dropped_and_student_lines_shown():
    text = "a\n% full-edition\nb {doc}`/solutions/x`\n% end full-edition\n% student: c\n  % student: d"
    assert editions.student_text(text) == "a\nc\n  d"


@pytest.mark.parametrize("text", ["% full-edition\nx", "% end full-edition",
                                  "% full-edition\n% full-edition\n% end full-edition"])
def test_unbalanced_markers_are_refused(text):
    with pytest.raises(editions.EditionMarkerError):
        editions.student_text(text)


@pytest.mark.parametrize("page", TOC_PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_page_points_students_at_solutions(page):
    text = editions.student_text(page.read_text(encoding="utf-8"), page.name)
    assert "/solutions/" not in text, "mark the sentence `% full-edition`"
    assert "*Solutions* part" not in text and "under *Solutions*" not in text


def test_the_student_toc_and_config(tmp_path):
    toc_path, config_path = build_book.student_files(ROOT, tmp_path)
    toc = yaml.safe_load(toc_path.read_text())
    assert "solutions/" not in toc_path.read_text()
    assert len(toc["parts"]) == len(yaml.safe_load((ROOT / "_toc.yml").read_text())["parts"]) - 1
    config = yaml.safe_load(config_path.read_text())
    assert "solutions" in config["exclude_patterns"]
    assert Path(config["execute"]["cache"]).is_absolute()


# --- the built books -----------------------------------------------------------------


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _solution_texts() -> dict[str, list[str]]:
    """Per solution: code lines only its solution regions hold, and answer fragments.

    Lines that a chapter page or a lab also shows (the pages teach some of the same
    code) are left out: they are not the solution's to leak.
    """
    shown = [p.read_text(encoding="utf-8") for p in TOC_PAGES]
    for lab in (ROOT / "labs").rglob("lab*.ipynb"):
        shown += [cell.source for cell in nbformat.read(lab, as_version=4).cells]
    pages = _squash(re.sub(r"[`*]", "", "\n".join(shown)))  # as the HTML shows it
    found = {}
    for path in sorted((ROOT / "solutions").rglob("lab*.ipynb")):
        code, answers = [], []
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "code" and "### BEGIN SOLUTION" in cell.source:
                inside = False
                for line in cell.source.split("\n"):
                    if "### BEGIN SOLUTION" in line or "### END SOLUTION" in line:
                        inside = "BEGIN" in line
                    elif len(line.strip()) >= 30 and inside and _squash(line) not in pages:
                        code.append(_squash(line))
            elif "solution" in cell.metadata.get("tags", []):  # the Markdown answers
                pieces = re.split(r"[`*$\[\]{}()_\\|#<>]", cell.source)
                answers += [_squash(p) for p in pieces if len(_squash(p)) >= 40]
        found[path.stem] = code[:8] + answers[:6]
    return found


def _html_texts(html_root: Path) -> str:
    """Every built HTML page as text (tags removed, entities decoded), the search index,
    and the page sources the download buttons offer."""
    parts = [p.read_text(encoding="utf-8") for p in (html_root / "_sources").rglob("*")
             if p.is_file()]
    for page in html_root.rglob("*.html"):
        raw = re.sub(r"<(script|style)\b.*?</\1>", " ", page.read_text(encoding="utf-8"),
                     flags=re.S)
        parts.append(html.unescape(re.sub(r"<[^>]+>", "", raw)))
    parts.append((html_root / "searchindex.js").read_text(encoding="utf-8"))
    return _squash("\n".join(parts))


def _built(html_root: Path) -> Path:
    if not (html_root / "index.html").exists():
        pytest.fail(f"{html_root} is not built: run tools/build_book.py --both")
    return html_root


@pytest.fixture(scope="module")
def solution_texts():
    texts = _solution_texts()
    assert all(len(t) >= 3 for t in texts.values()), texts
    return texts


@pytest.mark.browser
def test_the_full_edition_shows_the_solutions(solution_texts):
    text = _html_texts(_built(FULL_HTML))
    for stem, pieces in solution_texts.items():
        shown = [p for p in pieces if p in text]
        assert len(shown) >= len(pieces) // 2, (stem, [p for p in pieces if p not in text])


@pytest.mark.browser
def test_the_student_edition_holds_no_solution(solution_texts):
    root = _built(STUDENT_HTML)
    assert not (root / "solutions").exists() and not (root / "_sources" / "solutions").exists()
    for source in (root / "_sources").rglob("*"):
        if source.is_file():
            text = source.read_text(encoding="utf-8")
            assert "/solutions/" not in text and "full-edition" not in text, source
    for page in root.rglob("*.html"):
        links = re.findall(r'href="([^"]*)"', page.read_text(encoding="utf-8"))
        assert not [link for link in links if "solutions/" in link], page
    text = _html_texts(root)
    leaked = {stem: [p for p in pieces if p in text] for stem, pieces in solution_texts.items()}
    assert not any(leaked.values()), {k: v for k, v in leaked.items() if v}
    assert "solutions/" not in (root / "searchindex.js").read_text(encoding="utf-8")
    assert "student edition" in (root / "intro.html").read_text(encoding="utf-8")


@pytest.mark.browser
@pytest.mark.parametrize("html_root", [FULL_HTML, STUDENT_HTML], ids=["full", "student"])
def test_both_editions_offer_the_labs_download_and_the_status(html_root):
    import zipfile

    root = _built(html_root)
    page = (root / "chapters/00_start_here/how_to_use.html").read_text(encoding="utf-8")
    assert 'href="../../model2metal-labs.zip"' in page
    with zipfile.ZipFile(root / "model2metal-labs.zip") as archive:
        names = set(archive.namelist())
    labs = {f"model2metal-labs/{p.relative_to(ROOT).as_posix()}"
            for p in (ROOT / "labs").rglob("lab*.ipynb")}
    assert labs <= names and "model2metal-labs/pyproject.toml" in names
    assert "model2metal-labs/model2metal/checks/core.py" in names
    assert not [n for n in names if "solutions/" in n or "__pycache__" in n]
    status = (root / "chapters/status.html").read_text(encoding="utf-8")
    assert "Pinned versions" in status and "This machine" in status


def test_only_pages_that_time_nothing_are_executed_two_at_a_time():
    free, timed = ({p.relative_to(ROOT).as_posix() for p in group}
                   for group in build_book.executed_pages(ROOT))
    pages = {p.relative_to(ROOT).as_posix() for p in build_book.timing_free_pages(ROOT)}
    assert pages == free and not free & timed
    assert "chapters/03_deployment/parity.md" in pages  # plain code
    for measured in ("chapters/03_deployment/measuring.md", "chapters/04_compilers/gemm.md",
                     "chapters/00_start_here/know_your_machine.md"):
        assert measured in timed and measured not in pages and (ROOT / measured).exists()
    # every chapter page that myst-nb executes (a notebook header, code cells or not)
    # is pre-executed, one way or the other: a page left out would be executed by both
    # editions' builds at once, and they race to create its cache entry (a local build
    # failed so on chapters/06_careers/foundations.md, a header and no code cell)
    notebooks = {p.relative_to(ROOT).as_posix() for p in (ROOT / "chapters").rglob("*.md")
                 if re.match(r"---\n(jupytext:|file_format: mystnb)",
                             p.read_text(encoding="utf-8"))}
    assert notebooks == free | timed
    assert "chapters/06_careers/foundations.md" in free
    assert not [p for p in pages if "/quiz" in p or "/labs/" in p or "solutions/" in p]
    assert build_book.TIMING.search("r = timing.measure(f)")
    assert build_book.TIMING.search("t0 = time.perf_counter()")
    assert not build_book.TIMING.search("result = measure_the_time_of_nothing")


def test_a_notebook_missing_from_the_cache_is_not_cached(tmp_path):
    from jupyter_cache import get_cache
    from nbformat.v4 import new_code_cell, new_notebook

    nb = new_notebook(cells=[new_code_cell("x = 1")])
    assert build_book._cached(get_cache(str(tmp_path / "cache")), nb) is False
