"""The linear baseline solved to its optimum on the encoded features, not stepped.

``kind = "linear"`` is logistic regression (binary), multinomial logistic regression
(multiclass) or ridge regression on the standardised target, over the model's own
preprocessing layers. Its objective is convex, so instead of a step budget it is solved:

* regression: the ridge normal equations ``(XᵀWX + λM) θ = XᵀWy`` in one pass;
* classification: Newton's method (iteratively reweighted least squares), one pass over
  the rows per iteration, each accumulating the loss, gradient and Hessian, stopped when
  the Newton decrement says the loss is within 1e-10 (relative) of its minimum — five to
  ten passes on most tables; a step that raises the loss is halved.

``X`` is the encoded features (what the head's dense layer sees) plus an intercept
column; an embedded category (``embedding``, ``hashing``, an embedded cross) is one-hot
over its index, since a linear model's embedding only ever carries one weight per value
(per class). ``λ = 1`` on the summed loss, intercepts unpenalised — scikit-learn's
``LogisticRegression(C=1)`` and ``Ridge(alpha=1)`` defaults, so the two agree on the same
encoded matrix. Every labelled training row is fitted, validation rows included: a
convex fit has nothing to stop early.

Memory and data size: the sums ``XᵀWX``, ``XᵀWr`` are accumulated batch by batch over
the training data (in memory or streamed from Parquet, :class:`TrainingData.labelled`),
so the rows are never materialised beyond one batch unless the encoded matrix fits in
half of ``[model] memory_limit_mb`` (then it is kept between passes). Newton's Hessian
is ``P × P`` for ``P`` = (encoded columns + 1) × (classes, or 1), and one pass costs
``rows × P²`` operations: up to :data:`NEWTON_MAX_PARAMETERS` that is seconds. Wider
designs (large one-hot vocabularies, embedded categories of thousands of values) are fitted
by L-BFGS, whose pass costs ``rows × P``, up to :data:`LBFGS_MAX_PARAMETERS`; beyond that
(a large hashed column) training steps the model like a network and says so.

The fitted weights are set into the head's ``Dense`` layer (and the embeddings), so the
model exports as ONE SavedModel with the same signatures as any network.

Examples:
    >>> fit = fit_linear(model, data, label, weights=None)  # doctest: +SKIP
    >>> fit.method, fit.converged  # doctest: +SKIP
    ('newton', True)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from mooring.errors import ConfigError
from mooring.features._layers import block_name, functional_model
from mooring.training._labels import LabelEncoding
from mooring.training._pipeline import TrainingData

__all__ = [
    "L2",
    "LBFGS_MAX_PARAMETERS",
    "MAX_ITERATIONS",
    "NEWTON_MAX_PARAMETERS",
    "LinearFit",
    "design_matrix",
    "fit_linear",
    "linear_parameters",
]

#: The L2 penalty on the summed loss (intercepts unpenalised): scikit-learn's defaults.
L2 = 1.0
#: Newton iterations (passes over the rows) at most; a logistic fit takes 5–10.
MAX_ITERATIONS = 50
#: Parameters (encoded columns + 1, times the classes of a multiclass label) at most: the
#: Hessian holds P² float64 (32 MiB at 2,048) and one pass costs rows × P² operations.
NEWTON_MAX_PARAMETERS = 2048
#: Parameters at most for L-BFGS (one pass costs rows × P operations; a batch holds
#: BATCH_VALUES encoded values); wider designs are refused.
LBFGS_MAX_PARAMETERS = 1 << 16
#: Passes over the rows at most for L-BFGS, and the correction pairs it keeps.
LBFGS_MAX_PASSES, LBFGS_MEMORY = 500, 10
#: Stop when the Newton decrement's estimate of the loss above its minimum is below this
#: share of the loss.
TOLERANCE = 1e-10
#: Encoded values held at most per batch (float64): bounds one batch's memory to 32 MiB.
BATCH_VALUES = 1 << 22


@dataclass
class LinearFit:
    """What the fit did: one history entry per pass, and whether it converged."""

    method: str
    parameters: int
    rows: int
    iterations: int
    converged: bool
    history: list[dict[str, float]]
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The fit as the training record keeps it (``run.json``'s ``linear_fit``).

        Examples:
            >>> LinearFit("newton", 22, 600, 7, True, []).to_dict()["l2"]
            1.0
        """
        return {
            "method": self.method,
            "l2": L2,
            "parameters": self.parameters,
            "rows": self.rows,
            "iterations": self.iterations,
            "converged": self.converged,
        }


