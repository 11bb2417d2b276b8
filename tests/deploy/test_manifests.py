"""``mooring ops k8s``: the Kubernetes manifests and the server image it writes, checked
without a cluster or Docker.

The command writes the files the package holds, with the running version in them. The
manifests are validated against Kubernetes' own schemas, their references to each
other are resolved, the mooring.toml they mount is loaded by mooring, and every
``mooring`` command line they (and the Dockerfile) run is parsed by the real command.
Each checker is also shown a broken copy, to prove it can fail.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from mooring import __version__
from mooring.config import load_config
from mooring.errors import ConfigError
from mooring.registry._sql.engine import parse_url
from tests._support.deploy import (
    KUBERNETES_VERSION,
    DeployError,
    Dockerfile,
    Resource,
    build_args,
    check_build_context,
    check_dockerfile,
    check_mooring_argv,
    check_references,
    check_security,
    check_training_job,
    container_argv,
    expand_env,
    find,
    image_argv,
    install_run,
    load_manifests,
    mooring_options,
    mounted_file,
    mutated,
    option_value,
    pod_env,
    pod_labels,
    pod_spec,
    script_mooring_lines,
    validate_schema,
    write_deploy,
)
from tests._support.waiting import PATIENCE, wait_until

CONFIG_PATH = "/etc/mooring/mooring.toml"


@pytest.fixture(scope="module")
def deploy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder ``mooring ops k8s`` wrote."""
    return write_deploy(tmp_path_factory.mktemp("ops") / "deploy")


@pytest.fixture(scope="module")
def manifests(deploy: Path) -> list[Resource]:
    return load_manifests(deploy / "kubernetes")


@pytest.fixture(scope="module")
def docker(deploy: Path) -> Dockerfile:
    return Dockerfile.parse((deploy / "Dockerfile").read_text(encoding="utf-8"))


def config_text(resources: list[Resource]) -> str:
    text: str = find(resources, "ConfigMap", "mooring-config").doc["data"]["mooring.toml"]
    return text


def monitor_script(resources: list[Resource]) -> str:
    text: str = find(resources, "ConfigMap", "mooring-config").doc["data"]["monitor.sh"]
    return text


def load_config_home(resources: list[Resource]) -> str:
    """[project] home of the ConfigMap's mooring.toml (an absolute path)."""
    import tomllib

    home: str = tomllib.loads(config_text(resources))["project"]["home"]
    return home


def container(resources: list[Resource], kind: str, name: str) -> dict[str, Any]:
    pod = pod_spec(find(resources, kind, name))
    assert pod is not None
    first: dict[str, Any] = pod["containers"][0]
    return first


# --- the manifests as written ------------------------------------------------------------


def test_every_object_validates_against_the_kubernetes_schemas(
    manifests: list[Resource],
) -> None:
    import kubernetes_validate  # type: ignore[import-untyped]

    assert kubernetes_validate.latest_version() == KUBERNETES_VERSION
    kinds = {r.kind for r in manifests}
    assert kinds >= {
        "ConfigMap",
        "Secret",
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "StatefulSet",
        "PersistentVolumeClaim",
        "Job",
    }
    validate_schema(manifests)


def test_references_between_objects_resolve(manifests: list[Resource]) -> None:
    check_references(manifests)


def test_every_pod_runs_as_non_root_with_requests_and_limits(manifests: list[Resource]) -> None:
    check_security(manifests)


def test_kustomization_lists_every_manifest_but_the_jobs(
    deploy: Path, manifests: list[Resource]
) -> None:
    kubernetes = deploy / "kubernetes"
    kustomization = yaml.safe_load((kubernetes / "kustomization.yaml").read_text())
    listed = kustomization["resources"]
    files = {p.name for p in kubernetes.glob("*.yaml")} - {"kustomization.yaml"}
    assert sorted(listed) == sorted(files - {"score-job.yaml", "train-job.yaml"})
    images = {i["name"]: i["newTag"] for i in kustomization["images"]}
    assert set(images.values()) == {__version__}
    assert kustomization["labels"][0]["pairs"]["app.kubernetes.io/version"] == __version__
    for resource in manifests:
        pod = pod_spec(resource)
        for c in (pod or {}).get("containers", []):
            if "mooring" in c["image"]:
                name, tag = c["image"].rsplit(":", 1)
                assert name in images and tag == __version__


