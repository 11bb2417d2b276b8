"""The version's data contract at the door: ranges, domains, NaN/Infinity, and no 500 ever."""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mooring.config import ServingConfig
from mooring.contract._schema import ColumnSchema, Schema, infer_schema
from mooring.contract._statistics import compute_statistics
from mooring.formats._model import TensorInfo
from mooring.formats._predictions import feature_table, read_prediction_log
from mooring.formats._version_record import RunRecord, VersionRecord
from mooring.registry._judged import register_judged
from mooring.serving import DirectorySource, RegistrySource, build_app
from mooring.serving._contract import InputContract, violating_rows
from tests._support.server import BLESSED, FAST, LINEAGE, NAME, ServerThread
from tests._support.serving_model import build_flag_model_dir, row
from tests._support.waiting import wait_until

PREDICT = f"/v1/models/{NAME}:predict"
INFER = f"/v2/models/{NAME}/infer"
INPUTS = {
    "age": TensorInfo("age", "float32", (None,)),
    "hours-per-week": TensorInfo("hours-per-week", "float32", (None,)),
    "workclass": TensorInfo("workclass", "string", (None,)),
    "sex": TensorInfo("sex", "string", (None,)),
}
TOKEN = {"Authorization": "Bearer t0ken"}


def training_table() -> pa.Table:
    """What the contract is learned from: ages 17–90, hours 1–99, three work classes."""
    n = 300
    return pa.table(
        {
            "age": [17 + (i * 7) % 74 for i in range(n)],
            "hours-per-week": [1 + (i * 13) % 99 for i in range(n)],
            "workclass": [("Private", "Self-emp", "Federal-gov")[i % 3] for i in range(n)],
            "sex": [("Male", "Female")[i % 2] for i in range(n)],
            "class": [("<=50K", ">50K")[i % 2] for i in range(n)],
        }
    )


def declared_schema() -> Schema:
    return Schema(
        columns={
            "age": ColumnSchema("age", "integer", min=17, max=90),
            "hours-per-week": ColumnSchema("hours-per-week", "float", min=1, max=99),
            "workclass": ColumnSchema("workclass", "string", domain=["Private", "Self-emp"]),
            "sex": ColumnSchema("sex", "string"),  # no domain: any value
        }
    )


def violations(server: ServerThread) -> dict[tuple[str, str, str], float]:
    """``(version, input, kind) → count`` from /metrics."""
    out = {}
    for line in server.client.get("/metrics").text.splitlines():
        if line.startswith("mooring_contract_violations_total{"):
            labels, value = line.rsplit(" ", 1)
            parts = dict(p.split("=", 1) for p in labels[labels.index("{") + 1 : -1].split(","))
            key = tuple(parts[k].strip('"') for k in ("version", "input", "kind"))
            out[key] = float(value)
    return out  # type: ignore[return-value]


# -- the contract itself -----------------------------------------------------------------
def test_contract_keeps_input_columns_and_checks_ranges_and_domains() -> None:
    contract = InputContract.from_schema(declared_schema(), INPUTS, source="schema")
    assert contract.ranges == {"age": (17.0, 90.0), "hours-per-week": (1.0, 99.0)}
    assert set(contract.domains) == {"workclass"}
    columns = {
        "age": np.array([16.0, 40.0, math.nan, 91.0, 200.0], np.float32),
        "hours-per-week": np.array([1.0, 99.0, 50.0, math.nan, 2.0], np.float32),
        "workclass": np.array(["Private", "", "Never-seen", "Self-emp", "x"], object),
        "sex": np.array(["anything"] * 5, object),
    }
    found = {(v.input, v.kind): v for v in contract.check(columns)}
    assert set(found) == {("age", "out_of_range"), ("workclass", "unseen_category")}
    assert found[("age", "out_of_range")].count == 3  # NaN (missing) is not a violation
    assert found[("age", "out_of_range")].example == 16.0
    assert found[("workclass", "unseen_category")].count == 2  # "" (missing) is not either
    message = found[("age", "out_of_range")].message("out_of_range")
    assert "'age'" in message and "[17, 90]" in message and "out_of_range = 'serve'" in message


