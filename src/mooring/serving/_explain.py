"""Explanations served beside predictions, never in their way.

``POST /v1/models/NAME[/versions/N|/labels/L]:explain`` (KServe V1's verb),
``POST /v2/models/NAME[/versions/N]/explain`` and gRPC ``ModelInfer`` asking for the
output ``attributions`` answer each row's attribution per input column (and the
baseline and the explained value they sum to), computed by :mod:`mooring.explain` for
the version that would answer the same prediction.

An explanation costs tens of model calls (integrated gradients) or a tree walk per row
(Shapley values), so it never takes one of the ``max_in_flight`` inference permits and
never runs on the batcher's thread: at most ``[serving] max_explaining`` run at once,
each on this module's own thread, and past that a request is answered 503 with
``Retry-After``. An explanation storm is refused here while predictions keep their
permits and their thread. That thread runs at a lower CPU priority than the rest of
the process (``[serving] explain_nice``, Linux's per-thread ``setpriority``): on a busy
machine the scheduler gives the cores to predictions first, and explanations take what
is left. Its eager TensorFlow ops (integrated gradients' tape) and tree walks run on that
thread; TensorFlow's thread pools are the process's and are shared, so an explanation's
large ops split over them keep their priority.

Examples:
    >>> explaining = Explaining(limit=2, retry_after=1, max_rows=1000)
    >>> explaining.running
    0
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from mooring.errors import MooringError, OverloadedError, PayloadTooLargeError
from mooring.formats._columns import refuse_missing
from mooring.formats._model import (
    EXPLAIN_ATTRIBUTIONS,
    EXPLAIN_BASELINE,
    EXPLAIN_EXPLAINED,
    TensorInfo,
)
from mooring.serving._memory import MemoryCeiling, out_of_memory

if TYPE_CHECKING:
    from mooring.explain import Explanation
    from mooring.serving._loaded import ServedModel

__all__ = [
    "EXPLAIN_INFO",
    "Explaining",
    "explanation_document",
    "explanation_tensors",
]

#: The outputs of an explanation on the Open Inference Protocol, in order: per row and
#: input column the attribution ``[N, C]``, the baseline's value ``[N]`` and the explained
#: value ``[N]`` (the attributions of a row sum to explained - baseline).
EXPLAIN_INFO = {
    EXPLAIN_ATTRIBUTIONS: TensorInfo(EXPLAIN_ATTRIBUTIONS, "float32", (None, None)),
    EXPLAIN_BASELINE: TensorInfo(EXPLAIN_BASELINE, "float32", (None,)),
    EXPLAIN_EXPLAINED: TensorInfo(EXPLAIN_EXPLAINED, "float32", (None,)),
}


class Explaining:
    """The explanations running in one server process: their count, limit and thread."""

    def __init__(
        self,
        *,
        limit: int,
        retry_after: int,
        max_rows: int = 1000,
        nice: int = 10,
        memory: MemoryCeiling | None = None,
    ) -> None:
        self.limit = limit
        self.retry_after = retry_after
        self.max_rows = max_rows
        #: How much lower than the process the explanations' thread runs (0: the same).
        self.nice = nice
        self.memory = memory
        self.running = 0
        self._pool: ThreadPoolExecutor | None = None

    async def explain(
        self, model: ServedModel, columns: Mapping[str, Any], rows: int
    ) -> Explanation:
        """``columns`` (``rows`` rows, as the door parsed them for a prediction) explained
        by ``model``'s version; 413 past ``max_rows``, 503 when ``limit`` explanations are
        running."""
        if rows > self.max_rows:
            raise PayloadTooLargeError(
                f"an explanation of {rows} rows is above the limit of {self.max_rows} rows a "
                "request ([serving] max_explain_rows); send fewer rows per request"
            )
        if model.refuses_missing:  # as a prediction: NaN would be explained as a number
            refuse_missing(
                columns, model.refuses_missing, f"model '{model.name}' version {model.version}"
            )
        if self.running >= self.limit:
            raise OverloadedError(
                f"the server is at its limit of {self.limit} explanations at once "
                f"([serving] max_explaining); retry after {self.retry_after} s",
                retry_after=self.retry_after,
            )
        self.running += 1
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self.pool(), self._bounded, model, dict(columns))
        finally:
            self.running -= 1

    def pool(self) -> ThreadPoolExecutor:
        """The explanations' one thread, at ``nice`` below the process (made on first use)."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(
                1,
                thread_name_prefix="mooring-explain",
                initializer=lower_priority,
                initargs=(self.nice,),
            )
        return self._pool

    def _bounded(self, model: ServedModel, columns: dict[str, Any]) -> Explanation:
        """:func:`_run` under the process's memory ceiling (507 past it), as a prediction."""
        memory = self.memory
        if memory is None or not memory.armed:
            return _run(model, columns)
        try:
            return _run(model, columns)
        except Exception as exc:
            if out_of_memory(exc):
                raise memory.refusal() from None
            raise
        finally:
            memory.after_run()

    def close(self) -> None:
        """Stop the thread (the server stops); explanations under way finish first."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


def lower_priority(nice: int) -> None:
    """Lower the calling thread's CPU priority by ``nice`` (Linux: ``setpriority`` of a
    thread id is the thread's alone); where it cannot, the thread keeps the process's.

    >>> import threading
    >>> t = threading.Thread(target=lower_priority, args=(0,)); t.start(); t.join()
    """
    if nice <= 0:
        return
    with contextlib.suppress(AttributeError, OSError):
        tid = threading.get_native_id()
        current = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, min(19, current + nice))


def _run(model: ServedModel, columns: dict[str, Any]) -> Explanation:
    """On the explanations' thread: the version's explainer on the rows, made once from
    the loaded version (its SavedModel reused, not loaded again)."""
    try:
        explainer = model.explainer
        if explainer is None:
            from mooring.explain._explainers import explainer_for

            who = f"model '{model.name}' version {model.version}"
            explainer = model.explainer = explainer_for(model.folder, what=who)
        explanation: Explanation = explainer.explain(columns)
    except MooringError as exc:
        _unplaced(exc, model)
        raise
    return explanation


def _unplaced(exc: MooringError, model: ServedModel) -> None:
    """A server never names a path of its machine: the explainer is asked to name the
    version, and an error from further down that names the model's folder anyway (as
    given, or resolved: a cache behind a link) names the version instead.

    Examples:
        >>> _unplaced(error, model)  # doctest: +SKIP
        >>> str(error)  # doctest: +SKIP
        "model 'loans' version 1 has no explanation: ..."
    """
    given = model.folder.path
    paths = {str(p) for p in (given, given.resolve(), given.parent, given.resolve().parent)}
    text = exc.message
    if not any(path in text for path in paths):
        return
    who = f"model '{model.name}' version {model.version}"
    for path in sorted(paths, key=len, reverse=True):  # a folder before its parent
        text = text.replace(f"model '{path}'", who).replace(f"model folder '{path}'", who)
        text = text.replace(f"'{path}/", "'").replace(path, "the model's folder")
    exc.message = text
    exc.args = (text,)


def explanation_tensors(explanation: Explanation) -> dict[str, Any]:
    """The explanation as the Open Inference Protocol's outputs (:data:`EXPLAIN_INFO`),
    float32 arrays, and its parameters: the columns in the attributions' order, what is
    explained, the method and the unit."""
    import numpy as np

    return {
        "tensors": {
            EXPLAIN_ATTRIBUTIONS: np.asarray(explanation.attributions, dtype=np.float32),
            EXPLAIN_BASELINE: np.asarray(explanation.baseline, dtype=np.float32),
            EXPLAIN_EXPLAINED: np.asarray(explanation.explained, dtype=np.float32),
        },
        "parameters": {
            "columns": list(explanation.columns),
            "output": explanation.output,
            "method": explanation.method,
            "unit": explanation.unit,
        },
    }


def explanation_document(explanation: Explanation, version: int) -> dict[str, Any]:
    """The answer of ``:explain`` (TF Serving's REST API): per row, each column's
    attribution, the baseline and the explained value; what is explained, by which method
    and in which unit, and the version that explained it.

    Examples:
        >>> explanation_document(explanation, 3)["explanations"][0]  # doctest: +SKIP
        {'attributions': {'age': 0.08, ...}, 'baseline': 0.24, 'explained': 0.61}
    """
    return {"model_version": str(version), **explanation.to_dict()}