@dataclass
class _Block:
    """One encoded block of the head's input: its design columns and its kernel rows."""

    name: str
    width: int  # columns of X (the one-hot size of an embedded index)
    rows: int  # rows of the head's kernel it feeds (the embedding's dim, or width)
    embedding: Any = None  # the Embedding layer whose index is one-hot encoded


def _blocks(model: keras.Model) -> tuple[keras.Model, list[_Block]]:
    """A model from the raw inputs to each block's design values, and the blocks."""
    outputs: list[Any] = []
    blocks: list[_Block] = []
    index = 0
    while True:
        try:
            marker = model.get_layer(block_name(index))
        except ValueError:
            break
        tensor = marker.input
        source = tensor._keras_history.operation
        if isinstance(source, layers.Embedding):
            outputs.append(source.input)
            blocks.append(
                _Block(marker.name, int(source.input_dim), int(source.output_dim), source)
            )
        else:
            width = int(tensor.shape[-1])
            outputs.append(tensor)
            blocks.append(_Block(marker.name, width, width))
        index += 1
    design = functional_model(model.input, outputs, name="mooring_linear_design")
    return design, blocks


def _encoder(
    model: keras.Model,
) -> tuple[Callable[[dict[str, Any]], np.ndarray[Any, Any]], list[_Block]]:
    design, blocks = _blocks(model)

    @tf.function(reduce_retracing=True)  # type: ignore[untyped-decorator]
    def run(x: dict[str, Any]) -> Any:
        return design(x, training=False)

    def encode(columns: dict[str, Any]) -> np.ndarray[Any, Any]:
        outs = run({k: tf.constant(v) for k, v in columns.items()})
        if not isinstance(outs, list | tuple):
            outs = [outs]
        n = len(next(iter(columns.values())))
        parts: list[np.ndarray[Any, Any]] = []
        for block, out in zip(blocks, outs, strict=True):
            values = np.asarray(out)
            if block.embedding is None:
                parts.append(values.astype(np.float64).reshape(n, block.width))
            else:
                onehot = np.zeros((n, block.width))
                onehot[np.arange(n), values.reshape(-1).astype(np.int64)] = 1.0
                parts.append(onehot)
        parts.append(np.ones((n, 1)))
        return np.concatenate(parts, axis=1)

    return encode, blocks


def design_matrix(model: keras.Model, columns: dict[str, Any]) -> np.ndarray[Any, Any]:
    """The encoded features the linear fit sees for ``columns`` (raw arrays by feature name),
    with the intercept's column of ones last — what a reference fit should be given.

    Examples:
        >>> x = design_matrix(model, columns_from_table(table, spec))  # doctest: +SKIP
        >>> x[:, -1].min()  # doctest: +SKIP
        1.0
    """
    encode, _ = _encoder(model)
    return encode(columns)