def test_inputs_of_shape_n_by_one_are_checked_per_row_not_refused_with_an_error() -> None:
    """An imported model's ``[N, 1]`` inputs, as arrays and as the request's nested lists:
    ``age [150.0]`` is a violation of its row, never an exception (a 500)."""
    contract = InputContract.from_schema(declared_schema(), INPUTS, source="schema")
    for age, workclass in (
        (np.array([[40.0], [150.0], [math.nan], [200.0]], np.float32), None),
        ([[40.0], [150.0], [math.nan], [200.0]], [["Private"], ["Never-seen"], [""], ["x"]]),
        (np.array([[40.0, 150.0], [30.0, 31.0], [300.0, 200.0], [20.0, 21.0]]), None),
    ):
        columns = {"age": age} if workclass is None else {"age": age, "workclass": workclass}
        found = {(v.input, v.kind): v for v in contract.check(columns)}
        assert found[("age", "out_of_range")].count == 2  # rows, not values
        assert found[("age", "out_of_range")].example == 150.0
        assert found[("age", "out_of_range")].rows in ((1, 3), (0, 2))
        if workclass is not None:
            assert found[("workclass", "unseen_category")].count == 2
            assert found[("workclass", "unseen_category")].example == "Never-seen"
            assert violating_rows(list(found.values()), 4) == [
                None,
                ["age", "workclass"],
                None,
                ["age", "workclass"],
            ]
    # Ragged rows are not this check's to refuse: the signature's shape check names them.
    assert contract.check({"age": [[40.0], [150.0, 1.0]]}) == []


def test_booleans_are_spelled_as_trained_in_arrays_and_in_rows_of_one() -> None:
    """The gRPC and binary roads hand over arrays and an imported model's ``[N, 1]`` input
    comes as one list per row: each is spelled as the column was trained, in its shape;
    a value no boolean spelling reads is left for the contract check."""
    contract = InputContract({}, {}, "schema", booleans=frozenset({"member"}))
    array = {"member": np.array([["True"], ["0"], ["banana"]], dtype=object)}
    contract.spell_booleans(array)
    assert array["member"].shape == (3, 1)
    assert array["member"].ravel().tolist() == ["true", "false", "banana"]
    rows: dict[str, Any] = {"member": [["YES"], ["no"], [""]]}
    contract.spell_booleans(rows)
    assert rows["member"] == [["true"], ["false"], [""]]
    trained: dict[str, Any] = {"member": ["true", "false"], "other": ["True"]}
    contract.spell_booleans(trained)
    assert trained == {"member": ["true", "false"], "other": ["True"]}
    absent: dict[str, Any] = {"other": ["True"]}  # a request without the column
    contract.spell_booleans(absent)
    assert absent == {"other": ["True"]}


@settings(max_examples=60, deadline=None)
@given(
    ages=st.lists(
        st.one_of(st.floats(-1e6, 1e6, width=32), st.just(math.nan)), min_size=1, max_size=12
    ),
    classes=st.lists(st.sampled_from(["Private", "Self-emp", "", "New", "x"]), min_size=1),
)
def test_one_row_at_a_time_finds_what_the_batch_finds(
    ages: list[float], classes: list[str]
) -> None:
    contract = InputContract.from_schema(declared_schema(), INPUTS, source="schema")
    n = min(len(ages), len(classes))
    columns = {
        "age": np.array(ages[:n], np.float32),
        "workclass": np.array(classes[:n], object),
    }
    batch = {(v.input, v.kind): v.count for v in contract.check(columns)}
    # The request path's lists (with their min/max and subset shortcuts) find the same.
    listed = {k: c.tolist() for k, c in columns.items()}
    assert {(v.input, v.kind): v.count for v in contract.check(listed)} == batch
    single: dict[tuple[str, str], int] = {}
    for i in range(n):
        for v in contract.check({k: c[i : i + 1] for k, c in columns.items()}):
            single[(v.input, v.kind)] = single.get((v.input, v.kind), 0) + v.count
    assert batch == single
    expected = sum(1 for a in ages[:n] if not math.isnan(a) and not 17 <= np.float32(a) <= 90)
    assert batch.get(("age", "out_of_range"), 0) == expected


