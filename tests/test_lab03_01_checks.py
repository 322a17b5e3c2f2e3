"""Checks of lab 03_01 against wrong and alternative-correct implementations."""

from __future__ import annotations

import copy

import numpy as np
import onnx
import pytest
import torch
from check_helpers import raises_cleanly, rejects
from torch import nn

from model2metal import onnxkit
from model2metal.checks import lab03_01 as checks

onnxkit.silence_exporter_logs()
BATCH = torch.export.Dim("batch")

# --- 1. export ------------------------------------------------------------------------


def export_ok(model, example, path, **extra):
    program = torch.onnx.export(
        model, (example,), dynamo=True, verbose=False, input_names=["images"],
        output_names=["logits"], dynamic_shapes=({0: BATCH},), **extra,
    )
    program.save(str(path))


def export_fixed_batch(model, example, path):
    torch.onnx.export(
        model, (example,), dynamo=True, verbose=False, input_names=["images"],
        output_names=["logits"],
    ).save(str(path))


def export_default_names(model, example, path):
    torch.onnx.export(
        model, (example,), dynamo=True, verbose=False, dynamic_shapes=({0: BATCH},)
    ).save(str(path))


def export_in_train_mode(model, example, path):
    model.train()
    export_ok(model, example, path)


def export_nothing(model, example, path):
    pass


def export_garbage(model, example, path):
    path.write_bytes(b"not an onnx file")


@pytest.mark.parametrize(
    "wrong, expect",
    [
        (export_fixed_batch, r"batch axis of 'images' is fixed at 2.*dynamic"),
        (export_default_names, r"graph inputs: expected \['images'\]"),
        (export_in_train_mode, r"changed the mode of the model"),
        (export_nothing, r"no file was written"),
        (export_garbage, r"not a valid ONNX model"),
    ],
    ids=lambda v: getattr(v, "__name__", ""),
)
def test_export_rejects(wrong, expect):
    rejects(checks.check_export_onnx, wrong, expect=expect)


def test_export_accepts_the_legacy_exporter_with_dynamic_axes():
    def legacy(model, example, path):
        torch.onnx.export(
            model, (example,), str(path), dynamo=False, input_names=["images"],
            output_names=["logits"],
            dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}},
        )

    checks.check_export_onnx(export_ok)
    checks.check_export_onnx(legacy)


def test_export_learner_error_is_one_message():
    def broken(model, example, path):
        return model(example[0])  # a 3-D input: the conv raises

    raises_cleanly(checks.check_export_onnx, broken, expect=r"raised ValueError")


# --- 2. a tolerance that catches bugs ---------------------------------------------


def match_with(atol, rtol=0.0):
    def logits_match(reference, candidate):
        if reference.shape != candidate.shape:
            return False
        return bool(np.allclose(candidate, reference, rtol=rtol, atol=atol))

    return logits_match


def argmax_only(reference, candidate):
    return reference.shape == candidate.shape and bool(
        np.array_equal(reference.argmax(1), candidate.argmax(1))
    )


def exact(reference, candidate):
    return reference.shape == candidate.shape and bool(
        np.array_equal(reference, candidate)
    )


def no_shape_test(reference, candidate):
    return bool(np.allclose(candidate, reference, atol=1e-4))


def nan_blind(reference, candidate):
    if reference.shape != candidate.shape:
        return False
    return bool(np.nanmax(np.abs(candidate - reference)) <= 1e-4)


@pytest.mark.parametrize(
    "wrong, expect",
    [
        (argmax_only, r"folded without its epsilon.*expected False, got True"
         r".*argmax"),
        (match_with(1e-2), r"folded without its epsilon.*0\.000595|without its "
         r"epsilon.*expected False"),
        (match_with(1e-3), r"without its epsilon.*expected False, got True"),
        (exact, r"ONNX Runtime fp32.*expected True, got False.*fp32 rounding"),
        (match_with(1e-7), r"expected True, got False.*rounding"),
        (no_shape_test, r"one row missing.*raised ValueError|one row missing"),
        (nan_blind, r"a NaN in the candidate.*expected False"),
        (lambda r, c: 1.0, r"expected a bool"),
    ],
)
def test_logits_match_rejects(wrong, expect):
    rejects(checks.check_logits_match, wrong, expect=expect)


