"""Label feedback over HTTP: the body of ``POST /v1/models/{name}:feedback``, checked.

The body is ``{"labels": [{"request_id": "...", "label": ...}, ...]}``, each
``request_id`` the ``X-Request-Id`` the server answered a prediction with (its own id,
not one the client sent: that comes back as ``X-Client-Request-Id`` and joins nothing).
Ids are not checked against the prediction log here (``mooring live`` counts the labels
it cannot join). Every problem is a 400 naming the entry, and a body with any problem is
refused whole. Where the served model's labels are known (:func:`label_domain`), each
label must be one of them: a class of a classifier, a finite number for a regression
model; otherwise garbage would enter the live metrics and the rollout guardrails that
read them. Valid labels go to the feedback store
(:class:`mooring.formats._feedback.FeedbackStore`), whose format lives in ``formats/``.

Examples:
    >>> parse_feedback({"labels": [{"request_id": "r1", "label": ">50K"}]})
    [('r1', '>50K')]
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mooring.formats._columns import describe
from mooring.formats._feedback import LABEL, Labels, label_text
from mooring.formats._predictions import REQUEST_ID, REQUEST_ID_PATTERN
from mooring.serving._errors import InvalidRequestError

__all__ = ["MAX_LABELS", "LabelDomain", "label_domain", "parse_feedback"]

#: Labels accepted in one request (larger batches: several requests, or the CLI).
MAX_LABELS = 100_000

#: Classes a refusal lists before it only counts the rest.
_LISTED = 20


@dataclass(frozen=True)
class LabelDomain:
    """The labels one served model takes: its classes, or (no ``classes``) finite numbers.

    ``what`` names the model in errors; ``accepted`` holds each class as the feedback
    store writes it (:func:`~mooring.formats._feedback.label_text`); ``ids``: a class id
    (the class's position in the vocabulary) names a class too.
    """

    what: str
    classes: tuple[str, ...] = ()
    accepted: frozenset[str] = frozenset()
    ids: bool = False

    def check(self, where: str, value: Any) -> str:
        """The stored text of ``value``, a label of this model.

        Raises:
            InvalidRequestError: not one of its classes / not a finite number; the message
                names ``where``, the value and what is accepted.
        """
        text = label_text(value)
        if not self.classes:
            if text is not None and _finite_number(value, text):
                return text
            raise InvalidRequestError(
                f"{where} is {describe(value)}, but {self.what} is a regression model and "
                "takes a finite number as its label; send the observed value as a JSON number"
            )
        if text is not None and text in self.accepted:
            return text
        raise InvalidRequestError(
            f"{where} is {describe(value)}, not a class of {self.what}; send one of its "
            f"classes {self._listing()}"
        )

    def _listing(self) -> str:
        shown = ", ".join(repr(c) for c in self.classes[:_LISTED])
        if len(self.classes) > _LISTED:
            shown += f", … ({len(self.classes)} classes)"
        if self.ids:
            shown += f", or its class id, 0 to {len(self.classes) - 1}"
        return shown


def label_domain(metadata: Mapping[str, Any], what: str) -> LabelDomain | None:
    """The labels a model takes, from its ``mooring.json``; None when it does not say.

    A classifier's class is taken as the training data wrote it (``">50K"``; a number for
    a numeric label column, ``1`` and ``1.0`` alike) or, where no class name is itself a
    whole number, by its class id (``0``/``1`` for binary): the forms live monitoring
    scores. Where class names are numbers, a number is only ever a name, so an id cannot
    pass for another class. None: the metadata records neither classes nor a regression
    task, and any label is taken (as before labels were checked).

    >>> sorted(label_domain({"task": "binary", "label_vocabulary": ["no", "yes"]}, "m").accepted)
    ['0', '1', 'no', 'yes']
    >>> sorted(label_domain({"task": "multiclass", "label_vocabulary": [3, 5]}, "m").accepted)
    ['3', '5']
    """
    encoding = metadata.get("label")
    encoding = encoding if isinstance(encoding, Mapping) else {}
    task = metadata.get("task") or encoding.get("task")
    if task == "regression":
        return LabelDomain(what)
    vocabulary = metadata.get("label_vocabulary") or encoding.get("vocabulary")
    if not isinstance(vocabulary, list | tuple) or not vocabulary:
        return None
    classes = tuple(str(v) for v in vocabulary)
    ids = not any(_whole(c) for c in classes)
    accepted = set(classes) | ({str(i) for i in range(len(classes))} if ids else set())
    return LabelDomain(what, classes, frozenset(accepted), ids)


def parse_feedback(body: Any, domain: LabelDomain | None = None) -> Labels:
    """Validate a feedback body; every problem is an :class:`InvalidRequestError` (400).

    ``domain``: the labels the model takes (:func:`label_domain`); without one, any
    class name (text) or finite number is taken.

    >>> parse_feedback({"labels": [{"request_id": "a1", "label": 0}]})
    [('a1', '0')]
    """
    if not isinstance(body, dict) or "labels" not in body:
        raise InvalidRequestError(
            'expected a JSON object {"labels": [{"request_id": "...", "label": ...}, ...]}; '
            f"got {describe(body)}"
        )
    unknown = sorted(set(body) - {"labels"})
    if unknown:
        raise InvalidRequestError(f"unknown key(s) {unknown} in the body; send only 'labels'")
    items = body["labels"]
    if not isinstance(items, list) or not items:
        raise InvalidRequestError(
            f"'labels' must be a non-empty list of objects, got {describe(items)}"
        )
    if len(items) > MAX_LABELS:
        raise InvalidRequestError(
            f"'labels' holds {len(items)} entries, above the limit of {MAX_LABELS}; split the "
            "batch or use `mooring feedback FILE`"
        )
    return [_entry(f"labels[{i}]", item, domain) for i, item in enumerate(items)]


def _entry(where: str, item: Any, domain: LabelDomain | None) -> tuple[str, str]:
    """One ``{"request_id": ..., "label": ...}`` entry as ``(request_id, label text)``."""
    if not isinstance(item, dict):
        raise InvalidRequestError(f"{where} must be an object, got {describe(item)}")
    extra = sorted(set(item) - {REQUEST_ID, LABEL})
    if extra:
        raise InvalidRequestError(
            f"{where} has unknown key(s) {extra}; each entry holds request_id and label"
        )
    rid = item.get(REQUEST_ID)
    if not isinstance(rid, str) or not REQUEST_ID_PATTERN.fullmatch(rid):
        raise InvalidRequestError(
            f"{where}.request_id must be the X-Request-Id the server answered a prediction "
            f"with (1-128 letters, digits, '.', '_', ':', '-'), got {describe(rid)}"
        )
    value = item.get(LABEL)
    if domain is not None:
        return rid, domain.check(f"{where}.label", value)
    text = label_text(value)
    if text is None:
        raise InvalidRequestError(
            f"{where}.label must be a class name (text) or a finite number, got {describe(value)}"
        )
    return rid, text


def _finite_number(value: Any, text: str) -> bool:
    """Whether a JSON value (stored as ``text``) is a number a double holds: not text, a
    bool, NaN, an infinity or an integer too large for a double."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(float(text))


def _whole(text: str) -> bool:
    """Whether a class name reads as a whole number (``"3"``, ``"-1"``)."""
    return text.isascii() and text.removeprefix("-").isdigit()
