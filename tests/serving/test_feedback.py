"""POST /v1/models/{name}:feedback on a real server: stored labels, 4xx JSON for every bad body."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from mooring.config import ServingConfig
from mooring.errors import DataError, NotFoundError
from mooring.formats._feedback import FeedbackStore, label_text, read_feedback
from mooring.formats._predictions import find_request_ids, read_prediction_log
from mooring.monitoring._feedback import read_labels_file
from mooring.serving import RegistrySource, build_app
from mooring.serving._feedback import MAX_LABELS
from tests._support.server import FAST, NAME, ServerThread, new_registry
from tests._support.serving_model import row
from tests._support.waiting import wait_until

pytestmark = [pytest.mark.slow]

TOKEN = "feedback-secret"


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, model_dirs: dict[str, Path]
) -> Iterator[tuple[ServerThread, Path]]:
    root = tmp_path_factory.mktemp("feedback-server")
    reg = new_registry(root, model_dirs)
    reg.deploy(NAME, production=1)
    cfg = ServingConfig(
        **{
            **FAST.model_dump(),
            "log_sample_rate": 1.0,
            "log_flush_s": 0.2,
            "feedback_token": TOKEN,
        }
    )
    app = build_app(
        [RegistrySource(reg, NAME)],
        cfg,
        registry=reg,
        prediction_log_url=str(root / "predictions"),
        feedback_url=str(root / "feedback"),
    )
    with ServerThread(app) as running:
        running.wait_ready()
        running.client.headers["Authorization"] = f"Bearer {TOKEN}"
        yield running, root
    reg.close()


def test_labels_are_stored_and_the_latest_wins(server: tuple[ServerThread, Path]) -> None:
    running, root = server
    reply = running.client.post(
        f"/v1/models/{NAME}:predict", json={"instances": [row()]}, headers={"X-Request-Id": "q1"}
    )
    assert reply.status_code == 200 and reply.headers["x-client-request-id"] == "q1"
    q1 = reply.headers["x-request-id"]  # the server's id, the one labels name
    body = {"labels": [{"request_id": q1, "label": ">50K"}, {"request_id": "q2", "label": 0}]}
    answer = running.client.post(f"/v1/models/{NAME}:feedback", json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"model": NAME, "accepted": 2}
    again = running.client.post(
        f"/v1/models/{NAME}:feedback", json={"labels": [{"request_id": q1, "label": "<=50K"}]}
    )
    assert again.status_code == 200
    stored = read_feedback(str(root / "feedback"), NAME)
    latest = dict(zip(stored["request_id"].to_pylist(), stored["label"].to_pylist(), strict=True))
    assert {k: v for k, v in latest.items() if k in (q1, "q2")} == {q1: "<=50K", "q2": "0"}
    assert set(stored.column_names) == {"request_id", "label", "timestamp", "model"}
    # Files are complete Parquet files under date= folders (no temporary leftovers).
    files = list((root / "feedback").rglob("*"))
    assert all(f.suffix == ".parquet" for f in files if f.is_file())
    # Feedback is not a prediction: the request counters do not see it.
    metrics = running.client.get("/metrics").text
    assert 'protocol="feedback"' not in metrics


def test_a_clients_own_request_id_is_kept_beside_the_servers_which_labels_join_on(
    server: tuple[ServerThread, Path],
) -> None:
    """Two clients send the same X-Request-Id: each request gets its own server id, both
    echo the client's id, the log holds both with it, and a label for one server id labels
    that one prediction and no other."""
    running, root = server
    replies = [
        running.client.post(
            f"/v1/models/{NAME}:predict",
            json={"instances": [row(age=age)]},
            headers={"X-Request-Id": "dup-7"},
        )
        for age in (30.0, 60.0)
    ]
    assert [r.status_code for r in replies] == [200, 200]
    assert [r.headers["X-Client-Request-Id"] for r in replies] == ["dup-7", "dup-7"]
    first, second = (r.headers["X-Request-Id"] for r in replies)
    assert first != second and "dup-7" not in (first, second)
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in (first, second))

    logs = str(root / "predictions")

    def logged() -> pa.Table | None:
        if find_request_ids(logs, NAME, [first, second]) != {first, second}:
            return None
        table = read_prediction_log(logs, NAME)
        mask = pc.equal(table["client_request_id"], "dup-7")
        return table.filter(pc.fill_null(mask, False))

    mine = wait_until(logged, "both requests in the prediction log", ignoring=(NotFoundError,))
    assert sorted(mine["request_id"].to_pylist()) == sorted([first, second])
    assert mine["age"].to_pylist() == [30.0, 60.0]  # in order, each its own row

    labels = {"labels": [{"request_id": first, "label": ">50K"}]}
    answer = running.client.post(f"/v1/models/{NAME}:feedback", json=labels)
    assert answer.status_code == 200 and answer.json()["accepted"] == 1, answer.text
    # Joined as live metrics join them (on the server's id): that prediction alone.
    stored = read_feedback(str(root / "feedback"), NAME)
    label_of = dict(zip(stored["request_id"].to_pylist(), stored["label"].to_pylist(), strict=True))
    table = read_prediction_log(logs, NAME)
    joined = [
        (rid, age, label_of[rid])
        for rid, age in zip(table["request_id"].to_pylist(), table["age"].to_pylist(), strict=True)
        if rid in {first, second} and rid in label_of
    ]
    assert joined == [(first, 30.0, ">50K")]
    # The client's id labels nothing: the log holds no prediction under it.
    assert find_request_ids(logs, NAME, ["dup-7"]) == set()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "not valid JSON"),
        (b"[1, 2]", "expected a JSON object"),
        (b'{"labels": []}', "non-empty list"),
        (b'{"labels": [{"request_id": "a"}], "x": 1}', "unknown key"),
        (b'{"labels": ["a"]}', r"labels\[0\] must be an object"),
        (b'{"labels": [{"request_id": "a", "label": 1, "row": 2}]}', "unknown key"),
        (b'{"labels": [{"request_id": "a b", "label": 1}]}', r"labels\[0\].request_id"),
        (b'{"labels": [{"request_id": 7, "label": 1}]}', r"labels\[0\].request_id"),
        (b'{"labels": [{"request_id": "a", "label": null}]}', r"labels\[0\].label"),
        (b'{"labels": [{"request_id": "a", "label": [1]}]}', r"labels\[0\].label"),
        (b'{"labels": [{"request_id": "a", "label": true}]}', r"labels\[0\].label"),
        (b'{"labels": [{"request_id": "a", "label": NaN}]}', r"labels\[0\].label"),
    ],
)
def test_bad_bodies_get_400_json(
    server: tuple[ServerThread, Path], body: bytes, message: str
) -> None:
    import re

    running, _ = server
    reply = running.client.post(
        f"/v1/models/{NAME}:feedback", content=body, headers={"content-type": "application/json"}
    )
    assert reply.status_code == 400
    assert re.search(message, reply.json()["error"]), reply.json()


def test_unknown_model_and_limits(server: tuple[ServerThread, Path]) -> None:
    running, _ = server
    reply = running.client.post(
        "/v1/models/nope:feedback", json={"labels": [{"request_id": "a", "label": 1}]}
    )
    assert reply.status_code == 404 and "not served here" in reply.json()["error"]
    big = {"labels": [{"request_id": "a", "label": 1}] * 3000}
    too_big = running.client.post(f"/v1/models/{NAME}:feedback", json=big)
    assert too_big.status_code == 413 and "body_limit_bytes" in too_big.json()["error"]
    get = running.client.get(f"/v1/models/{NAME}:feedback")
    assert get.status_code in (404, 405) and "error" in get.json()


def test_feedback_off_without_a_folder(model_dirs: dict[str, Path], tmp_path: Path) -> None:
    reg = new_registry(tmp_path, model_dirs)
    reg.deploy(NAME, production=1)
    app = build_app([RegistrySource(reg, NAME)], FAST, registry=reg)
    with ServerThread(app) as running:
        running.wait_ready()
        reply = running.client.post(
            f"/v1/models/{NAME}:feedback", json={"labels": [{"request_id": "a", "label": 1}]}
        )
    reg.close()
    assert reply.status_code == 404 and "label feedback is off" in reply.json()["error"]


def test_label_values_and_limits() -> None:
    assert [label_text(v) for v in (">50K", 3, 3.0, 0.25, "", None, float("inf"))] == [
        ">50K",
        "3",
        "3",
        "0.25",
        None,
        None,
        None,
    ]
    assert MAX_LABELS >= 10_000


def test_labels_file_csv_and_parquet(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    csv = tmp_path / "labels.csv"
    csv.write_text("request_id,label\nr1,>50K\nr2,<=50K\n", encoding="utf-8")
    assert read_labels_file(csv) == [("r1", ">50K"), ("r2", "<=50K")]
    parquet = tmp_path / "labels.parquet"
    pq.write_table(pa.table({"request_id": ["r1", "r2"], "label": [1, 0]}), parquet)
    assert read_labels_file(parquet) == [("r1", "1"), ("r2", "0")]
    bad = tmp_path / "bad.csv"
    bad.write_text("id,label\nr1,1\n", encoding="utf-8")
    with pytest.raises(DataError, match="has no 'request_id' column"):
        read_labels_file(bad)
    holes = tmp_path / "holes.csv"
    holes.write_text("request_id,label\nr1,\n", encoding="utf-8")
    with pytest.raises(DataError, match="row 1: label None is missing"):
        read_labels_file(holes)
    store = FeedbackStore(str(tmp_path / "fb"))
    assert store.write("m", read_labels_file(csv)) == 2
    assert store.write("m", []) == 0
    assert read_feedback(str(tmp_path / "fb"), "other").num_rows == 0
    assert read_feedback(str(tmp_path / "none")).num_rows == 0


def test_feedback_takes_its_own_token_and_json_only(server: tuple[ServerThread, Path]) -> None:
    running, _ = server
    url = f"{running.url}/v1/models/{NAME}:feedback"
    body = {"labels": [{"request_id": "a", "label": 1}]}
    assert httpx.post(url, json=body).status_code == 401
    wrong = httpx.post(url, json=body, headers={"Authorization": "Bearer admin-token"})
    assert wrong.status_code == 401
    assert wrong.json()["error"].startswith(
        "label feedback needs 'Authorization: Bearer <token>' with the token of [serving] "
        "feedback_token (or the "
    )
    # What a cross-site form can send without a preflight: refused whatever the token.
    plain = running.client.post(
        url, content=b'{"labels": []}', headers={"content-type": "text/plain"}
    )
    assert plain.status_code == 415 and "application/json" in plain.json()["error"]


def test_feedback_is_off_without_a_token(model_dirs: dict[str, Path], tmp_path: Path) -> None:
    reg = new_registry(tmp_path, model_dirs)
    reg.deploy(NAME, production=1)
    app = build_app(
        [RegistrySource(reg, NAME)], FAST, registry=reg, feedback_url=str(tmp_path / "fb")
    )
    with ServerThread(app) as running:
        running.wait_ready()
        reply = running.client.post(
            f"/v1/models/{NAME}:feedback",
            json={"labels": [{"request_id": "a", "label": 1}]},
            headers={"Authorization": "Bearer anything"},
        )
    reg.close()
    assert reply.status_code == 404 and "feedback_token" in reply.json()["error"]
