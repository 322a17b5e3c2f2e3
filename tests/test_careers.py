"""Chapter 6: every role points to the labs that build it, and every self-assessment
statement to the lab or page that proves it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CH6 = ROOT / "chapters" / "06_careers"
DOC = re.compile(r"\{doc\}`(?:[^`<]*<)?(/[^>`]+)>?`")


def sections(path: Path) -> dict[str, str]:
    parts = re.split(r"^## (.+)$", path.read_text(encoding="utf-8"), flags=re.M)
    return dict(zip(parts[1::2], parts[2::2]))


def role_sections(path: Path) -> dict[str, str]:
    return {title: body for title, body in sections(path).items()
            if "engineer" in title.lower()}


def lab_links(body: str) -> set[str]:
    return {t for t in DOC.findall(body) if t.startswith("/labs/")}


def test_five_roles_on_both_pages():
    for page in ("roles.md", "self_assessment.md"):
        assert len(role_sections(CH6 / page)) == 5, page


@pytest.mark.parametrize("role", role_sections(CH6 / "roles.md"))
def test_each_role_names_three_labs_that_exist(role):
    body = role_sections(CH6 / "roles.md")[role]
    assert "Where this book builds it" in body, role
    labs = lab_links(body)
    assert len(labs) >= 3, f"{role}: {sorted(labs)}"
    for target in labs:
        assert (ROOT / f"{target.lstrip('/')}.ipynb").exists(), target


@pytest.mark.parametrize("role", role_sections(CH6 / "self_assessment.md"))
def test_each_statement_links_to_its_proof(role):
    body = role_sections(CH6 / "self_assessment.md")[role]
    statements = [line for line in re.split(r"\n(?=- )", body)
                  if line.startswith("- ☐ I can")]
    assert len(statements) >= 6, role
    for statement in statements:
        targets = DOC.findall(statement)
        assert targets, f"{role}: no link in {statement[:60]!r}"
        for target in targets:
            suffix = ".ipynb" if target.startswith("/labs/") else ".md"
            assert (ROOT / f"{target.lstrip('/')}{suffix}").exists(), target


def test_the_link_pattern_reads_both_forms():
    assert DOC.findall("{doc}`/labs/a/b` and {doc}`text </chapters/c/d>`") == [
        "/labs/a/b", "/chapters/c/d"]
