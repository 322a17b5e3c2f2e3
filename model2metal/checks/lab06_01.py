"""Checks for lab 06_01, the capstone: the tiny detector from weights to a service.

Conventions the lab states and these checks hold it to:

* ``WithDecoding(net, k=20)`` is a ``torch.nn.Module`` whose ``forward(images)``
  takes ``(N, 1, 32, 32)`` float32 images and returns ``(boxes, scores, classes)``:
  the ``k`` highest 3×3 local maxima of the sigmoid heatmaps over all classes and
  cells, ``(N, k, 4)`` float32 boxes ``(x1, y1, x2, y2)`` in input pixels (centre
  ``(x + 0.5, y + 0.5)`` cells, width and height from the size head, times the
  stride 2), ``(N, k)`` float32 scores and ``(N, k)`` int64 classes. Cells that are
  not maxima score 0; where fewer than ``k`` peaks exist, the rest are such zeros.
* ``export_detector(module, example, path)`` writes an ONNX file with one input
  ``images`` (dynamic batch) and the outputs ``boxes``, ``scores``, ``classes``.
* ``postprocess(boxes, scores, classes, score_threshold=0.1, iou_threshold=0.5)``
  takes one image's candidates and returns ``(boxes, scores, classes)`` NumPy
  arrays of the detections kept: scores strictly above the threshold, then NMS per
  class (a box is removed by a higher-scoring box of its own class whose IoU with it
  is above ``iou_threshold``), in descending score order.
* ``quantise_detector(fp32_path, int8_path, calibration_images)`` writes a static
  QDQ int8 model of the same interface whose mAP@0.5 is within 2 points of fp32.
* ``make_app(model_path)`` returns a FastAPI app: ``GET /health`` answers 200;
  ``POST /predict`` with ``{"images": [...]}`` (1 to ``MAX_IMAGES`` images of 32 rows
  of 32 finite numbers in [0, 1], ``Content-Type: application/json``, at most
  ``MAX_BODY_BYTES``) answers ``{"detections": [[{"box": [x1, y1, x2, y2], "score":
  s, "class": c}, ...], ...]}`` (one list per image, after ``postprocess``), and
  refuses with ``{"error": "..."}``: 415 for another content type, 400 for a body
  that is not JSON, 413 for too many images or bytes, 422 for anything else wrong.
"""

from __future__ import annotations

import functools
import json
import tempfile
from pathlib import Path

import numpy as np

from ..detector import GRID, STRIDE, load_tiny_detector
from ..shapes import CLASS_NAMES, make_shapes
from . import lab02_03 as _lab02_03
from .core import (
    CheckFailed,
    assert_true,
    assert_type,
    call_learner,
    describe,
    passed,
)

__all__ = [
    "check_decoding",
    "check_export",
    "check_postprocess",
    "score_detections",
    "check_quantise",
    "check_runtime",
    "check_service",
    "TEST_SET",
    "MAX_IMAGES",
    "MAX_BODY_BYTES",
]

K = 20
MAX_IMAGES = 32
MAX_BODY_BYTES = 1_000_000
#: the capstone's test set: the images and boxes lab 02_03 tested on
TEST_SET = {"seed": 2, "n": 200}
_FLOOR = 1e-3          # candidates above this score are compared
_NOT_DECODED = (
    "the outputs are the network's raw heads: the decoding step (sigmoid, 3×3 "
    "peaks, top-k, boxes in pixels) is not in the file. Export the module that "
    "wraps the network, so that every runtime gets boxes, not heatmaps"
)


@functools.lru_cache(maxsize=None)
def test_set():
    """(images, ground-truth boxes, labels) of the capstone's test set."""
    return make_shapes(TEST_SET["n"], seed=TEST_SET["seed"])


def _heads(images: np.ndarray, net=None):
    """Sigmoid heatmaps and sizes of ``net`` (default: the committed detector)."""
    import torch

    net = net if net is not None else load_tiny_detector()
    with torch.no_grad():
        logits, sizes = net(torch.from_numpy(np.ascontiguousarray(images)))
    return torch.sigmoid(logits).numpy(), sizes.numpy()