def test_the_configmap_holds_a_mooring_toml_that_mooring_loads(
    manifests: list[Resource], tmp_path: Path
) -> None:
    path = tmp_path / "mooring.toml"
    path.write_text(config_text(manifests), encoding="utf-8")
    cfg = load_config(path)
    assert cfg.project.home == "/var/lib/mooring"
    assert cfg.home == Path("/var/lib/mooring")
    assert cfg.project.registry is not None
    assert parse_url(cfg.project.registry).get_backend_name() == "postgresql"
    # Several replicas and one monitor share these: none may be a pod's local folder.
    assert cfg.project.artifacts is not None and cfg.project.artifacts.startswith("s3://")
    assert cfg.serving.log_url is not None and cfg.serving.log_url.startswith("s3://")
    assert cfg.monitoring.feedback_url is not None
    assert cfg.monitoring.feedback_url.startswith("s3://")
    assert cfg.serving.log_sample_rate > 0  # the monitor's drift checks read the log
    assert not cfg.monitoring.retrain.enabled  # a training run would start in the monitor pod


def test_server_deployment_probes_health_and_is_autoscaled(manifests: list[Resource]) -> None:
    server = container(manifests, "Deployment", "mooring-server")
    assert server["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert server["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert server["startupProbe"]["httpGet"]["path"] == "/v2/health/live"
    hpa = find(manifests, "HorizontalPodAutoscaler", "mooring-server").doc
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "mooring-server",
    }
    assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu"]
    assert hpa["spec"]["minReplicas"] >= 2
    sources = {s["secretRef"]["name"] for s in server["envFrom"]}
    assert {"mooring-object-store", "mooring-registry", "mooring-audit"} <= sources


def test_the_monitor_runs_once_and_is_never_autoscaled(manifests: list[Resource]) -> None:
    monitor = find(manifests, "Deployment", "mooring-monitor").doc
    assert monitor["spec"]["replicas"] == 1
    # A rolling update would run the old and the new monitor side by side for a while.
    assert monitor["spec"]["strategy"] == {"type": "Recreate"}
    targets = [
        r.doc["spec"]["scaleTargetRef"]["name"]
        for r in manifests
        if r.kind == "HorizontalPodAutoscaler"
    ]
    assert "mooring-monitor" not in targets


def test_secrets_written_are_placeholders(deploy: Path, manifests: list[Resource]) -> None:
    credentials = ("PASSWORD", "SECRET", "ACCESS_KEY", "AUDIT_KEY", "TOKEN")
    secrets = [r for r in manifests if r.kind == "Secret"]
    assert {s.name for s in secrets} == {
        "mooring-object-store",
        "mooring-registry",
        "mooring-audit",
    }
    for secret in secrets:
        assert "data" not in secret.doc  # nothing base64-encoded to hide a real value in
        text = (deploy / "kubernetes" / secret.file).read_text()
        assert "PLACEHOLDER" in text
        for key, value in secret.doc["stringData"].items():
            if any(word in key for word in credentials):
                assert value == "REPLACE-ME", f"{secret}: {key}"
    # mooring refuses an audit key under 16 characters: the placeholder cannot key a log.
    assert (
        len(find(manifests, "Secret", "mooring-audit").doc["stringData"]["MOORING_AUDIT_KEY"]) < 16
    )


def test_postgres_credentials_come_from_the_registry_secret(manifests: list[Resource]) -> None:
    postgres = container(manifests, "StatefulSet", "mooring-postgres")
    refs = {v["name"]: v["valueFrom"]["secretKeyRef"] for v in postgres["env"] if "valueFrom" in v}
    assert refs["POSTGRES_PASSWORD"] == {"name": "mooring-registry", "key": "PGPASSWORD"}
    registry = find(manifests, "Secret", "mooring-registry").doc["stringData"]
    assert registry["PGHOST"] == "mooring-postgres"
    assert find(manifests, "Service", "mooring-postgres").doc["spec"]["ports"][0]["port"] == int(
        registry["PGPORT"]
    )


# --- the command lines they run ------------------------------------------------------------


def test_the_image_runs_mooring_serve_on_the_exposed_ports(
    docker: Dockerfile, manifests: list[Resource]
) -> None:
    home = load_config_home(manifests)
    argv = check_dockerfile(docker, home=home, version=__version__)
    assert argv[:2] == ["mooring", "serve"]
    assert option_value(argv, "--config", "-c") == CONFIG_PATH
    assert docker.last("USER") == "10001:10001"
    pod = pod_spec(find(manifests, "Deployment", "mooring-server"))
    assert pod is not None
    assert pod["securityContext"]["runAsUser"] == 10001


