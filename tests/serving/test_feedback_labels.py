"""Labels checked against the served model: its classes, or finite numbers, on a real server.

A classifier (``income``: ``<=50K``/``>50K``, class ids 0/1), a regression model (``reg``)
and a model whose ``mooring.json`` records no classes (``plain``) are served from one
server; a refused batch leaves the feedback folder as it was.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mooring.config import ServingConfig
from mooring.errors import InvalidRequestError
from mooring.formats._feedback import read_feedback
from mooring.serving import DirectorySource, build_app
from mooring.serving._feedback import label_domain
from tests._support.server import FAST, ServerThread
from tests._support.serving_model import build_regression_model_dir

pytestmark = [pytest.mark.slow]

TOKEN = "labels-secret"
MODELS = ("income", "reg", "plain")
CLASSES = ("<=50K", ">50K")


class Served:
    """The running server and its feedback folder."""

    def __init__(self, running: ServerThread, feedback: Path) -> None:
        self.running = running
        self.feedback = feedback

    def post(self, model: str, labels: list[Any]) -> httpx.Response:
        """POST ``{"labels": labels}`` as JSON (NaN and infinities as JSON's literals)."""
        return self.running.client.post(
            f"/v1/models/{model}:feedback",
            content=json.dumps({"labels": labels}).encode(),
            headers={"content-type": "application/json"},
        )

    def files(self) -> int:
        """Label batches written so far (one Parquet file each)."""
        return sum(1 for _ in self.feedback.rglob("*.parquet"))

    def stored(self, model: str) -> dict[str, str]:
        table = read_feedback(str(self.feedback), model)
        ids, labels = table["request_id"].to_pylist(), table["label"].to_pylist()
        return dict(zip(ids, labels, strict=True))


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, model_dirs: dict[str, Path]
) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("feedback-labels")
    plain = shutil.copytree(model_dirs["a"], root / "plain")
    (plain / "mooring.json").write_text('{"format": "mooring.model"}', encoding="utf-8")
    folders = {
        "income": model_dirs["a"],
        "reg": build_regression_model_dir(root / "reg"),
        "plain": plain,
    }
    cfg = ServingConfig(**{**FAST.model_dump(), "feedback_token": TOKEN})
    app = build_app(
        [DirectorySource(folders[name], name) for name in MODELS],
        cfg,
        feedback_url=str(root / "feedback"),
    )
    with ServerThread(app) as running:
        running.wait_ready()
        running.client.headers["Authorization"] = f"Bearer {TOKEN}"
        yield Served(running, root / "feedback")


def refused(served: Served, model: str, labels: list[Any], entry: int) -> str:
    """Post a batch that must be refused whole; the error, which names ``labels[entry]``."""
    before = served.files()
    reply = served.post(model, labels)
    assert reply.status_code == 400, reply.text
    error: str = reply.json()["error"]
    assert f"labels[{entry}].label" in error, error
    assert served.files() == before  # nothing of the batch was written
    return error


@pytest.mark.parametrize(
    "value",
    ["maybe", ">50k", " >50K", "01", "2", 2, -1, 0.5, 1.5, True, None, float("nan")],
    ids=repr,
)
def test_a_label_that_is_not_a_class_is_refused(served: Served, value: Any) -> None:
    error = refused(served, "income", [{"request_id": "c1", "label": value}], 0)
    assert repr(value) in error
    assert "'<=50K', '>50K'" in error and "class id, 0 to 1" in error, error
    assert "model 'income' version 1" in error


def test_the_classes_are_taken_by_name_and_by_id(served: Served) -> None:
    values = [">50K", "<=50K", 0, 1, 1.0, "0"]
    labels = [{"request_id": f"ok{i}", "label": v} for i, v in enumerate(values)]
    reply = served.post("income", labels)
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"model": "income", "accepted": len(values)}
    stored = served.stored("income")
    assert [stored[f"ok{i}"] for i in range(len(values))] == [">50K", "<=50K", "0", "1", "1", "0"]


def test_one_bad_entry_refuses_the_whole_batch(served: Served) -> None:
    good = [{"request_id": f"m{i}", "label": CLASSES[i % 2]} for i in range(3)]
    error = refused(served, "income", [*good, {"request_id": "m3", "label": "unknown"}, *good], 3)
    assert "'unknown'" in error
    assert not {"m0", "m1", "m2", "m3"} & set(served.stored("income"))
    assert served.post("income", good).json() == {"model": "income", "accepted": 3}