# -- a registry version: contract from its statistics or its stored schema; served and counted
def test_registry_contract_is_counted_and_served_by_default(
    tmp_path: Path, model_dirs: dict[str, Path]
) -> None:
    from mooring.registry import Registry

    stats = compute_statistics(training_table())
    reg = Registry.open(f"sqlite:///{tmp_path / 'registry.db'}", artifacts=tmp_path / "artifacts")
    register_judged(
        reg,
        name=NAME,
        artifact_dir=model_dirs["a"],
        record=VersionRecord(lineage=LINEAGE, gate=BLESSED, statistics=stats.to_dict()),
    )
    register_judged(
        reg,
        name=NAME,
        artifact_dir=model_dirs["b"],
        record=VersionRecord(
            lineage=LINEAGE,
            gate=BLESSED,
            run=RunRecord.read({"schema": declared_schema().to_dict()}),
        ),
    )
    reg.deploy(NAME, production=1)
    log = tmp_path / "predictions"
    cfg = FAST.model_copy(
        update={
            "admin_token": "t0ken",
            "log_sample_rate": 1.0,
            "log_flush_rows": 1,
            "log_flush_s": 0.05,
        }
    )
    app = build_app([RegistrySource(reg, NAME)], cfg, registry=reg, prediction_log_url=str(log))
    with ServerThread(app) as server:
        server.wait_ready()
        status = server.client.get("/admin/status", headers=TOKEN).json()["models"][0]
        contract = status["contracts"]["1"]
        assert contract["source"] == "statistics"
        inferred = infer_schema(stats)
        age = inferred.columns["age"]
        assert contract["ranges"]["age"] == [age.min, age.max]
        assert age.max is not None and age.max < 140
        assert contract["domains"] == {"workclass": 3, "sex": 2}

        far = server.client.post(PREDICT, json={"instances": [row(age=140.0)]})
        assert far.status_code == 200, far.text
        new = server.client.post(
            PREDICT,
            json={
                "instances": [
                    row(workclass="Never-seen"),
                    row(),
                    row(workclass="Never-seen", age=150.0),
                ]
            },
        )
        assert new.status_code == 200, new.text
        missing = server.client.post(
            PREDICT,
            json={"instances": [row(age=None, workclass=None)]},  # type: ignore[arg-type]
        )
        assert missing.status_code == 200, missing.text
        tensors = [
            {"name": "age", "shape": [1], "datatype": "FP32", "data": [-5.0]},
            {"name": "hours-per-week", "shape": [1], "datatype": "FP32", "data": [40.0]},
            {"name": "workclass", "shape": [1], "datatype": "BYTES", "data": ["Private"]},
            {"name": "sex", "shape": [1], "datatype": "BYTES", "data": ["Male"]},
        ]
        oip = server.client.post(INFER, json={"inputs": tensors})
        assert oip.status_code == 200, oip.text
        assert violations(server) == {
            ("1", "age", "out_of_range"): 3.0,
            ("1", "workclass", "unseen_category"): 2.0,
        }
        # The log keeps which of a request's rows were served outside the contract.
        expected = {
            far.headers["X-Request-Id"]: [["age"]],
            new.headers["X-Request-Id"]: [["workclass"], None, ["age", "workclass"]],
            missing.headers["X-Request-Id"]: [None],  # missing values are not violations
            oip.headers["X-Request-Id"]: [["age"]],
        }
        wait_until(lambda: logged_violations(log, expected) == expected, "the rows in the log",
                   seen=lambda: logged_violations(log, expected))  # fmt: skip
        table = read_prediction_log(str(log), NAME)
        assert "contract_violations" not in feature_table(table).column_names

        # Version 2 carries its declared schema in the registry: that one applies.
        reg.deploy(NAME, production=2)
        wait_until(lambda: far_version(server) == "2", "version 2 to answer",
                   seen=lambda: far_version(server))  # fmt: skip
        status = server.client.get("/admin/status", headers=TOKEN).json()["models"][0]
        assert status["contracts"]["2"]["source"] == "schema"
        assert status["contracts"]["2"]["domains"] == {"workclass": 2}
        server.client.post(PREDICT, json={"instances": [row(age=95.0)]})
        assert violations(server)[("2", "age", "out_of_range")] == 1.0
    reg.close()


def logged_violations(log: Path, requests: dict[str, Any]) -> dict[str, list[list[str] | None]]:
    """The ``contract_violations`` of the logged rows of ``requests``, per request id."""
    if not log.exists() or not any(log.rglob("*.parquet")):
        return {}
    table = read_prediction_log(str(log), NAME)
    found: dict[str, list[list[str] | None]] = {}
    for rid, flags in zip(
        table["request_id"].to_pylist(), table["contract_violations"].to_pylist(), strict=True
    ):
        if rid in requests:
            found.setdefault(rid, []).append(None if flags is None else sorted(flags))
    return found