def test_each_mooring_container_runs_a_real_command_on_the_mounted_config(
    docker: Dockerfile, manifests: list[Resource]
) -> None:
    entrypoint, cmd = image_argv(docker)
    seen = set()
    for resource in manifests:
        pod = pod_spec(resource)
        if pod is None:
            continue
        for c in pod["containers"]:
            if "mooring" not in c["image"]:
                continue
            argv = expand_env(container_argv(c, entrypoint, cmd), pod_env(c))
            if argv[0] == "/bin/sh":  # the monitor: mooring monitor inside a script
                script_path = argv[1]
                assert mounted_file(pod, c, script_path) == "monitor.sh"
                lines = script_mooring_lines(monitor_script(manifests))
                assert len(lines) == 1
                argv = lines[0]
            check_mooring_argv(argv)
            assert mounted_file(pod, c, option_value(argv, "--config", "-c") or "") == (
                "mooring.toml"
            )
            seen.add(argv[1])
            if argv[1] == "serve":
                ports = {p["name"]: p["containerPort"] for p in c["ports"]}
                assert option_value(argv, "--port") == str(ports["http"])
                assert option_value(argv, "--grpc-port") == str(ports["grpc"])
                assert option_value(argv, "--host") == "0.0.0.0"
            if argv[1] == "monitor":
                assert "--watch" in argv
            for mount in c["volumeMounts"]:
                if mount["name"] == "home":
                    assert mount["mountPath"] == "/var/lib/mooring"
    assert seen == {"serve", "monitor", "score", "train"}


def test_the_monitor_script_adds_one_metrics_url_per_server_pod(
    manifests: list[Resource],
) -> None:
    options = mooring_options("monitor")
    assert options is not None and "--metrics-url" in options
    script = monitor_script(manifests)
    assert '--metrics-url "http://${ip}:${SERVER_METRICS_PORT}/metrics"' in script
    monitor = container(manifests, "Deployment", "mooring-monitor")
    env = {v["name"]: v.get("value") for v in monitor["env"]}
    pods = find(manifests, "Service", env["SERVER_PODS"]).doc["spec"]
    assert pods["clusterIP"] == "None"
    assert [p["port"] for p in pods["ports"]] == [int(env["SERVER_METRICS_PORT"])]


def test_the_score_job_keeps_to_the_agreed_options(manifests: list[Resource]) -> None:
    job = container(manifests, "Job", "mooring-score")
    args = job["args"]
    assert args[0] == "score"
    given = {a for a in args if a.startswith("--")}
    assert given == {"--config", "--model", "--version", "--data", "--out", "--engine"}
    assert option_value(args, "--engine") == "local"
    options = mooring_options("score")
    if options is not None:  # once the command exists, its real options decide
        assert given <= options


def test_the_train_job_runs_one_indexed_pod_per_peer(manifests: list[Resource]) -> None:
    check_training_job(manifests, "mooring-train")
    job = find(manifests, "Job", "mooring-train")
    spec = job.doc["spec"]
    assert spec["completionMode"] == "Indexed"
    assert spec["completions"] == spec["parallelism"] == 2
    assert 1 <= spec["backoffLimit"] <= 6
    pod = pod_spec(job)
    assert pod is not None
    assert pod["restartPolicy"] == "Never"  # podFailurePolicy needs it
    train = container(manifests, "Job", "mooring-train")
    args = train["args"]
    assert args[0] == "train"
    assert option_value(args, "--config", "-c") == CONFIG_PATH
    peers = (option_value(args, "--peers") or "").split(",")
    assert peers == ["mooring-train-0.mooring-train:2222", "mooring-train-1.mooring-train:2222"]
    assert len(peers) == spec["completions"]
    assert option_value(args, "--workers") == str(spec["completions"])
    assert option_value(args, "--worker-index") == "$(JOB_COMPLETION_INDEX)"
    indices = [
        option_value(expand_env(args, pod_env(train, i)), "--worker-index")
        for i in range(spec["completions"])
    ]
    assert indices == ["0", "1"]
    assert train["resources"]["requests"]["cpu"] == "1"


