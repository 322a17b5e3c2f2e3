"""Tests of tvmkit's MetaSchedule wrappers (chapter 4, "Auto-tuning with
MetaSchedule", and lab 04_03): a tiny matmul and a tiny Relax graph tuned with a
handful of trials, the committed-database checks and the untuned fallback.

MetaSchedule's start-up used to parse every target's tensor intrinsics (about 37 s
on two cores); tvmkit.register_cpu_intrinsics imports only this CPU's (0.5 s),
tested here in a fresh process. Everything else here is a few seconds.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from model2metal import tvmkit

N = 16


def test_only_this_cpus_intrinsics_are_parsed():
    import platform
    import subprocess
    import sys

    code = (
        "import sys, time\n"
        "from model2metal import tvmkit\n"
        "start = time.perf_counter()\n"
        "first = tvmkit.register_cpu_intrinsics()\n"
        "took = time.perf_counter() - start\n"
        "from tvm.s_tir import TensorIntrin\n"
        "names = {'x86': 'dot_16x4_avx512', 'arm_cpu': 'dot_4x4_i8i8s32_neon'}\n"
        "TensorIntrin.get(names[first])  # registered, or this raises\n"
        "gpu = [m for m in sys.modules if m.startswith('tvm.s_tir.tensor_intrin.')\n"
        "       and m.rsplit('.', 1)[1] in ('cuda', 'rocm', 'hexagon', 'metal')]\n"
        "print(first, tvmkit.register_cpu_intrinsics(), gpu, took < 15)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    arch = "arm_cpu" if platform.machine().lower() in ("aarch64", "arm64") else "x86"
    assert out.stdout.split() == [arch, "None", "[]", "True"]


def _run_matmul(mod, a, b):
    ex = tvmkit.build(mod)
    out = tvmkit.empty((a.shape[0], b.shape[1]))
    ex["main"](tvmkit.tensor(a), tvmkit.tensor(b), out)
    return out.numpy()


def _claim_other_cpu(folder):
    """Rewrite a database folder's target.json as if tuned on another CPU."""
    path = os.path.join(folder, "target.json")
    info = json.load(open(path, encoding="utf-8"))
    info["fields"]["mcpu"] = "some-other-cpu"
    json.dump(info, open(path, "w", encoding="utf-8"))


@pytest.fixture(scope="module")
def tuned_matmul(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mm")
    mod = tvmkit.matmul_module(N, N, N)
    database = tvmkit.tune_tir(mod, trials=4, work_dir=folder, per_iter=4)
    return mod, folder, database


def test_tuning_target_adds_num_cores_and_keeps_a_given_one():
    target = tvmkit.tuning_target()
    assert int(target.attrs["num-cores"]) == int(os.environ["TVM_NUM_THREADS"])
    given = tvmkit.tuning_target(tvmkit.Target({"kind": "llvm", "num-cores": 7}))
    assert int(given.attrs["num-cores"]) == 7


def test_matmul_module_shapes():
    mod = tvmkit.matmul_module(3, 5, 4)
    batched = tvmkit.matmul_module(2, 3, 4, batch=6)
    assert tvmkit.block_iter_types(batched, "C") == "SSSR"
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 4), dtype=np.float32)
    b = rng.standard_normal((4, 5), dtype=np.float32)
    np.testing.assert_allclose(_run_matmul(mod, a, b), a @ b, rtol=1e-5, atol=1e-5)


def test_tune_writes_records_and_target(tuned_matmul, capsys):
    _, folder, database = tuned_matmul
    assert len(database.get_all_tuning_records()) >= 1
    info = tvmkit.read_target_info(folder)
    here = tvmkit.tuning_target()
    assert info["fields"].get("mcpu") == here.attrs.get("mcpu")
    assert info["tvm"] == tvmkit.version() and info["hardware"]
    assert tvmkit.tuning_target_matches(folder)
    # MetaSchedule's log lines stayed off stdout (they go to work_dir/logs)
    assert "[INFO]" not in capsys.readouterr().out
    assert os.listdir(os.path.join(folder, "logs"))


