"""Several models in one server: two projects in one ``mooring serve``, every model of a registry.

Each model keeps its own versions, batcher, contract, metrics labels and prediction
log folder; a hot swap of one never fails a request of the other, over REST or gRPC.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import grpc
import httpx
import pyarrow.parquet as pq
import pytest

from mooring.config import load_config
from mooring.errors import UsageError
from mooring.formats._predictions import read_prediction_log
from mooring.formats._version_record import VersionRecord
from mooring.registry import Registry
from mooring.registry._judged import register_judged
from mooring.serving import create_app
from tests._support.cli import run_mooring
from tests._support.grpc import channel, predict_request, prediction_stub
from tests._support.serve_process import ServeProcess
from tests._support.server import BLESSED, LINEAGE, ServerThread
from tests._support.serving_model import row
from tests._support.waiting import PATIENCE, wait_until


def _project(folder: Path, name: str, **serving: Any) -> Path:
    """A project folder whose mooring.toml names ``name`` (ServeProcess writes its own)."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f'[project]\nname = "{name}"\n[data]\ntrain = "train.csv"\n[serving]']
    lines += [f"{key} = {value!r}" for key, value in serving.items()]
    path = folder / "mooring.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _register(config: Path, name: str, *dirs: Path, production: int) -> None:
    registry = Registry.from_config(load_config(config))
    try:
        for folder in dirs:
            register_judged(
                registry,
                name=name,
                artifact_dir=folder,
                record=VersionRecord(lineage=LINEAGE, gate=BLESSED),
            )
        registry.deploy(name, production=production)
    finally:
        registry.close()


def _log_models(folder: Path) -> set[str]:
    """Every model name in a prediction log folder's files."""
    names: set[str] = set()
    for path in folder.rglob("*.parquet"):
        names.update(pq.read_table(path).column("model").to_pylist())
    return names


class _Traffic(threading.Thread):
    """One client sending ``alpha`` and ``beta`` requests in turn until stopped (REST, or
    TF Serving's gRPC ``Predict`` with ``grpc_target``)."""

    def __init__(self, url: str, grpc_target: str | None = None) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.grpc_target = grpc_target
        self.stop = threading.Event()
        self.answers: list[tuple[str, int, str | None]] = []  # (model, status, version)

    def run(self) -> None:
        if self.grpc_target is not None:
            self._run_grpc(self.grpc_target)
            return
        body = {"instances": [row()]}
        with httpx.Client(base_url=self.url, timeout=PATIENCE) as client:
            while not self.stop.is_set():
                for model in ("alpha", "beta"):
                    try:
                        r = client.post(f"/v1/models/{model}:predict", json=body)
                        self.answers.append(
                            (model, r.status_code, r.headers.get("x-model-version"))
                        )
                    except httpx.TransportError as exc:
                        self.answers.append((model, 0, type(exc).__name__))

    def _run_grpc(self, target: str) -> None:
        with channel(target) as opened:
            stub = prediction_stub(opened)
            while not self.stop.is_set():
                for model in ("alpha", "beta"):
                    try:
                        request = predict_request([row()], name=model)
                        reply = stub.Predict(request, timeout=PATIENCE)
                        version = str(reply.model_spec.version.value)
                        self.answers.append((model, 200, version))
                    except grpc.RpcError as exc:
                        self.answers.append((model, 0, str(exc.code())))

    def seen(self, model: str) -> list[str | None]:
        return [v for m, _, v in list(self.answers) if m == model]


