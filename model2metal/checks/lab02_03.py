"""Checks for lab 02_03 "Detection essentials": IoU, NMS, mAP, heatmap decoding.

Conventions the lab states and these checks hold it to:

* a box is ``(x1, y1, x2, y2)`` in pixel-edge coordinates, area ``(x2-x1)·(y2-y1)``
  (no "+1"); a box of zero area is legal and its IoU with anything is 0, never NaN;
* NMS suppresses a box when its IoU with a kept box is strictly greater than the
  threshold; kept indices come sorted by descending score, equal scores lower index
  first; ``batched_nms`` never lets boxes of different classes suppress each other;
* AP is the area under the all-point interpolated (monotone envelope) precision-recall
  curve (PASCAL VOC 2010+); mAP@0.5 matches detections greedily by descending score,
  each ground-truth box at most once, IoU ≥ threshold; classes without ground truth
  are left out of the mean;
* heatmap decoding keeps local maxima (equal to their 3×3 max-pooled value) with a
  score above ``threshold``, the top ``k`` over all classes; cell ``(y, x)`` has its
  centre at ``((x + 0.5)·stride, (y + 0.5)·stride)`` and ``wh = (width, height)`` is
  in output cells.

Every reference here is written with explicit loops, independently of the vectorised
way the lab asks for.
"""

from __future__ import annotations

import math

import numpy as np

from .core import (
    CheckFailed,
    assert_array_close,
    assert_true,
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


def _iou_by_loops(a, b) -> np.ndarray:
    out = np.zeros((len(a), len(b)))
    for i in range(len(a)):
        for j in range(len(b)):
            out[i, j] = _iou_one(a[i], b[j])
    return out


def _order(scores) -> list[int]:
    """Indices by descending score, equal scores lower index first."""
    return sorted(range(len(scores)), key=lambda i: (-float(scores[i]), i))


def _nms_by_loops(boxes, scores, thr) -> list[int]:
    suppressed = [False] * len(scores)
    keep = []
    for i in _order(scores):
        if suppressed[i]:
            continue
        keep.append(i)
        for j in range(len(scores)):
            if not suppressed[j] and j != i and _iou_one(boxes[i], boxes[j]) > thr:
                suppressed[j] = True
    return keep


def _batched_nms_by_loops(boxes, scores, classes, thr) -> list[int]:
    keep = []
    for c in sorted(set(int(v) for v in classes)):
        idx = [i for i in range(len(classes)) if int(classes[i]) == c]
        sub = _nms_by_loops([boxes[i] for i in idx], [scores[i] for i in idx], thr)
        keep += [idx[k] for k in sub]
    return sorted(keep, key=lambda i: (-float(scores[i]), i))


def _ap_by_loops(recall, precision) -> float:
    ap, prev = 0.0, 0.0
    for i in range(len(recall)):
        if recall[i] > prev:
            ap += (recall[i] - prev) * max(float(p) for p in precision[i:])
            prev = float(recall[i])
    return ap


def _map_by_loops(predictions, ground_truths, num_classes, iou_threshold=0.5):
    aps = []
    for c in range(num_classes):
        gts = [
            [b for b, lab in zip(bx, lb) if int(lab) == c] for bx, lb in ground_truths
        ]
        n_gt = sum(len(g) for g in gts)
        if n_gt == 0:
            continue
        dets = []
        for img, (bx, sc, lb) in enumerate(predictions):
            for b, s, lab in zip(bx, sc, lb):
                if int(lab) == c:
                    dets.append((float(s), len(dets), img, b))
        dets.sort(key=lambda d: (-d[0], d[1]))
        used = [[False] * len(g) for g in gts]
        tp = 0
        recall, precision = [], []
        for rank, (_, _, img, b) in enumerate(dets, start=1):
            best, best_j = -1.0, -1
            for j, g in enumerate(gts[img]):
                iou = _iou_one(b, g)
                if not used[img][j] and iou > best:
                    best, best_j = iou, j
            if best_j >= 0 and best >= iou_threshold:
                used[img][best_j] = True
                tp += 1
            recall.append(tp / n_gt)
            precision.append(tp / rank)
        aps.append(_ap_by_loops(recall, precision))
    return float(np.mean(aps)) if aps else 0.0


def _decode_by_loops(heat, wh, k, stride, threshold):
    C, H, W = heat.shape
    found = []
    for c in range(C):
        for y in range(H):
            for x in range(W):
                v = heat[c, y, x]
                window = heat[c, max(y - 1, 0) : y + 2, max(x - 1, 0) : x + 2]
                if v > threshold and v >= window.max():
                    found.append((float(v), c, y, x))
    found.sort(key=lambda t: -t[0])
    out = []
    for s, c, y, x in found[:k]:
        w, h = float(wh[0, y, x]), float(wh[1, y, x])
        cx, cy = x + 0.5, y + 0.5
        box = [(cx - w / 2) * stride, (cy - h / 2) * stride,
               (cx + w / 2) * stride, (cy + h / 2) * stride]
        out.append((c, box, s))
    return out


def _sigma(w: float, h: float) -> float:
    """The Gaussian's standard deviation in output cells (the lab's gaussian_sigma)."""
    return max(0.5, min(w, h) / 6)


def _targets_by_loops(boxes, labels, num_classes, out_h, out_w, stride):
    heat = np.zeros((num_classes, out_h, out_w))
    wh = np.zeros((2, out_h, out_w))
    mask = np.zeros((out_h, out_w))
    for (x1, y1, x2, y2), c in zip(boxes, labels):
        w, h = (x2 - x1) / stride, (y2 - y1) / stride
        cx = min(int(math.floor((x1 + x2) / 2 / stride)), out_w - 1)
        cy = min(int(math.floor((y1 + y2) / 2 / stride)), out_h - 1)
        s = _sigma(w, h)
        for y in range(out_h):
            for x in range(out_w):
                g = math.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * s * s))
                heat[int(c), y, x] = max(heat[int(c), y, x], g)
        wh[:, cy, cx] = (w, h)
        mask[cy, cx] = 1.0
    return heat, wh, mask


