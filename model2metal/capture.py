"""Capture what C and C++ code writes to file descriptor 2 (stderr).

Python's ``contextlib.redirect_stderr`` only swaps ``sys.stderr``; a library written
in C++ (PyTorch's profiler, TVM's logger) writes to the file descriptor itself.
:class:`CStderr` points descriptor 2 at a temporary file while its block runs and
keeps what arrived, without terminal colour codes, in ``.text``:

    with CStderr() as err:
        noisy_native_call()
    print(err.text)        # or ignore it: the block was quiet
"""

from __future__ import annotations

import os
import re
import sys
import tempfile

__all__ = ["CStderr"]

ANSI = re.compile(r"\x1b\[[0-9;]*m")


class CStderr:
    """Send descriptor 2 to a temporary file inside the block; ``.text`` after."""

    text = ""

    def __enter__(self):
        sys.stderr.flush()
        self._file = tempfile.TemporaryFile()
        self._saved = os.dup(2)
        os.dup2(self._file.fileno(), 2)
        return self

    def __exit__(self, *exc):
        os.dup2(self._saved, 2)
        os.close(self._saved)
        self._file.seek(0)
        self.text = ANSI.sub("", self._file.read().decode(errors="replace"))
        self._file.close()
        return False