def test_apply_tuning_schedules_correctly(tuned_matmul):
    mod, folder, _ = tuned_matmul
    tuned = tvmkit.apply_tuning(mod, folder)
    assert tuned is not None
    assert tuned.script() != mod.script()       # a schedule was applied
    rng = np.random.default_rng(1)
    a = rng.standard_normal((N, N), dtype=np.float32)
    b = rng.standard_normal((N, N), dtype=np.float32)
    np.testing.assert_allclose(_run_matmul(tuned, a, b), a @ b,
                               rtol=1e-4, atol=1e-4)
    # another workload has no record
    assert tvmkit.apply_tuning(tvmkit.matmul_module(N, N, 8), folder) is None


def test_records_for_another_cpu_are_refused_unless_forced(tuned_matmul,
                                                           tmp_path):
    mod, folder, _ = tuned_matmul
    copy = tmp_path / "copy"
    size = tvmkit.prune_database(folder, copy)
    assert size > 0
    assert tvmkit.tuning_target_matches(copy)
    _claim_other_cpu(copy)
    assert not tvmkit.tuning_target_matches(copy)
    assert tvmkit.apply_tuning(mod, copy) is None
    assert tvmkit.apply_tuning(mod, copy, force=True) is not None
    assert not tvmkit.tuning_target_matches(tmp_path / "missing")


def test_prune_keeps_one_record_per_workload(tuned_matmul, tmp_path):
    _, folder, database = tuned_matmul
    tvmkit.prune_database(folder, tmp_path / "pruned")
    pruned = tvmkit.open_database(tmp_path / "pruned")
    records = pruned.get_all_tuning_records()
    assert len(records) == 1
    best = min(float(np.mean([float(s) for s in r.run_secs]))
               for r in database.get_all_tuning_records() if r.run_secs)
    assert float(np.mean([float(s) for s in records[0].run_secs])) == \
        pytest.approx(best)


def test_database_record_is_short_and_complete(tuned_matmul):
    _, folder, _ = tuned_matmul
    text = tvmkit.database_record(folder, width=60)
    assert all(len(line) <= 60 for line in text.splitlines()[1:])
    for field in ("workload:", "trace:", "run_secs:", "target:", "args_info:"):
        assert field in text


def test_design_spaces_are_traces(tuned_matmul):
    spaces = tvmkit.design_spaces(tvmkit.matmul_module(N, N, N))
    assert len(spaces) >= 1
    assert all("sample_perfect_tile" in s for s in spaces)


@pytest.fixture(scope="module")
def tiny_graph(tmp_path_factory):
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 8), torch.nn.ReLU()).eval()
    x = torch.randn(2, 16)
    relax_mod = tvmkit.relax_from_torch(model, (x,))
    folder = tmp_path_factory.mktemp("graph")
    tvmkit.tune_relax(relax_mod, trials=4, work_dir=folder, per_iter=4)
    with torch.no_grad():
        expected = model(x).numpy()
    return relax_mod, folder, x.numpy(), expected


def _run_graph(build, x):
    return tvmkit.relax_vm(build.executable)["main"](tvmkit.tensor(x)).numpy()


def test_compile_relax_tuned_applies_matching_records(tiny_graph):
    relax_mod, folder, x, expected = tiny_graph
    build = tvmkit.compile_relax_tuned(relax_mod, folder)
    assert build.applied, build.reason
    assert 1 <= build.n_tuned <= build.n_kernels
    executable, n_tuned, n_kernels, applied, reason = build   # unpacks
    assert str(n_tuned) in reason
    np.testing.assert_allclose(_run_graph(build, x), expected,
                               rtol=1e-5, atol=1e-5)


def test_compile_relax_tuned_falls_back_on_another_cpu(tiny_graph, tmp_path):
    relax_mod, folder, x, expected = tiny_graph
    copy = tmp_path / "copy"
    tvmkit.prune_database(folder, copy)
    _claim_other_cpu(copy)
    build = tvmkit.compile_relax_tuned(relax_mod, copy)
    assert not build.applied and build.n_tuned == 0 and build.n_kernels >= 1
    assert "some-other-cpu" in build.reason and "untuned" in build.reason
    np.testing.assert_allclose(_run_graph(build, x), expected,
                               rtol=1e-5, atol=1e-5)
    missing = tvmkit.compile_relax_tuned(relax_mod, tmp_path / "none")
    assert not missing.applied and "no tuning records" in missing.reason