def far_version(server: ServerThread) -> str:
    res = server.client.post(PREDICT, json={"instances": [row()]})
    return str(res.headers.get("X-Model-Version"))


# -- a strict server: every policy set to refuse ---------------------------------------------
STRICT = FAST.model_copy(
    update={
        "out_of_range": "reject",
        "unseen_category": "reject",
        "nan_policy": "reject",
        "infinity_policy": "missing",
    }
)


@pytest.fixture(scope="module")
def strict(model_dirs: dict[str, Path]) -> Iterator[ServerThread]:
    source = DirectorySource(model_dirs["a"], NAME, schema=declared_schema())
    with ServerThread(build_app([source], STRICT)) as running:
        running.wait_ready()
        yield running


def raw(server: ServerThread, path: str, body: bytes) -> httpx.Response:
    return server.client.post(path, content=body)


def test_reject_policies_answer_400_naming_the_input(strict: ServerThread) -> None:
    res = strict.client.post(PREDICT, json={"instances": [row(), row(age=140.0)]})
    assert res.status_code == 400
    error = res.json()["error"]
    assert "'age'" in error and "140" in error and "[17, 90]" in error
    res = strict.client.post(PREDICT, json={"instances": [row(workclass="Never-seen")]})
    assert res.status_code == 400 and "'workclass'" in res.json()["error"]
    assert "Never-seen" in res.json()["error"]
    assert strict.client.post(PREDICT, json={"instances": [row(sex="x")]}).status_code == 200
    assert violations(strict)[("1", "age", "out_of_range")] == 1.0

    nan = b'{"instances": [{"age": NaN, "hours-per-week": 1, "workclass": "", "sex": ""}]}'
    res = raw(strict, PREDICT, nan)
    assert res.status_code == 400 and "nan_policy" in res.json()["error"]
    assert "instances.age[0]" in res.json()["error"]
    # infinity_policy = "missing": Infinity is served as a missing value, like null.
    inf = b'{"instances": [{"age": 30, "hours-per-week": -Infinity, "workclass": "", "sex": ""}]}'
    with_inf = raw(strict, PREDICT, inf)
    assert with_inf.status_code == 200, with_inf.text
    missing = row(age=30.0, hours=None, workclass="", sex="")  # type: ignore[arg-type]
    null = strict.client.post(PREDICT, json={"instances": [missing]})
    assert with_inf.json()["predictions"] == null.json()["predictions"]
    binary_nan = np.array([math.nan], "<f4").tobytes()
    header = orjson.dumps(
        {
            "inputs": [
                {"name": "age", "shape": [1], "datatype": "FP32",
                 "parameters": {"binary_data_size": 4}},
                {"name": "hours-per-week", "shape": [1], "datatype": "FP32", "data": [1.0]},
                {"name": "workclass", "shape": [1], "datatype": "BYTES", "data": [""]},
                {"name": "sex", "shape": [1], "datatype": "BYTES", "data": [""]},
            ]
        }
    )  # fmt: skip
    res = strict.client.post(
        INFER,
        content=header + binary_nan,
        headers={"Inference-Header-Content-Length": str(len(header))},
    )
    assert res.status_code == 400 and "nan_policy" in res.json()["error"]


def test_default_policy_refuses_infinity_and_means_missing_by_nan(
    model_dirs: dict[str, Path],
) -> None:
    cfg = ServingConfig()
    assert (cfg.out_of_range, cfg.unseen_category) == ("serve", "serve")
    assert (cfg.nan_policy, cfg.infinity_policy, cfg.contract_checks) == ("missing", "reject", True)
    huge = b'{"instances": [{"age": 1e400, "hours-per-week": 1, "workclass": "", "sex": ""}]}'
    source = DirectorySource(model_dirs["a"], NAME, schema=declared_schema())
    off = FAST.model_copy(update={"contract_checks": False, "out_of_range": "reject"})
    with ServerThread(build_app([source], off)) as server:
        server.wait_ready()
        res = raw(server, PREDICT, huge)
        assert res.status_code == 400 and "Infinity" in res.json()["error"], res.text
        # contract_checks = false: the schema is not consulted at all.
        assert server.client.post(PREDICT, json={"instances": [row(age=500.0)]}).status_code == 200
        assert violations(server) == {}


