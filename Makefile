# Model to Metal: two commands set everything up.
#   make book   create .venv (if needed), install requirements.txt, build the HTML book
#   make book-student  the same, the student edition (no solutions): _build/student/
#   make test   the same set-up, then every test (see tools/run_tests.py for the phases)
# Author helpers:
#   make labs        regenerate labs/ from solutions/
#   make solutions   re-execute every solution notebook and clean it (outputs kept)
#   make nbgrader    write an nbgrader course (source/ + nbgrader_config.py) to _build/nbgrader
#   make constraints re-pin the transitive dependencies into constraints.txt

SHELL := /bin/bash
PY := .venv/bin/python
BOOK_FLAGS := -W -n --keep-going

.PHONY: book book-student test labs solutions nbgrader venv constraints clean

venv:
	@tools/ensure_venv.sh

book: venv
	$(PY) tools/build_book.py
	@echo "The book is at $(CURDIR)/_build/html/index.html"

book-student: venv
	$(PY) tools/build_book.py --student
	@echo "The student edition is at $(CURDIR)/_build/student/_build/html/index.html"

test: venv
	$(PY) tools/run_tests.py

labs: venv
	$(PY) tools/make_labs.py

solutions: venv
	$(PY) tools/run_solutions.py

nbgrader: venv
	$(PY) tools/make_nbgrader.py

constraints: venv
	$(PY) -m pip freeze --exclude-editable | grep -v "^-e " | grep -v "^torch==" > constraints.txt  # torch: requirements.txt

clean:
	rm -rf _build .pytest_cache