class _Passes:
    """Passes over every labelled training row as ``(X, y, w)`` batches, kept in memory
    when they fit in ``cache_bytes``."""

    def __init__(
        self,
        data: TrainingData,
        encode: Callable[[dict[str, Any]], np.ndarray[Any, Any]],
        width: int,
        label: LabelEncoding,
        weights: np.ndarray[Any, Any] | None,
        cache_bytes: float,
    ) -> None:
        self.data, self.encode, self.label, self.weights = data, encode, label, weights
        self.batch = max(1, BATCH_VALUES // width)
        self.width = width
        self.cache_bytes = cache_bytes
        self.cache: list[tuple[Any, Any, Any]] | None = None
        self.rows = 0

    def __iter__(self) -> Iterator[tuple[Any, Any, Any]]:
        if self.cache is not None:
            yield from self.cache
            return
        kept: list[tuple[Any, Any, Any]] | None = []
        held, rows = 0, 0
        for columns, targets in self.data.labelled():
            n = len(targets)
            for start in range(0, n, self.batch):
                stop = min(n, start + self.batch)
                x = self.encode({k: v[start:stop] for k, v in columns.items()})
                y = targets[start:stop].reshape(-1)
                w = (
                    self.weights[y.astype(np.int64)]
                    if self.weights is not None and self.label.is_classification
                    else np.ones(len(y))
                )
                rows += len(y)
                item = (x, y, w.astype(np.float64))
                if kept is not None:
                    held += x.nbytes
                    if held <= self.cache_bytes:
                        kept.append(item)
                    else:
                        kept = None
                yield item
        self.rows = rows
        self.cache = kept


def _mask(width: int) -> np.ndarray[Any, Any]:
    """1 for penalised coefficients, 0 for the intercept (the last column)."""
    mask = np.ones(width)
    mask[-1] = 0.0
    return mask


def _solve(matrix: np.ndarray[Any, Any], vector: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """``matrix⁻¹ vector`` for a symmetric positive (semi-)definite matrix: Cholesky with a
    tiny ridge for the directions the penalty leaves flat (a multiclass intercept's shift)."""
    scale = max(float(np.mean(np.abs(np.diag(matrix)))), 1e-300)
    jitter = 1e-12 * scale
    for _ in range(8):
        try:
            factor = np.linalg.cholesky(matrix + jitter * np.eye(len(matrix)))
        except np.linalg.LinAlgError:
            jitter *= 100.0
            continue
        return np.linalg.solve(factor.T, np.linalg.solve(factor, vector))
    return np.linalg.lstsq(matrix, vector, rcond=None)[0]  # type: ignore[no-any-return]


def _ridge(passes: _Passes, d: int) -> tuple[np.ndarray[Any, Any], list[dict[str, float]]]:
    start, cpu = time.perf_counter(), time.process_time()
    gram = np.zeros((d, d))
    moment = np.zeros(d)
    total = squares = 0.0
    for x, y, w in passes:
        xw = x * w[:, None]
        gram += xw.T @ x
        moment += xw.T @ y
        squares += float(w @ (y * y))
        total += float(w.sum())
    theta = _solve(gram + L2 * np.diag(_mask(d)), moment)
    sse = squares - 2.0 * float(theta @ moment) + float(theta @ gram @ theta)
    entry = {
        "epoch": 1,
        "loss": max(0.0, sse) / max(total, 1e-300),
        "seconds": time.perf_counter() - start,
        "cpu_seconds": time.process_time() - cpu,
    }
    return theta.reshape(d, 1), [entry]


def _binary_pass(
    passes: _Passes, theta: np.ndarray[Any, Any], d: int
) -> tuple[float, float, np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    loss = total = 0.0
    grad = np.zeros(d)
    hess = np.zeros((d, d))
    for x, y, w in passes:
        z = x @ theta
        p = 0.5 * (1.0 + np.tanh(0.5 * z))  # the sigmoid, without overflow
        loss += float(w @ (np.logaddexp(0.0, z) - y * z))
        total += float(w.sum())
        grad += x.T @ (w * (p - y))
        hess += (x * (w * p * (1.0 - p))[:, None]).T @ x
    return loss, total, grad, hess


def _multiclass_pass(
    passes: _Passes, theta: np.ndarray[Any, Any], d: int, k: int
) -> tuple[float, float, np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Loss, weight total, gradient and Hessian of the softmax loss; parameters are ordered
    class by class (``theta[:, a]`` is block ``a``)."""
    loss = total = 0.0
    grad = np.zeros((d, k))
    hess = np.zeros((k * d, k * d))
    for x, y, w in passes:
        z = x @ theta
        top = z.max(axis=1, keepdims=True)
        exp = np.exp(z - top)
        norm = exp.sum(axis=1, keepdims=True)
        p = exp / norm
        index = y.astype(np.int64)
        rows = np.arange(len(index))
        loss += float(w @ (np.log(norm[:, 0]) + top[:, 0] - z[rows, index]))
        total += float(w.sum())
        residual = p.copy()
        residual[rows, index] -= 1.0
        grad += x.T @ (residual * w[:, None])
        for a in range(k):
            for b in range(a, k):
                coef = w * p[:, a] * ((1.0 if a == b else 0.0) - p[:, b])
                block = (x * coef[:, None]).T @ x
                hess[a * d : (a + 1) * d, b * d : (b + 1) * d] = (
                    hess[a * d : (a + 1) * d, b * d : (b + 1) * d] + block
                )
                if a != b:
                    hess[b * d : (b + 1) * d, a * d : (a + 1) * d] = hess[
                        a * d : (a + 1) * d, b * d : (b + 1) * d
                    ].T
    return loss, total, grad.T.reshape(-1), hess


def _newton(
    passes: _Passes,
    d: int,
    k: int,
    progress: Callable[[int, dict[str, float]], None],
) -> tuple[np.ndarray[Any, Any], list[dict[str, float]], bool]:
    """Minimise the penalised loss by damped Newton steps; ``k`` = 1 for a binary label."""
    mask = np.tile(_mask(d), k)
    theta = np.zeros(d * k)
    history: list[dict[str, float]] = []
    previous: tuple[np.ndarray[Any, Any], float, np.ndarray[Any, Any]] | None = None
    shrink = 1.0
    converged = False
    for iteration in range(1, MAX_ITERATIONS + 1):
        start, cpu = time.perf_counter(), time.process_time()
        if k == 1:
            loss, total, grad, hess = _binary_pass(passes, theta, d)
        else:
            loss, total, grad, hess = _multiclass_pass(passes, theta.reshape(k, d).T, d, k)
        objective = loss + 0.5 * L2 * float(mask @ (theta * theta))
        entry = {
            "epoch": iteration,
            "loss": loss / max(total, 1e-300),
            "seconds": time.perf_counter() - start,
            "cpu_seconds": time.process_time() - cpu,
        }
        history.append(entry)
        progress(iteration, entry)
        if previous is not None and objective > previous[1] * (1.0 + 1e-12):
            # The full step overshot: go back and take half of it.
            shrink *= 0.5
            theta = previous[0] - shrink * previous[2]
            continue
        grad = grad + L2 * mask * theta
        hess = hess + L2 * np.diag(mask)
        step = _solve(hess, grad)
        if 0.5 * float(grad @ step) <= TOLERANCE * max(1.0, abs(objective)):
            theta = theta - step
            converged = True
            break
        previous, shrink = (theta, objective, step), 1.0
        theta = theta - step
    return theta.reshape(k, d).T, history, converged


def _set_weights(
    model: keras.Model, blocks: Sequence[_Block], theta: np.ndarray[Any, Any]
) -> list[str]:
    """Put ``theta`` ([design columns + 1, units]) into the head (and embeddings)."""
    head = model.get_layer("head")
    kernel_shape = tuple(int(s) for s in head.kernel.shape)
    kernel = np.zeros(kernel_shape)
    notes: list[str] = []
    column = row = 0
    for block in blocks:
        coef = theta[column : column + block.width]
        if block.embedding is None:
            kernel[row : row + block.rows] = coef
        else:
            # A per-value weight (per class) as embedding × kernel: exact when the
            # embedding has at least as many dimensions as the head has units.
            left, values, right = np.linalg.svd(coef, full_matrices=False)
            rank = min(block.rows, len(values))
            table = np.zeros((block.width, block.rows))
            table[:, :rank] = left[:, :rank] * values[:rank]
            kernel[row : row + rank] = right[:rank]
            block.embedding.embeddings.assign(table.astype(np.float32))
            if rank < len(values) and values[rank] > 1e-6 * values[0]:
                notes.append(
                    f"linear: block {block.name} has {block.rows} embedding dimension(s) for "
                    f"{len(values)} classes; its per-value weights are kept at rank {rank}"
                )
        column += block.width
        row += block.rows
    if row != kernel_shape[0]:
        raise ConfigError(
            f"[model] kind = 'linear': the head sees {kernel_shape[0]} encoded columns but "
            f"the blocks give {row}; the linear body must concatenate the encoded blocks"
        )
    head.kernel.assign(kernel.astype(np.float32))
    head.bias.assign(theta[-1].astype(np.float32))
    return notes


def _first_order_pass(
    passes: _Passes, theta: np.ndarray[Any, Any], d: int, k: int, task: str
) -> tuple[float, float, float, np.ndarray[Any, Any]]:
    """Reported loss sum, weight total, objective's data term and its gradient (no Hessian)."""
    loss = total = term = 0.0
    grad = np.zeros((d, k))
    for x, y, w in passes:
        z = x @ theta
        total += float(w.sum())
        if task == "regression":
            residual = z - y[:, None]
            sq = float(w @ (residual[:, 0] ** 2))
            loss, term = loss + sq, term + 0.5 * sq
        elif task == "binary":
            p = 0.5 * (1.0 + np.tanh(0.5 * z[:, 0]))
            value = float(w @ (np.logaddexp(0.0, z[:, 0]) - y * z[:, 0]))
            loss, term = loss + value, term + value
            residual = (p - y)[:, None]
        else:
            top = z.max(axis=1, keepdims=True)
            exp = np.exp(z - top)
            norm = exp.sum(axis=1, keepdims=True)
            index = y.astype(np.int64)
            rows = np.arange(len(index))
            value = float(w @ (np.log(norm[:, 0]) + top[:, 0] - z[rows, index]))
            loss, term = loss + value, term + value
            residual = exp / norm
            residual[rows, index] -= 1.0
        grad += x.T @ (residual * w[:, None])
    return loss, total, term, grad.T.reshape(-1)


def _lbfgs(
    passes: _Passes,
    d: int,
    k: int,
    task: str,
    progress: Callable[[int, dict[str, float]], None],
) -> tuple[np.ndarray[Any, Any], list[dict[str, float]], bool]:
    """Minimise the penalised loss by L-BFGS (10 pairs) with a backtracking line search;
    one pass over the rows per evaluation, at most :data:`LBFGS_MAX_PASSES`."""
    mask = np.tile(_mask(d), k)
    history: list[dict[str, float]] = []

    def evaluate(theta: np.ndarray[Any, Any]) -> tuple[float, np.ndarray[Any, Any]]:
        start, cpu = time.perf_counter(), time.process_time()
        loss, total, term, grad = _first_order_pass(passes, theta.reshape(k, d).T, d, k, task)
        entry = {
            "epoch": len(history) + 1,
            "loss": loss / max(total, 1e-300),
            "seconds": time.perf_counter() - start,
            "cpu_seconds": time.process_time() - cpu,
        }
        history.append(entry)
        progress(len(history), entry)
        return term + 0.5 * L2 * float(mask @ (theta * theta)), grad + L2 * mask * theta

    theta = np.zeros(d * k)
    value, grad = evaluate(theta)
    pairs: list[tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], float]] = []
    while len(history) < LBFGS_MAX_PASSES:
        direction = grad.copy()
        alphas: list[float] = []
        for s, y, rho in reversed(pairs):
            alpha = rho * float(s @ direction)
            direction -= alpha * y
            alphas.append(alpha)
        if pairs:
            s, y, _ = pairs[-1]
            direction *= float(s @ y) / float(y @ y)
        else:
            direction /= max(float(np.linalg.norm(grad)), 1e-300)
        for (s, y, rho), alpha in zip(pairs, reversed(alphas), strict=True):
            direction += s * (alpha - rho * float(y @ direction))
        direction = -direction
        slope = float(grad @ direction)
        if slope >= 0.0:  # not a descent direction: start the memory again
            pairs, direction = [], -grad / max(float(np.linalg.norm(grad)), 1e-300)
            slope = float(grad @ direction)
        step = 1.0
        while True:
            candidate = theta + step * direction
            new_value, new_grad = evaluate(candidate)
            if new_value <= value + 1e-4 * step * slope or len(history) >= LBFGS_MAX_PASSES:
                break
            step *= 0.5
        s, y = candidate - theta, new_grad - grad
        if float(s @ y) > 1e-12 * float(y @ y):
            pairs = [*pairs[-(LBFGS_MEMORY - 1) :], (s, y, 1.0 / float(s @ y))]
        decrease = value - new_value
        theta, value, grad = candidate, new_value, new_grad
        if 0.0 <= decrease <= TOLERANCE * max(1.0, abs(value)):
            return theta.reshape(k, d).T, history, True
    return theta.reshape(k, d).T, history, False


def linear_parameters(model: keras.Model, label: LabelEncoding) -> int:
    """The parameters the linear fit solves for: (design columns + 1) × (classes, or 1).

    Examples:
        >>> linear_parameters(model, label)  # doctest: +SKIP
        121
    """
    _, blocks = _blocks(model)
    k = label.num_classes if label.task == "multiclass" else 1
    return (sum(b.width for b in blocks) + 1) * k


def fit_linear(
    model: keras.Model,
    data: TrainingData,
    label: LabelEncoding,
    *,
    weights: np.ndarray[Any, Any] | None,
    memory_limit_mb: float = 2048.0,
    callbacks: Sequence[Any] = (),
) -> LinearFit:
    """Fit the linear model's head to the optimum of its penalised loss on ``data``.

    Up to :data:`NEWTON_MAX_PARAMETERS` parameters by the normal equations (regression) or
    Newton's method (classification); up to :data:`LBFGS_MAX_PARAMETERS` by L-BFGS.
    ``weights`` are class weights (one per label value) or None; ``callbacks`` (Keras
    callbacks, e.g. a progress bar) see one epoch per pass over the rows.

    Raises:
        ConfigError: the encoded design has more than :data:`LBFGS_MAX_PARAMETERS`
            parameters (check :func:`linear_parameters` first).
    """
    encode, blocks = _encoder(model)
    d = sum(b.width for b in blocks) + 1
    k = label.num_classes if label.task == "multiclass" else 1
    if d * k > LBFGS_MAX_PARAMETERS:
        widest = sorted(blocks, key=lambda b: -b.width)[:3]
        raise ConfigError(
            f"[model] kind = 'linear' is fitted on the encoded features with at most "
            f"{LBFGS_MAX_PARAMETERS:,} parameters; these give {d * k:,} ({d - 1:,} encoded "
            "columns + intercept"
            + (f", x {k} classes" if k > 1 else "")
            + "), the widest: "
            + ", ".join(f"{b.name} ({b.width})" for b in widest)
            + "; give the wide columns fewer values ([features.<name>] max_tokens or bins) "
            "or exclude them"
        )
    passes = _Passes(data, encode, d, label, weights, memory_limit_mb * (1 << 20) / 2)
    for callback in callbacks:
        callback.set_model(model)
        callback.on_train_begin()

    def progress(iteration: int, entry: dict[str, float]) -> None:
        logs = {"loss": entry["loss"]}
        for callback in callbacks:
            callback.on_epoch_begin(iteration - 1)
            callback.on_train_batch_end(0, logs)
            callback.on_epoch_end(iteration - 1, logs)

    if d * k > NEWTON_MAX_PARAMETERS:
        theta, history, converged = _lbfgs(passes, d, k, label.task, progress)
        method = "lbfgs"
    elif label.task == "regression":
        theta, history = _ridge(passes, d)
        progress(1, history[0])
        method, converged = "normal_equations", True
    else:
        theta, history, converged = _newton(passes, d, k, progress)
        method = "newton"
    for callback in callbacks:
        callback.on_train_end()
    notes = _set_weights(model, blocks, theta)
    if not converged:
        notes.append(
            f"linear: {method} stopped after {len(history)} passes over the rows before "
            "reaching its tolerance; the fit is the last iterate"
        )
    return LinearFit(
        method=method,
        parameters=d * k,
        rows=passes.rows,
        iterations=len(history),
        converged=converged,
        history=history,
        warnings=notes,
    )
