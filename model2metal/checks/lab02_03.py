"""Checks for lab 02_03 "Detection essentials": IoU, NMS, mAP, heatmap decoding.

Conventions the lab states and these checks hold it to:

* a box is ``(x1, y1, x2, y2)`` in pixel-edge coordinates, area ``(x2-x1)·(y2-y1)``
  (no "+1"); a box of zero area is legal and its IoU with anything is 0, never NaN;
  integer coordinates work as well as float ones;
* the IoU is exact: intersection / union with nothing added to the union (union 0 is
  handled on its own), so an IoU of exactly 0.5 is 0.5. NMS (suppress when IoU >
  threshold) and mAP (match when IoU ≥ threshold) decide on that exact value, and the
  checks of all three hold the same boundary;
* NMS suppresses a box when its IoU with a kept box is strictly greater than the
  threshold; kept indices come as a 1-D integer NumPy array sorted by descending
  score, equal scores lower index first (over all classes for ``batched_nms``);
  ``batched_nms`` never lets boxes of different classes suppress each other;
* AP (a float) is the area under the all-point interpolated (monotone envelope)
  precision-recall curve (PASCAL VOC 2010+); mAP@0.5 (a float) matches detections
  greedily by descending score, each detection claiming the unmatched ground-truth
  box of its class and image with the highest IoU, if that IoU ≥ threshold; classes
  without ground truth are left out of the mean;
* heatmap decoding keeps local maxima (equal to their 3×3 max-pooled value) with a
  score above ``threshold``, the top ``k`` over all classes, and returns a tuple of
  NumPy arrays: boxes (n, 4) float32, scores (n,) floats, classes (n,) int64, also
  when n = 0; cell ``(y, x)`` has its centre at ``((x + 0.5)·stride,
  (y + 0.5)·stride)`` and ``wh = (width, height)`` is in output cells;
* training targets are three float32 NumPy arrays (heat, wh, mask);
* anchor matching returns one integer per anchor: the index of its ground truth
  (best IoU >= pos_threshold), -1 for background (best IoU < neg_threshold), -2 for
  ignored (in between); then every anchor that is the best anchor of some ground
  truth (all of them when several tie, IoU above 0) becomes a positive for its own
  best ground truth, as in torchvision's ``Matcher`` with low-quality matches
  (lowest ground-truth index when an anchor's IoUs tie). Encoding is
  Faster R-CNN's (tx, ty, tw, th) between centres, divided by the anchor's size,
  with log size ratios.

Every reference here is written with explicit loops, independently of the vectorised
way the lab asks for. Expected values are computed before the learner's code runs;
hints that name a mistake do so only when the learner's result equals that mistake,
computed by the same loops.
"""

from __future__ import annotations

import math

import numpy as np

from .core import (
    CheckFailed,
    assert_array_close,
    assert_not_none,
    assert_true,
    assert_type,
    call_learner,
    describe,
    passed,
)

__all__ = [
    "check_box_area",
    "check_pairwise_iou",
    "check_nms",
    "check_batched_nms",
    "check_average_precision",
    "check_map_at_50",
    "check_decode_heatmap",
    "check_make_targets",
    "check_match_anchors",
    "check_encode_decode",
]


# ---------------------------------------------------------------------------
# references by loops
# ---------------------------------------------------------------------------


def _iou_one(a, b) -> float:
    ax1, ay1, ax2, ay2 = (float(v) for v in a)
    bx1, by1, bx2, by2 = (float(v) for v in b)
    iw = max(0.0, min(ax2, bx2) - max(ax1, bx1))
    ih = max(0.0, min(ay2, by2) - max(ay1, by1))
    inter = iw * ih
    union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter
    return inter / union if union > 0 else 0.0


def _iou_by_loops(a, b, variant=None) -> np.ndarray:
    """IoU matrix; ``variant`` 'unclamped' / 'clamp product' computes the candidate
    mistake of that name, 'union' the union instead of the IoU."""
    out = np.zeros((len(a), len(b)))
    for i in range(len(a)):
        for j in range(len(b)):
            if variant is None:
                out[i, j] = _iou_one(a[i], b[j])
                continue
            ax1, ay1, ax2, ay2 = (float(v) for v in a[i])
            bx1, by1, bx2, by2 = (float(v) for v in b[j])
            iw = min(ax2, bx2) - max(ax1, bx1)
            ih = min(ay2, by2) - max(ay1, by1)
            inter = iw * ih if variant != "clamp product" else max(0.0, iw * ih)
            if variant == "union":
                inter = max(0.0, iw) * max(0.0, ih)
            union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter
            out[i, j] = union if variant == "union" else (
                inter / union if union > 0 else 0.0
            )
    return out


def _order(scores, ties="lower index") -> list[int]:
    """Indices by descending score, equal scores lower index first."""
    sign = 1 if ties == "lower index" else -1
    return sorted(range(len(scores)), key=lambda i: (-float(scores[i]), sign * i))


def _nms_by_loops(boxes, scores, thr, variant=None) -> list[int]:
    """Greedy NMS; ``variant`` names a candidate mistake: '>=' (suppress at equality),
    'suppressed suppress' (every higher-scored box suppresses), 'index order' (boxes
    visited by index), 'ties' (equal scores: higher index first)."""
    if variant == "index order":
        order = list(range(len(scores)))
    else:
        order = _order(scores, "higher index" if variant == "ties" else "lower index")
    suppressed = [False] * len(scores)
    keep = []
    for n, i in enumerate(order):
        if variant == "suppressed suppress":
            if all(_iou_one(boxes[i], boxes[j]) <= thr for j in order[:n]):
                keep.append(i)
            continue
        if suppressed[i]:
            continue
        keep.append(i)
        for j in range(len(scores)):
            iou = _iou_one(boxes[i], boxes[j])
            hit = iou >= thr if variant == ">=" else iou > thr
            if not suppressed[j] and j != i and hit:
                suppressed[j] = True
    return keep


def _batched_nms_by_loops(boxes, scores, classes, thr, variant=None) -> list[int]:
    """Class-aware NMS; ``variant``: 'agnostic' (one NMS over all boxes), 'by class'
    (per-class results concatenated in class order), 'class ties' (sorted by score,
    equal scores in class order)."""
    if variant == "agnostic":
        return _nms_by_loops(boxes, scores, thr)
    keep = []
    for c in sorted(set(int(v) for v in classes)):
        idx = [i for i in range(len(classes)) if int(classes[i]) == c]
        sub = _nms_by_loops([boxes[i] for i in idx], [scores[i] for i in idx], thr)
        keep += [idx[k] for k in sub]
    if variant == "by class":
        return keep
    if variant == "class ties":
        return sorted(keep, key=lambda i: -float(scores[i]))  # stable: class order
    return sorted(keep, key=lambda i: (-float(scores[i]), i))


def _ap_by_loops(recall, precision, variant=None) -> float:
    """All-point interpolated AP; ``variant`` names a candidate mistake."""
    recall = [float(r) for r in recall]
    precision = [float(p) for p in precision]
    if variant == "11-point":
        return sum(
            max([p for r, p in zip(recall, precision) if r >= t], default=0.0)
            for t in np.linspace(0, 1, 11)
        ) / 11
    if variant == "trapezoid":
        return sum(
            (recall[i] - recall[i - 1]) * (precision[i] + precision[i - 1]) / 2
            for i in range(1, len(recall))
        )
    ap, prev = 0.0, 0.0
    if variant == "no recall 0" and recall:
        prev = recall[0]
    for i in range(len(recall)):
        if recall[i] > prev:
            if variant == "no envelope":
                best = precision[i]
            elif variant == "envelope from the left":
                best = max(precision[: i + 1])
            else:
                best = max(precision[i:])
            ap += (recall[i] - prev) * best
            prev = recall[i]
    return ap


