"""Data the course can use offline: scikit-learn's digits, and generators."""

from __future__ import annotations

__all__ = ["load_digits_split", "stratified_holdout", "course_model_split"]

#: The share of the training split that the course model holds out for validation.
COURSE_VAL_FRACTION = 0.1


def load_digits_split(test_size: float = 0.2, seed: int = 0):
    """scikit-learn's 1,797 8×8 digit images, split with a fixed seed, stratified.

    Returns ``X_train, X_test, y_train, y_test``: images as float32 in [0, 1] with shape
    (n, 8, 8) and labels as int64.
    """
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    X = (digits.images / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    return train_test_split(X, y, test_size=test_size, random_state=seed, stratify=y)


def stratified_holdout(y, fraction: float, rng):
    """Indices ``(train, val)`` of labels ``y``: ``fraction`` of every class goes to
    validation, drawn with the NumPy generator ``rng``."""
    import numpy as np

    val = []
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        rng.shuffle(members)
        val.extend(members[: max(1, round(fraction * len(members)))])
    val = np.sort(np.array(val))
    train = np.setdiff1d(np.arange(len(y)), val)
    return train, val


def course_model_split(seed: int = 0):
    """The data exactly as ``tools/train_course_model.py`` used it (default seed).

    Returns ``X_fit, X_val, X_test, y_fit, y_val, y_test``: the images the course
    model was trained on, the validation images that chose its epoch (the ones to
    review mistakes on), and the test split, used once to report accuracy.
    """
    import numpy as np

    X_train, X_test, y_train, y_test = load_digits_split()
    fit, val = stratified_holdout(y_train, COURSE_VAL_FRACTION,
                                  np.random.default_rng(seed))
    return X_train[fit], X_train[val], X_test, y_train[fit], y_train[val], y_test