# -- no client input can produce a 500 --------------------------------------------------------
NAMES = ["age", "hours-per-week", "workclass", "sex", "x", "instances", "inputs", "data"]
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([1e39, -3.5e38, 17.0, 90.0, 1e-45, 2**63, -(2**63) - 1])
    | st.text(max_size=8)
    | st.sampled_from(["Private", "Self-emp", "\u00e9\u4e2d\U0001f600", "\x00", " "])
)
VALUES = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(NAMES), children, max_size=4)
    ),
    max_leaves=16,
)
NUMBERS = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(-200, 200),
    st.none(),
    st.just(10**310),  # beyond any double, next to floats in the same column
)
TEXT = st.one_of(st.sampled_from(["Private", "Self-emp", "Never-seen", ""]), st.text(max_size=8))
# TF Serving's binary string encoding: good, not UTF-8 underneath, not base64, not a string.
B64 = st.one_of(
    st.text(max_size=8).map(lambda t: {"b64": base64.b64encode(t.encode()).decode()}),
    st.binary(max_size=8).map(lambda b: {"b64": base64.b64encode(b).decode()}),
    st.sampled_from([{"b64": "!!"}, {"b64": "QQ"}, {"b64": 3}, {"b64": None}, {"b64": "", "x": 1}]),
)


def mostly(good: st.SearchStrategy[Any], odds: int = 6) -> st.SearchStrategy[Any]:
    """``good`` mostly (to reach conversion, the contract and the model), else anything."""
    return st.integers(0, odds).flatmap(lambda k: VALUES if k == 0 else good)


NUMERIC_VALUE = mostly(NUMBERS)
STRING_VALUE = mostly(TEXT | st.none() | B64)
TYPED_ROW = st.fixed_dictionaries(
    {
        "age": NUMERIC_VALUE,
        "hours-per-week": NUMERIC_VALUE,
        "workclass": STRING_VALUE,
        "sex": STRING_VALUE,
    }
)
COLUMNS = ["age", "hours-per-week", "workclass", "sex"]


@st.composite
def columnar(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(0, 4))
    out: dict[str, Any] = {}
    for name in COLUMNS:
        value = NUMERIC_VALUE if name in ("age", "hours-per-week") else STRING_VALUE
        size = draw(st.sampled_from([n, n, n, n + 1]))  # now and then inconsistent lengths
        out[name] = draw(mostly(st.lists(value, min_size=size, max_size=size)))
    return out


@st.composite
def v2_request(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(0, 4))
    tensors = []
    for name in draw(st.permutations(COLUMNS)):
        numeric = name in ("age", "hours-per-week")
        good = "FP32" if numeric else "BYTES"
        datatype = draw(
            st.sampled_from(
                [good] * 8 + ["FP64", "INT64", "BYTES", "BOOL", "FP16", ["FP32"], {"t": "FP32"}, 1]
            )
        )
        shape = draw(mostly(st.sampled_from([[n]] * 6 + [[n, 1], [], [n + 1], [-1], [1, n]])))
        value = NUMERIC_VALUE if numeric else STRING_VALUE
        data = draw(mostly(st.lists(value, min_size=n, max_size=n)))
        tensors.append({"name": name, "shape": shape, "datatype": datatype, "data": data})
    return {"inputs": tensors[: draw(st.integers(len(tensors) - 1, len(tensors)))]}


