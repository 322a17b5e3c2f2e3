"""ONNX and ONNX Runtime as the course uses them: the committed course model, sessions
with explicit threads, a graph summary, and quiet exporter logs.

Checked against torch 2.13.0, onnx 1.23.2, onnxscript 0.7.2 and onnxruntime 1.31.1, the
versions pinned in requirements.txt, by running them:

* ``torch.onnx.export(..., dynamo=True)`` goes through ``torch.export`` and onnxscript's
  optimiser, which already folds each BatchNorm into the convolution before it: the
  exported course model has no ``BatchNormalization`` node. It writes opset 20, IR
  version 10. ``verbose=False`` silences its progress lines; its registry still logs
  "torchvision is not installed" warnings, which :func:`silence_exporter_logs` mutes.
* An ONNX Runtime session uses every core for one inference by default
  (``intra_op_num_threads=0``); two sessions on the same cores then compete. Say the
  thread count (:func:`session`).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
import subprocess
import sys
import time
import warnings
from collections import Counter
from pathlib import Path

__all__ = [
    "COURSE_ONNX",
    "silence_exporter_logs",
    "quietly",
    "error_summary",
    "session",
    "graph_summary",
    "dims",
    "input_dims",
    "concurrent_latencies",
    "stand_in_model",
]

#: The course model exported to ONNX (fp32, dynamic batch axis, input "images",
#: output "logits"), written by ``tools/export_course_model.py``.
COURSE_ONNX = Path(__file__).resolve().parent / "assets" / "digits_cnn.onnx"


def silence_exporter_logs() -> None:
    """Mute the torch.onnx exporter's warnings about optional packages (torchvision)
    and a deprecation warning of its pytree code; errors still show."""
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    logging.getLogger("torch.fx.experimental.symbolic_shapes").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=r".*LeafSpec.*", category=FutureWarning)


def quietly(fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` with what it prints to ``sys.stdout`` and ``sys.stderr``
    dropped (exporters print progress lines, and ``torch.export`` the graph it was
    tracing when it fails)."""
    sink = io.StringIO()
    with contextlib.redirect_stderr(sink), contextlib.redirect_stdout(sink):
        return fn(*args, **kwargs)


def error_summary(fn, *args, width: int = 100, **kwargs) -> str | None:
    """Run ``fn(*args, **kwargs)`` :func:`quietly`; None if it succeeds, else
    ``"ErrorType: first line of the message"`` (cut to ``width`` characters, colour
    codes removed): pages show the error, not the dump."""
    try:
        quietly(fn, *args, **kwargs)
    except Exception as error:  # noqa: BLE001 - the error is the result
        text = re.sub(r"\x1b\[[0-9;]*m", "", str(error)).strip()
        first = text.splitlines()[0] if text else ""
        if len(first) > width:
            first = first[: width - 1].rstrip() + "…"
        return f"{type(error).__name__}: {first}"
    return None


def session(model, threads: int | None = None, optimize: bool = True):
    """An ONNX Runtime CPU session for ``model`` (a path, bytes or a ModelProto).

    ``threads``: ONNX Runtime's intra-op threads (``None``: its default, every core).
    ``optimize=False`` switches graph optimisations off, to see the graph as exported.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    if not optimize:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    if hasattr(model, "SerializeToString"):
        model = model.SerializeToString()
    elif isinstance(model, Path):
        model = str(model)
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def dims(value_info) -> list:
    """A graph input's or output's dimensions: ints for fixed sizes, names for
    symbolic ones."""
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


def input_dims(model) -> dict[str, list]:
    """Each graph input's :func:`dims`."""
    return {value.name: dims(value) for value in model.graph.input}


