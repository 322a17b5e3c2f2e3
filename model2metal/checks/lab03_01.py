"""Checks for lab 03_01 "Export and prove parity".

Conventions the lab states and these checks hold it to:

* ``export_onnx(model, example, path)`` writes an ONNX file at ``path`` whose one input
  is called ``images`` with a symbolic first (batch) axis and the other axes of
  ``example``, and whose output is called ``logits`` with a symbolic batch axis; the
  file passes ``onnx.checker`` and ONNX Runtime reproduces the model's outputs for any
  batch size. The model's weights and mode are left as they were.
* ``logits_match(reference, candidate)`` decides whether fp32 logits of the same model
  computed two ways agree up to rounding; it returns a bool (Python's or NumPy's),
  False for arrays of different shapes and for NaN. It must accept rounding (a
  different runtime, a correct batch-norm fold) and reject real bugs (a fold without
  the epsilon, fp16 inference, a slightly wrong normalisation, batch norm in training
  mode), which a comparison of predicted classes cannot see.
* ``fold_bn(conv, bn)`` returns a new ``nn.Conv2d`` (with a bias) computing what
  ``bn(conv(x))`` computes in eval mode, leaving ``conv`` and ``bn`` unchanged.
* ``first_divergence(model_a, model_b, feeds, atol)`` returns the name of the first
  node, in the graph's order, at which two ONNX models with the same structure give
  outputs that differ by more than ``atol`` (``None`` when none does), leaving both
  models unchanged.
* ``ExportableClip(limit)`` computes what the lab's ``PerSampleClip(limit)`` computes
  on ``(N, C, H, W)`` inputs and can be captured by ``torch.export`` with a dynamic
  batch axis and run by ONNX Runtime.

References are independent: float64 PyTorch or NumPy, explicit loops, and graphs
built here with ``onnx.helper``.
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path

import numpy as np

from .core import (
    CheckFailed,
    assert_true,
    assert_type,
    call_learner,
    describe,
    hint_from_evidence,
    passed,
)

__all__ = [
    "check_export_onnx",
    "check_logits_match",
    "check_fold_bn",
    "check_first_divergence",
    "check_exportable_clip",
]

#: fp32 logits of the course model computed by two correct runtimes agree to ~1e-5;
#: the checks accept 1e-4.
RUNTIME_ATOL = 1e-4


def _torch():
    import torch

    return torch


def _state(module) -> dict:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _assert_module_unchanged(name, case, module, before, mode, what, hint):
    torch = _torch()
    after = module.state_dict()
    changed = [
        k for k, v in before.items() if not torch.equal(v, after[k].detach())
    ]
    assert_true(
        not changed and set(after) == set(before),
        name,
        case,
        f"your function changed {what}: "
        + (f"{', '.join(changed[:3])} differ" if changed else "its entries changed"),
        hint,
    )
    modes = {m.training for m in module.modules()}
    assert_true(
        modes == {mode},
        name,
        case,
        f"your function changed the mode of {what} (it was in "
        f"{'training' if mode else 'eval'} mode)",
        "export or fold without switching modes; if you must switch, switch back",
    )


# ---------------------------------------------------------------------------
# 1. export
# ---------------------------------------------------------------------------


def _small_model():
    torch = _torch()
    nn = torch.nn
    torch.manual_seed(3)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(256, 3)
    ).eval()


def check_export_onnx(fn) -> None:
    """``fn(model, example, path)`` writes an ONNX file with a dynamic batch axis."""
    import onnx

    from .. import onnxkit
    from ..data import load_digits_split
    from ..models import load_course_model, preprocess

    torch = _torch()
    name = "check_export_onnx"
    onnxkit.silence_exporter_logs()
    X_test = load_digits_split()[1]
    cases = {
        "the course model, an example batch of 2": (
            load_course_model(),
            preprocess(X_test[:2]),
        ),
        "another model (3 classes), an example batch of 5": (
            _small_model(),
            preprocess(X_test[2:7]),
        ),
    }
    for case, (model, example) in cases.items():
        before = _state(model)
        with torch.no_grad():
            reference = {n: model(preprocess(X_test[:n])).numpy() for n in (1, 7, 36)}
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "model.onnx"
            call_learner(
                name,
                case,
                fn,
                model,
                example,
                path,
                hint="the exporter returns a program object, and that object's save "
                "method writes the file",
            )
            _assert_module_unchanged(
                name, case, model, before, False, "the model",
                "export reads the model; it must not train or modify it",
            )
            assert_true(
                path.is_file(),
                name,
                case,
                f"no file was written at {path.name}",
                "save the exported program to the path you were given",
            )
            try:
                exported = onnx.load(str(path))
                onnx.checker.check_model(exported, full_check=True)
            except Exception as exc:  # noqa: BLE001 - any invalid file is feedback
                raise CheckFailed(
                    name,
                    case,
                    f"the file is not a valid ONNX model: {type(exc).__name__}: "
                    f"{str(exc).splitlines()[0] if str(exc) else ''}",
                    "write the file with the exporter's own save method",
                ) from None
            _check_signature(name, case, exported, tuple(example.shape), reference)
            sess = onnxkit.session(exported)
            for n, expected in reference.items():
                got = sess.run(None, {"images": preprocess(X_test[:n]).numpy()})[0]
                error = float(np.max(np.abs(got - expected)))
                assert_true(
                    got.shape == expected.shape and error <= RUNTIME_ATOL,
                    name,
                    case,
                    f"batch of {n}: ONNX Runtime's logits differ from the model's by "
                    f"up to {error:.3g} (shape {got.shape}, expected "
                    f"{expected.shape})",
                    "export the model in eval mode, with the example as a tuple of "
                    "inputs",
                )
    passed(name, len(cases))


def _check_signature(name, case, exported, example_shape, reference) -> None:
    from .. import onnxkit

    inits = {i.name for i in exported.graph.initializer}
    inputs = [v for v in exported.graph.input if v.name not in inits]
    assert_true(
        [v.name for v in inputs] == ["images"],
        name,
        case,
        f"graph inputs: expected ['images'], got {[v.name for v in inputs]}",
        "name the input: the serving code of lab 03_03 feeds 'images'",
    )
    dims = onnxkit.dims(inputs[0])
    batch = dims[0] if dims else None
    assert_true(
        not isinstance(batch, int),
        name,
        case,
        f"the batch axis of 'images' is fixed at {batch} (dims {dims}): the model "
        f"accepts only batches of exactly {batch}",
        "declare the first axis of the input dynamic when you export",
    )
    assert_true(
        dims[1:] == list(example_shape[1:]),
        name,
        case,
        f"'images' has dims {dims}; the axes after the batch should be "
        f"{list(example_shape[1:])}",
        "only the batch axis is dynamic: the image size is fixed",
    )
    outputs = [v.name for v in exported.graph.output]
    assert_true(
        outputs == ["logits"],
        name,
        case,
        f"graph outputs: expected ['logits'], got {outputs}",
        "name the output 'logits'",
    )
    out_dims = onnxkit.dims(exported.graph.output[0])
    n_classes = next(iter(reference.values())).shape[1]
    assert_true(
        len(out_dims) == 2
        and not isinstance(out_dims[0], int)
        and out_dims[1] == n_classes,
        name,
        case,
        f"'logits' has dims {out_dims}; expected [batch, {n_classes}]",
        "the output's batch axis follows the input's once the input's is dynamic",
    )


# ---------------------------------------------------------------------------
# 2. a tolerance that catches bugs
# ---------------------------------------------------------------------------


def _logit_cases():
    """(name, reference, candidate, should match, hint if misjudged)."""
    from .. import onnxkit
    from ..data import load_digits_split
    from ..models import PIXEL_MEAN, load_course_model, preprocess

    torch = _torch()
    model = load_course_model()
    X_test = load_digits_split()[1]
    x = preprocess(X_test)
    no_eps = copy.deepcopy(model)
    for bn in (no_eps.bn1, no_eps.bn2, no_eps.bn3):
        bn.eps = 0.0  # what a fold without the epsilon computes
    with torch.no_grad():
        ref = model(x).numpy()
        one_by_one = np.concatenate([model(x[i : i + 1]).numpy() for i in range(40)])
        no_eps = no_eps(x).numpy()
        half = copy.deepcopy(model).half()(x.half()).float().numpy()
        rounded_std = model(
            ((torch.from_numpy(X_test) - PIXEL_MEAN) / 0.38).unsqueeze(1)
        ).numpy()
        train_mode = copy.deepcopy(model).train()(x).numpy()
    ort = onnxkit.session(onnxkit.COURSE_ONNX).run(None, {"images": x.numpy()})[0]
    too_tight = (
        "this difference is fp32 rounding (same weights, another order of the "
        "sums): a parity test must accept it, or it fails on every runtime"
    )
    too_loose = (
        "this candidate has a real bug, and all but a few of its predicted classes "
        "agree with the reference: a tolerance this loose (or a comparison of "
        "argmax) lets it through. Compare the logits with a tolerance a little "
        "above fp32 rounding"
    )
    return [
        ("the same array", ref, ref.copy(), True, too_tight),
        ("ONNX Runtime fp32, same weights", ref, ort, True, too_tight),
        ("one image at a time against one batch", ref[:40], one_by_one, True,
         too_tight),
        ("batch norm folded without its epsilon", ref, no_eps, False, too_loose),
        ("fp16 inference", ref, half, False, too_loose),
        ("normalised with std 0.38 instead of 0.3761", ref, rounded_std, False,
         too_loose),
        ("batch norm left in training mode", ref, train_mode, False, too_loose),
        ("one row missing", ref, ref[:-1].copy(), False,
         "arrays of different shapes do not match: compare the shapes first"),
        ("a NaN in the candidate", ref, np.where(np.arange(ref.size).reshape(
            ref.shape) == 5, np.nan, ref).astype(np.float32), False,
         "NaN is never close to anything: a NaN in deployed logits is a bug"),
    ]


def check_logits_match(fn) -> None:
    """``fn(reference, candidate)`` -> bool: fp32 logits agree up to rounding."""
    name = "check_logits_match"
    cases = _logit_cases()
    for case, ref, cand, expected, hint in cases:
        diff = (
            float(np.nanmax(np.abs(cand - ref))) if cand.shape == ref.shape else None
        )
        got = call_learner(
            name,
            case,
            fn,
            ref,
            cand,
            hint="compare the shapes, then the values with a tolerance",
        )
        assert_type(
            got, (bool, np.bool_), name, case, "result",
            "return a bool: True when the two arrays match",
        )
        where = f" (max |difference| {diff:.3g})" if diff is not None else ""
        assert_true(
            bool(got) == expected,
            name,
            case,
            f"expected {expected}, got {bool(got)}{where}",
            hint,
        )
    passed(name, len(cases))


# ---------------------------------------------------------------------------
# 3. folding batch norm
# ---------------------------------------------------------------------------


def _bn_cases():
    torch = _torch()
    nn = torch.nn
    specs = [
        ("3→4 channels, 3×3, padding 1, no conv bias", dict(in_channels=3,
         out_channels=4, kernel_size=3, padding=1, bias=False), 1e-5),
        ("with a conv bias", dict(in_channels=2, out_channels=3, kernel_size=3,
         padding=1, bias=True), 1e-5),
        ("eps 0.5: a forgotten epsilon shows", dict(in_channels=2, out_channels=3,
         kernel_size=3, padding=1, bias=False), 0.5),
        ("1×1 convolution, stride 2", dict(in_channels=4, out_channels=2,
         kernel_size=1, stride=2, bias=True), 1e-3),
        ("grouped convolution (groups 2)", dict(in_channels=4, out_channels=6,
         kernel_size=3, padding=1, groups=2, bias=False), 1e-5),
    ]
    cases = []
    gen = torch.Generator().manual_seed(31)
    for case, kw, eps in specs:
        conv = nn.Conv2d(**kw)
        bn = nn.BatchNorm2d(kw["out_channels"], eps=eps)
        c = kw["out_channels"]
        with torch.no_grad():
            conv.weight.copy_(torch.randn(conv.weight.shape, generator=gen))
            if conv.bias is not None:
                conv.bias.copy_(torch.randn(c, generator=gen))
            bn.weight.copy_(torch.rand(c, generator=gen) * 2 + 0.2)
            bn.bias.copy_(torch.randn(c, generator=gen))
            bn.running_mean.copy_(torch.randn(c, generator=gen))
            bn.running_var.copy_(torch.rand(c, generator=gen) * 1.5 + 0.05)
        x = torch.randn(2, kw["in_channels"], 6, 6, generator=gen, dtype=torch.float64)
        cases.append((case, conv.eval(), bn.eval(), x))
    return cases


def _fold_candidates(conv, bn, x):
    """What typical mistakes compute, in float64, with their hints."""
    torch = _torch()
    nn = torch.nn

    def run(weight, bias):
        return nn.functional.conv2d(
            x, weight, bias, conv.stride, conv.padding, conv.dilation, conv.groups
        ).numpy()

    w = conv.weight.double()
    b0 = conv.bias.double() if conv.bias is not None else torch.zeros(
        conv.out_channels, dtype=torch.float64
    )
    gamma, beta = bn.weight.double(), bn.bias.double()
    mean, var = bn.running_mean.double(), bn.running_var.double()
    std = torch.sqrt(var + bn.eps)
    scale = gamma / std
    per_out = scale[:, None, None, None]
    return [
        ("the epsilon is missing: BatchNorm divides by sqrt(running_var + eps)",
         run(w * (gamma / torch.sqrt(var))[:, None, None, None],
             (b0 - mean) * gamma / torch.sqrt(var) + beta)),
        ("the convolution's own bias was dropped: it is shifted and scaled like "
         "the rest of the output",
         run(w * per_out, -mean * scale + beta)),
        ("divided by the variance, not by the standard deviation",
         run(w * (gamma / (var + bn.eps))[:, None, None, None],
             (b0 - mean) * gamma / (var + bn.eps) + beta)),
        ("the running mean is missing from the bias",
         run(w * per_out, b0 * scale + beta)),
        ("the bias is not scaled: (b - mean) is multiplied by gamma / std too",
         run(w * per_out, b0 - mean + beta)),
    ]


def check_fold_bn(fn) -> None:
    """``fn(conv, bn)`` -> a new ``nn.Conv2d`` equal to ``bn(conv(x))`` in eval mode."""
    torch = _torch()
    name = "check_fold_bn"
    cases = _bn_cases()
    for case, conv, bn, x in cases:
        with torch.no_grad():
            expected = bn.double()(conv.double()(x)).numpy()
            candidates = _fold_candidates(conv, bn, x)
        conv, bn = conv.float(), bn.float()
        before = (_state(conv), _state(bn))
        got = call_learner(
            name, case, fn, conv, bn,
            hint="scale each output channel's weights by gamma / std and build the "
            "new bias from the conv bias, the running mean, gamma, std and beta",
        )
        _assert_module_unchanged(name, case, conv, before[0], False, "conv",
                                 "build a new Conv2d; leave the given one as it was")
        _assert_module_unchanged(name, case, bn, before[1], False, "bn",
                                 "read the batch norm's parameters; do not change "
                                 "them")
        assert_type(got, torch.nn.Conv2d, name, case, "result",
                    "return a new torch.nn.Conv2d with the folded weight and bias")
        assert_true(
            got is not conv,
            name,
            case,
            "you returned the conv you were given (modified?)",
            "build a new Conv2d with the same settings",
        )
        assert_true(
            got.bias is not None,
            name,
            case,
            "the folded conv has no bias: folding always creates one",
            "create the Conv2d with bias=True",
        )
        settings = ("in_channels", "out_channels", "kernel_size", "stride",
                    "padding", "dilation", "groups")
        wrong = [s for s in settings if getattr(got, s) != getattr(conv, s)]
        assert_true(
            not wrong,
            name,
            case,
            "the folded conv's settings differ from the original's: "
            + ", ".join(f"{s} {getattr(got, s)} vs {getattr(conv, s)}" for s in wrong),
            "copy every setting of the original convolution",
        )
        with torch.no_grad():
            out = call_learner(
                name, case, lambda m, t: m.double()(t).numpy(), copy.deepcopy(got),
                x, label="your folded conv", hint="the folded conv must run on x",
            )
        error = float(np.max(np.abs(out - expected)))
        if error > 1e-5 * (1 + float(np.max(np.abs(expected)))):
            hint = hint_from_evidence(out, candidates, rtol=1e-5, atol=1e-6)
            raise CheckFailed(
                name,
                case,
                f"folded conv's output differs from bn(conv(x)) by up to {error:.3g}",
                hint or "compare your weight and bias with the formula of the "
                "architectures page, term by term",
            )
    passed(name, len(cases))


# ---------------------------------------------------------------------------
# 4. the first diverging node
# ---------------------------------------------------------------------------


def _graph(nodes, constants, name="g"):
    """A float32 model of (op, inputs, output, node name) nodes, one input X and
    one output Y; ``constants`` maps initializer names to arrays."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node(op, ins, [out], name=nm) for op, ins, out, nm in nodes],
        name,
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [2, 4])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [2, 4])],
        [numpy_helper.from_array(np.asarray(v, np.float32), k)
         for k, v in constants.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    return model


_CHAIN = [
    ("Mul", ["X", "c1"], "t1", "scale"),
    ("Add", ["t1", "c2"], "t2", "shift"),
    ("Relu", ["t2"], "t3", "relu"),
    ("Mul", ["t3", "c3"], "Y", "out"),
]
_DIAMOND = [
    ("Mul", ["X", "c1"], "t1", "stem"),
    ("Add", ["t1", "c2"], "left", "left_branch"),
    ("Sub", ["t1", "c3"], "right", "right_branch"),
    ("Add", ["left", "right"], "Y", "merge"),
]


def _divergence_cases():
    """(name, model_a, model_b, feeds, atol, expected node name or None)."""
    import onnx

    from .. import onnxkit
    from ..data import load_digits_split
    from ..models import preprocess

    x = np.array([[0.5, -1.0, 2.0, 0.25], [1.5, 0.0, -0.5, 3.0]], np.float32)
    feeds = {"X": x}
    base = {"c1": [2.0], "c2": [1.0], "c3": [3.0]}
    cases = [
        ("a chain, the Add constant changed", _graph(_CHAIN, base),
         _graph(_CHAIN, {**base, "c2": [1.5]}), feeds, 1e-6, "shift"),
        ("a diamond, the second branch changed", _graph(_DIAMOND, base),
         _graph(_DIAMOND, {**base, "c3": [2.5]}), feeds, 1e-6, "right_branch"),
        ("identical models", _graph(_CHAIN, base), _graph(_CHAIN, base), feeds,
         1e-6, None),
        ("a difference below atol", _graph(_CHAIN, base),
         _graph(_CHAIN, {**base, "c2": [1.0 + 1e-7]}), feeds, 1e-5, None),
    ]
    # A change hidden by the ReLU: the final outputs agree, the shift node does not.
    masked_a = _graph(_CHAIN, {**base, "c2": [-10.0]})
    masked_b = _graph(_CHAIN, {**base, "c2": [-11.0]})
    cases.append(("a change the ReLU hides: equal final outputs", masked_a,
                  masked_b, feeds, 1e-6, "shift"))
    # The course model with conv2's weights rounded to half precision.
    good = onnx.load(str(onnxkit.COURSE_ONNX))
    broken = _course_broken_in(good, "conv2")
    target = next(n.name for n in good.graph.node if "conv2.weight" in n.input)
    images = preprocess(load_digits_split()[1][:16]).numpy()
    cases.append(("the course model, conv2's weights stored in fp16", good, broken,
                  {"images": images}, 1e-4, target))
    return cases


def _course_broken_in(model, conv_name: str):
    """``model`` (the course ONNX) with ``conv_name``'s weights rounded to float16
    and back: what a converter that stores weights in half precision does."""
    from onnx import numpy_helper

    broken = copy.deepcopy(model)
    for init in broken.graph.initializer:
        if init.name == f"{conv_name}.weight":
            rounded = numpy_helper.to_array(init).astype(np.float16).astype(np.float32)
            init.CopyFrom(numpy_helper.from_array(rounded, init.name))
    return broken


def check_first_divergence(fn) -> None:
    """``fn(model_a, model_b, feeds, atol)`` -> the first diverging node's name."""
    name = "check_first_divergence"
    cases = _divergence_cases()
    for case, a, b, feeds, atol, expected in cases:
        a_bytes, b_bytes = a.SerializeToString(), b.SerializeToString()
        got = call_learner(
            name, case, fn, a, b, feeds, atol,
            hint="make every node's output a graph output (on a copy), run both "
            "models, and walk the nodes in graph order",
        )
        assert_true(
            a.SerializeToString() == a_bytes and b.SerializeToString() == b_bytes,
            name,
            case,
            "your function changed a model it was given (graph outputs added to "
            "the caller's model?)",
            "work on copies (copy.deepcopy of the ModelProto)",
        )
        if got is not None:
            assert_type(got, str, name, case, "result",
                        "return the node's name (node.name), or None")
        if got != expected:
            order = [n.name for n in a.graph.node]
            if expected is None:
                hint = (f"every node's outputs agree within atol={atol:g} here: "
                        "compare with the tolerance you were given")
            elif got is None:
                hint = ("the models differ at an intermediate node even where "
                        "their final outputs agree: compare every node's outputs, "
                        "not only the graph's outputs")
            elif got in order and order.index(got) > order.index(expected):
                hint = ("a later node also differs, but it is not the first: walk "
                        "the nodes in the graph's order (ONNX stores them "
                        "topologically sorted)")
            else:
                hint = "return the name of the node, as in model.graph.node[i].name"
            raise CheckFailed(
                name, case, f"expected {describe(expected)}, got {describe(got)}", hint
            )
    passed(name, len(cases))


# ---------------------------------------------------------------------------
# 5. an exportable rewrite
# ---------------------------------------------------------------------------


def _clip_reference(x: np.ndarray, limit: float) -> np.ndarray:
    """Per sample: scale down so that the largest |value| is at most ``limit``."""
    out = x.astype(np.float64).copy()
    for i in range(len(out)):
        peak = np.abs(out[i]).max()
        if peak > limit:
            out[i] *= limit / peak
    return out


def _clip_inputs():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(6, 2, 3, 3)).astype(np.float32)
    x[0] *= 0.1  # below the limit: unchanged
    x[1] *= 5.0  # far above
    x[2] = 0.0  # all zeros: no division by zero
    x[3] /= np.abs(x[3]).max()  # peak exactly 1.0: unchanged at limit 1
    return x