BODIES = st.one_of(
    st.lists(TYPED_ROW, min_size=1, max_size=4).map(lambda r: ("tf", {"instances": r})),
    st.lists(TYPED_ROW, min_size=1, max_size=4).map(lambda r: ("tf", {"instances": r})),
    st.lists(TYPED_ROW | VALUES, max_size=4).map(lambda r: ("tf", {"instances": r})),
    columnar().map(lambda c: ("tf", {"inputs": c})),
    v2_request().map(lambda b: ("v2", b)),
    v2_request().map(lambda b: ("v2", b)),
    VALUES.map(lambda v: ("tf", v)),
    VALUES.map(lambda v: ("v2", v)),
    st.binary(max_size=64).map(lambda b: ("raw", b)),
    st.integers(1, 3000).map(lambda d: ("raw", b'{"instances": ' + b"[" * d + b"]" * d + b"}")),
    st.integers(1, 3000).map(lambda d: ("raw", b'{"inputs": ' + b'{"a":' * d + b"1" + b"}" * d)),
)
CONTENT_TYPES = st.sampled_from(
    [
        "application/json",
        "text/plain",
        "application/x-www-form-urlencoded",
        "",
        "application/json; charset=latin-1",
    ]
)
LITERALS = [
    b"NaN",
    b"Infinity",
    b"-Infinity",
    b"1e999",
    b"99999999999999999999999999",
    b'"\\ud800"',
]


@pytest.mark.parametrize("which", ["strict", "server"])
@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    body=BODIES,
    literal=st.sampled_from(LITERALS),
    splice=st.booleans(),
    twice=st.sampled_from([b"", b'"age": 1, ', b'"instances": [], ', b'"inputs": 0, ']),
    content_type=CONTENT_TYPES,
)
def test_no_client_input_produces_a_500(
    request: pytest.FixtureRequest,
    which: str,
    body: tuple[str, Any],
    literal: bytes,
    splice: bool,
    twice: bytes,
    content_type: str,
) -> None:
    """Random and near-valid bodies against a strict server and a default one (no contract):
    non-standard literals, keys given twice, b64 strings, deep nesting, raw bytes."""
    strict: ServerThread = request.getfixturevalue(which)
    kind, value = body
    if kind == "raw":
        content = value
    else:
        content = json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")
        if splice and b"null" in content:
            content = content.replace(b"null", literal, 1)  # the non-standard literals
        if twice and content.startswith(b'{"'):
            content = b"{" + twice + content[1:]  # perhaps a key the object has already
    paths = [INFER] if kind == "v2" else [PREDICT] if kind == "tf" else [PREDICT, INFER]
    for path in paths:
        headers = {"content-type": content_type} if content_type else {}
        res = strict.client.post(path, content=content, headers=headers)
        assert res.status_code < 500, (content, res.text)
        if res.status_code != 200:
            error = res.json()["error"]
            assert isinstance(error, str) and len(error) > 10, error
            assert "internal error" not in error


# -- the contract's other columns --------------------------------------------------------
def test_a_row_may_carry_the_tables_known_non_feature_columns(
    model_dirs: dict[str, Path],
) -> None:
    """A client sends a row of the table as it is: the label, an excluded id (an int64
    above 2^53) and the timestamp are columns of the contract, so they are taken and
    ignored, as ``mooring score`` ignores them; a field no column has is still refused."""
    schema = Schema(
        columns={
            **declared_schema().columns,
            "Kunden ID": ColumnSchema("Kunden ID", "integer"),
            "Zeitpunkt": ColumnSchema("Zeitpunkt", "timestamp"),
            "class": ColumnSchema("class", "string", domain=["<=50K", ">50K"]),
        }
    )
    source = DirectorySource(model_dirs["a"], NAME, schema=schema)
    extras = {"Kunden ID": 2**53 + 1, "Zeitpunkt": "2026-11-27T08:00:00Z", "class": ">50K"}
    with ServerThread(build_app([source], FAST)) as server:
        server.wait_ready()
        plain = server.client.post(PREDICT, json={"instances": [row(), row(age=70.0)]})
        assert plain.status_code == 200, plain.text
        for rows in ([{**row(), **extras}, {**row(age=70.0), **extras}], [{**row(), **extras}]):
            carried = server.client.post(PREDICT, json={"instances": rows})
            assert carried.status_code == 200, carried.text
            expected = plain.json()["predictions"][: len(rows)]
            assert carried.json()["predictions"] == expected
        columnar = {k: [v] for k, v in {**row(), **extras}.items()}
        answer = server.client.post(PREDICT, json={"inputs": columnar})
        assert answer.status_code == 200, answer.text
        typo = server.client.post(PREDICT, json={"instances": [{**row(), "agee": 3}]})
        assert typo.status_code == 400
        assert "unexpected field 'agee'" in typo.json()["error"], typo.text
        # The Open Inference Protocol names each tensor: a known column's is dropped.
        tensors = [
            {"name": "Zeitpunkt", "shape": [1], "datatype": "BYTES", "data": ["2026-11-27"]},
            {"name": "age", "shape": [1], "datatype": "FP32", "data": [39.0]},
            {"name": "hours-per-week", "shape": [1], "datatype": "FP32", "data": [40.0]},
            {"name": "workclass", "shape": [1], "datatype": "BYTES", "data": ["Private"]},
            {"name": "sex", "shape": [1], "datatype": "BYTES", "data": ["Male"]},
        ]
        carried = server.client.post(INFER, json={"inputs": tensors})
        plain = server.client.post(INFER, json={"inputs": tensors[1:]})
        assert carried.status_code == plain.status_code == 200, carried.text
        assert carried.json()["outputs"] == plain.json()["outputs"]
        tensors[0]["name"] = "Zeitpunkt2"
        refused = server.client.post(INFER, json={"inputs": tensors})
        assert refused.status_code == 400
        assert "unexpected input 'Zeitpunkt2'" in refused.json()["error"]
    contract = InputContract.from_schema(schema, INPUTS, source="schema")
    assert contract.known == {"Kunden ID", "Zeitpunkt", "class"}