def _map_by_loops(
    predictions, ground_truths, num_classes, iou_threshold=0.5, variant=None
):
    """mAP by loops; ``variant`` names a candidate mistake: '>' (strict), 'reuse'
    (a matched box matches again), 'pooled' (ground truth of every image),
    'empty class 0' (classes without ground truth count 0), 'per image' (ranked
    image by image), 'first match' (first unmatched box above the threshold)."""
    aps = []
    for c in range(num_classes):
        gts = [
            [b for b, lab in zip(bx, lb) if int(lab) == c] for bx, lb in ground_truths
        ]
        if variant == "pooled":
            pooled = [b for g in gts for b in g]
            gts = [pooled] * len(gts)
        n_gt = sum(len(g) for g in gts) if variant != "pooled" else len(gts[0])
        if n_gt == 0:
            if variant == "empty class 0":
                aps.append(0.0)
            continue
        dets = []
        for img, (bx, sc, lb) in enumerate(predictions):
            for b, s, lab in zip(bx, sc, lb):
                if int(lab) == c:
                    dets.append((float(s), len(dets), img, b))
        if variant != "per image":
            dets.sort(key=lambda d: (-d[0], d[1]))
        used = [[False] * len(g) for g in gts]
        tp = 0
        recall, precision = [], []
        for rank, (_, _, img, b) in enumerate(dets, start=1):
            best, best_j = -1.0, -1
            for j, g in enumerate(gts[img]):
                iou = _iou_one(b, g)
                free = variant == "reuse" or not used[img][j]
                if variant == "first match":
                    if free and iou >= iou_threshold and best_j < 0:
                        best, best_j = iou, j
                elif free and iou > best:
                    best, best_j = iou, j
            hit = best > iou_threshold if variant == ">" else best >= iou_threshold
            if best_j >= 0 and hit:
                used[img][best_j] = True
                tp += 1
            recall.append(tp / n_gt)
            precision.append(tp / rank)
        aps.append(_ap_by_loops(recall, precision))
    return float(np.mean(aps)) if aps else 0.0


def _decode_by_loops(heat, wh, k, stride, threshold, variant=None):
    """(class, box, score) of the top-k peaks; ``variant`` names a candidate mistake:
    'no suppression', 'x/y swapped', 'w/h swapped', 'top k per class', 'no +0.5',
    'border dropped', '>= threshold'."""
    C, H, W = heat.shape
    found = []
    for c in range(C):
        for y in range(H):
            for x in range(W):
                v = heat[c, y, x]
                window = heat[c, max(y - 1, 0) : y + 2, max(x - 1, 0) : x + 2]
                above = v >= threshold if variant == ">= threshold" else v > threshold
                peak = variant == "no suppression" or v >= window.max()
                if variant == "border dropped" and (
                    y in (0, H - 1) or x in (0, W - 1)
                ):
                    peak = False
                if above and peak:
                    found.append((float(v), c, y, x))
    found.sort(key=lambda t: -t[0])
    if variant == "top k per class":
        chosen = [t for c in range(C) for t in [f for f in found if f[1] == c][:k]]
    else:
        chosen = found[:k]
    out = []
    for s, c, y, x in chosen:
        if variant == "x/y swapped":
            y, x = x, y
            if y >= H or x >= W:
                return None  # that mistake would have raised
        w, h = float(wh[0, y, x]), float(wh[1, y, x])
        if variant == "w/h swapped":
            w, h = h, w
        half = 0.0 if variant == "no +0.5" else 0.5
        cx, cy = x + half, y + half
        box = [(cx - w / 2) * stride, (cy - h / 2) * stride,
               (cx + w / 2) * stride, (cy + h / 2) * stride]
        out.append((c, box, s))
    return out


def _sigma(w: float, h: float) -> float:
    """The Gaussian's standard deviation in output cells (the lab's gaussian_sigma)."""
    return max(0.5, min(w, h) / 6)


def _targets_by_loops(boxes, labels, num_classes, out_h, out_w, stride, variant=None):
    """heat, wh, mask by loops; ``variant`` names a candidate mistake: 'sum' (bumps
    added), 'x/y swapped', 'wh in pixels', 'rounded centre'."""
    heat = np.zeros((num_classes, out_h, out_w))
    wh = np.zeros((2, out_h, out_w))
    mask = np.zeros((out_h, out_w))
    for (x1, y1, x2, y2), c in zip(boxes, labels):
        w, h = (x2 - x1) / stride, (y2 - y1) / stride
        rounding = round if variant == "rounded centre" else math.floor
        cx = min(int(rounding((x1 + x2) / 2 / stride)), out_w - 1)
        cy = min(int(rounding((y1 + y2) / 2 / stride)), out_h - 1)
        if variant == "x/y swapped":
            cx, cy = min(cy, out_w - 1), min(cx, out_h - 1)
        s = _sigma(w, h)
        for y in range(out_h):
            for x in range(out_w):
                g = math.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * s * s))
                if variant == "sum":
                    heat[int(c), y, x] += g
                else:
                    heat[int(c), y, x] = max(heat[int(c), y, x], g)
        wh[:, cy, cx] = (x2 - x1, y2 - y1) if variant == "wh in pixels" else (w, h)
        mask[cy, cx] = 1.0
    return heat, wh, mask


def _random_boxes(rng, n, lo=0.0, hi=30.0, min_side=1.0, max_side=12.0):
    xy = rng.uniform(lo, hi, size=(n, 2))
    side = rng.uniform(min_side, max_side, size=(n, 2))
    return np.concatenate([xy, xy + side], axis=1)






def _float_result(got, name, case, what) -> float:
    """A Python float (np.float64 is one); anything else fails, named."""
    assert_not_none(got, name, case, what)
    assert_type(
        got, float, name, case, what,
        f"return the {what} as a Python float: float(x) converts a NumPy number, a "
        "0-d array or tensor.item() a tensor",
    )
    return float(got)


def _first_match(got, candidates, close) -> str | None:
    """The hint of the first candidate that ``got`` equals (``close``)."""
    for candidate, hint in candidates:
        if candidate is not None and close(got, candidate):
            return hint
    return None


# ---------------------------------------------------------------------------
# 1. areas and IoU
# ---------------------------------------------------------------------------

AREA_HINT = (
    "one area per row: the box's width times its height, measured in pixel-edge "
    "coordinates as the data description says (no +1)"
)


def check_box_area(fn) -> None:
    """``fn(boxes)``: (N,) areas of (N, 4) boxes ``(x1, y1, x2, y2)``."""
    name = "check_box_area"
    rng = np.random.default_rng(20)
    cases = {
        "5 random boxes": _random_boxes(rng, 5),
        "one box": np.array([[1.0, 2.0, 4.0, 7.0]]),
        "zero-area boxes (a point and two lines)": np.array(
            [[3.0, 3.0, 3.0, 3.0], [0.0, 1.0, 5.0, 1.0], [2.0, 0.0, 2.0, 9.0]]
        ),
        "float32 boxes": _random_boxes(rng, 4).astype(np.float32),
        "integer coordinates": np.array([[0, 0, 6, 6], [1, 2, 4, 7]]),
        "no boxes, shape (0, 4)": np.zeros((0, 4)),
    }
    for case, boxes in cases.items():
        b64 = boxes.astype(np.float64)
        expected = np.array([(b[2] - b[0]) * (b[3] - b[1]) for b in b64])
        plus_one = np.array([(b[2] - b[0] + 1) * (b[3] - b[1] + 1) for b in b64])
        got = call_learner(name, case, fn, boxes.copy(), hint=AREA_HINT)
        assert_not_none(got, name, case, "areas")
        hint = None
        if isinstance(got, np.ndarray) and got.shape == expected.shape:
            hint = _first_match(
                got.astype(np.float64),
                [(plus_one, "your areas are (width + 1) × (height + 1): in "
                  "pixel-edge coordinates a box from x1 to x2 is x2 - x1 wide, "
                  "with no +1")],
                lambda a, b: np.allclose(a, b, rtol=1e-5, atol=1e-5),
            )
        assert_array_close(
            got,
            expected,
            name,
            case,
            rtol=1e-5,
            atol=1e-5,
            expect_type=np.ndarray,
            what="areas",
            hint=hint or AREA_HINT,
        )
    passed(name, len(cases))


