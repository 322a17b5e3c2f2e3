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


def fresh(lab_id: str):
    """The checks of ``lab_id`` ("lab01_01") as their files define them.

    Graded copies of the labs (``make nbgrader``) start every check cell with this: it
    re-executes the shared check modules and every lab's checks already imported, in
    place, so a check function or helper that an answer cell replaced (``checks.check_x
    = lambda f: None``) is defined again from its file before the check runs. Caches
    inside the check modules are emptied by it, which costs time, not correctness. What
    it cannot undo: changes to NumPy, PyTorch, the import system or the built-ins.
    """
    import importlib
    import sys

    if not (isinstance(lab_id, str) and lab_id.startswith("lab")):
        raise ValueError(f"fresh() wants a lab id such as 'lab01_01', not {lab_id!r}")
    prefix = f"{__name__}."
    shared = [f"{prefix}core", f"{prefix}tvm_common"]
    wanted = f"{prefix}{lab_id}"
    labs = sorted(  # a lab's checks import only earlier labs' checks
        name for name in sys.modules if name.startswith(f"{prefix}lab") and name != wanted
    )
    for name in shared + labs:
        if name in sys.modules:
            importlib.reload(sys.modules[name])
    importlib.reload(sys.modules[__name__])  # names the package re-exports from core
    module = sys.modules.get(wanted)
    return importlib.reload(module) if module else importlib.import_module(wanted)