def test_two_projects_in_one_process_swap_one_while_the_other_takes_traffic(
    tmp_path: Path, model_dirs: dict[str, Path]
) -> None:
    beta_config = _project(tmp_path / "beta", "beta")
    # ServeProcess writes alpha's mooring.toml; write it once first to register versions.
    alpha_folder = tmp_path / "alpha"
    alpha_options: dict[str, Any] = {
        "poll_interval_s": 0.1,
        "log_sample_rate": 1.0,
        "log_flush_s": 0.2,
        "deadline_ms": PATIENCE * 1000,  # no request may pass its deadline during the swap
    }
    alpha_config = _project(alpha_folder, "alpha", **alpha_options)
    _register(alpha_config, "alpha", model_dirs["a"], model_dirs["b"], production=1)
    _register(beta_config, "beta", model_dirs["b"], production=1)

    serve = ServeProcess(
        alpha_folder,
        None,
        name="alpha",
        # Each project also gets its own in-process monitor, in its own registry.
        args=["--config", str(beta_config), "--monitor", "--monitor-interval", "1s"],
        grpc=True,
        **alpha_options,
    )
    with serve:
        traffic = _Traffic(serve.url)
        over_grpc = _Traffic(serve.url, serve.grpc_target)
        traffic.start()
        over_grpc.start()
        try:
            wait_until(
                lambda: len(traffic.seen("beta")) >= 20 and len(over_grpc.seen("beta")) >= 20,
                "20 answers from beta over REST and over gRPC",
                seen=lambda: (len(traffic.answers), len(over_grpc.answers)),
            )
            registry = Registry.from_config(load_config(alpha_config))
            try:
                registry.deploy("alpha", production=2, reason="hot swap under traffic")
            finally:
                registry.close()
            for client in (traffic, over_grpc):
                _until_swapped(client)
        finally:
            for client in (traffic, over_grpc):
                client.stop.set()
                client.join(timeout=PATIENCE)
        status = httpx.get(f"{serve.url}/v1/models/beta").json()
        metadata = httpx.get(f"{serve.url}/v2/models/alpha").json()
        metrics = httpx.get(f"{serve.url}/metrics").text

    for client in (traffic, over_grpc):  # REST and gRPC alike
        failed = [a for a in client.answers if a[1] != 200]
        assert failed == []  # zero failed requests, on either model, through the swap
        alpha = client.seen("alpha")
        assert alpha[0] == "1" and alpha[-1] == "2"
        assert alpha == sorted(alpha, key=str)  # one client in turn: once on 2, never back
        assert set(client.seen("beta")) == {"1"}  # the other project's model never moved
    assert status["model_version_status"][0]["version"] == "1"
    assert metadata["name"] == "alpha" and metadata["versions"] == ["2"]
    for model in ("alpha", "beta"):
        assert f'mooring_requests_total{{model="{model}"' in metrics
    # Each model's rows went to its own project's log, where that project's monitor reads.
    alpha_log = alpha_folder / ".mooring" / "predictions"
    beta_log = tmp_path / "beta" / ".mooring" / "predictions"
    assert _log_models(alpha_log) == {"alpha"}
    assert _log_models(beta_log) == {"beta"}
    logged = read_prediction_log(str(beta_log), "beta")
    assert 0 < logged.num_rows <= len(traffic.seen("beta")) + len(over_grpc.seen("beta"))


def _until_swapped(client: _Traffic) -> None:
    """Wait for alpha's version 2 to answer ``client``, then for 40 more answers."""
    wait_until(lambda: client.seen("alpha")[-1:] == ["2"], "alpha's version 2 to answer",
               seen=lambda: client.answers[-4:])  # fmt: skip
    swapped_at = len(client.answers)
    wait_until(lambda: len(client.answers) >= swapped_at + 40, "40 answers after the swap",
               seen=lambda: len(client.answers))  # fmt: skip


def test_all_models_serves_every_model_with_a_production_version(
    tmp_path: Path, model_dirs: dict[str, Path]
) -> None:
    config = _project(tmp_path / "shop", "churn", poll_interval_s=0.1, warmup_requests=1)
    _register(config, "churn", model_dirs["a"], production=1)
    _register(config, "upsell", model_dirs["b"], production=1)
    registry = Registry.from_config(load_config(config))
    register_judged(
        registry,
        name="draft",
        artifact_dir=model_dirs["a"],
        record=VersionRecord(lineage=LINEAGE, gate=BLESSED),
    )
    try:
        app = create_app(load_config(config), registry=registry, all_models=True)
        assert sorted(app.state.mooring.managers) == ["churn", "upsell"]  # not "draft"
        with ServerThread(app) as server:
            server.wait_ready()
            for model in ("churn", "upsell"):
                r = server.client.post(f"/v1/models/{model}:predict", json={"instances": [row()]})
                assert r.status_code == 200, r.text
            r = server.client.post("/v1/models/draft:predict", json={"instances": [row()]})
            assert r.status_code == 404
            assert "served models: churn, upsell" in r.json()["error"]
    finally:
        registry.close()


def test_a_model_named_twice_or_no_production_anywhere_is_a_clear_error(tmp_path: Path) -> None:
    first = load_config(_project(tmp_path / "one", "income"))
    second = load_config(_project(tmp_path / "two", "income"))
    with pytest.raises(UsageError, match="model 'income' is named twice"):
        create_app(first, projects=[second])
    with pytest.raises(UsageError, match="no model in the registry of project 'income' has a"):
        create_app(first, all_models=True)


def test_cli_refuses_model_dir_with_several_projects(tmp_path: Path) -> None:
    one = _project(tmp_path / "one", "alpha")
    two = _project(tmp_path / "two", "beta")
    out = run_mooring("serve", "-c", str(one), "-c", str(two), "--model-dir", str(tmp_path))
    assert out.returncode == 2
    assert "--model-dir serves one exported folder" in out.stderr
    assert "Traceback" not in out.stderr