def _reference(images: np.ndarray, variant=None, heads=None) -> list[np.ndarray]:
    """Per image, the rows (class, score, x1, y1, x2, y2) of the top-k peaks that
    score above the floor, by descending score; ``variant`` as lab 02_03's;
    ``heads`` the network's outputs for ``images`` when already computed."""
    heat, wh = heads if heads is not None else _heads(images)
    out = []
    for h, s in zip(heat, wh):
        found = _lab02_03._decode_by_loops(h, s, K, STRIDE, _FLOOR, variant)
        if found is None:
            return None
        out.append(np.array([[c, score, *box] for c, box, score in found],
                            dtype=np.float64).reshape(-1, 6))
    return out


def _rows(boxes, scores, classes) -> list[np.ndarray]:
    """The learner's candidates as rows above the floor, by descending score."""
    out = []
    for b, s, c in zip(boxes, scores, classes):
        keep = s > _FLOOR
        rows = np.column_stack([c[keep], s[keep], b[keep]]).astype(np.float64)
        out.append(rows[np.argsort(-rows[:, 1], kind="stable")])
    return out


def _same(got: list[np.ndarray], want: list[np.ndarray]) -> tuple[bool, str]:
    for i, (g, w) in enumerate(zip(got, want)):
        if g.shape != w.shape:
            return False, (f"image {i}: {len(g)} candidates score above {_FLOOR}, "
                           f"expected {len(w)}")
        if not np.array_equal(g[:, 0], w[:, 0]):
            return False, f"image {i}: classes {g[:, 0].astype(int).tolist()}, " \
                          f"expected {w[:, 0].astype(int).tolist()}"
        if not np.allclose(g[:, 1], w[:, 1], atol=1e-5):
            return False, f"image {i}: scores {np.round(g[:, 1], 4).tolist()}, " \
                          f"expected {np.round(w[:, 1], 4).tolist()}"
        if not np.allclose(g[:, 2:], w[:, 2:], atol=1e-3):
            j = int(np.abs(g[:, 2:] - w[:, 2:]).max(axis=1).argmax())
            return False, (f"image {i}: box {np.round(g[j, 2:], 3).tolist()}, "
                           f"expected {np.round(w[j, 2:], 3).tolist()}")
    return True, ""


_DECODE_HINTS = {
    "no suppression": "keep a cell only where it equals the maximum of its 3×3 "
                      "neighbourhood (max_pool2d with kernel 3, stride 1, padding 1)",
    "x/y swapped": "a flat index into (H, W) is y * W + x: the row comes first",
    "w/h swapped": "channel 0 of the size head is the width, channel 1 the height",
    "top k per class": "take the top k over all classes and cells together "
                       "(flatten (C, H, W) before topk), not k per class",
    "no +0.5": "a cell's centre is (x + 0.5, y + 0.5) in grid units",
}


def _centre_swapped(rows: list[np.ndarray]) -> list[np.ndarray]:
    """The rows with each box's centre at (y, x) and its size kept: the mistake of
    taking the row for the column after a correct gather of the sizes."""
    out = []
    for r in rows:
        r = r.copy()
        cx, cy = (r[:, 2] + r[:, 4]) / 2, (r[:, 3] + r[:, 5]) / 2
        w, h = r[:, 4] - r[:, 2], r[:, 5] - r[:, 3]
        r[:, 2:] = np.column_stack([cy - w / 2, cx - h / 2, cy + w / 2, cx + h / 2])
        out.append(r)
    return out


def _compare_decoding(check, case, got_rows, images):
    heads = _heads(images)
    want = _reference(images, heads=heads)
    ok, problem = _same(got_rows, want)
    if ok:
        return
    hint = None
    for variant, text in _DECODE_HINTS.items():
        candidate = _reference(images, variant, heads)
        if candidate is not None and _same(got_rows, candidate)[0]:
            hint = text
            break
    if hint is None and _same(got_rows, _centre_swapped(want))[0]:
        hint = _DECODE_HINTS["x/y swapped"]
    raise CheckFailed(check, case, problem, hint or (
        "decode as lab 02_03 did: sigmoid, 3×3 peaks, top-k over all classes and "
        "cells, box centre at the cell's centre, sizes in cells, times the stride"))