@pytest.mark.parametrize("right", [match_with(1e-4), match_with(5e-5, 1e-6),
                                   match_with(2e-4)])
def test_logits_match_accepts_tolerances_between_rounding_and_bugs(right):
    checks.check_logits_match(right)


def test_logits_match_accepts_numpy_bools():
    def numpy_bool(reference, candidate):
        if reference.shape != candidate.shape:
            return np.False_
        return np.all(np.abs(candidate - reference) <= 1e-4)

    checks.check_logits_match(numpy_bool)


# --- 3. folding batch norm ----------------------------------------------------------


def fold_ok(conv, bn, eps=None, keep_conv_bias=True, use_mean=True, root=True):
    eps = bn.eps if eps is None else eps
    var = bn.running_var + eps
    scale = bn.weight / (torch.sqrt(var) if root else var)
    folded = nn.Conv2d(
        conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride,
        padding=conv.padding, dilation=conv.dilation, groups=conv.groups, bias=True,
    )
    bias = conv.bias if (conv.bias is not None and keep_conv_bias) else 0.0
    mean = bn.running_mean if use_mean else 0.0
    with torch.no_grad():
        folded.weight.copy_(conv.weight * scale[:, None, None, None])
        folded.bias.copy_((bias - mean) * scale + bn.bias)
    return folded


def fold_in_place(conv, bn):
    with torch.no_grad():
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        conv.weight.mul_(scale[:, None, None, None])
    return fold_ok(conv, bn)


def fold_same_object(conv, bn):
    return conv


def fold_without_settings(conv, bn):
    got = fold_ok(conv, bn)
    plain = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size,
                      padding=conv.padding, groups=conv.groups)
    plain.load_state_dict(got.state_dict())
    return plain


@pytest.mark.parametrize(
    "wrong, expect",
    [
        (lambda c, b: fold_ok(c, b, eps=0.0), r"epsilon is missing"),
        (lambda c, b: fold_ok(c, b, keep_conv_bias=False), r"own bias was dropped"),
        (lambda c, b: fold_ok(c, b, use_mean=False), r"running mean is missing"),
        (lambda c, b: fold_ok(c, b, root=False), r"variance, not by the standard"),
        (fold_in_place, r"changed conv: weight differ"),
        (fold_same_object, r"changed conv|returned the conv you were given"),
        (fold_without_settings, r"settings differ.*stride"),
        (lambda c, b: c.weight, r"expected a torch.nn.Conv2d"),
    ],
)
def test_fold_bn_rejects(wrong, expect):
    rejects(checks.check_fold_bn, wrong, expect=expect)


def test_fold_bn_accepts_a_functional_form():
    def fold_functional(conv, bn):
        std = (bn.running_var + bn.eps).rsqrt()
        w = conv.weight * (bn.weight * std).reshape(-1, 1, 1, 1)
        b = bn.bias - bn.running_mean * bn.weight * std
        if conv.bias is not None:
            b = b + conv.bias * bn.weight * std
        folded = copy.deepcopy(conv)
        folded.weight = nn.Parameter(w.detach().clone())
        folded.bias = nn.Parameter(b.detach().clone())
        return folded

    checks.check_fold_bn(fold_ok)
    checks.check_fold_bn(fold_functional)


# --- 4. first diverging node ----------------------------------------------------------


def divergence(model_a, model_b, feeds, atol, compare_outputs_only=False,
               order=None, tol_kind="abs"):
    def every_output(model):
        model = copy.deepcopy(model)
        known = {v.name for v in model.graph.output}
        for node in model.graph.node:
            for name in node.output:
                if name not in known:
                    model.graph.output.append(onnx.ValueInfoProto(name=name))
        sess = onnxkit.session(model, optimize=False)
        return dict(zip([v.name for v in sess.get_outputs()], sess.run(None, feeds)))

    a, b = every_output(model_a), every_output(model_b)
    nodes = list(model_a.graph.node)
    if order == "reversed":
        nodes = nodes[::-1]
    if compare_outputs_only:
        outs = [v.name for v in model_a.graph.output]
        nodes = [n for n in nodes if any(o in outs for o in n.output)]
    for node in nodes:
        for name in node.output:
            if tol_kind == "exact":
                differs = not np.array_equal(a[name], b[name])
            else:
                differs = not np.allclose(a[name], b[name], rtol=0, atol=atol)
            if differs:
                return node.name
    return None


