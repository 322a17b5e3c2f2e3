"""Lab 06_01's checks (the capstone) against wrong and alternative-correct code.

The decoding check rejects the five decoding mistakes of lab 02_03 by name; the
export check rejects a file without its decoding, a fixed batch and wrong names;
the post-processing and service checks reject NMS across classes; the quantisation
check rejects a file that is not int8. The services run in processes of their own:
this module's functions travel to them by value (cloudpickle).
"""


import json
import shutil
import sys

import cloudpickle
import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F
from check_helpers import boom, raises_cleanly, rejects
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from torch import nn

from model2metal import onnxkit, serving
from model2metal.checks import lab06_01 as checks
from model2metal.detector import STRIDE, load_tiny_detector
from model2metal.shapes import make_shapes

cloudpickle.register_pickle_by_value(sys.modules[__name__])
onnxkit.silence_exporter_logs()

# --- 1. decoding inside the model --------------------------------------------------


class Decoder(nn.Module):
    """A decoding module with one named mistake, or none."""

    mistake = None

    def __init__(self, net, k=20):
        super().__init__()
        self.net, self.k = net, k

    def forward(self, images):
        logits, sizes = self.net(images)
        heat = torch.sigmoid(logits)
        n, c, h, w = heat.shape
        if self.mistake != "no suppression":
            heat = torch.where(F.max_pool2d(heat, 3, 1, 1) == heat, heat,
                               torch.zeros_like(heat))
        if self.mistake == "top k per class":
            per = self.k // c + 1
            scores, index = heat.flatten(2).topk(per)
            index = index + torch.arange(c)[None, :, None] * (h * w)
            scores, index = scores.flatten(1), index.flatten(1)
            scores, order = scores.topk(self.k)
            index = torch.gather(index, 1, order)
        else:
            scores, index = heat.flatten(1).topk(self.k)
        classes = index // (h * w)
        cell = index % (h * w)
        y, x = cell // w, cell % w
        if self.mistake == "x/y swapped":
            x, y = y, x
        size = sizes.flatten(2)
        width = torch.gather(size[:, 0], 1, cell)
        height = torch.gather(size[:, 1], 1, cell)
        if self.mistake == "w/h swapped":
            width, height = height, width
        half = 0.0 if self.mistake == "no +0.5" else 0.5
        cx, cy = x.float() + half, y.float() + half
        boxes = torch.stack([cx - width / 2, cy - height / 2, cx + width / 2,
                             cy + height / 2], -1) * STRIDE
        return boxes, scores, classes


def decoder(mistake):
    return type(f"Decoder_{mistake}", (Decoder,), {"mistake": mistake})


def test_decoding_accepts_a_correct_module(capsys):
    checks.check_decoding(Decoder)
    assert "check_decoding passed" in capsys.readouterr().out


@pytest.mark.parametrize("mistake, expect", [
    ("no suppression", "3×3 neighbourhood"),
    ("x/y swapped", "the row comes first"),
    ("w/h swapped", "channel 0 of the size head is the width"),
    ("top k per class", "top-k over all classes and cells"),
    ("no +0.5", r"x \+ 0.5"),
])
def test_decoding_rejects(mistake, expect):
    rejects(checks.check_decoding, decoder(mistake), expect=expect)


def test_decoding_rejects_shapes_types_and_errors():
    class Flat(Decoder):
        def forward(self, images):
            boxes, scores, classes = super().forward(images)
            return boxes.reshape(-1, 4), scores, classes

    class FloatClasses(Decoder):
        def forward(self, images):
            boxes, scores, classes = super().forward(images)
            return boxes, scores, classes.float()

    class Raising(Decoder):
        def forward(self, images):
            return boom()

    rejects(checks.check_decoding, Flat, expect=r"boxes has shape \(240, 4\)")
    rejects(checks.check_decoding, FloatClasses, expect="expected integers")
    rejects(checks.check_decoding, lambda net, k: object(), expect="torch.nn.Module")
    raises_cleanly(checks.check_decoding, Raising, expect="ZeroDivisionError")


# --- 2. export ---------------------------------------------------------------------


def export(module, path, names=("boxes", "scores", "classes"), dynamic=True):
    example = torch.from_numpy(make_shapes(2, seed=3)[0])
    program = torch.onnx.export(
        module, (example,), dynamo=True, verbose=False, input_names=["images"],
        output_names=list(names),
        dynamic_shapes=({0: torch.export.Dim("batch")},) if dynamic else None)
    program.save(str(path))
    return path


@pytest.fixture(scope="module")
def fp32_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lab06_01")
    return export(Decoder(load_tiny_detector()).eval(), folder / "detector.onnx")