def test_a_boolean_input_takes_the_spellings_the_contract_reads_as_booleans(
    tmp_path: Path,
) -> None:
    """A boolean column is trained as the text "true"/"false"; a client that sends the
    file's own "True", or "yes", gets the same answer as for "true"; "banana" is a value
    outside the contract (counted, and served by default)."""
    folder = build_flag_model_dir(tmp_path / "flag")
    schema = Schema(
        columns={
            **declared_schema().columns,
            "sex": ColumnSchema("sex", "boolean", domain=["false", "true"]),
        }
    )
    source = DirectorySource(folder, NAME, schema=schema)
    with ServerThread(build_app([source], FAST)) as server:
        server.wait_ready()

        def answer(sex: Any) -> Any:
            res = server.client.post(PREDICT, json={"instances": [row(sex=sex)]})
            assert res.status_code == 200, res.text
            return res.json()["predictions"]

        assert answer("true") != answer("false")
        for spelled in ("True", "TRUE", "yes", "1", "t", True):
            assert answer(spelled) == answer("true"), spelled
        for spelled in ("False", "no", "0", False):
            assert answer(spelled) == answer("false"), spelled

        def infer(sex: str) -> Any:
            tensors = [
                {"name": "age", "shape": [1], "datatype": "FP32", "data": [39.0]},
                {"name": "hours-per-week", "shape": [1], "datatype": "FP32", "data": [40.0]},
                {"name": "workclass", "shape": [1], "datatype": "BYTES", "data": ["Private"]},
                {"name": "sex", "shape": [1], "datatype": "BYTES", "data": [sex]},
            ]
            res = server.client.post(INFER, json={"inputs": tensors})
            assert res.status_code == 200, res.text
            return res.json()["outputs"]

        assert infer("Yes") == infer("true") != infer("No")
        answer("banana")
        assert violations(server) == {("1", "sex", "unseen_category"): 1.0}


def test_a_critical_column_refuses_values_outside_the_contract(
    model_dirs: dict[str, Path],
) -> None:
    """``[contract] critical``: the column whose anomalies fail a run refuses an
    out-of-contract value at the door too (400 naming it), while the other columns'
    violations are served and counted, as the default policy says."""
    columns = declared_schema().columns
    columns["age"] = ColumnSchema("age", "integer", min=17, max=90, critical=True)
    source = DirectorySource(model_dirs["a"], NAME, schema=Schema(columns=columns))
    with ServerThread(build_app([source], FAST)) as server:
        server.wait_ready()
        refused = server.client.post(PREDICT, json={"instances": [row(age=150.0)]})
        assert refused.status_code == 400, refused.text
        said = refused.json()["error"]
        assert "input 'age': 1 value(s) outside the range [17, 90]" in said, said
        assert "(a critical column)" in said and "[contract] critical" in said, said
        served = server.client.post(PREDICT, json={"instances": [row(hours=140.0)]})
        assert served.status_code == 200, served.text
        assert server.client.post(PREDICT, json={"instances": [row(age=None)]}).status_code == 200
        assert violations(server) == {
            ("1", "age", "out_of_range"): 1.0,
            ("1", "hours-per-week", "out_of_range"): 1.0,
        }
