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
