"""The foreign-CPU phase of ``make test`` (tools/foreign_cpu.py) can really fail.

Its promise: outputs stored from a run on one CPU are compared under settings that make
this CPU round floats as another one would. The fast tests check the settings; the
slow one stores the outputs of a tiny training notebook natively and shows that nbval
passes on them natively but fails under the foreign settings. Measured on an AMD EPYC
(Zen 4, AVX-512), two epochs of DigitsCNN with Adam on one thread: mean loss
0.063447078 natively, 0.063268121 under all the settings; ``ONEDNN_MAX_CPU_ISA=SSE41``
alone gives 0.063242389, ``ATEN_CPU_CAPABILITY=default`` alone 0.063447075. (A plain
MLP trained for 50 SGD steps did not move at all: the fixture needs convolutions.)
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import foreign_cpu  # noqa: E402

TRAIN_TWO_EPOCHS = '''
import numpy as np
import torch
import torch.nn.functional as F
from model2metal.data import load_digits_split
from model2metal.models import DigitsCNN, preprocess

torch.set_num_threads(1)
torch.manual_seed(0)
X, _, y, _ = load_digits_split()
images, labels = preprocess(X), torch.from_numpy(y)
model = DigitsCNN()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
order = np.random.default_rng(0)
for epoch in range(2):
    total = 0.0
    for batch in np.array_split(order.permutation(len(y)), len(y) // 64):
        loss = F.cross_entropy(model(images[batch]), labels[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item() * len(batch)
print(f"mean loss of the last epoch: {total / len(y):.9f}")
'''


def test_settings_cover_every_library_and_a_new_thread_count():
    env = foreign_cpu.foreign_env()
    assert set(env) <= set(foreign_cpu.FOREIGN_VARIABLES)
    assert env["ATEN_CPU_CAPABILITY"] == "default"
    assert env["NUMBA_CPU_NAME"] == "generic"
    assert env["M2M_TVM_TARGET"] == "llvm"
    assert env["OPENBLAS_CORETYPE"]
    assert int(env["OMP_NUM_THREADS"]) != foreign_cpu.usable_cores()
    for name in ("MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS",
                 "TVM_NUM_THREADS"):
        assert env[name] == env["OMP_NUM_THREADS"]


def test_native_env_drops_every_foreign_setting(monkeypatch):
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "default")
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    native = foreign_cpu.native_env()
    assert not set(native) & set(foreign_cpu.FOREIGN_VARIABLES)
    assert native["PATH"]


def nbval(path: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--nbval",
         str(path)],
        capture_output=True, text=True, env=env, cwd=path.parent,
    )


@pytest.mark.notebooks
def test_phase_fails_on_outputs_that_depend_on_the_cpu(tmp_path):
    if not foreign_cpu.report()[1]:
        pytest.skip("no result moves under the foreign settings on this CPU "
                    "(no SIMD beyond the forced baseline): the phase proves nothing "
                    "here")
    path = tmp_path / "train_two_epochs.ipynb"
    nb = new_notebook(cells=[new_code_cell(TRAIN_TWO_EPOCHS.strip())])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    native = foreign_cpu.native_env()
    NotebookClient(nb, timeout=300, kernel_name="python3").execute(env=native)
    nbformat.write(nb, path)
    stored = nb.cells[0].outputs[0].text
    assert stored.startswith("mean loss of the last epoch: 0.")

    same_machine = nbval(path, native)
    assert same_machine.returncode == 0, (
        "the fixture is not even reproducible natively:\n" + same_machine.stdout[-3000:]
    )
    foreign = nbval(path, native | foreign_cpu.foreign_env())
    assert foreign.returncode == 1, foreign.stdout[-3000:]
    assert "mismatch 'stdout'" in foreign.stdout