IOU_HINT = (
    "per pair: intersection / union; the intersection's width and height are each "
    "clamped at 0 before they are multiplied, and a pair whose union is 0 has IoU 0"
)

IOU_INT_HINT = (
    "integer boxes give an integer intersection, and an output array made like it "
    "(zeros_like) cannot hold the fractions of the IoU: work in floats"
)

IOU_EPS_HINT = (
    "every value that differs is slightly BELOW the exact IoU: is something small "
    "added to the union? The lab's IoU is exact, because NMS and mAP compare it with "
    "thresholds and an IoU of exactly 0.5 must stay 0.5; handle a union of 0 on its "
    "own instead"
)

IOU_CLAMP_HINT = (
    "the intersection of two boxes that do not overlap must be 0: clamp the width "
    "and the height at 0 each, BEFORE multiplying (two negative overlaps make a "
    "positive product)"
)


def _iou_hint(got, a, b, expected) -> str | None:
    """A hint with evidence: the learner's matrix equals a computed mistake, has NaN
    exactly where the union is 0, or lies slightly below the exact values."""
    if not isinstance(got, np.ndarray) or got.shape != expected.shape:
        return None
    if got.dtype.kind not in "fiu" or got.size == 0:
        return None
    g = got.astype(np.float64)
    union = _iou_by_loops(a, b, "union")
    nan = np.isnan(g)
    if nan.any() and np.array_equal(nan, union <= 0):
        return (
            "NaN exactly where the union is 0 (0 / 0): the IoU of such a pair is 0; "
            "divide only where the union is positive"
        )
    hint = _first_match(
        g,
        [(_iou_by_loops(a, b, "unclamped"), IOU_CLAMP_HINT),
         (_iou_by_loops(a, b, "clamp product"), IOU_CLAMP_HINT)],
        lambda x, y: not np.allclose(y, expected, rtol=1e-5, atol=1e-6)
        and np.allclose(x, y, rtol=1e-5, atol=1e-6),
    )
    if hint:
        return hint
    bad = g != expected
    if bad.any() and np.all(np.isfinite(g[bad])):
        below = np.all(g[bad] < expected[bad])
        if below and np.all(expected[bad] - g[bad] <= 1e-6 * expected[bad]):
            return IOU_EPS_HINT
    return None


def check_pairwise_iou(fn) -> None:
    """``fn(a, b)``: (N, M) IoU of every box of ``a`` (N, 4) with every box of ``b``."""
    name = "check_pairwise_iou"
    rng = np.random.default_rng(21)
    same = _random_boxes(rng, 3)
    loose, exact = (1e-5, 1e-6), (0.0, 0.0)
    cases = {
        "3 random boxes against 4": (_random_boxes(rng, 3), _random_boxes(rng, 4),
                                     loose),
        "disjoint boxes, one above-left of the other": (
            np.array([[0.0, 0.0, 1.0, 1.0]]),
            np.array([[2.0, 2.0, 3.0, 3.0]]),
            loose,
        ),
        "disjoint in x, overlapping in y": (
            np.array([[0.0, 0.0, 2.0, 2.0]]),
            np.array([[3.0, 0.0, 5.0, 2.0], [1.0, 1.0, 3.0, 3.0]]),
            loose,
        ),
        "boxes that only touch along an edge": (
            np.array([[0.0, 0.0, 2.0, 2.0]]),
            np.array([[2.0, 0.0, 4.0, 2.0]]),
            loose,
        ),
        "a set against itself (diagonal is 1)": (same, same.copy(), loose),
        "one box inside another": (
            np.array([[0.0, 0.0, 4.0, 4.0]]),
            np.array([[1.0, 1.0, 3.0, 3.0]]),
            loose,
        ),
        "zero-area boxes (union can be 0)": (
            np.array([[1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 2.0]]),
            np.array([[1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 2.0, 2.0], [5, 5, 6, 6.0]]),
            loose,
        ),
        # The next cell of the lab calls pairwise_iou on integer arrays.
        "integer coordinates": (
            np.array([[0, 0, 6, 6], [10, 10, 13, 12]]),
            np.array([[1, 1, 7, 7], [2, 2, 8, 8], [11, 10, 14, 12]]),
            loose,
        ),
        # IoUs of 1/2, 1/4 and 1: exact in every float format, so compared exactly.
        "IoU exactly 0.5, 0.25 and 1 (the thresholds see these values)": (
            np.array([[0.0, 0.0, 4.0, 2.0]]),
            np.array([[0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 1.0, 2.0],
                      [0.0, 0.0, 4.0, 2.0], [0.0, 0.0, 4.0, 4.0]]),
            exact,
        ),
        "no boxes in a, shape (0, 4) against 3": (np.zeros((0, 4)), same.copy(),
                                                  loose),
        "3 boxes against no boxes": (same.copy(), np.zeros((0, 4)), loose),
        "float32, 6 against 2": (
            _random_boxes(rng, 6).astype(np.float32),
            _random_boxes(rng, 2).astype(np.float32),
            loose,
        ),
    }
    for case, (a, b, (rtol, atol)) in cases.items():
        expected = _iou_by_loops(a, b)
        got = call_learner(
            name, case, fn, a.copy(), b.copy(), hint=IOU_HINT,
            evidence=[(r"Cannot cast ufunc|casting rule", IOU_INT_HINT)]
            if a.dtype.kind == "i" else (),
        )
        assert_not_none(got, name, case, "IoU matrix")
        assert_array_close(
            got,
            expected,
            name,
            case,
            rtol=rtol,
            atol=atol,
            dtype="float",
            expect_type=np.ndarray,
            what="IoU matrix",
            hint=_iou_hint(got, a, b, expected) or IOU_HINT,
        )
    passed(name, len(cases))


# ---------------------------------------------------------------------------
# 2. NMS
# ---------------------------------------------------------------------------


def _as_index_list(got, name, case) -> list[int]:
    assert_not_none(got, name, case, "kept indices")
    assert_type(
        got, np.ndarray, name, case, "kept indices",
        "return the kept indices as a 1-D NumPy array with an integer dtype",
    )
    assert_true(
        got.ndim == 1 and got.dtype.kind in "iu" and got.dtype.itemsize >= 4,
        name,
        case,
        f"kept indices: expected a 1-D array with an integer dtype (int32 or int64), "
        f"got {describe(got)}",
        "indices are integers: give the array an integer dtype, an empty one too",
    )
    return [int(v) for v in got]


_NMS_HINT = (
    "visit the boxes from the highest score down (equal scores: lower index first); "
    "a box still there is kept and removes every remaining box whose IoU with IT is "
    "greater than iou_threshold; repeat until no box is left"
)

_NMS_VARIANTS = {
    ">=": "an IoU equal to iou_threshold survives: suppress only when the IoU is "
    "strictly greater",
    "suppressed suppress": "a box was removed by a box that had itself been "
    "suppressed: only a KEPT box removes others, so compare with IT, the box just "
    "kept",
    "index order": "the boxes were visited in index order: visit them by descending "
    "score",
    "ties": "equal scores: the box with the lower index comes first",
}