def test_export_accepts_the_detector_with_its_decoding(fp32_file, capsys):
    checks.check_export(fp32_file)
    assert "check_export passed" in capsys.readouterr().out


def test_export_rejects_a_file_without_the_decoding(tmp_path):
    raw = export(load_tiny_detector(), tmp_path / "raw.onnx",
                 names=("heat", "size"))
    rejects(checks.check_export, raw, expect="decoding step .* is not in the file")


def test_export_rejects_names_a_fixed_batch_and_no_file(tmp_path):
    net = Decoder(load_tiny_detector()).eval()
    named = export(net, tmp_path / "named.onnx", names=("b", "s", "c"))
    rejects(checks.check_export, named, expect=r"outputs \['b', 's', 'c'\]")
    fixed = export(net, tmp_path / "fixed.onnx", dynamic=False)
    rejects(checks.check_export, fixed, expect="first dimension is fixed at 2")
    rejects(checks.check_export, tmp_path / "missing.onnx",
            expect="no file was written")
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    rejects(checks.check_export, tmp_path / "junk.onnx", expect="not a valid ONNX")


# --- 3. post-processing ------------------------------------------------------------


def area(b):
    return (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])


def overlap(box, boxes):
    lo = np.maximum(box[:2], boxes[:, :2])
    hi = np.minimum(box[2:], boxes[:, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=1)
    return inter / (area(box) + area(boxes) - inter)


def post(boxes, scores, classes, score_threshold=0.1, iou_threshold=0.5, *,
         mistake=None):
    keep = scores >= score_threshold if mistake == ">=" else \
        scores > score_threshold
    if mistake == "no threshold":
        keep = np.ones(len(scores), bool)
    boxes, scores, classes = boxes[keep], scores[keep], classes[keep]
    order = np.argsort(-scores, kind="stable")
    kept = []
    for i in order:
        rivals = [j for j in kept
                  if mistake == "across classes" or classes[j] == classes[i]]
        if not rivals or overlap(boxes[i], boxes[rivals]).max() <= iou_threshold:
            kept.append(i)
    kept = np.array(kept, dtype=np.int64)
    return boxes[kept].reshape(-1, 4), scores[kept], classes[kept]


def post_by_offsets(boxes, scores, classes, score_threshold=0.1,
                    iou_threshold=0.5):
    """Another correct design: shift each class's boxes far apart, then plain NMS."""
    keep = scores > score_threshold
    boxes, scores, classes = boxes[keep], scores[keep], classes[keep]
    shifted = boxes + 1000.0 * classes[:, None]
    order, kept = list(np.argsort(-scores, kind="stable")), []
    while order:
        best, order = order[0], order[1:]
        kept.append(best)
        order = [j for j in order
                 if overlap(shifted[best], shifted[[j]])[0] <= iou_threshold]
    kept = np.array(kept, dtype=np.int64)
    return boxes[kept], scores[kept], classes[kept]


@pytest.mark.parametrize("impl", [post, post_by_offsets])
def test_postprocess_accepts_correct_versions(impl, capsys):
    checks.check_postprocess(impl)
    assert "check_postprocess passed" in capsys.readouterr().out


@pytest.mark.parametrize("mistake, expect", [
    ("across classes", "must be class-aware"),
    (">=", "strictly above"),
    ("no threshold", "drop the candidates"),
])
def test_postprocess_rejects(mistake, expect):
    def wrong(*args, **kwargs):
        return post(*args, **kwargs, mistake=mistake)

    rejects(checks.check_postprocess, wrong, expect=expect)


def test_postprocess_rejects_a_bad_result_and_errors():
    rejects(checks.check_postprocess, lambda *a, **k: None, expect="returned None")
    raises_cleanly(checks.check_postprocess, boom, expect="ZeroDivisionError")


def test_score_detections_scores_and_refuses_the_wrong_count():
    _, boxes, labels = checks.test_set()
    perfect = [(b, np.ones(len(b)), lab) for b, lab in zip(boxes, labels)]
    assert checks.score_detections(perfect) == pytest.approx(1.0)
    assert checks.score_detections([(np.zeros((0, 4)), np.zeros(0),
                                     np.zeros(0))] * len(boxes)) == 0.0
    rejects(checks.score_detections, perfect[:10], expect="one per test image")


# --- 4. int8 and another runtime ---------------------------------------------------


def test_quantise_accepts_int8_and_rejects_a_copy(fp32_file, tmp_path, capsys):
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat,
                                          QuantType, quantize_static)

    class Reader(CalibrationDataReader):
        def __init__(self):
            images = make_shapes(64, seed=1)[0]
            self.batches = iter([{"images": images[i:i + 32]} for i in (0, 32)])

        def get_next(self):
            return next(self.batches, None)

    int8 = tmp_path / "int8.onnx"
    quantize_static(str(fp32_file), str(int8), Reader(),
                    quant_format=QuantFormat.QDQ, per_channel=True,
                    weight_type=QuantType.QInt8, op_types_to_quantize=["Conv"])
    checks.check_quantise(int8, fp32_file)
    assert "check_quantise passed" in capsys.readouterr().out
    copy = shutil.copy(fp32_file, tmp_path / "copy.onnx")
    rejects(checks.check_quantise, copy, fp32_file, expect="no QuantizeLinear")


