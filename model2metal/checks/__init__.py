"""Checks for the labs: the shared building blocks and one module per lab.

from model2metal.checks.lab00_01 import check_saxpy
"""

from .core import (
    CheckFailed,
    assert_array_close,
    assert_dtype,
    assert_equal,
    assert_not_none,
    assert_true,
    assert_type,
    assert_unchanged,
    call_learner,
    describe,
    hint_from_evidence,
    matches,
    passed,
    type_name,
)

__all__ = [
    "CheckFailed",
    "assert_array_close",
    "assert_dtype",
    "assert_not_none",
    "assert_equal",
    "assert_true",
    "assert_type",
    "assert_unchanged",
    "call_learner",
    "describe",
    "hint_from_evidence",
    "matches",
    "passed",
    "type_name",
]