def _nms_cases(rng):
    unit = [0.0, 0.0, 10.0, 10.0]
    rand = _random_boxes(rng, 30, hi=25.0, min_side=4.0)
    return {
        "no boxes": (np.zeros((0, 4)), np.zeros(0), 0.5),
        "one box": (np.array([unit]), np.array([0.3]), 0.5),
        "two identical boxes with equal scores": (
            np.array([unit, unit]),
            np.array([0.7, 0.7]),
            0.5,
        ),
        "three disjoint boxes, scores not sorted": (
            np.array([[0, 0, 2, 2], [5, 5, 7, 7], [10, 0, 12, 2.0]]),
            np.array([0.2, 0.9, 0.5]),
            0.5,
        ),
        "equal scores, no overlaps (ties: lower index first)": (
            np.array([[10, 0, 12, 2], [0, 0, 2, 2], [5, 5, 7, 7], [20, 0, 22, 2.0]]),
            np.array([0.4, 0.8, 0.4, 0.8]),
            0.5,
        ),
        "a chain: A overlaps B, B overlaps C, A and C disjoint": (
            np.array([[0, 0, 10, 10], [4, 0, 14, 10], [9, 0, 19, 10.0]]),
            np.array([0.9, 0.8, 0.7]),
            0.3,
        ),
        "IoU exactly equal to the threshold (kept)": (
            np.array([[0, 0, 4, 2], [0, 0, 2, 2.0]]),
            np.array([0.9, 0.8]),
            0.5,
        ),
        "IoU just above the threshold (suppressed)": (
            np.array([[0, 0, 4, 2], [0, 0, 2, 2.0]]),
            np.array([0.9, 0.8]),
            0.49,
        ),
        "30 random boxes": (rand, rng.uniform(size=30), 0.4),
    }


def check_nms(fn) -> None:
    """``fn(boxes, scores, iou_threshold)``: kept indices, by descending score."""
    name = "check_nms"
    cases = _nms_cases(np.random.default_rng(22))
    for case, (boxes, scores, thr) in cases.items():
        expected = _nms_by_loops(boxes, scores, thr)
        variants = {v: _nms_by_loops(boxes, scores, thr, v) for v in _NMS_VARIANTS}
        got = call_learner(
            name, case, fn, boxes.copy(), scores.copy(), thr, hint=_NMS_HINT,
            inplace_hint="the caller still needs its boxes and scores: mark "
            "suppressed boxes in an array of your own (or shrink a list of "
            "indices), not by overwriting the scores",
        )
        keep = _as_index_list(got, name, case)
        if keep == expected:
            continue
        problem = f"kept indices: expected {expected}, got {keep}"
        hint = next(
            (_NMS_VARIANTS[v] for v, result in variants.items()
             if result != expected and result == keep),
            _NMS_HINT,
        )
        overlap = [
            (i, j)
            for n, i in enumerate(keep)
            for j in keep[n + 1 :]
            if _iou_one(boxes[i], boxes[j]) > thr
        ]
        if overlap:
            i, j = overlap[0]
            problem += (
                f"\nboxes {i} and {j} are both kept although their IoU is "
                f"{_iou_one(boxes[i], boxes[j]):.3f} > {thr}"
            )
        elif sorted(keep) == sorted(expected):
            problem += "\nthe right boxes, in the wrong order"
            if hint == _NMS_HINT:
                hint = "return the kept boxes by descending score (equal scores: " \
                    "lower index first)"
        raise CheckFailed(name, case, problem, hint)
    passed(name, len(cases))


_BATCHED_HINT = (
    "boxes of different classes must never suppress each other: run NMS per class "
    "(or move each class's boxes far apart), then order all kept indices by "
    "descending score, equal scores lower index first"
)

_BATCHED_VARIANTS = {
    "agnostic": "a box was suppressed by a box of ANOTHER class: boxes of different "
    "classes must never suppress each other",
    "by class": "your indices come class by class: sort all kept indices by "
    "descending score",
    "class ties": "equal scores in different classes came in class order: equal "
    "scores put the lower index first, over all classes",
}


def check_batched_nms(fn) -> None:
    """``fn(boxes, scores, classes, iou_threshold)``: class-aware NMS."""
    name = "check_batched_nms"
    rng = np.random.default_rng(23)
    unit = [0.0, 0.0, 10.0, 10.0]
    rand = _random_boxes(rng, 40, hi=25.0, min_side=4.0)
    cases = {
        "no boxes": (np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64), 0.5),
        "the same box in two classes": (
            np.array([unit, unit]),
            np.array([0.6, 0.9]),
            np.array([0, 1]),
            0.5,
        ),
        "two classes, overlaps within and across classes": (
            np.array([unit, [1, 1, 11, 11], [0, 0, 10, 9], [30, 30, 35, 35.0]]),
            np.array([0.9, 0.8, 0.85, 0.1]),
            np.array([1, 1, 0, 0]),
            0.5,
        ),
        "equal scores in different classes (ties: lower index first)": (
            np.array([[0, 0, 2, 2], [5, 5, 7, 7], [10, 0, 12, 2], [20, 0, 22, 2],
                      [30, 0, 32, 2.0]]),
            np.array([0.5, 0.9, 0.5, 0.5, 0.2]),
            np.array([1, 2, 0, 2, 0]),
            0.5,
        ),
        "one class only (same as nms)": (
            rand[:10],
            rng.uniform(size=10),
            np.full(10, 2),
            0.4,
        ),
        "40 random boxes, 3 classes": (
            rand,
            rng.uniform(size=40),
            rng.integers(0, 3, size=40),
            0.3,
        ),
    }
    for case, (boxes, scores, classes, thr) in cases.items():
        expected = _batched_nms_by_loops(boxes, scores, classes, thr)
        variants = {
            v: _batched_nms_by_loops(boxes, scores, classes, thr, v)
            for v in _BATCHED_VARIANTS
        }
        got = call_learner(
            name, case, fn, boxes.copy(), scores.copy(), classes.copy(), thr,
            hint=_BATCHED_HINT,
            inplace_hint="moving the boxes apart with `+=` shifts the caller's "
            "boxes: compute the moved boxes into a new array",
        )
        keep = _as_index_list(got, name, case)
        if keep == expected:
            continue
        problem = f"kept indices: expected {expected}, got {keep}"
        hint = next(
            (_BATCHED_VARIANTS[v] for v, result in variants.items()
             if result != expected and result == keep),
            _BATCHED_HINT,
        )
        if set(keep) < set(expected):
            missing = sorted(set(expected) - set(keep))
            problem += f"\nmissing {missing}"
        elif sorted(keep) == sorted(expected):
            problem += "\nthe right boxes, in the wrong order"
        raise CheckFailed(name, case, problem, hint)
    passed(name, len(cases))


# ---------------------------------------------------------------------------
# 3. AP and mAP
# ---------------------------------------------------------------------------


def _pr_from_hits(hits, n_gt):
    tp = np.cumsum(hits)
    return tp / n_gt, tp / np.arange(1, len(hits) + 1)


_AP_HINT = (
    "AP sums, over the points where recall grows (starting from recall 0), the "
    "recall step times the best precision at that recall or any higher one (the "
    "formula above the exercise)"
)

_AP_VARIANTS = {
    "no envelope": "you used each point's own precision: replace it by the best "
    "precision at that recall or any HIGHER one first (the envelope makes the curve "
    "monotone)",
    "envelope from the left": "your envelope looks to the left: take the best "
    "precision at the same or a HIGHER recall, scanning from the end",
    "trapezoid": "that is the trapezoid rule between the points: AP is a sum of "
    "rectangles, recall step times enveloped precision, with recall starting at 0",
    "11-point": "that is the 11-point interpolation of VOC 2007: this lab's AP sums "
    "over every point where recall grows",
    "no recall 0": "the first step, from recall 0 to the first recall, is missing",
}


