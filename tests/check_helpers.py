"""Shared helpers for the tests that feed wrong implementations to the lab checks."""

from __future__ import annotations

import re

import pytest

from model2metal.checks import CheckFailed


def rejects(check, *args, expect: str) -> str:
    """Run ``check(*args)``; it must raise CheckFailed whose message matches ``expect``.

    Returns the message, so a test can assert more about it.
    """
    with pytest.raises(CheckFailed) as info:
        check(*args)
    msg = str(info.value)
    assert re.search(expect, msg, re.S), f"message lacks {expect!r}:\n{msg}"
    return msg


def raises_cleanly(check, *args, expect: str) -> str:
    """Learner code that raises inside ``check(*args)`` gives one CheckFailed: the
    case, the learner's error, the learner's line and a hint (and the input, when the
    call had arguments), and no chained traceback. Returns the message."""
    with pytest.raises(CheckFailed) as info:
        check(*args)
    failed = info.value
    msg = str(failed)
    assert failed.__cause__ is None and failed.__suppress_context__, msg
    assert re.search(r"failed on case '.+'", msg), msg
    assert re.search(r"raised \w+: ", msg), msg
    assert re.search(r"\n  in [<\w>]+\(\), line \d+: ", msg), msg
    assert "\n  Hint: " in msg and "Traceback" not in msg, msg
    assert re.search(expect, msg, re.S), f"message lacks {expect!r}:\n{msg}"
    return msg


def boom(*args, **kwargs):
    """A learner's function that raises, whatever it is given."""
    raise ZeroDivisionError("a learner's bug")