def _as_outputs(check, case, got, n):
    assert_true(isinstance(got, (tuple, list)) and len(got) == 3, check, case,
                f"returned {describe(got)}",
                "return three tensors: (boxes, scores, classes)")
    arrays = [np.asarray(x.detach().numpy() if hasattr(x, "detach") else x)
              for x in got]
    shapes = [(n, K, 4), (n, K), (n, K)]
    for name, array, shape in zip(("boxes", "scores", "classes"), arrays, shapes):
        assert_true(array.shape == shape, check, case,
                    f"{name} has shape {array.shape}, expected {shape}",
                    "keep the batch axis; k candidates per image")
    assert_true(np.issubdtype(arrays[2].dtype, np.integer), check, case,
                f"classes are {arrays[2].dtype}, expected integers",
                "the class is the flat index divided by H * W, an integer")
    return arrays


def check_decoding(module_class) -> None:
    """``module_class(net, k=20)`` on 12 test images against lab 02_03's decoding."""
    import torch

    check = "check_decoding"
    net = load_tiny_detector()
    module = call_learner(check, "WithDecoding(net, k=20)", module_class, net, k=K,
                          hint="__init__ only stores net and k (and calls "
                               "super().__init__())")
    assert_type(module, torch.nn.Module, check, "WithDecoding(net, k=20)",
                "the module", "subclass torch.nn.Module and call super().__init__()")
    module.eval()
    images = make_shapes(12, seed=11)[0]
    case = "12 images of make_shapes(12, seed=11)"
    with torch.no_grad():
        got = call_learner(check, case, module, torch.from_numpy(images),
                           hint="run the module on a batch in a cell of its own "
                                "and read the line the error points at")
    boxes, scores, classes = _as_outputs(check, case, got, len(images))
    _compare_decoding(check, case, _rows(boxes, scores, classes), images)
    passed(check, 1, f": {int((scores > 0.1).sum())} candidates above 0.1 match")


def _onnx_outputs(check, path):
    import onnx

    path = Path(path)
    assert_true(path.exists(), check, str(path), "no file was written",
                "save the export's result (program.save(path))")
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as error:  # noqa: BLE001 - any failure is the learner's file
        raise CheckFailed(check, str(path), f"not a valid ONNX model: {error}",
                          "save the program the exporter returns, with its save(path)")
    names = [o.name for o in model.graph.output]
    inputs = [i.name for i in model.graph.input]
    return model, inputs, names


def check_export(path) -> None:
    """The ONNX file: its interface, a dynamic batch, and its decoded candidates."""
    from .. import onnxkit

    check = "check_export"
    model, inputs, names = _onnx_outputs(check, path)
    dims = onnxkit.input_dims(model)
    shapes = {o.name: onnxkit.dims(o) for o in model.graph.output}
    raw = len(names) == 2 and any(len(s) == 4 and s[1:] == [len(CLASS_NAMES), GRID,
                                                            GRID]
                                  for s in shapes.values())
    assert_true(not raw, check, "the outputs", _NOT_DECODED,
                "put WithDecoding(net) in torch.onnx.export, not net")
    assert_true(names == ["boxes", "scores", "classes"], check, "the outputs",
                f"outputs {names}", 'name them output_names=["boxes", "scores", '
                '"classes"] (in that order)')
    assert_true(inputs == ["images"], check, "the inputs", f"inputs {inputs}",
                'name the input input_names=["images"]')
    first = dims["images"][0]
    assert_true(isinstance(first, str), check, "the batch axis",
                f"the input's first dimension is fixed at {first}",
                "export with dynamic_shapes=({0: torch.export.Dim('batch')},)")
    session = onnxkit.session(path, threads=1)
    for n, seed in ((1, 12), (7, 13)):
        images = make_shapes(n, seed=seed)[0]
        case = f"ONNX Runtime, batch {n}"
        boxes, scores, classes = session.run(None, {"images": images})
        _compare_decoding(check, case, _rows(boxes, scores, classes), images)
    passed(check, 3, ": boxes, scores, classes; dynamic batch; same candidates")


