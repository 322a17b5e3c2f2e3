"""Export the committed course model to ``model2metal/assets/digits_cnn.onnx``.

Reads the weights of ``model2metal/assets/digits_cnn.pt`` (``load_course_model``),
exports them with ``torch.onnx.export(..., dynamo=True)`` at opset 20 (input
``images`` of shape ``(batch, 1, 8, 8)`` with a symbolic batch axis, output ``logits``
of shape ``(batch, 10)``), checks the file with ``onnx.checker`` and compares ONNX
Runtime's logits with PyTorch's on the 360 test digits. Chapter 3's later labs, its benchmarks and
chapter 4 load this file, so that none of them depends on a learner's export.
Run it again whenever the weights change::

    python tools/export_course_model.py [--out PATH]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import onnx
import torch

from model2metal import onnxkit
from model2metal.data import load_digits_split
from model2metal.models import load_course_model, preprocess

#: Pinned, so that a torch upgrade cannot silently raise the opset past what the
#: deployment runtimes of the course accept (chapter 3, "Version hygiene").
OPSET = 20

#: fp32 logits of the exported model may differ from PyTorch's by rounding only.
MAX_ABS_ERROR = 1e-4


def export(path: Path) -> onnx.ModelProto:
    """Export the course model to ``path``; returns the loaded, checked model."""
    onnxkit.silence_exporter_logs()
    model = load_course_model()
    example = preprocess(load_digits_split()[1][:2])
    program = torch.onnx.export(
        model,
        (example,),
        dynamo=True,
        verbose=False,
        opset_version=OPSET,
        input_names=["images"],
        output_names=["logits"],
        dynamic_shapes={"x": {0: torch.export.Dim("batch")}},
    )
    program.save(str(path))
    saved = onnx.load(str(path))
    onnx.checker.check_model(saved, full_check=True)
    return saved


def max_abs_error(path: Path) -> float:
    """Largest |ONNX Runtime - PyTorch| over the logits of the test digits."""
    X_test = load_digits_split()[1]
    x = preprocess(X_test)
    with torch.no_grad():
        expected = load_course_model()(x).numpy()
    got = onnxkit.session(path).run(None, {"images": x.numpy()})[0]
    return float(np.max(np.abs(got - expected)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=onnxkit.COURSE_ONNX)
    args = parser.parse_args(argv)
    saved = export(args.out)
    error = max_abs_error(args.out)
    print(onnxkit.graph_summary(saved))
    print(f"wrote {args.out} ({args.out.stat().st_size:,} bytes); "
          f"max |ONNX Runtime - PyTorch| on the test digits: {error:.2e}")
    return 0 if error <= MAX_ABS_ERROR else 1


if __name__ == "__main__":
    sys.exit(main())
