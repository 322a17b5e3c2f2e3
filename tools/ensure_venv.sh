#!/usr/bin/env bash
# Create .venv if missing and install requirements.txt into it, but only when
# requirements.txt, constraints.txt or pyproject.toml changed since the last install.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv
STAMP="$VENV/.installed-requirements"
want=$(cat requirements.txt constraints.txt pyproject.toml | sha256sum | cut -d' ' -f1)

if [ ! -x "$VENV/bin/python" ]; then
  PY=$(command -v python3.11 || command -v python3)
  case "$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')" in
    3.11) ;;
    *) echo "Python 3.11 is required (found $PY); install it and retry." >&2; exit 1 ;;
  esac
  echo "creating $VENV with $PY"
  "$PY" -m venv "$VENV"
fi
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
  exit 0
fi
echo "installing requirements.txt into $VENV (a few minutes the first time)"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements.txt
echo "$want" > "$STAMP"