def ort_runner(path, batch):
    session = onnxkit.session(path, threads=1)
    return lambda images: session.run(None, {"images": images})


def test_runtime_accepts_another_runtime_and_rejects_a_wrong_one(fp32_file, capsys):
    checks.check_runtime(ort_runner, fp32_file, name="ORT again")
    assert "check_runtime passed" in capsys.readouterr().out

    def shifted(path, batch):
        run = ort_runner(path, batch)
        return lambda images: (run(images)[0] + 1.0, *run(images)[1:])

    rejects(checks.check_runtime, shifted, fp32_file, expect="image 0: box")
    rejects(checks.check_runtime, lambda path, batch: 3, fp32_file,
            expect="return a function run")


# --- 5. the service ----------------------------------------------------------------


def parse(body, content_type, *, strict_nan=True):
    if (content_type or "").split(";")[0].strip() != "application/json":
        raise serving.BadRequest(415, "JSON only")
    if len(body) > checks.MAX_BODY_BYTES:
        raise serving.BadRequest(413, "too large")
    try:
        images = json.loads(body)["images"]
    except ValueError:
        raise serving.BadRequest(400, "not JSON") from None
    except (KeyError, TypeError):
        raise serving.BadRequest(422, "no images") from None
    if not isinstance(images, list) or not images:
        raise serving.BadRequest(422, "no images")
    if len(images) > checks.MAX_IMAGES:
        raise serving.BadRequest(413, "too many")
    try:
        array = np.array(images, dtype=np.float32)
    except (ValueError, TypeError):
        raise serving.BadRequest(422, "not numbers") from None
    if array.shape[1:] != (32, 32):
        raise serving.BadRequest(422, "not 32 x 32")
    if strict_nan and not (np.isfinite(array).all() and 0 <= array.min()
                           and array.max() <= 1):
        raise serving.BadRequest(422, "bad pixels")
    return array[:, None]


def app_factory(model_path, *, mistake=None):
    session = onnxkit.session(model_path, threads=1)
    app = FastAPI()

    @app.get("/health")
    async def health():
        return {"status": "ok"}

    @app.post("/predict")
    async def predict(request: Request):
        try:
            images = parse(await request.body(), request.headers.get("content-type"),
                           strict_nan=mistake != "no pixel check")
        except serving.BadRequest as refusal:
            return JSONResponse({"error": refusal.message},
                                status_code=refusal.status)
        out = session.run(None, {"images": images})
        if mistake == "no pixel check" and not np.isfinite(images).all():
            raise ValueError("NaN reached the model")  # a 500
        nms = "across classes" if mistake == "across classes" else None
        return {"detections": [
            [{"box": [float(v) for v in b], "score": float(s), "class": int(c)}
             for b, s, c in zip(*post(*one, mistake=nms))]
            for one in zip(*out)]}

    return app


def service(mistake=None):
    def make_app(model_path):
        return app_factory(model_path, mistake=mistake)
    return make_app


def test_service_accepts_a_correct_service(fp32_file, capsys):
    checks.check_service(service(), fp32_file)
    assert "check_service passed" in capsys.readouterr().out


@pytest.mark.parametrize("mistake, expect", [
    ("across classes", "must be class-aware"),
    ("no pixel check", "a NaN pixel.*answered 500"),
])
def test_service_rejects(fp32_file, mistake, expect):
    rejects(checks.check_service, service(mistake), fp32_file, expect=expect)


def test_the_constant_model_answers_its_candidates_for_any_batch(tmp_path):
    path = checks.constant_model(tmp_path / "c.onnx", [[1, 2, 3, 4]], [0.5], [2])
    session = onnxkit.session(path)
    boxes, scores, classes = session.run(
        None, {"images": np.zeros((3, 1, 32, 32), np.float32)})
    assert boxes.shape == (3, 1, 4) and classes.tolist() == [[2]] * 3
    assert np.allclose(scores, 0.5) and onnx.load(path).graph.input[0].name == \
        "images"