def _random_boxes(rng, n, lo=0.0, hi=30.0, min_side=1.0, max_side=12.0):
    xy = rng.uniform(lo, hi, size=(n, 2))
    side = rng.uniform(min_side, max_side, size=(n, 2))
    return np.concatenate([xy, xy + side], axis=1)


# ---------------------------------------------------------------------------
# 1. areas and IoU
# ---------------------------------------------------------------------------


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
        "no boxes, shape (0, 4)": np.zeros((0, 4)),
    }
    for case, boxes in cases.items():
        got = call_learner(name, case, fn, boxes.copy())
        expected = np.array(
            [(b[2] - b[0]) * (b[3] - b[1]) for b in boxes.astype(np.float64)]
        )
        assert_array_close(
            got,
            expected,
            name,
            case,
            rtol=1e-5,
            atol=1e-5,
            what="areas",
            hint="area = (x2 - x1) * (y2 - y1) per row: no +1, one value per box",
        )
    passed(name, len(cases))


def check_pairwise_iou(fn) -> None:
    """``fn(a, b)``: (N, M) IoU of every box of ``a`` (N, 4) with every box of ``b``."""
    name = "check_pairwise_iou"
    rng = np.random.default_rng(21)
    same = _random_boxes(rng, 3)
    cases = {
        "3 random boxes against 4": (_random_boxes(rng, 3), _random_boxes(rng, 4)),
        "disjoint boxes, one above-left of the other": (
            np.array([[0.0, 0.0, 1.0, 1.0]]),
            np.array([[2.0, 2.0, 3.0, 3.0]]),
        ),
        "disjoint in x, overlapping in y": (
            np.array([[0.0, 0.0, 2.0, 2.0]]),
            np.array([[3.0, 0.0, 5.0, 2.0], [1.0, 1.0, 3.0, 3.0]]),
        ),
        "boxes that only touch along an edge": (
            np.array([[0.0, 0.0, 2.0, 2.0]]),
            np.array([[2.0, 0.0, 4.0, 2.0]]),
        ),
        "a set against itself (diagonal is 1)": (same, same.copy()),
        "one box inside another": (
            np.array([[0.0, 0.0, 4.0, 4.0]]),
            np.array([[1.0, 1.0, 3.0, 3.0]]),
        ),
        "zero-area boxes (union can be 0)": (
            np.array([[1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 2.0]]),
            np.array([[1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 2.0, 2.0], [5, 5, 6, 6.0]]),
        ),
        "no boxes in a, shape (0, 4) against 3": (np.zeros((0, 4)), same.copy()),
        "3 boxes against no boxes": (same.copy(), np.zeros((0, 4))),
        "float32, 6 against 2": (
            _random_boxes(rng, 6).astype(np.float32),
            _random_boxes(rng, 2).astype(np.float32),
        ),
    }
    for case, (a, b) in cases.items():
        got = call_learner(name, case, fn, a.copy(), b.copy())
        assert_array_close(
            got,
            _iou_by_loops(a, b),
            name,
            case,
            rtol=1e-5,
            atol=1e-6,
            what="IoU matrix",
            hint="intersection width = max(0, min(x2) - max(x1)) (clamp BEFORE "
            "multiplying: two negative overlaps make a positive product); "
            "IoU = inter / union, and 0 where the union is 0",
        )
    passed(name, len(cases))