def _final_outputs_only(model_a, model_b, feeds, atol):
    """A shortcut: nothing to find when the graph outputs agree."""
    out_a = onnxkit.session(model_a).run(None, feeds)
    out_b = onnxkit.session(model_b).run(None, feeds)
    same = all(np.allclose(x, y, rtol=0, atol=atol) for x, y in zip(out_a, out_b))
    return None if same else divergence(model_a, model_b, feeds, atol)


def divergence_mutates(model_a, model_b, feeds, atol):
    for model in (model_a, model_b):
        for node in model.graph.node:
            for name in node.output:
                model.graph.output.append(onnx.ValueInfoProto(name=name))
    return divergence(model_a, model_b, feeds, atol)


@pytest.mark.parametrize(
    "wrong, expect",
    [
        (lambda a, b, f, t: divergence(a, b, f, t, compare_outputs_only=True),
         r"expected 'shift', got 'out'.*not the first"),
        (lambda a, b, f, t: _final_outputs_only(a, b, f, t),
         r"change the ReLU hides.*expected 'shift', got None.*every node's"),
        (lambda a, b, f, t: divergence(a, b, f, t, compare_outputs_only=True),
         r"expected 'shift', got 'out'.*not the first"),
        (lambda a, b, f, t: divergence(a, b, f, t, order="reversed"),
         r"expected 'shift', got 'out'.*graph's order"),
        (lambda a, b, f, t: divergence(a, b, f, t, tol_kind="exact"),
         r"below atol.*expected None, got 'shift'.*tolerance"),
        (divergence_mutates, r"changed a model it was given"),
        (lambda a, b, f, t: 0, r"expected a str"),
    ],
)
def test_first_divergence_rejects(wrong, expect):
    rejects(checks.check_first_divergence, wrong, expect=expect)


def test_first_divergence_accepts_the_reference_approach():
    checks.check_first_divergence(divergence)


# --- 5. an exportable rewrite --------------------------------------------------------


class LoopClip(nn.Module):
    def __init__(self, limit=1.0):
        super().__init__()
        self.limit = limit

    def forward(self, x):
        out = []
        for sample in x:
            peak = sample.abs().max()
            if peak > self.limit:
                sample = sample * (self.limit / peak)
            out.append(sample)
        return torch.stack(out)


class WhereClip(LoopClip):
    def forward(self, x):
        peak = x.abs().flatten(1).max(dim=1).values.reshape(-1, 1, 1, 1)
        return torch.where(peak > self.limit, x * (self.limit / peak), x)


class DivideByPeak(LoopClip):
    def forward(self, x):
        peak = x.abs().amax(dim=(1, 2, 3), keepdim=True)
        return x * torch.minimum(self.limit / peak, torch.ones_like(peak)) + 0 * (
            x / peak
        )


class ClipValues(LoopClip):
    def forward(self, x):
        return x.clamp(-self.limit, self.limit)


class GlobalPeak(LoopClip):
    def forward(self, x):
        peak = x.abs().max()
        return x * torch.clamp(self.limit / peak, max=1.0)


@pytest.mark.parametrize(
    "wrong, expect",
    [
        (LoopClip, r"torch.export.export of your module raised "
         r"GuardOnDataDependentSymNode.*Python loop"),
        (DivideByPeak, r"expected a finite result.*peak 0"),
        (ClipValues, r"results differ from PerSampleClip"),
        (GlobalPeak, r"results differ from PerSampleClip"),
    ],
    ids=lambda v: getattr(v, "__name__", ""),
)
def test_exportable_clip_rejects(wrong, expect):
    rejects(checks.check_exportable_clip, wrong, expect=expect)


def test_exportable_clip_accepts_where_and_clamp_rewrites():
    class ClampClip(LoopClip):
        def forward(self, x):
            peak = x.abs().amax(dim=(1, 2, 3), keepdim=True)
            return x * torch.clamp(self.limit / peak, max=1.0)

    checks.check_exportable_clip(ClampClip)
    checks.check_exportable_clip(WhereClip)
