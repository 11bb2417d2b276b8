"""Label feedback over HTTP: the body of ``POST /v1/models/{name}:feedback``, checked.

The body is ``{"labels": [{"request_id": "...", "label": ...}, ...]}``; every problem is
a 400 naming the entry. Valid labels go to the feedback store
(:class:`mooring.formats._feedback.FeedbackStore`), whose format lives in ``formats/``.

Example:
    >>> parse_feedback({"labels": [{"request_id": "r1", "label": ">50K"}]})
    [('r1', '>50K')]
"""

from __future__ import annotations

from typing import Any

from mooring.formats._columns import describe
from mooring.formats._feedback import LABEL, Labels, label_text
from mooring.formats._predictions import REQUEST_ID, REQUEST_ID_PATTERN
from mooring.serving._errors import InvalidRequestError

__all__ = ["MAX_LABELS", "parse_feedback"]

#: Labels accepted in one request (larger batches: several requests, or the CLI).
MAX_LABELS = 100_000


def parse_feedback(body: Any) -> Labels:
    """Validate a feedback body; every problem is an :class:`InvalidRequestError` (400).

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
    out: Labels = []
    for i, item in enumerate(items):
        where = f"labels[{i}]"
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
                f"{where}.request_id must be the X-Request-Id of a prediction (1-128 letters, "
                f"digits, '.', '_', ':', '-'), got {describe(rid)}"
            )
        text = label_text(item.get(LABEL))
        if text is None:
            raise InvalidRequestError(
                f"{where}.label must be a class name (text) or a finite number, got "
                f"{describe(item.get(LABEL))}"
            )
        out.append((rid, text))
    return out