# ---------------------------------------------------------------------------
# post-processing: threshold and class-aware NMS
# ---------------------------------------------------------------------------


def _post_reference(b, s, c, score_threshold, iou_threshold, variant=None):
    b, s, c = (np.asarray(x) for x in (b, s, c))
    keep = s >= score_threshold if variant == ">=" else s > score_threshold
    if variant == "no threshold":
        keep = np.ones(len(s), bool)
    b, s, c = b[keep], s[keep], c[keep]
    if variant == "across classes":
        order = _lab02_03._nms_by_loops(b, s, iou_threshold)
    else:
        order = _lab02_03._batched_nms_by_loops(b, s, c, iou_threshold)
    order = sorted(order, key=lambda i: -s[i])
    return b[order].reshape(-1, 4), s[order], c[order]


_POST_HINTS = {
    "across classes": "NMS must be class-aware: a box only suppresses boxes of its "
                      "own class (a disc never removes an overlapping square)",
    ">=": "keep scores strictly above score_threshold",
    "no threshold": "drop the candidates whose score is not above score_threshold "
                    "before NMS",
}


def _post_cases():
    """(case, boxes, scores, classes); one image's candidates each."""
    sq = [4.0, 4.0, 14.0, 14.0]
    shifted = [5.0, 5.0, 15.0, 15.0]      # IoU 0.68 with sq
    far = [20.0, 20.0, 28.0, 28.0]
    half = [4.0, 4.0, 14.0, 9.0]          # 50 of 100: IoU 0.5 with sq exactly
    return [
        ("two squares overlapping (same class)", [sq, shifted], [0.9, 0.8], [0, 0]),
        ("a square and a disc overlapping", [sq, shifted], [0.9, 0.8], [0, 1]),
        ("all below the threshold", [sq, far], [0.05, 0.02], [1, 1]),
        ("a score equal to the threshold", [sq, far], [0.9, 0.1], [0, 2]),
        ("IoU exactly 0.5 (kept)", [sq, half], [0.9, 0.7], [2, 2]),
        ("three classes, out of order", [far, sq, shifted, far],
         [0.3, 0.6, 0.95, 0.2], [1, 0, 0, 1]),
    ]


def check_postprocess(fn) -> None:
    check = "check_postprocess"
    for case, b, s, c in _post_cases():
        b = np.array(b, np.float32)
        s = np.array(s, np.float32)
        c = np.array(c, np.int64)
        got = call_learner(check, case, fn, b.copy(), s.copy(), c.copy(),
                           score_threshold=0.1, iou_threshold=0.5,
                           hint="boxes (K, 4), scores (K,) and classes (K,) are "
                                "NumPy arrays of one image")
        assert_true(isinstance(got, (tuple, list)) and len(got) == 3, check, case,
                    f"returned {describe(got)}",
                    "return (boxes, scores, classes) of the kept detections")
        got = [np.asarray(x) for x in got]
        want = _post_reference(b, s, c, 0.1, 0.5)
        same = (got[0].reshape(-1, 4).shape == want[0].shape
                and np.allclose(got[0].reshape(-1, 4), want[0])
                and np.allclose(got[1], want[1])
                and np.array_equal(got[2], want[2]))
        if same:
            continue
        hint = None
        for variant, text in _POST_HINTS.items():
            alt = _post_reference(b, s, c, 0.1, 0.5, variant)
            if (got[1].shape == alt[1].shape and np.allclose(got[1], alt[1])
                    and np.array_equal(got[2], alt[2])):
                hint = text
                break
        raise CheckFailed(
            check, case,
            f"kept scores {np.round(got[1], 3).tolist()} of classes "
            f"{got[2].tolist()}; expected scores {want[1].tolist()} of classes "
            f"{want[2].tolist()}",
            hint or "threshold first (strictly above), then NMS per class "
                    "(suppress IoU > iou_threshold), highest score first")
    passed(check, len(_post_cases()), ", class-aware")


