"""Model to Metal: scaffolding for the course's labs and chapters.

Only scaffolding lives here — checks, timing, device selection, data, plotting and
a thin TVM layer — never the answer to a lab. Submodules load on first use, so
``import model2metal`` stays fast and does not import Numba (the CUDA backend must be
chosen before that happens) or TVM.

    from model2metal import device, timing
    print(device.report())
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"
_SUBMODULES = (
    "capture", "checks", "cudakit", "data", "device", "graphs", "hwkit", "models", "onnxkit",
    "plotting", "seeding", "serving", "shapes", "timing", "tvmkit",
)
__all__ = list(_SUBMODULES)


def __getattr__(name: str):
    if name in _SUBMODULES:
        module = importlib.import_module(f".{name}", __name__)
        globals()[name] = module
        return module
    raise AttributeError(f"module 'model2metal' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_SUBMODULES))