def test_the_train_peers_are_the_job_pods_behind_its_headless_service(
    manifests: list[Resource],
) -> None:
    job = find(manifests, "Job", "mooring-train")
    pod = pod_spec(job)
    assert pod is not None
    service = find(manifests, "Service", "mooring-train")
    assert pod["subdomain"] == service.name
    assert service.doc["spec"]["clusterIP"] == "None"
    selector = service.doc["spec"]["selector"]
    assert selector.items() <= pod_labels(job).items()
    selected = [
        w.name
        for w in manifests
        if pod_spec(w) is not None and selector.items() <= pod_labels(w).items()
    ]
    assert selected == [job.name]  # no other pod answers on the workers' names
    [port] = service.doc["spec"]["ports"]
    train = container(manifests, "Job", "mooring-train")
    [container_port] = [p for p in train["ports"] if p["name"] == port["targetPort"]]
    # A headless Service's names resolve to the pods: peers dial the container's port.
    assert port["port"] == container_port["containerPort"] == 2222
    peers = (option_value(train["args"], "--peers") or "").split(",")
    assert peers == [
        f"{job.name}-{i}.{service.name}:{port['port']}"
        for i in range(job.doc["spec"]["completions"])
    ]


def test_the_train_output_is_on_a_read_write_many_claim(manifests: list[Resource]) -> None:
    job = find(manifests, "Job", "mooring-train")
    pod = pod_spec(job)
    assert pod is not None
    train = container(manifests, "Job", "mooring-train")
    output = option_value(train["args"], "--output", "-o")
    assert output == "/shared/runs/train"
    [mount] = [m for m in train["volumeMounts"] if output.startswith(m["mountPath"] + "/")]
    assert not mount.get("readOnly", False)
    volumes = {v["name"]: v for v in pod["volumes"]}
    claim_name = volumes[mount["name"]]["persistentVolumeClaim"]["claimName"]
    assert claim_name == "mooring-train-shared"
    claim = find(manifests, "PersistentVolumeClaim", claim_name)
    assert claim.doc["spec"]["accessModes"] == ["ReadWriteMany"]
    assert claim.file == job.file == find(manifests, "Service", "mooring-train").file
    # Without --resume a replaced pod would delete the checkpoints and start over.
    assert "--resume" in train["args"]


def _replace(path: Path, text: str) -> None:
    """Write ``path`` whole at once (a rename): the script never reads half of it."""
    part = path.with_name(path.name + ".part")
    part.write_text(text)
    os.replace(part, path)


def test_the_monitor_script_follows_the_server_pods(
    manifests: list[Resource], tmp_path: Path
) -> None:
    """Run the script with a fake getent and mooring: it restarts on a new pod set."""
    hosts = tmp_path / "hosts"
    calls = tmp_path / "calls"
    scans = tmp_path / "scans"  # a line per look at the pods
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fakes = {
        "getent": f'echo >> "{scans}"\n'
        f'[ "$1" = ahostsv4 ] && [ "$2" = server-pods ] && cat "{hosts}"\n',
        "mooring": f'echo "$*" >> "{calls}"\nexec sleep 3600\n',
    }
    for name, body in fakes.items():
        fake = bin_dir / name
        fake.write_text("#!/bin/sh\n" + body)
        fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    _replace(hosts, "10.0.0.2 STREAM server-pods\n10.0.0.2 DGRAM\n10.0.0.1 STREAM\n")
    script = tmp_path / "monitor.sh"
    script.write_text(monitor_script(manifests))
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "SERVER_PODS": "server-pods",
        "SERVER_METRICS_PORT": "8501",
        "RESCAN_S": "0.1",
    }

    def lines(path: Path) -> list[str]:
        return path.read_text().splitlines() if path.exists() else []

    def invocations(count: int) -> list[str]:
        return wait_until(lambda: len(lines(calls)) >= count and lines(calls),
                          f"mooring monitor to be started {count} time(s)",
                          seen=lambda: lines(calls))  # fmt: skip

    process = subprocess.Popen(["/bin/sh", str(script)], env=env, stderr=subprocess.DEVNULL)
    try:
        first = invocations(1)[0]
        assert first == (
            "monitor --config /etc/mooring/mooring.toml --watch --interval 10s --drift-every 5m "
            "--metrics-url http://10.0.0.1:8501/metrics --metrics-url http://10.0.0.2:8501/metrics"
        )
        _replace(hosts, "10.0.0.1 STREAM\n10.0.0.3 STREAM\n10.0.0.2 STREAM\n")
        second = invocations(2)[1]
        assert second.endswith(
            "--metrics-url http://10.0.0.1:8501/metrics --metrics-url http://10.0.0.2:8501/metrics "
            "--metrics-url http://10.0.0.3:8501/metrics"
        )
        # Three more looks at the unchanged set (counted, not timed) restart nothing: a
        # restart would have been written before the third began.
        looked = len(lines(scans))
        wait_until(lambda: len(lines(scans)) >= looked + 3, "three more looks at the pods")
        assert len(lines(calls)) == 2
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=PATIENCE) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


