"""Shared test set-up: the CUDA backend, and the markers of the test suite."""

from model2metal import device

# Chosen before any test imports numba. It sets NUMBA_ENABLE_CUDASIM in os.environ, so
# the Jupyter kernels that nbval and the notebook tests start inherit the same choice.
device.select_cuda_backend()


def pytest_configure(config):
    """Register the markers, so that ``-m "not notebooks"`` deselects the slow tests."""
    config.addinivalue_line(
        "markers", "notebooks: executes notebooks in a Jupyter kernel (slow)"
    )
    config.addinivalue_line(
        "markers",
        "browser: opens the built book in headless Chromium (needs make book)",
    )


#: the markers whose phases of ``make test`` collect only the files that spell them
#: (``tools/run_tests.py marked_files``): importing every test module costs each
#: worker about 12 s
PHASE_MARKERS = ("notebooks", "browser")


def pytest_collection_modifyitems(config, items):
    """Refuse a test that carries a phase's marker where its file does not spell it
    ``mark.<name>``: that phase would silently not run it."""
    from pathlib import Path

    texts = {}
    for item in items:
        for name in PHASE_MARKERS:
            if item.get_closest_marker(name) is None:
                continue
            path = Path(str(item.fspath))
            if path.suffix != ".py":
                continue
            text = texts.setdefault(path, path.read_text(encoding="utf-8"))
            if f"mark.{name}" not in text:
                raise RuntimeError(
                    f"{item.nodeid} is marked {name!r} but {path.name} never spells "
                    f"'mark.{name}', so the {name} phase of make test would not collect it")