def score_detections(predictions) -> float:
    """mAP@0.5 (all-point, lab 02_03's definition) of ``predictions`` on the
    capstone's test set: one ``(boxes, scores, classes)`` per test image."""
    _, boxes, labels = test_set()
    if not isinstance(predictions, (list, tuple)) or len(predictions) != len(boxes):
        raise CheckFailed(
            "score_detections", None,
            f"expected {len(boxes)} (boxes, scores, classes), one per test image, "
            f"got {describe(predictions)}",
            "run your detector on every image of checks.test_set()[0]")
    return _lab02_03._map_by_loops(
        [tuple(np.asarray(x) for x in p) for p in predictions],
        list(zip(boxes, labels)), len(CLASS_NAMES))


def _kept(boxes, scores, classes, variant=None) -> list[tuple]:
    """Per image, the detections the lab's post-processing keeps."""
    return [_post_reference(b, s, c, 0.1, 0.5, variant)
            for b, s, c in zip(boxes, scores, classes)]


def reference_detections(images, net=None) -> list[tuple]:
    """Per image, ``(boxes, scores, classes)`` of the reference pipeline: ``net``'s
    heads (default: the committed detector), lab 02_03's decoding, the lab's
    post-processing. What ``tools/train_tiny_detector.py`` scores."""
    rows = _reference(images, heads=_heads(images, net))
    return _kept([r[:, 2:] for r in rows], [r[:, 1] for r in rows],
                 [r[:, 0].astype(np.int64) for r in rows])


def _session_predictions(path):
    from .. import onnxkit

    session = onnxkit.session(path, threads=1)
    return _kept(*session.run(None, {"images": test_set()[0]}))


def check_quantise(int8_path, fp32_path) -> None:
    check = "check_quantise"
    model, _, names = _onnx_outputs(check, int8_path)
    ops = {node.op_type for node in model.graph.node}
    assert_true({"QuantizeLinear", "DequantizeLinear"} <= ops, check, "the int8 file",
                f"no QuantizeLinear/DequantizeLinear nodes (ops: {sorted(ops)})",
                "quantize_static with quant_format=QuantFormat.QDQ")
    assert_true(names == ["boxes", "scores", "classes"], check, "the int8 file",
                f"outputs {names}", "quantise the exported file with its decoding")
    small, large = Path(int8_path).stat().st_size, Path(fp32_path).stat().st_size
    assert_true(small * 2 <= large, check, "the file sizes",
                f"int8 {small:,} bytes, fp32 {large:,}",
                "the convolution weights should be int8 (weight_type=QInt8)")
    fp32 = score_detections(_session_predictions(fp32_path))
    int8 = score_detections(_session_predictions(int8_path))
    assert_true(int8 >= fp32 - 0.02, check, "mAP@0.5 on the test set",
                f"int8 {int8:.3f} against fp32 {fp32:.3f}",
                "calibrate on training images (a few hundred) and quantise only "
                "the convolutions (op_types_to_quantize=['Conv']): quantised "
                "peak comparisons and top-k make ties")
    passed(check, 3, ": int8 QDQ, at most half the size, mAP within 2 points")


def check_runtime(make_runner, path, name="TVM") -> None:
    """``make_runner(path, batch)`` returns ``run(images)``, another runtime's
    detector for that batch size; compared with ONNX Runtime at batch 1 and 8."""
    from .. import onnxkit

    check = "check_runtime"
    session = onnxkit.session(path, threads=1)
    for n, seed in ((1, 14), (8, 15)):
        images = make_shapes(n, seed=seed)[0]
        case = f"{name}, batch {n}"
        run = call_learner(check, case, make_runner, path, n,
                           hint="import the file with a fixed batch, build it, "
                                "and return a function")
        assert_true(callable(run), check, case, f"returned {describe(run)}",
                    "return a function run(images) -> (boxes, scores, classes)")
        got = call_learner(check, case, run, images, label="run()",
                           hint="call the VM's main on tvmkit.tensor(images)")
        boxes, scores, classes = _as_outputs(check, case, got, n)
        want = session.run(None, {"images": images})
        ok, problem = _same(_rows(boxes, scores, classes), _rows(*want))
        assert_true(ok, check, case, problem,
                    "compile the same ONNX file and return its three outputs "
                    "as NumPy arrays")
    passed(check, 2, f": {name} gives ONNX Runtime's candidates")