@pytest.mark.parametrize(
    "value",
    [float("nan"), float("inf"), float("-inf"), "3.5", "abc", True, None, 10**400],
    ids=lambda v: repr(v)[:8],
)
def test_a_regression_label_must_be_a_finite_number(served: Served, value: Any) -> None:
    error = refused(
        served, "reg", [{"request_id": "r0", "label": 1.5}, {"request_id": "r1", "label": value}], 1
    )
    assert "a finite number" in error and "regression model" in error, error
    assert repr(value)[:20] in error  # the value, shortened when long


def test_regression_labels_are_stored_as_numbers(served: Served) -> None:
    labels = [{"request_id": f"v{i}", "label": v} for i, v in enumerate([3.5, 0, -2, 1e-300])]
    assert served.post("reg", labels).json() == {"model": "reg", "accepted": 4}
    assert [served.stored("reg")[f"v{i}"] for i in range(4)] == ["3.5", "0", "-2", "1e-300"]


def test_a_model_without_classes_takes_any_label(served: Served) -> None:
    labels = [{"request_id": "p1", "label": "anything"}, {"request_id": "p2", "label": 7}]
    assert served.post("plain", labels).json() == {"model": "plain", "accepted": 2}
    refused(served, "plain", [{"request_id": "p3", "label": float("inf")}], 0)


def test_labels_are_taken_before_a_model_is_loaded(tmp_path: Path) -> None:
    cfg = ServingConfig(**{**FAST.model_dump(), "feedback_token": TOKEN})
    app = build_app(
        [DirectorySource(tmp_path / "empty", "income")], cfg, feedback_url=str(tmp_path / "fb")
    )
    with ServerThread(app) as running:
        ready = running.client.get("/v2/models/income/ready")
        reply = running.client.post(
            "/v1/models/income:feedback",
            json={"labels": [{"request_id": "e1", "label": "anything"}]},
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
    assert ready.status_code != 200
    assert reply.status_code == 200, reply.text
    assert read_feedback(str(tmp_path / "fb"), "income")["label"].to_pylist() == ["anything"]


# -- label values, as an attacker would send them ---------------------------------------
VALUES = st.one_of(
    st.sampled_from([*CLASSES, "0", "1", "01", "1.0", ">50k", "", " ", "<=50K ", "NaN"]),
    st.integers(min_value=-2, max_value=3),
    st.integers(),
    st.just(10**400),
    st.floats(),
    st.text(max_size=12),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=1),
)


def is_class(value: Any) -> bool:
    """The classifier's classes: by name, or by class id as a JSON number or text."""
    if isinstance(value, str):
        return value in (*CLASSES, "0", "1")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return value in (0, 1)


def is_finite_number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:  # an integer past a double
        return False


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=VALUES, model=st.sampled_from(["income", "reg"]))
def test_label_values_never_5xx_and_exactly_the_models_labels_pass(
    served: Served, value: Any, model: str
) -> None:
    before = served.files()
    reply = served.post(model, [{"request_id": "h1", "label": value}])
    expected = is_class(value) if model == "income" else is_finite_number(value)
    assert reply.status_code == (200 if expected else 400), (value, reply.text)
    assert served.files() == before + (1 if expected else 0)
    if not expected:
        assert "labels[0].label" in reply.json()["error"]


# -- the labels a model's metadata describes ---------------------------------------------
def test_numeric_class_names_are_never_read_as_class_ids() -> None:
    domain = label_domain({"task": "multiclass", "label_vocabulary": [3, 5, 7]}, "model 'w'")
    assert domain is not None and domain.check("labels[0].label", 5.0) == "5"
    with pytest.raises(
        InvalidRequestError,
        match=r"labels\[0\]\.label is 1, not a class of model 'w'; send one of its classes "
        r"'3', '5', '7'$",
    ):
        domain.check("labels[0].label", 1)


def test_a_long_vocabulary_is_counted_not_listed() -> None:
    classes = [f"c{i}" for i in range(50)]
    domain = label_domain({"label": {"task": "multiclass", "vocabulary": classes}}, "m")
    assert domain is not None and domain.check("x", 49) == "49"
    with pytest.raises(
        InvalidRequestError, match=r"'c19', … \(50 classes\), or its class id, 0 to 49$"
    ):
        domain.check("x", "c50")


@pytest.mark.parametrize(
    "metadata",
    [{}, {"task": "binary"}, {"task": "binary", "label_vocabulary": []}, {"label": "odd"}],
)
def test_metadata_without_classes_checks_nothing(metadata: dict[str, Any]) -> None:
    assert label_domain(metadata, "m") is None