# --- the checkers reject broken copies ---------------------------------------------------


def _server(resources: list[Resource]) -> dict[str, Any]:
    return container(resources, "Deployment", "mooring-server")


def _probe_on_missing_port(resources: list[Resource]) -> None:
    _server(resources)["livenessProbe"]["httpGet"]["port"] = "metrics"


def _service_selects_nothing(resources: list[Resource]) -> None:
    svc = find(resources, "Service", "mooring-server").doc
    svc["spec"]["selector"]["app.kubernetes.io/component"] = "serve"


def _service_port_missing(resources: list[Resource]) -> None:
    svc = find(resources, "Service", "mooring-server").doc
    svc["spec"]["ports"][1]["targetPort"] = 9000


def _hpa_targets_a_missing_deployment(resources: list[Resource]) -> None:
    find(resources, "HorizontalPodAutoscaler", "mooring-server").doc["spec"]["scaleTargetRef"][
        "name"
    ] = "mooring"


def _hpa_target_sets_replicas(resources: list[Resource]) -> None:
    find(resources, "Deployment", "mooring-server").doc["spec"]["replicas"] = 3


def _missing_secret(resources: list[Resource]) -> None:
    _server(resources)["envFrom"][0]["secretRef"]["name"] = "mooring-db"


def _missing_secret_key(resources: list[Resource]) -> None:
    postgres = container(resources, "StatefulSet", "mooring-postgres")
    postgres["env"][1]["valueFrom"]["secretKeyRef"]["key"] = "PASSWORD"


def _missing_configmap_key(resources: list[Resource]) -> None:
    pod = pod_spec(find(resources, "Deployment", "mooring-monitor"))
    assert pod is not None
    pod["volumes"][0]["configMap"]["items"][1]["key"] = "monitor"