def check_average_precision(fn) -> None:
    """``fn(recall, precision)``: all-point interpolated AP of a ranked list."""
    name = "check_average_precision"
    rng = np.random.default_rng(24)
    cases = {
        "a perfect ranking": _pr_from_hits([1, 1], 2),
        "precision rises again later (envelope needed)": _pr_from_hits(
            [1, 0, 0, 1, 1], 4
        ),
        "recall never reaches 1": _pr_from_hits([1, 0, 1], 4),
        "only false positives": _pr_from_hits([0, 0, 0], 3),
        "no detections at all": (np.zeros(0), np.zeros(0)),
        "a random ranking of 50 detections": _pr_from_hits(
            rng.integers(0, 2, size=50), 40
        ),
    }
    for case, (recall, precision) in cases.items():
        expected = _ap_by_loops(recall, precision)
        variants = {v: _ap_by_loops(recall, precision, v) for v in _AP_VARIANTS}
        got = call_learner(
            name, case, fn, recall.copy(), precision.copy(), hint=_AP_HINT
        )
        value = _float_result(got, name, case, "AP")
        hint = _first_match(
            value,
            [(v, _AP_VARIANTS[k]) for k, v in variants.items()],
            lambda x, y: not math.isclose(y, expected, abs_tol=1e-9)
            and math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-9),
        )
        assert_array_close(
            np.float64(value),
            np.float64(expected),
            name,
            case,
            rtol=1e-9,
            atol=1e-9,
            what="AP",
            hint=hint or _AP_HINT,
        )
    passed(name, len(cases))


def _img(boxes, scores_or_labels, labels=None):
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    if labels is None:  # ground truth: (boxes, labels)
        return boxes, np.asarray(scores_or_labels, dtype=np.int64)
    return (
        boxes,
        np.asarray(scores_or_labels, dtype=np.float32),
        np.asarray(labels, dtype=np.int64),
    )


def _map_cases(rng):
    A, B, C = [0, 0, 10, 10], [20, 20, 30, 30], [0, 20, 8, 28]
    gt2 = [_img([A, B], [0, 1]), _img([C], [2])]
    none = _img(np.zeros((0, 4)), [], [])
    # a random detector on shapes-like data: jittered copies, duplicates, misses
    gts, preds = [], []
    for _ in range(6):
        n = int(rng.integers(1, 4))
        # ground-truth boxes 20 px apart: a detection never matches two of them
        xy = rng.uniform(0, 8, size=(n, 2)) + 20.0 * np.arange(n)[:, None]
        side = rng.uniform(5, 12, size=(n, 1))
        g = np.concatenate([xy, xy + side], 1)
        lab = rng.integers(0, 3, size=n)
        gts.append(_img(g, lab))
        pb = np.concatenate([g, g[: max(n - 1, 1)], _random_boxes(rng, 2, hi=60)])
        pb = pb + rng.normal(0, 0.8, size=pb.shape)
        pl = np.concatenate([lab, lab[: max(n - 1, 1)], rng.integers(0, 3, size=2)])
        flip = rng.uniform(size=len(pl)) < 0.15
        pl = np.where(flip, (pl + 1) % 3, pl)
        preds.append(_img(pb, rng.uniform(size=len(pb)), pl))
    return {
        "perfect predictions": ([_img([A, B], [0.9, 0.8], [0, 1]),
                                 _img([C], [0.7], [2])], gt2, 3, {}),
        "no predictions": ([none, none], gt2, 3, {}),
        "a duplicate detection ranked above a true positive": (
            [_img([A, [0, 0, 10, 9], [0, 20, 9, 29]], [0.9, 0.8, 0.7], [0, 0, 0])],
            [_img([A, [0, 20, 9, 29]], [0, 0])],
            1,
            {},
        ),
        "a class with predictions but no ground truth": (
            [_img([A, B, [40, 40, 50, 50]], [0.9, 0.8, 0.95], [0, 1, 2])],
            [_img([A, B], [0, 1])],
            3,
            {},
        ),
        "IoU exactly 0.5 counts as a match": (
            [_img([[0, 0, 4, 2]], [0.9], [0])],
            [_img([[0, 0, 4, 4]], [0])],
            1,
            {},
        ),
        # D1 overlaps G1 (IoU 0.54) and G2 (0.82): it claims G2, the best match;
        # D2 overlaps only G2 above 0.5 and is a false positive; D3 claims G1.
        # Taking the first box above 0.5 gives D1 G1, D2 G2 and D3 nothing.
        "a detection overlapping two ground truths (best match, not first)": (
            [_img([[3, 0, 13, 10], [5, 0, 15, 10], [0, 0, 10, 10]],
                  [0.9, 0.8, 0.7], [0, 0, 0])],
            [_img([[0, 0, 10, 10], [4, 0, 14, 10]], [0, 0])],
            1,
            {},
        ),
        "the right box in the wrong image": (
            [_img([A], [0.9], [0]), _img([A, B], [0.8, 0.6], [0, 0])],
            [_img([A], [0]), _img([B], [0])],
            1,
            {},
        ),
        "the right box with the wrong class": (
            [_img([A, B], [0.9, 0.8], [1, 1])],
            [_img([A, B], [0, 1])],
            2,
            {},
        ),
        "scores must be ranked across images": (
            [_img([[50, 50, 60, 60]], [0.3], [0]), _img([B], [0.9], [0])],
            [_img(np.zeros((0, 4)), []), _img([B], [0])],
            1,
            {},
        ),
        "6 images, a noisy detector with duplicates": (preds, gts, 3, {}),
        "the same detector, iou_threshold=0.75": (
            preds, gts, 3, {"iou_threshold": 0.75}
        ),
    }


_MAP_HINT = (
    "per class, rank the detections of all images by score; a detection is a true "
    "positive when it claims an unmatched ground-truth box of its class in its own "
    "image with IoU >= iou_threshold (the best such box), and a false positive "
    "otherwise; classes without ground truth are left out of the mean"
)

_MAP_VARIANTS = {
    ">": "a match needs IoU >= iou_threshold, and this detection's IoU is exactly "
    "the threshold: check the comparison, and that your IoU is exact (an epsilon "
    "added to the union makes 0.5 come out just below it)",
    "reuse": "a second detection of an already matched ground-truth box counted as "
    "a true positive: each ground-truth box is matched at most once",
    "pooled": "a detection matched a ground-truth box of another image: match only "
    "within the SAME image",
    "empty class 0": "a class without ground truth counted as AP 0: leave it out of "
    "the mean (its AP is undefined)",
    "per image": "the detections were ranked image by image: rank all detections of "
    "a class by score, over all images",
    "first match": "a detection claimed the FIRST unmatched box above the threshold: "
    "it claims the one with the highest IoU",
}


def check_map_at_50(fn) -> None:
    """``fn(predictions, ground_truths, num_classes, iou_threshold=0.5)`` → mAP."""
    name = "check_map_at_50"
    cases = _map_cases(np.random.default_rng(25))
    for case, (preds, gts, num_classes, kw) in cases.items():
        expected = _map_by_loops(preds, gts, num_classes, **kw)
        variants = [
            (_map_by_loops(preds, gts, num_classes, variant=v, **kw), hint)
            for v, hint in _MAP_VARIANTS.items()
        ]
        if kw.get("iou_threshold", 0.5) != 0.5:
            variants.append((
                _map_by_loops(preds, gts, num_classes),
                "the result is the mAP at IoU 0.5: use the iou_threshold argument",
            ))
        got = call_learner(
            name,
            case,
            fn,
            [tuple(a.copy() for a in p) for p in preds],
            [tuple(a.copy() for a in g) for g in gts],
            num_classes,
            hint=_MAP_HINT,
            inplace_hint="sort, filter or convert into new arrays: the caller's "
            "predictions and ground truths must stay as they were",
            **kw,
        )
        value = _float_result(got, name, case, "mAP")
        hint = _first_match(
            value,
            variants,
            lambda x, y: not math.isclose(y, expected, abs_tol=1e-6)
            and math.isclose(x, y, rel_tol=1e-6, abs_tol=1e-6),
        )
        assert_array_close(
            np.float64(value),
            np.float64(expected),
            name,
            case,
            rtol=1e-6,
            atol=1e-6,
            what="mAP",
            hint=hint or _MAP_HINT,
        )
    passed(name, len(cases))


# ---------------------------------------------------------------------------
# 4. decoding a CenterNet heatmap
# ---------------------------------------------------------------------------


def _blob(shape, y, x, peak, sigma=1.0):
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    return peak * np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / (2 * sigma**2))


