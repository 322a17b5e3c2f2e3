"""Every chapter ends with a self-check quiz whose answers the book itself supports.

Each question of ``chapters/<chapter>/quiz.json`` names the page that teaches its point
(``page``) and a phrase of that page (``evidence``); the phrase must be on the page, so a
quiz cannot drift from the text it checks. The structure is checked as JupyterQuiz
needs it (one correct choice, feedback on every answer, a correct value and a default
hint for numbers), the rendered HTML carries every question and none of our fields, and
in the built book (marked ``browser``) choosing the right answer shows its feedback.
"""

import json
import re
import sys
from pathlib import Path

import nbformat
import pytest

from model2metal.pages import toc_files

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import book_extras  # noqa: E402

CHAPTERS = sorted(p.name for p in (ROOT / "chapters").glob("0*_*") if p.is_dir())
QUESTIONS = [
    (chapter, number, question)
    for chapter in CHAPTERS
    if (ROOT / "chapters" / chapter / "quiz.json").exists()
    for number, question in enumerate(
        json.loads((ROOT / "chapters" / chapter / "quiz.json").read_text()), 1)
]


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _page_text(chapter: str, page: str) -> str:
    if page.startswith("labs/"):
        nb = nbformat.read(ROOT / f"{page}.ipynb", as_version=4)
        return "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    return (ROOT / "chapters" / chapter / f"{page}.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_every_chapter_ends_with_its_quiz(chapter):
    quiz = ROOT / "chapters" / chapter / "quiz.json"
    assert quiz.exists(), f"{chapter} has no quiz.json"
    assert 5 <= len(json.loads(quiz.read_text())) <= 10
    entries = [f for f in toc_files(ROOT)
               if f.split("/")[0] in ("chapters", "labs") and f.split("/")[1:2] == [chapter]]
    assert entries[-1] == f"chapters/{chapter}/quiz", "the quiz is the chapter's last page"
    page = (ROOT / "chapters" / chapter / "quiz.md").read_text(encoding="utf-8")
    assert f"_build/quizzes/{chapter}.html" in page


@pytest.mark.parametrize("chapter, number, question", QUESTIONS,
                         ids=[f"{c}-q{n}" for c, n, _ in QUESTIONS])
def test_each_answer_is_supported_by_its_page(chapter, number, question):
    text = _squash(_page_text(chapter, question["page"]))
    evidence = _squash(question["evidence"])
    assert 6 <= len(evidence.split()) <= 30, evidence
    assert evidence in text, f"not on {question['page']}: {evidence!r}"


@pytest.mark.parametrize("chapter, number, question", QUESTIONS,
                         ids=[f"{c}-q{n}" for c, n, _ in QUESTIONS])
def test_each_question_has_one_right_answer_and_feedback_everywhere(chapter, number,
                                                                    question):
    answers = question["answers"]
    assert question["question"].strip()
    assert all(a.get("feedback", "").strip() for a in answers), "feedback on every answer"
    if question["type"] == "multiple_choice":
        assert 3 <= len(answers) <= 5
        assert sum(a["correct"] is True for a in answers) == 1
        assert len({a["answer"] for a in answers}) == len(answers), "repeated choice"
    else:
        assert question["type"] == "numeric"
        right = [a for a in answers if a.get("correct")]
        assert len(right) == 1 and right[0]["type"] in ("value", "range")
        assert [a["type"] for a in answers].count("default") == 1, "a hint for the rest"


def test_the_rendered_quiz_ships_the_questions_and_not_our_fields():
    path = ROOT / "chapters" / CHAPTERS[0] / "quiz.json"
    rendered = book_extras.quiz_html(path)
    assert rendered == book_extras.quiz_html(path), "the same bytes on every build"
    for question in json.loads(path.read_text()):
        assert json.dumps(book_extras._markup(question["question"]))[1:-1] in rendered
        assert json.dumps(question["evidence"])[1:-1] not in rendered
    assert '"evidence"' not in rendered and "</script" not in rendered.split("<script")[1][:-12]


def test_markup_escapes_html_and_keeps_code_and_math():
    assert book_extras._markup("is `x < y` **always** $a_i$?") == (
        "is <code>x &lt; y</code> <strong>always</strong> $a_i$?")


@pytest.mark.browser
def test_choosing_the_right_answer_shows_its_feedback():
    from playwright.sync_api import sync_playwright

    from test_book_in_browser import CHROMIUM_ARGS, HTML, chromium_path

    chapter = "03_deployment"
    questions = json.loads((ROOT / "chapters" / chapter / "quiz.json").read_text())
    number, question = next(
        (n, q) for n, q in enumerate(questions) if q["type"] == "multiple_choice"
        and not re.search(r"[`$*]", next(a for a in q["answers"] if a["correct"])["answer"]))
    right = next(a for a in question["answers"] if a["correct"])
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(p), args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto((HTML / "chapters" / chapter / "quiz.html").as_uri())
        page.wait_for_selector(".MCButton")
        assert page.locator(".Quiz").count() == len(questions)
        block = page.locator(".Quiz").nth(number)
        block.locator(".MCButton", has_text=right["answer"]).first.click()
        shown = _squash(block.inner_text())
        browser.close()
    assert _squash(re.sub(r"[`*]", "", right["feedback"]))[:40] in shown