def _selector_off_the_pod_labels(resources: list[Resource]) -> None:
    monitor = find(resources, "Deployment", "mooring-monitor").doc
    monitor["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] = "server"


def _mount_of_a_missing_volume(resources: list[Resource]) -> None:
    _server(resources)["volumeMounts"][1]["name"] = "cache"


def _missing_claim(resources: list[Resource]) -> None:
    pod = pod_spec(find(resources, "Deployment", "mooring-monitor"))
    assert pod is not None
    pod["volumes"][1]["persistentVolumeClaim"]["claimName"] = "mooring-home"


@pytest.mark.parametrize(
    ("breakage", "match"),
    [
        (_probe_on_missing_port, r"livenessProbe uses port 'metrics', which is not a container"),
        (_service_selects_nothing, r"Service/mooring-server: selector .* matches no pod"),
        (_service_port_missing, r"targetPort 9000 is no container port"),
        (_hpa_targets_a_missing_deployment, r"scaleTargetRef .* names no object"),
        (_hpa_target_sets_replicas, r"sets replicas; each apply would undo the autoscaler"),
        (_missing_secret, r"env reads Secret 'mooring-db', not defined"),
        (_missing_secret_key, r"env reads key 'PASSWORD' of Secret 'mooring-registry', absent"),
        (_missing_configmap_key, r"reads key 'monitor' of ConfigMap 'mooring-config', absent"),
        (_selector_off_the_pod_labels, r"mooring-monitor: selector .* does not match its pod"),
        (_mount_of_a_missing_volume, r"mounts volume 'cache', not in the pod"),
        (_missing_claim, r"claims 'mooring-home', which is not defined"),
    ],
)
def test_broken_references_are_rejected(
    manifests: list[Resource], breakage: Callable[[list[Resource]], None], match: str
) -> None:
    broken = mutated(manifests)
    breakage(broken)
    with pytest.raises(DeployError, match=match):
        check_references(broken)


def test_an_unknown_field_fails_the_schema(manifests: list[Resource]) -> None:
    broken = mutated(manifests)
    _server(broken)["livenessProbe"]["httpGet"]["pathh"] = "/v2/health/live"
    with pytest.raises(DeployError, match=r"server\.yaml: Deployment/mooring-server: .*'pathh'"):
        validate_schema(broken)


def test_a_wrong_type_and_an_unknown_kind_fail_the_schema(manifests: list[Resource]) -> None:
    broken = mutated(manifests)
    hpa = find(broken, "HorizontalPodAutoscaler", "mooring-server")
    hpa.doc["spec"]["minReplicas"] = "two"
    with pytest.raises(DeployError, match=r"minReplicas: 'two' is not of type 'integer'"):
        validate_schema([hpa])
    hpa.doc["apiVersion"] = "autoscaling/v3"
    with pytest.raises(DeployError, match=r"Couldn't find schema for kind HorizontalPodAutoscaler"):
        validate_schema([hpa])


def test_root_and_unbounded_pods_are_rejected(manifests: list[Resource]) -> None:
    broken = mutated(manifests)
    pod = pod_spec(find(broken, "Job", "mooring-score"))
    assert pod is not None
    pod["securityContext"]["runAsUser"] = 0
    del pod["containers"][0]["resources"]["limits"]
    with pytest.raises(DeployError, match=r"mooring-score: the pod needs runAsNonRoot.*no limits"):
        check_security(broken)


def _train_spec(resources: list[Resource]) -> dict[str, Any]:
    spec: dict[str, Any] = find(resources, "Job", "mooring-train").doc["spec"]
    return spec


def _train_args(resources: list[Resource]) -> list[str]:
    args: list[str] = container(resources, "Job", "mooring-train")["args"]
    return args


def _set_option(resources: list[Resource], name: str, value: str) -> None:
    args = _train_args(resources)
    args[args.index(name) + 1] = value


def _train_service(resources: list[Resource]) -> dict[str, Any]:
    spec: dict[str, Any] = find(resources, "Service", "mooring-train").doc["spec"]
    return spec


def _train_pod(resources: list[Resource]) -> dict[str, Any]:
    pod = pod_spec(find(resources, "Job", "mooring-train"))
    assert pod is not None
    return pod


def _train_claim(resources: list[Resource]) -> Resource:
    return find(resources, "PersistentVolumeClaim", "mooring-train-shared")


def _index_from_the_pod_name(resources: list[Resource]) -> None:
    env = container(resources, "Job", "mooring-train")["env"]
    env[0]["valueFrom"]["fieldRef"]["fieldPath"] = "metadata.name"


def _claim_read_write_once(resources: list[Resource]) -> None:
    _train_claim(resources).doc["spec"]["accessModes"] = ["ReadWriteOnce"]


def _claim_in_another_file(resources: list[Resource]) -> None:
    _train_claim(resources).file = "storage.yaml"


PEER_0 = "mooring-train-0.mooring-train:2222"
PEER_1 = "mooring-train-1.mooring-train:2222"


@pytest.mark.parametrize(
    ("breakage", "match"),
    [
        (
            lambda r: _train_spec(r).update(completionMode="NonIndexed"),
            r"Job/mooring-train: not an Indexed Job",
        ),
        (
            lambda r: _train_spec(r).update(completions=3, parallelism=3),
            r"--workers 2 is not completions 3; .*--peers lists 2 hosts, completions is 3",
        ),
        (lambda r: _train_spec(r).update(parallelism=1), r"parallelism 1 is not completions 2"),
        (lambda r: _set_option(r, "--workers", "3"), r"--workers 3 is not completions 2"),
        (
            lambda r: _set_option(r, "--peers", PEER_0),
            r"--peers lists 1 hosts, completions is 2",
        ),
        (
            lambda r: _set_option(r, "--peers", f"{PEER_1},{PEER_0}"),
            r"peer 0 is 'mooring-train-1\.mooring-train:2222', not on host 'mooring-train-0\.",
        ),
        (
            lambda r: _set_option(r, "--peers", f"{PEER_0},{PEER_1[:-2]}"),
            r"peer 1 is 'mooring-train-1\.mooring-train:22': not a port of .* \[2222\]",
        ),
        (lambda r: _set_option(r, "--worker-index", "0"), r"pod 1 runs --worker-index 0, not 1"),
        (_index_from_the_pod_name, r"pod 0 runs --worker-index <JOB_COMPLETION_INDEX>, not 0"),
        (lambda r: _train_args(r).remove("--resume"), r"no --resume: a replaced pod would start"),
        (
            lambda r: _train_pod(r).update(subdomain="mooring-train-pods"),
            r"subdomain 'mooring-train-pods' names no Service",
        ),
        (lambda r: _train_service(r).pop("clusterIP"), r"Service/mooring-train: not headless"),
        (
            lambda r: _train_service(r)["selector"].update({"app.kubernetes.io/component": "fit"}),
            r"selector .* does not select the pods of train-job\.yaml: Job/mooring-train",
        ),
        (
            lambda r: _train_service(r)["selector"].pop("app.kubernetes.io/component"),
            r"selector .* also selects pods of other workloads",
        ),
        (
            lambda r: _train_service(r)["ports"][0].update(port=2223, targetPort=2223),
            r"targetPort 2223 is no port of 'train'; .*peer 0 .*: not a port of .*\[2223\]",
        ),
        (
            lambda r: _train_service(r)["ports"][0].update(port=2223),
            r"port 2223 targets container port 2222",
        ),
        (
            lambda r: _set_option(r, "--output", "/var/lib/mooring/runs/train"),
            r"--output /var/lib/mooring/runs/train is on volume 'home', not a claim",
        ),
        (
            lambda r: _set_option(r, "--output", "/runs/train"),
            r"--output /runs/train is on no volume, not a claim",
        ),
        (_claim_read_write_once, r"access modes \['ReadWriteOnce'\], not ReadWriteMany"),
        (
            _claim_in_another_file,
            r"mooring-train-shared: not in train-job\.yaml, applied without the kustomization",
        ),
    ],
)
def test_a_broken_training_job_is_rejected(
    manifests: list[Resource], breakage: Callable[[list[Resource]], object], match: str
) -> None:
    broken = mutated(manifests)
    breakage(broken)
    with pytest.raises(DeployError, match=match):
        check_training_job(broken, "mooring-train")


def test_an_unexpanded_variable_in_args_is_rejected(manifests: list[Resource]) -> None:
    train = container(manifests, "Job", "mooring-train")
    with pytest.raises(DeployError, match=r"\$\(JOB_COMPLETION_INDEX\) is expanded from no"):
        expand_env(train["args"], {})
    assert expand_env(["$$(X)", "a$(X)b"], {"X": "1"}) == ["$(X)", "a1b"]


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (
            ["mooring", "serve", "--config", CONFIG_PATH, "--prot", "8501"],
            r"No such option: --prot",
        ),
        (["mooring", "serve", "--grpc-port", "0"], r"Invalid value for '--grpc-port'"),
        (["mooring", "monitor", "--watch", "--metrics", "x"], r"No such option: --metrics"),
        (["mooring", "monitoring", "--watch"], r"mooring has no command 'monitoring'"),
        (
            ["mooring", "train", "--workers", "2", "--worker", "0", "--peers", "a:1,b:1"],
            r"No such option: --worker\b",
        ),
        (["mooring", "train", "--workers", "2", "--epochs", "0"], r"Invalid value for '--epochs'"),
        (
            ["mooring", "score", "--model", "income", "--format", "csv"],
            r"(?i)no such option:? --format",
        ),
        (["python", "-m", "mooring"], r"not a mooring command line"),
    ],
)
def test_command_lines_with_unknown_options_are_rejected(argv: list[str], match: str) -> None:
    with pytest.raises(DeployError, match=match):
        check_mooring_argv(argv)