def _decode_cases(rng):
    H, W = 6, 9  # not square: swapped x and y show
    wh = np.stack([np.full((H, W), 3.0), np.full((H, W), 1.5)]).astype(np.float32)
    wh_rand = rng.uniform(1, 4, size=(2, H, W)).astype(np.float32)

    two = np.zeros((2, H, W), np.float32)
    two[0] = _blob((H, W), 1, 6, 0.9)
    two[1] = _blob((H, W), 4, 2, 0.7)

    plateau = np.zeros((1, H, W), np.float32)
    plateau[0, 2, 3] = plateau[0, 2, 4] = 0.8
    plateau[0, 1:4, 2] = np.maximum(plateau[0, 1:4, 2], 0.3)

    border = np.zeros((2, H, W), np.float32)
    border[0] = _blob((H, W), 0, 0, 0.95, 0.8)
    border[1] = _blob((H, W), H - 1, W - 1, 0.6, 0.8)
    border[1, H - 1, 3] = 0.5

    three = np.zeros((3, H, W), np.float32)
    three[0] = _blob((H, W), 1, 1, 0.5)
    three[1] = _blob((H, W), 4, 7, 0.9)
    three[2] = _blob((H, W), 2, 4, 0.8)

    noisy = rng.uniform(0, 1, size=(3, H, W)).astype(np.float32)
    return {
        "two peaks in two classes": (two, wh, dict(k=10, stride=1)),
        "a plateau: two equal neighbouring maxima": (plateau, wh, dict(k=10, stride=1)),
        "peaks on the border and in a corner": (border, wh_rand, dict(k=10, stride=2)),
        "k larger than the number of peaks": (three, wh_rand, dict(k=50, stride=4)),
        "k smaller: top 2 over all classes": (three, wh_rand, dict(k=2, stride=4)),
        "a score threshold": (three, wh, dict(k=10, stride=1, threshold=0.6)),
        "no peak: an empty heatmap gives 0 detections": (
            np.zeros((2, H, W), np.float32), wh, dict(k=10, stride=2)
        ),
        "random scores, 3 classes, stride 4": (noisy, wh_rand, dict(k=8, stride=4)),
    }


_DECODE_FORMAT = (
    "return a tuple (boxes, scores, classes) of NumPy arrays: boxes (n, 4) float32, "
    "scores (n,), classes (n,) int64, with these shapes and dtypes also when n = 0"
)


def _as_detections(got, name, case):
    assert_not_none(got, name, case, "detections")
    ok = isinstance(got, tuple) and len(got) == 3
    assert_true(
        ok,
        name,
        case,
        f"expected a tuple (boxes, scores, classes), got {describe(got)}",
        _DECODE_FORMAT,
    )
    for what, value in zip(("boxes", "scores", "classes"), got):
        assert_type(value, np.ndarray, name, case, what, _DECODE_FORMAT)
    boxes, scores, classes = got
    n = scores.shape[0] if scores.ndim == 1 else -1
    assert_true(
        n >= 0 and boxes.shape == (n, 4) and classes.shape == (n,),
        name,
        case,
        f"expected boxes (n, 4), scores (n,), classes (n,), got shapes "
        f"{boxes.shape}, {scores.shape}, {classes.shape}",
        _DECODE_FORMAT,
    )
    for what, value, ok, wanted in (
        ("boxes", boxes, boxes.dtype == np.float32, "float32"),
        ("scores", scores, scores.dtype.kind == "f", "a floating-point dtype"),
        ("classes", classes, classes.dtype == np.int64, "int64"),
    ):
        assert_true(
            ok, name, case, f"{what}: expected {wanted}, got dtype {value.dtype}",
            _DECODE_FORMAT,
        )
    return boxes.astype(np.float64), scores.astype(np.float64), classes


def _rows(detections) -> np.ndarray:
    """Detections as sorted rows (-score, class, x1, y1, x2, y2): equal scores may
    come in any order."""
    rows = sorted((-s, int(c), *np.round(b, 4)) for c, b, s in detections)
    return np.array(rows, dtype=np.float64).reshape(-1, 6)


_DECODE_HINT = (
    "a peak is a cell equal to the max of its 3x3 neighbourhood (padding that never "
    "wins) with score > threshold; take the top k over all classes; cell (y, x) has "
    "its centre at (x + 0.5, y + 0.5) cells times the stride; wh[0] is the width and "
    "wh[1] the height, in cells"
)

_DECODE_VARIANTS = {
    "no suppression": "you kept cells that are not local maxima: a peak equals the "
    "max of its 3x3 neighbourhood",
    "x/y swapped": "x and y are swapped: heatmap[c, y, x] is row y, column x, and a "
    "box is (x1, y1, x2, y2)",
    "w/h swapped": "width and height are swapped: wh[0] is the width and wh[1] the "
    "height",
    "top k per class": "you kept the top k of each class: k counts the detections of "
    "all classes together",
    "no +0.5": "the boxes are half a cell off: cell (y, x) has its centre at "
    "(x + 0.5, y + 0.5) cells",
    "border dropped": "the peaks on the border are missing: pad with a value that "
    "never wins (-inf), so a border cell can be a peak",
    ">= threshold": "a score equal to the threshold was kept: keep scores strictly "
    "greater than threshold",
}


def check_decode_heatmap(fn) -> None:
    """``fn(heatmap, wh, k, stride=, threshold=)`` → (boxes, scores, classes)."""
    name = "check_decode_heatmap"
    cases = _decode_cases(np.random.default_rng(26))
    for case, (heat, wh, kw) in cases.items():
        kw = {"threshold": 0.0, **kw}
        args = (heat, wh, kw["k"], kw["stride"], kw["threshold"])
        expected = _decode_by_loops(*args)
        ref = _rows(expected)
        variants = [
            (_decode_by_loops(*args, variant=v), hint)
            for v, hint in _DECODE_VARIANTS.items()
        ]
        got = call_learner(
            name, case, fn, heat.copy(), wh.copy(), hint=_DECODE_HINT, **kw
        )
        boxes, scores, classes = _as_detections(got, name, case)
        mine = _rows(zip(classes, boxes, scores))
        hint = _first_match(
            mine,
            [(_rows(v), h) for v, h in variants if v is not None],
            lambda x, y: x.shape == y.shape
            and not (y.shape == ref.shape and np.allclose(y, ref, atol=1e-4))
            and np.allclose(x, y, rtol=1e-5, atol=1e-4),
        )
        if len(scores) != len(expected):
            raise CheckFailed(
                name,
                case,
                f"expected {len(expected)} detections, got {len(scores)}",
                hint or _DECODE_HINT,
            )
        assert_true(
            bool(np.all(np.diff(scores) <= 0)),
            name,
            case,
            f"scores must come in descending order, got {describe(scores)}",
            "sort the peaks by score, highest first",
        )
        assert_array_close(
            mine,
            ref,
            name,
            case,
            rtol=1e-5,
            atol=1e-4,
            what="detections as rows (-score, class, x1, y1, x2, y2), sorted",
            hint=hint or _DECODE_HINT,
        )
    passed(name, len(cases))


# ---------------------------------------------------------------------------
# 5. training targets
# ---------------------------------------------------------------------------

_TARGETS_HINT = (
    "the centre cell is the box centre divided by the stride, rounded down; "
    "heat[c] is the element-wise maximum of the Gaussian bumps of "
    "the objects of class c, each with gaussian_sigma of the box size in cells; wh "
    "holds (width, height) in cells at the centre cell, and mask is 1 there"
)

_TARGETS_VARIANTS = {
    "sum": "where two bumps of one class overlap you ADDED them (values above 1): "
    "combine bumps by element-wise MAX",
    "x/y swapped": "the centre cell has x and y swapped: heat[c, y, x], mask[y, x]",
    "wh in pixels": "the sizes are in pixels: wh is (width, height) / stride, in "
    "output cells",
    "rounded centre": "the centre cell was rounded: take floor(centre / stride)",
}