def check_exportable_clip(cls) -> None:
    """``cls(limit)``: same results as ``PerSampleClip``, and exportable."""
    from .. import onnxkit

    torch = _torch()
    name = "check_exportable_clip"
    onnxkit.silence_exporter_logs()
    x = _clip_inputs()
    n_cases = 0
    for limit in (1.0, 0.5):
        case = f"limit {limit}: samples below, above, at the limit and all zero"
        module = call_learner(name, case, cls, limit, label="ExportableClip(limit)",
                              hint="the class takes the limit as its one argument")
        assert_type(module, torch.nn.Module, name, case, "ExportableClip(limit)",
                    "subclass torch.nn.Module")
        expected = _clip_reference(x, limit)
        with torch.no_grad():
            got = call_learner(name, case, module, torch.from_numpy(x),
                               label="forward()",
                               hint="use tensor operations over the whole batch")
        assert_type(got, torch.Tensor, name, case, "forward() result")
        out = got.detach().double().numpy()
        assert_true(
            out.shape == expected.shape and bool(np.all(np.isfinite(out))),
            name,
            case,
            f"expected a finite result of shape {expected.shape}, got "
            f"{describe(got)}",
            "an all-zero sample has peak 0: scale it by 1, never divide by 0",
        )
        error = float(np.max(np.abs(out - expected)))
        assert_true(
            error <= 1e-5,
            name,
            case,
            f"results differ from PerSampleClip by up to {error:.3g}",
            "a sample is scaled by limit / peak only when its peak exceeds the "
            "limit; otherwise it stays as it is",
        )
        n_cases += 1
    case = "torch.export with a dynamic batch axis, then ONNX Runtime"
    module = call_learner(name, case, cls, 1.0, label="ExportableClip(1.0)")
    example = torch.from_numpy(x[:2])
    program = call_learner(
        name,
        case,
        lambda: onnxkit.quietly(
            torch.export.export,
            module,
            (example,),
            dynamic_shapes=({0: torch.export.Dim("batch")},),
        ),
        label="torch.export.export of your module",
        hint="torch.export cannot follow a Python loop over a dynamic batch or an "
        "`if` on a tensor's value: express the decision with tensor operations",
    )
    onnx_program = call_learner(
        name, case,
        lambda: onnxkit.quietly(
            torch.onnx.export, program, dynamo=True, verbose=False
        ),
        label="torch.onnx.export of the exported program",
    )
    sess = onnxkit.session(onnx_program.model_proto)
    feed = sess.get_inputs()[0].name
    for n in (1, 6):
        got = sess.run(None, {feed: x[:n]})[0]
        error = float(np.max(np.abs(got - _clip_reference(x[:n], 1.0))))
        assert_true(
            error <= 1e-5,
            name,
            case,
            f"ONNX Runtime, batch of {n}: results differ by up to {error:.3g}",
            "the exported graph must compute the same clip for any batch size",
        )
    passed(name, n_cases + 1)