@pytest.mark.parametrize(
    ("old", "new", "match"),
    [
        ("USER 10001:10001", "USER root", r"runs as root; use a non-root USER"),
        ("USER 10001:10001", "USER mooring", r"USER mooring: use a numeric uid"),
        ("/v2/health/live", "/healthz", r"HEALTHCHECK .* does not GET :8501/v2/health/live"),
        ("EXPOSE 8501 8500", "EXPOSE 8501", r"port 8500 is served but not in EXPOSE"),
        ('VOLUME ["/var/lib/mooring"]', "", r"home /var/lib/mooring is not a VOLUME"),
        ('"--grpc-port", "8500"]', '"--grpc", "8500"]', r"No such option: --grpc"),
        ('"--host", "0.0.0.0", ', "", r"listens on 127.0.0.1 only"),
        ("FROM python:3.11-slim\n", "FROM python:3.12\n", r"FROM python:3.12, not python:3.11"),
        (
            f"ARG MOORING_VERSION={__version__}",
            "ARG MOORING_VERSION=0.0.1",
            rf"MOORING_VERSION=0\.0\.1, not the version that wrote it \({__version__}\)",
        ),
        (']==${MOORING_VERSION}"', ']"', r"installs mooring-ml==\$\{MOORING_VERSION\} from the"),
        ("'mooring_ml-*.whl'", "'*.whl'", r"no RUN installs a mooring wheel put in wheels/"),
        ("COPY wheels/ /wheels/", "COPY src /src", r"COPY src /src: a source tree"),
    ],
)
def test_a_broken_dockerfile_is_rejected(deploy: Path, old: str, new: str, match: str) -> None:
    text = (deploy / "Dockerfile").read_text(encoding="utf-8")
    assert old in text
    index = text.rindex(old) if old.startswith("FROM") else text.index(old)
    broken = text[:index] + new + text[index + len(old) :]
    with pytest.raises(DeployError, match=match):
        check_dockerfile(Dockerfile.parse(broken), home="/var/lib/mooring", version=__version__)