# ---------------------------------------------------------------------------
# 2. NMS
# ---------------------------------------------------------------------------


def _as_index_list(got, name, case):
    arr = np.asarray(got) if got is not None else None
    assert_true(
        arr is not None and arr.ndim == 1 and (arr.size == 0 or arr.dtype.kind in "iu"),
        name,
        case,
        f"expected a 1-D array of integer indices, got {describe(got)}",
        "return np.array(keep, dtype=np.int64)",
    )
    return [int(v) for v in arr]


_NMS_HINT = (
    "visit boxes by descending score (np.argsort(-scores, kind='stable') keeps the "
    "lower index first on ties); keep the best remaining box, then drop every "
    "remaining box whose IoU with IT is > iou_threshold; repeat"
)


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
        got = call_learner(name, case, fn, boxes.copy(), scores.copy(), thr)
        keep = _as_index_list(got, name, case)
        expected = _nms_by_loops(boxes, scores, thr)
        if keep != expected:
            problem = f"kept indices: expected {expected}, got {keep}"
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
            raise CheckFailed(name, case, problem, _NMS_HINT)
    passed(name, len(cases))


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
        got = call_learner(
            name, case, fn, boxes.copy(), scores.copy(), classes.copy(), thr
        )
        keep = _as_index_list(got, name, case)
        expected = _batched_nms_by_loops(boxes, scores, classes, thr)
        if keep != expected:
            problem = f"kept indices: expected {expected}, got {keep}"
            hint = (
                "boxes of different classes must never suppress each other: run "
                "nms per class (or shift each class's boxes far apart), then sort "
                "all kept indices by descending score"
            )
            if set(keep) < set(expected):
                missing = sorted(set(expected) - set(keep))
                problem += f"\nmissing {missing}: suppressed by a box of another class?"
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
        got = call_learner(name, case, fn, recall.copy(), precision.copy())
        assert_true(
            isinstance(got, (float, int, np.floating, np.integer))
            or (np.ndim(got) == 0 and got is not None),
            name,
            case,
            f"expected a number, got {describe(got)}",
            "return a float",
        )
        assert_array_close(
            np.float64(got),
            np.float64(_ap_by_loops(recall, precision)),
            name,
            case,
            rtol=1e-9,
            atol=1e-9,
            what="AP",
            hint="make precision monotone first (p[i] = max(p[i:]), scanning from "
            "the end), then sum (r[i] - r[i-1]) * p[i] over the points where recall "
            "grows, starting from recall 0",
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


def check_map_at_50(fn) -> None:
    """``fn(predictions, ground_truths, num_classes, iou_threshold=0.5)`` → mAP."""
    name = "check_map_at_50"
    cases = _map_cases(np.random.default_rng(25))
    for case, (preds, gts, num_classes, kw) in cases.items():
        got = call_learner(
            name,
            case,
            fn,
            [tuple(a.copy() for a in p) for p in preds],
            [tuple(a.copy() for a in g) for g in gts],
            num_classes,
            **kw,
        )
        assert_true(
            got is not None and np.ndim(got) == 0,
            name,
            case,
            f"expected one number (the mAP), got {describe(got)}",
            "return the mean of the per-class APs as a float",
        )
        expected = _map_by_loops(preds, gts, num_classes, **kw)
        assert_array_close(
            np.float64(got),
            np.float64(expected),
            name,
            case,
            rtol=1e-6,
            atol=1e-6,
            what="mAP",
            hint="per class: rank all detections of all images by score; a "
            "detection is a true positive if its IoU with a not-yet-matched ground "
            "truth box of the same class in the SAME image is >= iou_threshold "
            "(a second detection of a matched box is a false positive); leave "
            "classes without ground truth out of the mean",
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
        "random scores, 3 classes, stride 4": (noisy, wh_rand, dict(k=8, stride=4)),
    }


def _as_detections(got, name, case):
    ok = isinstance(got, (tuple, list)) and len(got) == 3
    assert_true(
        ok,
        name,
        case,
        f"expected a tuple (boxes, scores, classes), got {describe(got)}",
        "return boxes, scores, classes",
    )
    boxes, scores, classes = (np.asarray(v) for v in got)
    n = scores.shape[0] if scores.ndim == 1 else -1
    assert_true(
        n >= 0 and boxes.shape == (n, 4) and classes.shape == (n,),
        name,
        case,
        f"expected boxes (n, 4), scores (n,), classes (n,), got shapes "
        f"{boxes.shape}, {scores.shape}, {classes.shape}",
        "one row per detection",
    )
    return boxes.astype(np.float64), scores.astype(np.float64), classes


def check_decode_heatmap(fn) -> None:
    """``fn(heatmap, wh, k, stride=, threshold=)`` → (boxes, scores, classes)."""
    name = "check_decode_heatmap"
    cases = _decode_cases(np.random.default_rng(26))
    hint = (
        "a peak is a cell equal to the max of its 3x3 neighbourhood (pad the border "
        "with -inf) with score > threshold; take the top k over all classes; cell "
        "(y, x) has centre ((x + 0.5) * stride, (y + 0.5) * stride); wh[0] is the "
        "width and wh[1] the height, in cells"
    )
    for case, (heat, wh, kw) in cases.items():
        kw = {"threshold": 0.0, **kw}
        got = call_learner(name, case, fn, heat.copy(), wh.copy(), **kw)
        boxes, scores, classes = _as_detections(got, name, case)
        expected = _decode_by_loops(heat, wh, kw["k"], kw["stride"], kw["threshold"])
        if len(scores) != len(expected):
            raise CheckFailed(
                name,
                case,
                f"expected {len(expected)} detections, got {len(scores)}",
                hint,
            )
        assert_true(
            bool(np.all(np.diff(scores) <= 0)),
            name,
            case,
            f"scores must come in descending order, got {describe(scores)}",
            "sort the peaks by score, highest first",
        )
        assert_true(
            classes.size == 0 or classes.dtype.kind in "iu",
            name,
            case,
            f"classes must be integers, got dtype {classes.dtype}",
        )
        # equal scores may come in any order: compare sorted copies
        mine = sorted(
            (-s, int(c), *np.round(b, 4)) for b, s, c in zip(boxes, scores, classes)
        )
        ref = sorted((-s, c, *np.round(b, 4)) for c, b, s in expected)
        assert_array_close(
            np.array(mine).reshape(-1, 6),
            np.array(ref).reshape(-1, 6),
            name,
            case,
            rtol=1e-5,
            atol=1e-4,
            what="detections as rows (-score, class, x1, y1, x2, y2), sorted",
            hint=hint,
        )
    passed(name, len(cases))


# ---------------------------------------------------------------------------
# 5. training targets
# ---------------------------------------------------------------------------


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
    hint = (
        "centre cell = floor(box centre / stride), clipped to the grid; heat[c] is "
        "the element-wise MAX of exp(-((x-cx)^2 + (y-cy)^2) / (2 sigma^2)) over the "
        "objects of class c, sigma = gaussian_sigma(w, h); wh[:, cy, cx] = (width, "
        "height) / stride; mask[cy, cx] = 1"
    )
    for case, (boxes, labels, C, oh, ow, stride) in cases.items():
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        labels = np.asarray(labels, dtype=np.int64)
        got = call_learner(
            name, case, fn, boxes.copy(), labels.copy(), C, oh, ow, stride
        )
        ok = isinstance(got, (tuple, list)) and len(got) == 3
        assert_true(
            ok, name, case, f"expected (heat, wh, mask), got {describe(got)}",
            "return heat, wh, mask",
        )
        heat, wh, mask = _targets_by_loops(boxes, labels, C, oh, ow, stride)
        assert_array_close(
            got[2], mask, name, case, atol=1e-6, what="mask", hint=hint
        )
        assert_array_close(
            got[0], heat, name, case, rtol=1e-4, atol=1e-5, dtype=np.float32,
            what="heat", hint=hint,
        )
        assert_array_close(
            np.asarray(got[1]) * mask, wh, name, case, rtol=1e-5, atol=1e-5,
            what="wh at the centre cells", hint=hint,
        )
    passed(name, len(cases))