def check_make_targets(fn) -> None:
    """``fn(boxes, labels, num_classes, out_h, out_w, stride)`` → heat, wh, mask."""
    name = "check_make_targets"
    cases = {
        "one square, stride 2": (
            [[4, 6, 14, 16]], [1], 3, 16, 16, 2,
        ),
        "two overlapping objects of one class (max, not sum)": (
            [[2, 2, 10, 10], [7, 3, 15, 11]], [0, 0], 2, 16, 16, 1,
        ),
        "three classes on a non-square grid": (
            [[0, 0, 6, 4], [10, 2, 20, 12], [3, 12, 9, 18]], [2, 0, 1], 3, 10, 12, 2,
        ),
        "an object in the bottom-right corner": (
            [[20, 24, 32, 32]], [0], 1, 8, 8, 4,
        ),
        "an image without objects": (np.zeros((0, 4)), [], 3, 8, 8, 2),
    }
    fmt = "return heat, wh, mask: three float32 NumPy arrays"
    for case, (boxes, labels, C, oh, ow, stride) in cases.items():
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        labels = np.asarray(labels, dtype=np.int64)
        geometry = (boxes, labels, C, oh, ow, stride)
        heat, wh, mask = _targets_by_loops(*geometry)
        variants = {v: _targets_by_loops(*geometry, v) for v in _TARGETS_VARIANTS}
        got = call_learner(
            name, case, fn, boxes.copy(), labels.copy(), C, oh, ow, stride,
            hint=_TARGETS_HINT,
        )
        assert_not_none(got, name, case, "targets")
        ok = isinstance(got, tuple) and len(got) == 3
        assert_true(
            ok, name, case, f"expected a tuple (heat, wh, mask), got {describe(got)}",
            fmt,
        )
        for what, value in zip(("heat", "wh", "mask"), got):
            assert_type(value, np.ndarray, name, case, what, fmt)
        got_heat, got_wh, got_mask = got
        at_centres = (
            np.where(mask > 0, got_wh, 0.0) if got_wh.shape == wh.shape else got_wh
        )
        for what, value, want, index in (
            ("mask", got_mask, mask, 2),
            ("heat", got_heat, heat, 0),
            ("wh at the centre cells", at_centres, wh, 1),
        ):
            hint = None
            if value.shape == want.shape and value.dtype.kind in "fiu":
                hint = next(
                    (_TARGETS_VARIANTS[v] for v, result in variants.items()
                     if not np.allclose(result[index], want, atol=1e-5)
                     and np.allclose(value, result[index], rtol=1e-4, atol=1e-5)),
                    None,
                )
            assert_array_close(
                value, want, name, case, rtol=1e-4, atol=1e-5,
                dtype=np.float32 if index != 1 else None,
                what=what, hint=hint or _TARGETS_HINT,
            )
        assert_true(
            got_wh.dtype == np.float32, name, case,
            f"wh: expected dtype float32, got dtype {got_wh.dtype}", fmt,
        )
    passed(name, len(cases))


# ---------------------------------------------------------------------------
# anchors: match, encode, decode (section 6)
# ---------------------------------------------------------------------------


def _match_by_loops(anchors, gts, pos, neg, variant=None) -> list[int]:
    """Anchor -> ground-truth index, -1 background, -2 ignored. ``variant`` names a
    candidate mistake: 'no forced' (no best-anchor rule), 'strict' (> pos, not >=),
    'no ignore' (everything under pos is background), 'forced to the picker' (a
    forced anchor goes to the ground truth that picked it, the first one if several
    did), 'first tie only' (of anchors tied for a ground truth's best, only the
    first is forced)."""
    n_a, n_g = len(anchors), len(gts)
    iou = [[_iou_one(anchors[a], gts[g]) for g in range(n_g)] for a in range(n_a)]
    out, own_best = [], []
    for a in range(n_a):
        best, best_g = -1.0, -1
        for g in range(n_g):
            if iou[a][g] > best:
                best, best_g = iou[a][g], g
        own_best.append(best_g)
        positive = best > pos if variant == "strict" else best >= pos
        if n_g and positive:
            out.append(best_g)
        elif variant == "no ignore" or not n_g or best < neg:
            out.append(-1)
        else:
            out.append(-2)
    if variant == "no forced":
        return out
    picked: dict[int, int] = {}
    for g in range(n_g):
        best = max((iou[a][g] for a in range(n_a)), default=0.0)
        if best <= 0:
            continue
        tied = [a for a in range(n_a) if iou[a][g] == best]
        for a in tied[:1] if variant == "first tie only" else tied:
            picked.setdefault(a, g)
    for a, g in picked.items():
        out[a] = g if variant == "forced to the picker" else own_best[a]
    return out


def _centre_size(boxes):
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    return b[:, 0] + w / 2, b[:, 1] + h / 2, w, h


def _encode_by_loops(anchors, boxes, variant=None) -> np.ndarray:
    """Faster R-CNN deltas (tx, ty, tw, th); ``variant``: 'corners' (offsets of the
    top-left corners), 'by box size' (divided by the box's size, not the anchor's),
    'no log' (tw = w / wa), 'xy swapped'."""
    out = np.zeros((len(anchors), 4))
    for i in range(len(anchors)):
        (ax,), (ay,), (aw,), (ah,) = _centre_size(anchors[i])
        (gx,), (gy,), (gw,), (gh,) = _centre_size(boxes[i])
        if variant == "corners":
            ax, ay = float(anchors[i][0]), float(anchors[i][1])
            gx, gy = float(boxes[i][0]), float(boxes[i][1])
        nx, ny = (gw, gh) if variant == "by box size" else (aw, ah)
        tx, ty = (gx - ax) / nx, (gy - ay) / ny
        if variant == "no log":
            tw, th = gw / aw, gh / ah
        else:
            tw, th = math.log(gw / aw), math.log(gh / ah)
        out[i] = (ty, tx, th, tw) if variant == "xy swapped" else (tx, ty, tw, th)
    return out


def _decode_by_loops_anchor(anchors, deltas, variant=None) -> np.ndarray:
    """Boxes from deltas; ``variant``: 'no exp' (w = wa * tw), 'corner centre'
    (the centre put at the anchor's top-left corner plus the offset), 'half size'
    (x1 = cx - w, x2 = cx + w)."""
    out = np.zeros((len(anchors), 4))
    for i in range(len(anchors)):
        (ax,), (ay,), (aw,), (ah,) = _centre_size(anchors[i])
        tx, ty, tw, th = (float(v) for v in deltas[i])
        if variant == "corner centre":
            ax, ay = float(anchors[i][0]), float(anchors[i][1])
        cx, cy = ax + tx * aw, ay + ty * ah
        w, h = (aw * tw, ah * th) if variant == "no exp" else (
            aw * math.exp(tw), ah * math.exp(th))
        half = 1.0 if variant == "half size" else 0.5
        out[i] = (cx - half * w, cy - half * h, cx + half * w, cy + half * h)
    return out


_MATCH_HINT = (
    "take, for every anchor, its best ground truth by IoU: a positive (that index) "
    "when the IoU reaches pos_threshold, background (-1) below neg_threshold, "
    "ignored (-2) in between; then make the best anchor(s) of every ground truth "
    "positives, each for its own best ground truth"
)

_MATCH_VARIANTS = {
    "no forced": "a ground truth whose best IoU is under pos_threshold got no "
    "anchor at all: after the thresholds, make each ground truth's best anchor a "
    "positive for it (if that IoU is above 0), so no object goes untrained",
    "strict": "an anchor with IoU exactly pos_threshold was not made a positive: "
    "the rule is IoU >= pos_threshold",
    "no ignore": "anchors between the two thresholds were made background: they are "
    "ignored (-2), neither positive nor negative, because they half-cover an object",
    "forced to the picker": "an anchor made positive by the best-anchor rule is "
    "matched to ITS OWN best ground truth (the row's argmax), which need not be the "
    "ground truth that picked it",
    "first tie only": "when several anchors tie for a ground truth's best IoU, all "
    "of them become positives (argmax returns only the first)",
}