def test_a_broken_mooring_toml_in_the_configmap_is_rejected(
    manifests: list[Resource], tmp_path: Path
) -> None:
    path = tmp_path / "mooring.toml"
    path.write_text(config_text(manifests).replace("log_url", "log_uri"), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"log_uri"):
        load_config(path)


# --- the image, built by a pip user ------------------------------------------------------


def _run_install(docker: Dockerfile, tmp_path: Path, wheels: list[str]) -> list[str]:
    """The install RUN as /bin/sh runs it, with ``wheels`` in wheels/ and a fake python and
    mooring on PATH: the commands it ran, one line each."""
    folder = tmp_path / "wheels"
    folder.mkdir()
    (folder / "README.md").write_text("wheels\n")
    for name in wheels:
        (folder / name).write_bytes(b"")
    calls = tmp_path / "calls"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("python", "mooring"):
        fake = bin_dir / name
        fake.write_text(f'#!/bin/sh\necho "{name} $*" >> "{calls}"\n')
        fake.chmod(0o755)
    script = install_run(docker).replace("/wheels", str(folder))
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", **build_args(docker)}
    subprocess.run(["/bin/sh", "-c", script], env=env, check=True, capture_output=True)
    assert not folder.exists()  # removed from the image's layer
    return calls.read_text().splitlines()


def test_the_image_installs_the_version_that_wrote_it_from_the_index(
    docker: Dockerfile, tmp_path: Path
) -> None:
    folder = tmp_path / "wheels"
    assert _run_install(docker, tmp_path, []) == [
        f"python -m pip install --find-links {folder} mooring-ml[postgres]=={__version__} s3fs",
        "mooring --version",
    ]


def test_the_image_installs_a_mooring_wheel_put_in_wheels_instead(
    docker: Dockerfile, tmp_path: Path
) -> None:
    folder = tmp_path / "wheels"
    wheel = "mooring_ml-0.2.0.dev1-py3-none-any.whl"
    calls = _run_install(docker, tmp_path, [wheel, "other-1.0-py3-none-any.whl"])
    assert calls == [
        f"python -m pip install --find-links {folder} {folder}/{wheel}[postgres] s3fs",
        "mooring --version",
    ]


def test_the_build_context_is_the_written_folder(deploy: Path, docker: Dockerfile) -> None:
    check_build_context(docker, deploy)
    copied = [v for v in docker.all("COPY")]
    assert copied == ["wheels/ /wheels/"]
    assert (deploy / "wheels" / "README.md").is_file()


@pytest.mark.parametrize(
    ("ignore", "copy", "match"),
    [
        ("*\n", "COPY wheels/ /wheels/", r"COPY wheels/: left out by \.dockerignore"),
        ("*\n!wheels\nwheels\n", "COPY wheels/ /wheels/", r"left out by \.dockerignore"),
        ("*\n!wheels\n", "COPY src /src", r"COPY src: not in the build context"),
    ],
)
def test_a_broken_build_context_is_rejected(
    deploy: Path, tmp_path: Path, ignore: str, copy: str, match: str
) -> None:
    (tmp_path / "wheels").mkdir()
    (tmp_path / ".dockerignore").write_text(ignore)
    docker = Dockerfile.parse(
        (deploy / "Dockerfile").read_text().replace("COPY wheels/ /wheels/", copy)
    )
    with pytest.raises(DeployError, match=match):
        check_build_context(docker, tmp_path)
