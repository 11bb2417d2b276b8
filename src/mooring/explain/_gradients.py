"""Integrated gradients in TensorFlow: one function for a traced signature and eager use.

Integrated gradients attribute ``f(x) - f(b)`` to the parts of ``x`` by integrating
the gradient of ``f`` along the straight path from the baseline ``b`` to ``x``:
``a_k = (x_k - b_k) · ∫₀¹ ∂f/∂x_k(b + t(x - b)) dt``. The integral is the trapezoidal
rule over ``steps`` intervals, so ``Σ a_k`` equals ``f(x) - f(b)`` up to the rule's error
(:data:`TOLERANCE` with the default :data:`STEPS` for mooring's networks).

All ``steps + 1`` points of every row are evaluated in one batch of
``(steps + 1) · n`` rows, so callers keep ``n`` modest (:data:`CHUNK_ROWS`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

__all__ = [
    "CHUNK_ROWS",
    "PATH_ROWS",
    "REFERENCE_ROWS",
    "REFERENCE_STEPS",
    "STEPS",
    "TOLERANCE",
    "integrated_gradients",
]

#: Trapezoidal intervals along the path (65 evaluations per row).
STEPS = 64
#: Completeness holds within this, in the explained output's unit, for mooring's networks.
TOLERANCE = 0.01
#: Rows in an explanation's background (a seeded sample of the training rows, or of the
#: data an imported model was given): 32 rows × 33 points is 1,056 evaluations per
#: explained row; its agreement with KernelSHAP on the same background and its cost are
#: measured in benchmarks/bench_attributions.py.
REFERENCE_ROWS = 32
#: Trapezoidal intervals along each reference row's path. The rule's error does not
#: average out over the references (a ReLU network's gradient jumps along every path):
#: on scikit-learn's diabetes regression 16 steps missed completeness by 1.10 (its
#: tolerance 0.75, 0.01 × the label's standard deviation), 32 by 0.47.
REFERENCE_STEPS = 32
#: Rows explained per call, bounding the path batch at ``(STEPS + 1) · CHUNK_ROWS`` rows.
CHUNK_ROWS = 256
#: Path points one call evaluates at most, when each row walks several paths (one from
#: each reference row): a call explains ``PATH_ROWS // points per row`` rows.
PATH_ROWS = 16_384


def integrated_gradients(
    fn: Callable[[dict[str, Any]], Any],
    x: Mapping[str, Any],
    baseline: Mapping[str, Any],
    steps: int = STEPS,
) -> tuple[dict[str, Any], list[str], tuple[Any, Any]]:
    """Each part's attribution ``[n]`` (summed over its inner axes) of ``fn(x) - fn(baseline)``.

    ``x`` maps names to float32 tensors ``[n, ...]``; ``baseline`` to tensors that
    broadcast to them (e.g. ``[1, ...]``); ``fn`` maps such a dict (any number of rows)
    to ``[rows]`` float32. Also returns the names whose gradient TensorFlow could not
    compute (no differentiable path from that input; their attribution is 0), and
    ``(fn(baseline), fn(x))`` ``[n]`` each: the path's two ends, evaluated with it.

    Examples:
        >>> import tensorflow as tf
        >>> f = lambda p: tf.reduce_sum(p["a"] ** 2, axis=1)
        >>> x, b = {"a": tf.constant([[3.0]])}, {"a": tf.zeros([1, 1])}
        >>> a, _, ends = integrated_gradients(f, x, b)
        >>> round(float(a["a"][0]), 3)
        9.0
    """
    from mooring._tensorflow import import_tensorflow

    tf = import_tensorflow()
    names = list(x)
    points = steps + 1
    alphas = tf.linspace(0.0, 1.0, points)
    rows = tf.shape(x[names[0]])[0]
    diffs, path = {}, {}
    for name in names:
        value = tf.convert_to_tensor(x[name], tf.float32)
        base = tf.broadcast_to(tf.cast(baseline[name], tf.float32), tf.shape(value))
        diffs[name] = value - base
        alpha = tf.reshape(alphas, [points] + [1] * value.shape.rank)
        stacked = base[tf.newaxis] + alpha * diffs[name][tf.newaxis]
        path[name] = tf.reshape(stacked, tf.concat([[-1], tf.shape(value)[1:]], 0))
    with tf.GradientTape() as tape:
        tape.watch(list(path.values()))
        out = fn(path)
    grads = tape.gradient(out, path)
    weights = tf.concat([[0.5], tf.ones([points - 2]), [0.5]], 0) / float(steps)
    attributions, blocked = {}, []
    for name in names:
        grad = grads[name]
        if grad is None:
            blocked.append(name)
            attributions[name] = tf.zeros([rows], tf.float32)
            continue
        grad = tf.reshape(grad, tf.concat([[points, rows], tf.shape(diffs[name])[1:]], 0))
        average = tf.tensordot(weights, grad, axes=1)
        inner = list(range(1, diffs[name].shape.rank))
        attributions[name] = (
            tf.reduce_sum(diffs[name] * average, axis=inner) if inner else diffs[name] * average
        )
    ends = tf.reshape(tf.cast(out, tf.float32), [points, rows])
    return attributions, blocked, (ends[0], ends[-1])
