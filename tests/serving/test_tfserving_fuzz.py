"""Hypothesis against a real server's TF Serving REST routes: every answer is below 500,
and every 4xx is a JSON ``{"error": ...}`` that names what was wrong.

Generated: the URL (model name, ``/versions/N`` with odd digits, ``/labels/L``, the
verbs ``:predict``, ``:classify``, ``:regress``, ``/metadata`` and unknown ones), the
method, the content type, and the body: rows and columns that are nearly right, values
of every JSON kind, TF Serving's ``{"b64": ...}`` (good, not base64, not UTF-8), keys
given twice, numbers beyond a double (as integers and as ``1e400``), the ``NaN`` /
``Infinity`` literals, deep nesting, bytes that are not UTF-8, and v2 tensors whose
``datatype`` is a list or an object (sent to ``:predict`` and to ``/v2/.../infer``).
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any
from urllib.parse import quote

import httpx
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests._support.server import NAME, ServerThread

INPUTS = ("age", "hours-per-week", "workclass", "sex")
NUMERIC = ("age", "hours-per-week")
# What an error message names: the field it is about ("instances: ..."), a quoted value
# or key, a field path (instances[0], inputs.age), the body, a URL, a header, a setting.
NAMES_SOMETHING = re.compile(
    r"""^[\w.\[\]-]+: |['"]|\w\[\d+\]|\w\.\w|\bbody\b|/v[12]/|Inference-Header|\[serving\]"""
)

# -- the URL ---------------------------------------------------------------------------------
SEGMENT = st.one_of(
    st.sampled_from(["1", "1", "production", "canary", "7", "0", "01", "-1", "1.0", "9" * 12]),
    st.sampled_from(["%C2%B3", "%D9%A1", "", "%00", "x"]),  # "³", an Arabic-Indic 1
    st.text(min_size=1, max_size=6).map(lambda t: quote(t, safe="%:@")),  # as a client sends
)
VERBS = [":predict"] * 6 + [":classify", ":regress", "/metadata", "/metadata", "", ":x", "/y"]


@st.composite
def paths(draw: st.DrawFn) -> str:
    """Mostly the served model's predict URLs, else anything the grammar comes near."""
    good = st.sampled_from(
        [f"/v1/models/{NAME}:predict"] * 6
        + [f"/v1/models/{NAME}/versions/1:predict", f"/v1/models/{NAME}/labels/production:predict"]
        + [f"/v1/models/{NAME}", f"/v1/models/{NAME}/metadata", f"/v1/models/{NAME}/versions/1"]
    )
    if draw(st.integers(0, 9)) < 7:
        return draw(good)
    name = draw(st.sampled_from([NAME] * 4 + ["other", "%00", "a:b", "%C3%A4"]))
    where = draw(st.sampled_from(["", "", "/versions/{}", "/labels/{}", "/versions/{}/labels/{}"]))
    where = where.format(*(draw(SEGMENT) for _ in range(where.count("{}"))))
    return f"/v1/models/{name}{where}{draw(st.sampled_from(VERBS))}"


# -- the body --------------------------------------------------------------------------------
HUGE = 10**310  # an integer no double holds; json writes it, orjson would refuse
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([HUGE, -HUGE, 3.5e38, 1e-45, 2**63]),
    st.text(max_size=6),
)
ANY = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from([*INPUTS, "b64", "instances", "x"]), inner, max_size=3)
    ),
    max_leaves=10,
)
B64 = st.one_of(
    st.text(max_size=6).map(lambda t: {"b64": base64.b64encode(t.encode()).decode()}),
    st.binary(max_size=6).map(lambda b: {"b64": base64.b64encode(b).decode()}),
    st.sampled_from([{"b64": "!!"}, {"b64": "QQ"}, {"b64": 1}, {"b64": ["QQ=="]}]),
)
NUMBER = st.one_of(st.floats(-100, 100), st.integers(-(10**6), 10**6), st.none(), st.just(HUGE))
TEXT = st.one_of(st.sampled_from(["Private", "Male", ""]), st.text(max_size=6), st.none(), B64)


def value(name: str) -> st.SearchStrategy[Any]:
    """Mostly a value of the input's kind, now and then anything."""
    good = NUMBER if name in NUMERIC else TEXT
    return st.one_of(good, good, good, ANY)


ROW = st.fixed_dictionaries({name: value(name) for name in INPUTS})
GOOD_B64 = st.sampled_from(["Private", "Male", "", "é"]).map(
    lambda t: {"b64": base64.b64encode(t.encode()).decode()}
)
CLEAN_ROW = st.fixed_dictionaries(
    {
        name: st.one_of(st.floats(0, 99), st.integers(0, 99), st.none())
        if name in NUMERIC
        else st.one_of(st.sampled_from(["Private", "Male", ""]), st.none(), GOOD_B64)
        for name in INPUTS
    }
)


@st.composite
def columns(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(0, 3))
    return {
        name: draw(st.lists(value(name), min_size=n, max_size=draw(st.sampled_from([n, n, n + 1]))))
        for name in INPUTS
    }


