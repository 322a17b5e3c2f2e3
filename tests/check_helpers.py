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