def _anchor_cases(rng):
    grid = np.array([[x, y, x + 8, y + 8] for y in range(0, 32, 8)
                     for x in range(0, 32, 8)], dtype=np.float64)
    wide = np.array([[x - 4, y, x + 12, y + 8] for y in range(0, 32, 8)
                     for x in range(0, 32, 8)], dtype=np.float64)
    return {
        "one object on a 4x4 grid of 8-pixel anchors": (
            grid, [[8, 8, 16, 16]], 0.5, 0.4),
        "IoU exactly 0.5 is a positive": (
            np.array([[0, 0, 10, 10], [0, 0, 10, 6], [20, 0, 30, 10.0]]),
            [[0, 0, 10, 5]], 0.5, 0.4),
        "an IoU between the thresholds is ignored": (
            np.array([[0, 0, 10, 10], [0, 0, 10, 9.0], [50, 50, 60, 60]]),
            [[0, 0, 10, 4.5]], 0.5, 0.3),
        "a small object no anchor covers by half (best anchor forced)": (
            grid, [[1, 1, 4, 4]], 0.5, 0.4),
        "two objects, one anchor between them goes to the closer": (
            np.array([[0, 0, 10, 10], [4, 0, 14, 10.0]]),
            [[0, 0, 10, 10], [5, 0, 15, 10]], 0.5, 0.4),
        "an object centred between four anchors (a four-way tie)": (
            grid, [[5, 5, 11, 11]], 0.5, 0.4),
        "two small objects share a best anchor (its own best gets it)": (
            np.array([[0, 0, 10, 10], [40, 40, 50, 50.0]]),
            [[0, 0, 3, 3], [0, 0, 4, 4]], 0.5, 0.4),
        "no ground truth: all background": (grid, np.zeros((0, 4)), 0.5, 0.4),
        "two aspect ratios, five random objects": (
            np.concatenate([grid, wide]), _random_boxes(rng, 5, 0, 28, 3, 12),
            0.5, 0.4),
    }


def check_match_anchors(fn) -> None:
    """``fn(anchors, gt_boxes, pos_threshold, neg_threshold)`` -> (A,) int array."""
    name = "check_match_anchors"
    cases = _anchor_cases(np.random.default_rng(31))
    fmt = "return one integer NumPy array of shape (A,): a ground-truth index, -1 or -2"
    for case, (anchors, gts, pos, neg) in cases.items():
        anchors = np.asarray(anchors, dtype=np.float64)
        gts = np.asarray(gts, dtype=np.float64).reshape(-1, 4)
        expected = np.array(_match_by_loops(anchors, gts, pos, neg), dtype=np.int64)
        variants = {v: _match_by_loops(anchors, gts, pos, neg, v)
                    for v in _MATCH_VARIANTS}
        got = call_learner(name, case, fn, anchors.copy(), gts.copy(), pos, neg,
                           hint=_MATCH_HINT)
        assert_not_none(got, name, case, "matches")
        assert_type(got, np.ndarray, name, case, "matches", fmt)
        assert_true(got.dtype.kind in "iu", name, case,
                    f"matches: expected integers, got dtype {got.dtype}", fmt)
        hint = None
        if got.shape == expected.shape:
            hint = next((_MATCH_VARIANTS[v] for v, result in variants.items()
                         if result != expected.tolist()
                         and got.tolist() == result), None)
        assert_array_close(got, expected, name, case, rtol=0, atol=0,
                           what="matches", hint=hint or _MATCH_HINT)
    passed(name, len(cases))


_CODE_HINT = (
    "work with centres and sizes: tx = (x - xa) / wa, ty = (y - ya) / ha, "
    "tw = log(w / wa), th = log(h / ha), where (x, y) is a box's centre and "
    "(xa, ya, wa, ha) the anchor's; decoding inverts each formula"
)

_BOX_ENCODE_VARIANTS = {
    "corners": "you offset the top-left corners: the deltas are between the CENTRES",
    "by box size": "divide the centre offset by the ANCHOR's width and height, not "
    "the box's: decoding only knows the anchor",
    "no log": "tw and th are logarithms of the size ratios (a ratio of 1 gives 0, "
    "and decoding with exp can never give a negative size)",
    "xy swapped": "the order is (tx, ty, tw, th): x before y",
}

_BOX_DECODE_VARIANTS = {
    "no exp": "tw is a logarithm: the width is wa * exp(tw)",
    "corner centre": "the offset moves the anchor's CENTRE: cx = xa + tx * wa with "
    "xa the anchor's centre",
    "half size": "the box reaches half its width either side of its centre",
}


def _check_box_code(name, case, fn, anchors, given, want, what, results, hints,
                    atol) -> None:
    """One call of encode or decode: a float (A, 4) array close to ``want``; a
    result equal to a candidate mistake's (in ``results``) gets that hint."""
    got = call_learner(name, case, fn, anchors.copy(), given.copy(), hint=_CODE_HINT)
    assert_not_none(got, name, case, what)
    assert_type(got, np.ndarray, name, case, what,
                "return a float NumPy array of shape (A, 4)")
    hint = None
    if got.shape == want.shape:
        hint = next((hints[v] for v, r in results.items()
                     if not np.allclose(r, want, atol=1e-9)
                     and np.allclose(got, r, rtol=1e-5, atol=atol)), None)
    assert_array_close(got, want, name, case, rtol=1e-5, atol=atol, what=what,
                       hint=hint or _CODE_HINT)


def check_encode_decode(encode, decode) -> None:
    """``encode(anchors, boxes)`` -> (A, 4) deltas; ``decode(anchors, deltas)``
    -> (A, 4) boxes; decode(anchors, encode(anchors, boxes)) gives the boxes."""
    name = "check_encode_decode"
    rng = np.random.default_rng(32)
    anchors = np.array([[0, 0, 8, 8], [8, 0, 24, 8], [4, 4, 12, 20], [0, 0, 8, 8.0]])
    boxes = np.array([[1, 2, 9, 8], [6, 1, 22, 11], [4, 4, 12, 20], [2, 2, 4, 4.0]])
    rand_a = _random_boxes(rng, 20, 0, 40, 4, 16).astype(np.float64)
    rand_b = rand_a + rng.normal(0, 1.5, size=(20, 4))
    rand_b[:, 2:] = np.maximum(rand_b[:, 2:], rand_b[:, :2] + 1)
    cases = {
        "four anchors and boxes (one identical, one inside)": (anchors, boxes),
        "twenty random pairs": (rand_a, rand_b),
        "no anchors": (np.zeros((0, 4)), np.zeros((0, 4))),
    }
    for case, (a, b) in cases.items():
        deltas = _encode_by_loops(a, b)
        _check_box_code(name, case, encode, a, b, deltas, "encode's deltas",
                        {v: _encode_by_loops(a, b, v) for v in _BOX_ENCODE_VARIANTS},
                        _BOX_ENCODE_VARIANTS, atol=1e-6)
        # decode gets the reference deltas, so a wrong encode is not counted twice
        _check_box_code(name, case, decode, a, deltas, b,
                        "decode(anchors, encode(anchors, boxes))",
                        {v: _decode_by_loops_anchor(a, deltas, v)
                         for v in _BOX_DECODE_VARIANTS},
                        _BOX_DECODE_VARIANTS, atol=1e-5)
    zero = call_learner(name, "zero deltas", decode, anchors.copy(),
                        np.zeros((4, 4)), hint=_CODE_HINT)
    assert_not_none(zero, name, "zero deltas", "decode's boxes")
    assert_array_close(zero, anchors, name, "zero deltas", rtol=1e-6, atol=1e-6,
                       what="decode(anchors, zeros)",
                       hint="deltas of zero mean 'the anchor itself'")
    passed(name, len(cases) + 1)