@st.composite
def tensors(draw: st.DrawFn) -> dict[str, Any]:
    """A v2 body, its datatypes now and then a list, an object or a number."""
    odd = st.sampled_from([["FP32"], {"type": "FP32"}, 32, None, "FP16", "BOOL"])
    return {
        "inputs": [
            {
                "name": name,
                "shape": [1],
                "datatype": draw(st.one_of(st.just("FP32" if name in NUMERIC else "BYTES"), odd)),
                "data": [draw(value(name))],
            }
            for name in INPUTS
        ]
    }


BODIES = st.one_of(
    st.lists(CLEAN_ROW, min_size=1, max_size=3).map(lambda rows: {"instances": rows}),
    st.lists(CLEAN_ROW, min_size=1, max_size=3).map(
        lambda rows: {"inputs": {name: [r[name] for r in rows] for name in INPUTS}}
    ),
    st.lists(ROW, min_size=1, max_size=3).map(lambda rows: {"instances": rows}),
    st.lists(ROW, min_size=1, max_size=3).map(lambda rows: {"instances": rows}),
    columns().map(lambda cols: {"inputs": cols}),
    st.fixed_dictionaries({"instances": ANY}),
    st.fixed_dictionaries({"inputs": ANY}),
    tensors(),
    ANY,
)


def encoded(body: Any, twice: str | None, literal: bytes | None) -> bytes:
    """JSON text of ``body`` (``json``: it writes integers of any size), perhaps with a key
    written twice at its start and a ``null`` replaced by a non-standard literal."""
    text = json.dumps(body).encode()
    if twice is not None and text.startswith(b'{"'):
        text = b'{"' + twice.encode() + b'": 1, ' + text[1:]
    if literal is not None and b"null" in text:
        text = text.replace(b"null", literal, 1)
    return text


RAW = st.one_of(
    st.binary(max_size=40),  # mostly not JSON, often not UTF-8
    st.sampled_from([b'{"instances": [{"age": "\xff\xfe"}]}', b'{"\xc3\x28": 1}', b"", b"{"]),
    st.integers(1, 2500).map(lambda d: b'{"instances": ' + b"[" * d + b"]" * d + b"}"),
    st.integers(1, 2500).map(lambda d: b'{"inputs": ' + b'{"a": ' * d + b"1" + b"}" * d + b"}"),
)
CONTENT_TYPES = st.sampled_from(
    ["application/json"] * 4 + ["", "text/plain", "application/octet-stream", "multipart/x"]
)


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, str, bytes, str]:
    path = draw(paths())
    usual = "POST" if ":predict" in path else "GET"
    method = draw(st.sampled_from([usual] * 12 + ["GET", "POST", "PUT", "DELETE"]))
    if draw(st.integers(0, 5)) == 0:
        content = draw(RAW)
    else:
        content = encoded(
            draw(BODIES),
            draw(st.sampled_from([None] * 6 + ["instances", "inputs", "signature_name"])),
            draw(st.sampled_from([None] * 6 + [b"NaN", b"-Infinity", b"1e400", b"1" * 400])),
        )
    return method, path, content, draw(CONTENT_TYPES)


def check(res: httpx.Response, what: Any) -> None:
    assert res.status_code < 500, (what, res.status_code, res.text)
    if res.status_code >= 400:
        assert res.headers["content-type"].startswith("application/json"), (what, res.headers)
        error = res.json()["error"]
        assert isinstance(error, str) and "internal error" not in error, (what, error)
        if res.status_code == 405:  # names the method; the Allow header says which one to use
            assert error.split()[0] in ("GET", "POST", "PUT", "DELETE"), (what, error)
            assert res.headers.get("allow"), (what, res.headers)
        else:
            assert len(error) > 15 and NAMES_SOMETHING.search(error), (what, error)


@settings(max_examples=600, deadline=None, suppress_health_check=list(HealthCheck))
@given(request=requests())
def test_the_tf_serving_routes_never_answer_5xx_and_name_what_is_wrong(
    server: ServerThread, request: tuple[str, str, bytes, str]
) -> None:
    method, path, content, content_type = request
    headers = {"content-type": content_type} if content_type else {}
    res = server.client.request(method, path, content=content, headers=headers)
    event(f"{method} {'predict' if path.endswith(':predict') else 'other'} -> {res.status_code}")
    check(res, request)
    if ":predict" in path and res.status_code == 200:
        answer = res.json()
        assert "predictions" in answer or "outputs" in answer, answer


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=tensors(), content_type=CONTENT_TYPES)
def test_v2_tensors_with_any_datatype_are_never_5xx(
    server: ServerThread, body: dict[str, Any], content_type: str
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    for path in (f"/v2/models/{NAME}/infer", f"/v1/models/{NAME}:predict"):
        content = json.dumps(body).encode()
        check(server.client.post(path, content=content, headers=headers), (path, body))