def graph_summary(model) -> str:
    """Opsets, IR version, inputs, outputs and operator counts of an ONNX model."""
    opsets = ", ".join(
        f"{o.domain or 'ai.onnx'} {o.version}" for o in model.opset_import
    )
    ops = Counter(node.op_type for node in model.graph.node)
    lines = [
        f"IR version {model.ir_version}; opsets: {opsets}",
        "inputs : " + ", ".join(f"{k} {v}" for k, v in input_dims(model).items()),
        "outputs: " + ", ".join(v.name for v in model.graph.output),
        f"{len(model.graph.node)} nodes: "
        + ", ".join(f"{op} ×{n}" for op, n in ops.most_common()),
    ]
    return "\n".join(lines)


_WORKER = r"""
import json, sys, time
import numpy as np
from model2metal import onnxkit
path, threads, batch, repeats, start_at = sys.argv[1:6]
threads = None if threads == "default" else int(threads)
sess = onnxkit.session(path, threads=threads)
x = np.random.default_rng(0).random((int(batch), 1, 8, 8), dtype=np.float32)
for _ in range(20):
    sess.run(None, {"images": x})
while time.time() < float(start_at):
    time.sleep(0.001)
samples = []
for _ in range(int(repeats)):
    t0 = time.perf_counter()
    sess.run(None, {"images": x})
    samples.append(time.perf_counter() - t0)
print(json.dumps(samples))
"""


def concurrent_latencies(
    model_path,
    processes: int,
    threads: int | None,
    batch: int = 1,
    repeats: int = 300,
) -> list[list[float]]:
    """Latencies (seconds) of ``processes`` separate processes, each with its own
    ONNX Runtime session (``threads`` intra-op threads; ``None``: ORT's default),
    running ``repeats`` inferences of a batch at the same time.

    The processes load their session and warm up first, then all start timing at
    one agreed moment, so that their measured runs overlap: the experiment of two
    services sharing the same cores.
    """
    start_at = time.time() + 3.0 + 0.5 * processes  # after every process is ready
    args = [str(model_path), "default" if threads is None else str(threads),
            str(batch), str(repeats), repr(start_at)]
    workers = [
        subprocess.Popen([sys.executable, "-c", _WORKER, *args],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(processes)
    ]
    results = []
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        if worker.returncode != 0:
            raise RuntimeError(f"a benchmark process failed:\n{err[-2000:]}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def stand_in_model(
    path, hidden: int = 4096, layers: int = 2, seed: int = 0
) -> Path:
    """Write a stand-in for a larger model to ``path`` and return the path: the course
    model's input and output ("images" ``(batch, 1, 8, 8)`` → "logits" ``(batch,
    10)``) with ``layers`` fully connected layers of width ``hidden`` in between,
    random weights (seeded), fp32.

    Its answers mean nothing; its cost is the point. With the default sizes it holds
    67 MB of weights, more than a CPU's caches, and every call reads all of them once:
    a batch of one image pays that for one image, a batch of 32 shares it among 32 —
    the situation of most real models (ResNet-50: about 100 MB), where batching
    requests pays off. The course model itself is too small to show it.
    """
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    widths = [64] + [hidden] * layers + [10]
    nodes = [helper.make_node("Flatten", ["images"], ["h0"], axis=1)]
    weights = []
    for k, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:])):
        w = rng.standard_normal((fan_in, fan_out), dtype=np.float32)
        w *= np.float32(np.sqrt(2.0 / fan_in))
        weights += [numpy_helper.from_array(w, f"w{k}"),
                    numpy_helper.from_array(np.zeros(fan_out, np.float32), f"b{k}")]
        last = k == len(widths) - 2
        gemm_out = "logits" if last else f"z{k + 1}"
        nodes.append(helper.make_node("Gemm", [f"h{k}", f"w{k}", f"b{k}"], [gemm_out]))
        if not last:
            nodes.append(helper.make_node("Relu", [gemm_out], [f"h{k + 1}"]))
    graph = helper.make_graph(
        nodes, "stand_in",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 1, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])],
        weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    model.ir_version = 10
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return Path(path)