# ---------------------------------------------------------------------------
# the service
# ---------------------------------------------------------------------------


def constant_model(path, boxes, scores, classes) -> Path:
    """An ONNX model of the detector's interface that answers the same candidates
    for every image: what a check needs to test post-processing end to end."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    boxes = np.asarray(boxes, np.float32)[None]
    scores = np.asarray(scores, np.float32)[None]
    classes = np.asarray(classes, np.int64)[None]
    k = boxes.shape[1]
    nodes = [helper.make_node("Shape", ["images"], ["shape"], end=1),
             helper.make_node("Concat", ["shape", "k4"], ["s3"], axis=0),
             helper.make_node("Concat", ["shape", "k1"], ["s2"], axis=0)]
    for name, const, shape in (("boxes", boxes, "s3"), ("scores", scores, "s2"),
                               ("classes", classes, "s2")):
        nodes.append(helper.make_node("Expand", [f"{name}_c", shape], [name]))
    inits = [numpy_helper.from_array(np.array([k, 4], np.int64), "k4"),
             numpy_helper.from_array(np.array([k], np.int64), "k1"),
             numpy_helper.from_array(boxes, "boxes_c"),
             numpy_helper.from_array(scores, "scores_c"),
             numpy_helper.from_array(classes, "classes_c")]
    graph = helper.make_graph(
        nodes, "constant_detector",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT,
                                       ["batch", 1, 32, 32])],
        [helper.make_tensor_value_info("boxes", TensorProto.FLOAT, ["batch", k, 4]),
         helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", k]),
         helper.make_tensor_value_info("classes", TensorProto.INT64, ["batch", k])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return Path(path)


def _body(document) -> bytes:
    return json.dumps(document).encode()


def _bad_requests():
    """(case, body, headers, status) the service must refuse."""
    json_type = {"content-type": "application/json"}
    image = np.zeros((32, 32)).tolist()
    nan = np.zeros((32, 32)).tolist()
    nan[3][4] = float("nan")
    return [
        ("a body that is not JSON", b"images=1", json_type, 400),
        ("Content-Type text/plain", _body({"images": [image]}),
         {"content-type": "text/plain"}, 415),
        ("no images key", _body({"pictures": [image]}), json_type, 422),
        ("an empty list", _body({"images": []}), json_type, 422),
        ("an 8 x 8 image", _body({"images": [np.zeros((8, 8)).tolist()]}),
         json_type, 422),
        ("a ragged image", _body({"images": [image[:31] + [[0.0] * 5]]}),
         json_type, 422),
        ("a NaN pixel", json.dumps({"images": [nan]}).encode(), json_type, 422),
        ("a pixel of 255", _body({"images": [[[255.0] * 32] * 32]}), json_type,
         422),
        ("strings for pixels", _body({"images": [[["a"] * 32] * 32]}), json_type,
         422),
        (f"{MAX_IMAGES + 1} images", _body({"images": [image] * (MAX_IMAGES + 1)}),
         json_type, 413),
        (f"a body over {MAX_BODY_BYTES:,} bytes", b" " * (MAX_BODY_BYTES + 10)
         + _body({"images": [image]}), json_type, 413),
    ]


def _post(service, check, case, body, headers=None):
    import httpx

    try:
        return httpx.post(service.url + "/predict", content=body, timeout=10.0,
                          headers=headers or {"content-type": "application/json"})
    except httpx.HTTPError as error:
        raise CheckFailed(check, case, f"the request failed: {type(error).__name__}"
                          f"; the service's log ends:\n{service.log(800)}",
                          "the handler must answer every request") from None


def _detections(check, case, response, n):
    assert_true(response.status_code == 200, check, case,
                f"answered {response.status_code} {response.text[:200]!r}",
                "a valid request gets 200")
    try:
        document = response.json()
    except ValueError:
        raise CheckFailed(check, case, f"the body is not JSON: {response.text[:200]!r}",
                          "return a dict; FastAPI turns it into JSON") from None
    per_image = document.get("detections") if isinstance(document, dict) else None
    assert_true(isinstance(per_image, list) and len(per_image) == n, check, case,
                f"got {describe(document)}",
                f'answer {{"detections": [...]}} with one list per image ({n})')
    rows = []
    for k, found in enumerate(per_image):
        try:
            rows.append(np.array([[d["class"], d["score"], *d["box"]]
                                  for d in found], np.float64).reshape(-1, 6))
        except (KeyError, TypeError, ValueError):
            raise CheckFailed(check, case, f"image {k}: {describe(found)}",
                              'each detection is {"box": [x1, y1, x2, y2], '
                              '"score": s, "class": c}') from None
    return rows


def _expected_rows(model_path, images, variants=(None,)):
    """Per variant of the post-processing, per image, the rows the service should
    answer; the model runs once."""
    from .. import onnxkit

    session = onnxkit.session(model_path, threads=1)
    out = session.run(None, {"images": np.asarray(images, np.float32)[:, None]})
    return [[np.column_stack([kc, ks, kb]).astype(np.float64).reshape(-1, 6)
             for kb, ks, kc in _kept(*out, variant)] for variant in variants]


def check_service(make_app, model_path) -> None:
    """Start ``make_app(model_path)`` in its own process and probe it; then serve a
    model whose candidates overlap across classes."""
    from starlette.applications import Starlette

    from .. import serving

    check = "check_service"
    app = call_learner(check, "make_app(model_path)", make_app, model_path,
                       hint="make_app builds the session and the app; it serves "
                            "nothing itself")
    assert_type(app, Starlette, check, "make_app(model_path)", "make_app's result",
                "return the FastAPI app")
    n_cases = 0
    images = test_set()[0][:3, 0]
    with serving.Service(make_app, model_path) as service:
        case = "POST /predict with 3 test images"
        got = _detections(check, case, _post(service, check, case, _body(
            {"images": images.tolist()})), 3)
        want, across = _expected_rows(model_path, images, (None, "across classes"))
        ok, problem = _same(got, want)
        across = _same(got, across)
        assert_true(ok, check, case, problem,
                    _POST_HINTS["across classes"] if across[0] else
                    "run the model, then postprocess each image's candidates")
        n_cases += 1
        for case, body, headers, status in _bad_requests():
            response = _post(service, check, case, body, headers)
            n_cases += 1
            assert_true(response.status_code == status, check, case,
                        f"answered {response.status_code} {response.text[:160]!r}; "
                        f"expected {status}",
                        "a 500 means the handler raised: refuse bad input with a "
                        "4xx and a message" if response.status_code >= 500 else
                        "415 content type, 400 not JSON, 413 too large, 422 wrong "
                        "content")
            try:
                error = response.json().get("error")
            except (ValueError, AttributeError):
                error = None
            assert_true(isinstance(error, str), check, case,
                        f"the refusal's body is {response.text[:160]!r}",
                        'answer {"error": "what was wrong"}')
    _assert_stopped(service, check)
    with tempfile.TemporaryDirectory() as folder:
        square, disc = [4, 4, 14, 14], [5, 5, 15, 15]
        fake = constant_model(Path(folder) / "overlap.onnx",
                              [square, disc, disc, [20, 20, 28, 28]],
                              [0.9, 0.8, 0.7, 0.05], [0, 1, 0, 2])
        case = "a square and a disc overlapping (IoU 0.68), from a fixed model"
        with serving.Service(make_app, fake) as service:
            (rows,) = _detections(check, case, _post(service, check, case, _body(
                {"images": [images[0].tolist()]})), 1)
        _assert_stopped(service, check)
        kept = sorted(rows[:, 0].astype(int).tolist())
        assert_true(kept == [0, 1], check, case,
                    f"kept classes {kept}, expected [0, 1] (the square, the disc; "
                    "not the second square, not the score below 0.1)",
                    _POST_HINTS["across classes"] if kept == [0] else
                    "post-process inside the service with your postprocess()")
        n_cases += 1
    passed(check, n_cases, ", class-aware in the service, stopped cleanly")


def _assert_stopped(service, check):
    assert_true(service.stopped_cleanly is True, check, "SIGTERM",
                f"the service did not stop by itself ({service.stop_outcome})",
                "nothing in make_app may keep the process alive after shutdown")
