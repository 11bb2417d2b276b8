"""Static checks of what ``mooring ops k8s`` writes: the Kubernetes manifests and the
server's Dockerfile.

Neither a cluster nor Docker is needed. Manifests are validated against the Kubernetes
OpenAPI schemas that ``kubernetes-validate`` ships (strict: unknown fields are errors),
then checked for what a schema cannot see: references between objects (Service
selectors, probe ports, the autoscaler's target, Secrets and ConfigMaps, volumes), and
the ``mooring`` command lines they run, parsed by the real command's options. The
Dockerfile is checked for what the image must be (non-root, health-checked, the ports,
the volume, ``mooring serve``), for what it installs (``mooring-ml`` at the version that
wrote it, or a wheel from ``wheels/``) and for its build context (every ``COPY`` source
there, not left out by ``.dockerignore``). Every check raises :class:`DeployError`
naming the file, the object and what is wrong.
"""

from __future__ import annotations

import copy
import fnmatch
import json
import re
import shlex
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

#: The Kubernetes version the manifests are validated against: the newest schemas that
#: kubernetes-validate 1.37 ships.
KUBERNETES_VERSION = "1.37.0"

#: ``mooring score``'s options as agreed while the command is being written; once it is
#: registered on the command line, its real options are used instead.
SCORE_OPTIONS = frozenset({"--config", "--model", "--version", "--data", "--out", "--engine"})

WORKLOADS = ("Deployment", "StatefulSet", "Job", "CronJob", "DaemonSet")


class DeployError(Exception):
    """A manifest or the Dockerfile is wrong; the message names where and what."""


@dataclass
class Resource:
    """One object of a manifest file."""

    file: str
    doc: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.doc.get("kind", "?"))

    @property
    def name(self) -> str:
        return str(self.doc.get("metadata", {}).get("name", "?"))

    def __str__(self) -> str:
        return f"{self.file}: {self.kind}/{self.name}"


# --- loading -------------------------------------------------------------------------


def write_deploy(folder: Path) -> Path:
    """Run ``mooring ops k8s FOLDER`` through the CLI's entry point; return FOLDER."""
    from tests._support.cli import mooring_in_process

    done = mooring_in_process("ops", "k8s", str(folder))
    if done.returncode != 0:
        raise DeployError(f"mooring ops k8s {folder} failed: {done.stderr.strip()}")
    return folder


def load_manifests(folder: Path) -> list[Resource]:
    """Every object of every ``*.yaml`` in ``folder`` except ``kustomization.yaml``."""
    resources = []
    for path in sorted(folder.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc:
                resources.append(Resource(path.name, doc))
    return resources


def find(resources: Iterable[Resource], kind: str, name: str) -> Resource:
    """The object of ``kind`` named ``name``."""
    for r in resources:
        if r.kind == kind and r.name == name:
            return r
    raise DeployError(f"no {kind} named {name!r} in the manifests")


def pod_spec(resource: Resource) -> dict[str, Any] | None:
    """The pod spec of a workload (None for other kinds)."""
    spec = resource.doc.get("spec", {})
    if resource.kind == "CronJob":
        spec = spec.get("jobTemplate", {}).get("spec", {})
    if resource.kind not in WORKLOADS:
        return None
    pod: dict[str, Any] = spec.get("template", {}).get("spec", {})
    return pod


def pod_labels(resource: Resource) -> dict[str, str]:
    spec = resource.doc.get("spec", {})
    if resource.kind == "CronJob":
        spec = spec.get("jobTemplate", {}).get("spec", {})
    labels: dict[str, str] = spec.get("template", {}).get("metadata", {}).get("labels", {})
    return labels


def containers(pod: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [*pod.get("initContainers", []), *pod.get("containers", [])]


# --- schemas -------------------------------------------------------------------------


def validate_schema(resources: Iterable[Resource], version: str = KUBERNETES_VERSION) -> None:
    """Validate each object against Kubernetes' OpenAPI schema for its kind (strict)."""
    import kubernetes_validate  # type: ignore[import-untyped]

    problems = []
    for r in resources:
        try:
            kubernetes_validate.validate(r.doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = ".".join(str(p) for p in exc.path) or "(top)"
            problems.append(f"{r}: {where}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            problems.append(f"{r}: {exc.message}")
    if problems:
        raise DeployError("schema: " + "; ".join(problems))


# --- references between objects --------------------------------------------------------


def _matches(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _port_names(container: Mapping[str, Any]) -> tuple[set[str], set[int]]:
    ports = container.get("ports", [])
    return {p["name"] for p in ports if "name" in p}, {p["containerPort"] for p in ports}


def _has_port(port: str | int, names: set[str], numbers: set[int]) -> bool:
    return port in names if isinstance(port, str) else port in numbers


def _env_refs(container: Mapping[str, Any]) -> Iterator[tuple[str, str, str | None, bool]]:
    """(kind, name, key or None, optional) of each Secret/ConfigMap the env reads."""
    for source in container.get("envFrom", []):
        for ref_key, kind in (("secretRef", "Secret"), ("configMapRef", "ConfigMap")):
            if ref_key in source:
                ref = source[ref_key]
                yield kind, ref["name"], None, bool(ref.get("optional", False))
    for var in container.get("env", []):
        value_from = var.get("valueFrom", {})
        for ref_key, kind in (("secretKeyRef", "Secret"), ("configMapKeyRef", "ConfigMap")):
            if ref_key in value_from:
                ref = value_from[ref_key]
                yield kind, ref["name"], ref["key"], bool(ref.get("optional", False))


def _data_keys(resource: Resource) -> set[str]:
    return set(resource.doc.get("data", {})) | set(resource.doc.get("stringData", {}))


def check_references(resources: Sequence[Resource]) -> None:
    """What the schemas cannot check: every reference between objects resolves."""
    by_kind: dict[tuple[str, str], Resource] = {(r.kind, r.name): r for r in resources}
    workloads = [r for r in resources if pod_spec(r) is not None]
    problems = [p for w in workloads for p in _workload_problems(w, by_kind)]
    for kind, check in _REFERENCES.items():
        for r in resources:
            if r.kind == kind:
                problems += check(r, workloads, by_kind)
    if problems:
        raise DeployError("references: " + "; ".join(problems))


def _workload_problems(w: Resource, by_kind: Mapping[tuple[str, str], Resource]) -> list[str]:
    """A workload's selector, volumes, probes' ports, mounts and env references."""
    problems: list[str] = []
    pod = pod_spec(w)
    assert pod is not None
    labels = pod_labels(w)
    selector = w.doc.get("spec", {}).get("selector", {}).get("matchLabels")
    if selector is not None and not _matches(selector, labels):
        problems.append(f"{w}: selector {selector} does not match its pod labels {labels}")
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    claims = {t["metadata"]["name"] for t in w.doc["spec"].get("volumeClaimTemplates", [])}
    for name, volume in volumes.items():
        problems += _volume_problems(w, name, volume, by_kind)
    for c in containers(pod):
        where = f"{w}: container {c['name']!r}"
        problems += _probe_problems(where, c)
        for mount in c.get("volumeMounts", []):
            if mount["name"] not in volumes and mount["name"] not in claims:
                problems.append(f"{where}: mounts volume {mount['name']!r}, not in the pod")
        for kind, name, key, optional in _env_refs(c):
            target = by_kind.get((kind, name))
            if target is None:
                if not optional:
                    problems.append(f"{where}: env reads {kind} {name!r}, not defined")
            elif key is not None and key not in _data_keys(target) and not optional:
                problems.append(f"{where}: env reads key {key!r} of {kind} {name!r}, absent")
    return problems


def _volume_problems(
    w: Resource,
    name: str,
    volume: Mapping[str, Any],
    by_kind: Mapping[tuple[str, str], Resource],
) -> list[str]:
    problems: list[str] = []
    if "configMap" in volume:
        problems += _check_items(w, name, "ConfigMap", volume["configMap"], by_kind)
    if "secret" in volume:
        ref = {"name": volume["secret"]["secretName"], **volume["secret"]}
        problems += _check_items(w, name, "Secret", ref, by_kind)
    if "persistentVolumeClaim" in volume:
        claim = volume["persistentVolumeClaim"]["claimName"]
        if ("PersistentVolumeClaim", claim) not in by_kind:
            problems.append(f"{w}: volume {name!r} claims {claim!r}, which is not defined")
    return problems


def _probe_problems(where: str, c: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    names, numbers = _port_names(c)
    for probe_key in ("startupProbe", "livenessProbe", "readinessProbe"):
        probe = c.get(probe_key, {})
        for handler in ("httpGet", "tcpSocket", "grpc"):
            if handler in probe and not _has_port(probe[handler]["port"], names, numbers):
                problems.append(
                    f"{where}: {probe_key} uses port {probe[handler]['port']!r}, which "
                    f"is not a container port (ports: {sorted(names) or sorted(numbers)})"
                )
    return problems


def _service_problems(
    svc: Resource, workloads: Sequence[Resource], by_kind: Mapping[tuple[str, str], Resource]
) -> list[str]:
    problems: list[str] = []
    selector = svc.doc["spec"].get("selector", {})
    selected = [w for w in workloads if _matches(selector, pod_labels(w))]
    if not selected:
        problems.append(f"{svc}: selector {selector} matches no pod template")
    for port in svc.doc["spec"].get("ports", []):
        target = port.get("targetPort", port["port"])
        for w in selected:
            pod = pod_spec(w)
            assert pod is not None
            if not any(_has_port(target, *_port_names(c)) for c in containers(pod)):
                problems.append(f"{svc}: targetPort {target!r} is no container port of {w}")
    return problems


def _autoscaler_problems(
    hpa: Resource, workloads: Sequence[Resource], by_kind: Mapping[tuple[str, str], Resource]
) -> list[str]:
    ref = hpa.doc["spec"]["scaleTargetRef"]
    target = by_kind.get((ref["kind"], ref["name"]))
    if target is None or target.doc.get("apiVersion") != ref.get("apiVersion"):
        return [f"{hpa}: scaleTargetRef {ref} names no object in the manifests"]
    problems: list[str] = []
    if "replicas" in target.doc["spec"]:
        problems.append(
            f"{hpa}: its target {target} sets replicas; each apply would undo the autoscaler"
        )
    resources_metric = [m["resource"]["name"] for m in hpa.doc["spec"].get("metrics", [])]
    pod = pod_spec(target)
    assert pod is not None
    for name in resources_metric:
        for c in pod.get("containers", []):
            if name not in c.get("resources", {}).get("requests", {}):
                problems.append(
                    f"{hpa}: scales on {name} utilisation but container {c['name']!r} of "
                    f"{target} requests no {name}"
                )
    return problems


def _disruption_budget_problems(
    pdb: Resource, workloads: Sequence[Resource], by_kind: Mapping[tuple[str, str], Resource]
) -> list[str]:
    selector = pdb.doc["spec"]["selector"].get("matchLabels", {})
    if not any(_matches(selector, pod_labels(w)) for w in workloads):
        return [f"{pdb}: selector {selector} matches no pod template"]
    return []


def _stateful_set_problems(
    sts: Resource, workloads: Sequence[Resource], by_kind: Mapping[tuple[str, str], Resource]
) -> list[str]:
    service = by_kind.get(("Service", sts.doc["spec"].get("serviceName", "")))
    if service is None or service.doc["spec"].get("clusterIP") != "None":
        return [f"{sts}: serviceName names no headless Service"]
    if not _matches(service.doc["spec"].get("selector", {}), pod_labels(sts)):
        return [f"{sts}: its Service {service.name!r} does not select its pods"]
    return []


_REFERENCES: dict[
    str,
    Callable[
        [Resource, Sequence[Resource], Mapping[tuple[str, str], Resource]],
        list[str],
    ],
] = {
    "Service": _service_problems,
    "HorizontalPodAutoscaler": _autoscaler_problems,
    "PodDisruptionBudget": _disruption_budget_problems,
    "StatefulSet": _stateful_set_problems,
}


def _check_items(
    w: Resource,
    volume: str,
    kind: str,
    ref: Mapping[str, Any],
    by_kind: Mapping[tuple[str, str], Resource],
) -> list[str]:
    target = by_kind.get((kind, ref["name"]))
    if target is None:
        if ref.get("optional"):
            return []
        return [f"{w}: volume {volume!r} reads {kind} {ref['name']!r}, which is not defined"]
    keys = _data_keys(target)
    return [
        f"{w}: volume {volume!r} reads key {item['key']!r} of {kind} {ref['name']!r}, absent"
        for item in ref.get("items", [])
        if item["key"] not in keys
    ]


def check_security(resources: Iterable[Resource]) -> None:
    """Every pod runs as a non-root user, without privilege escalation, with resources."""
    problems = []
    for w in resources:
        pod = pod_spec(w)
        if pod is None:
            continue
        context = pod.get("securityContext", {})
        if context.get("runAsNonRoot") is not True or context.get("runAsUser", 0) == 0:
            problems.append(f"{w}: the pod needs runAsNonRoot: true and a non-zero runAsUser")
        for c in containers(pod):
            own = c.get("securityContext", {})
            if own.get("runAsUser") == 0 or own.get("runAsNonRoot") is False:
                problems.append(f"{w}: container {c['name']!r} runs as root")
            if own.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{w}: container {c['name']!r} allows privilege escalation")
            limits = c.get("resources", {})
            for section in ("requests", "limits"):
                missing = {"cpu", "memory"} - set(limits.get(section, {}))
                if missing:
                    problems.append(
                        f"{w}: container {c['name']!r} has no {section} for {sorted(missing)}"
                    )
    if problems:
        raise DeployError("security: " + "; ".join(problems))


# --- the mooring command lines -----------------------------------------------------------


def mooring_options(subcommand: str) -> frozenset[str] | None:
    """The option names of ``mooring SUBCOMMAND`` (None when it is not registered)."""
    import typer

    from mooring.cli import COMMANDS, load_commands

    if subcommand not in COMMANDS:
        return None
    group = typer.main.get_command(load_commands(subcommand))
    command = group.commands[subcommand]  # type: ignore[attr-defined]
    return frozenset(o for p in command.params for o in (*p.opts, *p.secondary_opts))


def check_mooring_argv(argv: Sequence[str]) -> None:
    """Parse ``mooring SUBCOMMAND ARGS`` with the command's own options (nothing runs).

    A subcommand that is not registered is checked only when it is ``score``, against
    :data:`SCORE_OPTIONS`; any other is an error.
    """
    import click
    import typer

    from mooring.cli import COMMANDS, load_commands

    if len(argv) < 2 or Path(argv[0]).name != "mooring":
        raise DeployError(f"not a mooring command line: {list(argv)}")
    subcommand, args = argv[1], list(argv[2:])
    if subcommand not in COMMANDS:
        if subcommand != "score":
            raise DeployError(f"mooring has no command {subcommand!r} ({shlex.join(argv)})")
        given = {a.split("=", 1)[0] for a in args if a.startswith("-")}
        unknown = sorted(given - SCORE_OPTIONS)
        if unknown:
            raise DeployError(f"mooring score: no such option {', '.join(unknown)}")
        return
    group = typer.main.get_command(load_commands(subcommand))
    command = group.commands[subcommand]  # type: ignore[attr-defined]
    # Typer up to 0.2x raises click's exceptions, newer releases their own (as in cli/_common).
    usage = (click.ClickException, getattr(typer, "TyperException", click.ClickException))
    try:
        command.make_context(f"mooring {subcommand}", args)
    except usage as exc:
        format_message = getattr(exc, "format_message", None)
        message = format_message() if callable(format_message) else str(exc)
        raise DeployError(f"{shlex.join(argv)}: {message}") from None


def expand_env(words: Sequence[str], env: Mapping[str, str]) -> list[str]:
    """Kubernetes' expansion of ``$(NAME)`` in a container's command and args.

    ``$$`` is a literal ``$``. A name missing from ``env`` is a :class:`DeployError`: the
    kubelet would pass ``$(NAME)`` on unexpanded.
    """

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        if name not in env:
            raise DeployError(f"$({name}) is expanded from no variable of the container's env")
        return env[name]

    return [re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)", one, word) for word in words]


def option_value(argv: Sequence[str], *names: str) -> str | None:
    """The value of the last ``--name VALUE`` / ``--name=VALUE`` in ``argv``."""
    found = None
    for i, arg in enumerate(argv):
        for name in names:
            if arg == name and i + 1 < len(argv):
                found = argv[i + 1]
            elif arg.startswith(name + "="):
                found = arg.split("=", 1)[1]
    return found


def script_mooring_lines(script: str) -> list[list[str]]:
    """The ``mooring ...`` command lines of a shell script, without ``"$@"`` and ``&``."""
    lines = []
    for line in script.splitlines():
        words = shlex.split(line, comments=True) if line.strip() else []
        if words and words[0] == "mooring":
            lines.append([w for w in words if w not in {"$@", "&", "&&", ";"}])
    return lines


# --- the Dockerfile ------------------------------------------------------------------


@dataclass
class Dockerfile:
    """A Dockerfile's instructions, per build stage (continuations joined)."""

    stages: list[list[tuple[str, str]]] = field(default_factory=list)

    @classmethod
    def parse(cls, text: str) -> Dockerfile:
        stages: list[list[tuple[str, str]]] = []
        logical = ""
        for raw in text.splitlines():
            line = raw.strip()
            if not logical and (not line or line.startswith("#")):
                continue
            if line.startswith("#"):  # a comment inside a continued instruction
                continue
            if line.endswith("\\"):
                logical += line[:-1] + " "
                continue
            logical += line
            instruction, _, rest = logical.partition(" ")
            logical = ""
            instruction = instruction.upper()
            if instruction == "FROM":
                stages.append([])
            if not stages:
                if instruction == "ARG":
                    continue
                raise DeployError(f"Dockerfile: {instruction} before the first FROM")
            stages[-1].append((instruction, rest.strip()))
        if logical:
            raise DeployError("Dockerfile: ends inside a continued line")
        if not stages:
            raise DeployError("Dockerfile: no FROM")
        return cls(stages)

    @property
    def final(self) -> list[tuple[str, str]]:
        return self.stages[-1]

    def last(self, instruction: str) -> str | None:
        values = [rest for name, rest in self.final if name == instruction]
        return values[-1] if values else None

    def all(self, instruction: str) -> list[str]:
        return [rest for name, rest in self.final if name == instruction]


def exec_form(value: str | None, what: str) -> list[str]:
    """A JSON-array (exec form) instruction argument as a list of words."""
    if value is None:
        return []
    try:
        words = json.loads(value)
    except json.JSONDecodeError:
        raise DeployError(
            f"Dockerfile: {what} {value!r} is not in exec form (a JSON array)"
        ) from None
    if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
        raise DeployError(f"Dockerfile: {what} {value!r} is not a list of strings")
    return words


def image_argv(docker: Dockerfile) -> tuple[list[str], list[str]]:
    """The final stage's (ENTRYPOINT, CMD), both in exec form."""
    return exec_form(docker.last("ENTRYPOINT"), "ENTRYPOINT"), exec_form(docker.last("CMD"), "CMD")


def healthcheck_command(docker: Dockerfile) -> str:
    """The HEALTHCHECK's command, as one string (options and ``CMD`` dropped)."""
    value = docker.last("HEALTHCHECK")
    if value is None or value.upper() == "NONE":
        raise DeployError("Dockerfile: no HEALTHCHECK in the final stage")
    match = re.match(r"^((?:--[a-z-]+=\S+\s+)*)CMD\s+(.*)$", value, re.IGNORECASE | re.DOTALL)
    if match is None:
        raise DeployError(f"Dockerfile: HEALTHCHECK {value!r} has no CMD")
    command = match.group(2)
    return " ".join(exec_form(command, "HEALTHCHECK")) if command.startswith("[") else command


def build_args(docker: Dockerfile) -> dict[str, str]:
    """The final stage's ``ARG NAME=DEFAULT`` values (an ARG without one maps to "")."""
    found = {}
    for value in docker.all("ARG"):
        name, _, default = value.partition("=")
        found[name.strip()] = default.strip().strip('"')
    return found


def install_run(docker: Dockerfile) -> str:
    """The final stage's ``RUN`` that installs mooring (the one running ``pip install``)."""
    runs = [rest for name, rest in docker.final if name == "RUN" and "pip install" in rest]
    if len(runs) != 1:
        raise DeployError(f"Dockerfile: {len(runs)} RUNs of the final stage pip install, not one")
    return runs[0]


def check_dockerfile(docker: Dockerfile, *, home: str, version: str) -> list[str]:
    """Check the server image; return the ``mooring`` command line it runs by default.

    Besides what the image must be, it installs ``mooring-ml`` for a user without a
    checkout: ``mooring-ml==${MOORING_VERSION}`` from the index, ``MOORING_VERSION``
    defaulting to ``version`` (the mooring that wrote it), or a mooring wheel from
    ``wheels/``; nothing is copied from a source tree.
    """
    problems = []
    base = docker.final[0][1].split(" AS ")[0].split(" as ")[0].strip()
    if base.split("@")[0] != "python:3.11-slim":
        problems.append(f"the final stage is FROM {base}, not python:3.11-slim")
    user = docker.last("USER")
    uid = (user or "").split(":")[0]
    if user is None or uid in {"root", "0"}:
        problems.append(f"the final stage runs as {user or 'root (no USER)'}; use a non-root USER")
    elif not uid.isdigit():
        problems.append(f"USER {user}: use a numeric uid, so runAsNonRoot can check it")
    entrypoint, cmd = image_argv(docker)
    argv = [*entrypoint, *cmd]
    problems += _image_command_problems(argv)
    port = option_value(argv, "--port") or "8501"
    grpc_port = option_value(argv, "--grpc-port")
    if option_value(argv, "--host") not in {"0.0.0.0", "::"}:
        problems.append("mooring serve listens on 127.0.0.1 only; pass --host 0.0.0.0")
    exposed = {p.split("/")[0] for value in docker.all("EXPOSE") for p in value.split()}
    for wanted in filter(None, (port, grpc_port)):
        if wanted not in exposed:
            problems.append(f"port {wanted} is served but not in EXPOSE ({sorted(exposed)})")
    try:
        health = healthcheck_command(docker)
    except DeployError as exc:
        problems.append(str(exc))
    else:
        url = re.search(r"https?://[^\s'\"]+", health)
        if url is None or not url.group(0).endswith(f":{port}/v2/health/live"):
            problems.append(f"the HEALTHCHECK ({health}) does not GET :{port}/v2/health/live")
    volumes: list[str] = []
    for value in docker.all("VOLUME"):
        volumes += exec_form(value, "VOLUME") if value.startswith("[") else value.split()
    if home not in volumes:
        problems.append(f"[project] home {home} is not a VOLUME ({volumes})")
    problems += _install_problems(docker, version)
    if problems:
        raise DeployError("Dockerfile: " + "; ".join(problems))
    return argv


def _install_problems(docker: Dockerfile, version: str) -> list[str]:
    """mooring-ml==${MOORING_VERSION} (default ``version``) from the index, or a wheel
    from wheels/; no source tree copied in."""
    problems = []
    pinned = build_args(docker).get("MOORING_VERSION")
    if pinned != version:
        problems.append(f"ARG MOORING_VERSION={pinned}, not the version that wrote it ({version})")
    try:
        install = install_run(docker)
    except DeployError as exc:
        problems.append(str(exc))
    else:
        if '"mooring-ml[${MOORING_EXTRAS}]==${MOORING_VERSION}"' not in install:
            problems.append("no RUN installs mooring-ml==${MOORING_VERSION} from the index")
        if "/wheels" not in install or "mooring_ml-*.whl" not in install:
            problems.append("no RUN installs a mooring wheel put in wheels/")
    for value in docker.all("COPY") + docker.all("ADD"):
        if not value.startswith("--from") and re.search(r"(^|\s)(src|pyproject\.toml)\b", value):
            problems.append(f"COPY {value}: a source tree, which a pip user has not")
    return problems


def _image_command_problems(argv: list[str]) -> list[str]:
    """The image's ENTRYPOINT + CMD must be a valid ``mooring serve`` command line."""
    if not argv or Path(argv[0]).name != "mooring":
        return [f"ENTRYPOINT + CMD runs {argv}, not mooring"]
    if len(argv) < 2 or argv[1] != "serve":
        return [f"ENTRYPOINT + CMD runs {shlex.join(argv)}, not mooring serve"]
    try:
        check_mooring_argv(argv)
    except DeployError as exc:
        return [str(exc)]
    return []


def dockerignore_excludes(patterns: Sequence[str], path: str) -> bool:
    """Whether ``.dockerignore``'s ``patterns`` keep ``path`` (relative, with ``/``) out of
    the build context: the last pattern matching it or a folder above it decides, ``!``
    lets it back in (Docker's rules, without ``**``)."""
    parts = path.strip("/").split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for raw in patterns:
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negated = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        if any(fnmatch.fnmatchcase(p, pattern) for p in prefixes):
            excluded = not negated
    return excluded


def check_build_context(docker: Dockerfile, folder: Path) -> None:
    """Every ``COPY``/``ADD`` source of the Dockerfile is in ``folder`` (the build
    context) and not left out of it by ``folder/.dockerignore``."""
    ignore_file = folder / ".dockerignore"
    patterns = ignore_file.read_text(encoding="utf-8").splitlines() if ignore_file.exists() else []
    problems = []
    for instruction in ("COPY", "ADD"):
        for value in docker.all(instruction):
            words = [w for w in shlex.split(value) if not w.startswith("--")]
            if value.startswith("--from") or len(words) < 2:
                continue
            for source in words[:-1]:
                if not (folder / source).exists():
                    problems.append(f"{instruction} {source}: not in the build context {folder}")
                elif dockerignore_excludes(patterns, source):
                    problems.append(f"{instruction} {source}: left out by .dockerignore")
    if problems:
        raise DeployError("build context: " + "; ".join(problems))


# --- containers as they run ----------------------------------------------------------


def container_argv(
    container: Mapping[str, Any], entrypoint: list[str], cmd: list[str]
) -> list[str]:
    """What a container runs: Kubernetes' command/args over the image's ENTRYPOINT/CMD."""
    if "command" in container:
        return [*container["command"], *container.get("args", [])]
    return [*entrypoint, *container.get("args", cmd)]


def mounted_file(pod: Mapping[str, Any], container: Mapping[str, Any], path: str) -> str | None:
    """The ConfigMap key mounted at ``path`` in ``container`` (None when nothing is)."""
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    for mount in container.get("volumeMounts", []):
        volume = volumes.get(mount["name"], {})
        source = volume.get("configMap")
        if source is None:
            continue
        items: dict[str, str] = {i["path"]: i["key"] for i in source.get("items", [])}
        if "subPath" in mount and mount["mountPath"] == path:
            sub_path = str(mount["subPath"])
            return items.get(sub_path, sub_path)
        prefix = mount["mountPath"].rstrip("/") + "/"
        if "subPath" not in mount and path.startswith(prefix):
            relative = path[len(prefix) :]
            return items.get(relative) if items else relative
    return None


#: The downward-API field an Indexed Job's pod finds its completion index in.
COMPLETION_INDEX_FIELD = "metadata.annotations['batch.kubernetes.io/job-completion-index']"


def pod_env(container: Mapping[str, Any], index: int = 0) -> dict[str, str]:
    """The container's ``env`` as set in pod ``index`` of an Indexed Job: the completion
    index where it is read from the pod, ``<NAME>`` for any other value from elsewhere."""
    env = {}
    for var in container.get("env", []):
        field_path = var.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
        if field_path == COMPLETION_INDEX_FIELD:
            env[var["name"]] = str(index)
        else:
            env[var["name"]] = str(var.get("value", f"<{var['name']}>"))
    return env


def _mount_of(container: Mapping[str, Any], path: str) -> dict[str, Any] | None:
    """The volume mount ``path`` lies in (the deepest one), None when on no mount."""
    found: dict[str, Any] | None = None
    for mount in container.get("volumeMounts", []):
        root = mount["mountPath"].rstrip("/")
        if (path == root or path.startswith(root + "/")) and (
            found is None or len(root) > len(found["mountPath"].rstrip("/"))
        ):
            found = mount
    return found


# --- the training Job ----------------------------------------------------------------


def check_training_job(resources: Sequence[Resource], name: str) -> None:
    """The Indexed Job ``name`` of ``mooring train`` workers agrees with itself.

    One pod per worker, all at once (completions == parallelism == --workers == the hosts
    in --peers); peer ``i`` is pod ``i``'s host name under the headless Service named by
    the pod's subdomain, on the Service's port, which is the container's; pod ``i`` runs
    ``--worker-index i``; --output is on a ReadWriteMany claim every pod mounts, and the
    run resumes there (--resume) when a pod is replaced. The Service and the claim are in
    the Job's file: the kustomization does not apply it.
    """
    job = find(resources, "Job", name)
    spec = job.doc["spec"]
    pod = pod_spec(job)
    assert pod is not None
    problems: list[str] = []
    completions = spec.get("completions")
    if spec.get("completionMode") != "Indexed":
        problems.append(f"{job}: not an Indexed Job (completionMode {spec.get('completionMode')})")
    if spec.get("parallelism") != completions:
        problems.append(
            f"{job}: parallelism {spec.get('parallelism')} is not completions {completions}: "
            "every worker must run at once"
        )
    trainers = [c for c in pod["containers"] if c.get("args", [])[:1] == ["train"]]
    if len(trainers) != 1:
        raise DeployError(f"{job}: {len(trainers)} containers run mooring train, not one")
    c = trainers[0]
    args = [str(a) for a in c["args"]]
    workers = option_value(args, "--workers")
    if workers != str(completions):
        problems.append(f"{job}: --workers {workers} is not completions {completions}")
    peers = (option_value(args, "--peers") or "").split(",")
    if len(peers) != completions:
        problems.append(f"{job}: --peers lists {len(peers)} hosts, completions is {completions}")
    if "--resume" not in args:
        problems.append(f"{job}: no --resume: a replaced pod would start over, not continue")
    for i in range(completions if isinstance(completions, int) else 0):
        index = option_value(expand_env(args, pod_env(c, i)), "--worker-index")
        if index != str(i):
            problems.append(f"{job}: pod {i} runs --worker-index {index}, not {i}")
    problems += _peer_problems(resources, job, c, peers)
    problems += _shared_output_problems(resources, job, c, option_value(args, "--output", "-o"))
    if problems:
        raise DeployError("training: " + "; ".join(problems))


def _peer_problems(
    resources: Sequence[Resource], job: Resource, c: Mapping[str, Any], peers: list[str]
) -> list[str]:
    pod = pod_spec(job)
    assert pod is not None
    subdomain = pod.get("subdomain")
    service = next((r for r in resources if r.kind == "Service" and r.name == subdomain), None)
    if service is None:
        return [f"{job}: its pods' subdomain {subdomain!r} names no Service"]
    problems: list[str] = []
    spec = service.doc["spec"]
    if spec.get("clusterIP") != "None":
        problems.append(f"{service}: not headless: no DNS record per worker pod")
    selector = spec.get("selector", {})
    others = [w for w in resources if pod_spec(w) is not None and w is not job]
    if not _matches(selector, pod_labels(job)):
        problems.append(f"{service}: selector {selector} does not select the pods of {job}")
    elif any(_matches(selector, pod_labels(w)) for w in others):
        problems.append(f"{service}: selector {selector} also selects pods of other workloads")
    if service.file != job.file:
        problems.append(f"{service}: not in {job.file}, applied without the kustomization")
    by_name = {p["name"]: p["containerPort"] for p in c.get("ports", []) if "name" in p}
    ports = set()
    for p in spec.get("ports", []):
        target = p.get("targetPort", p["port"])
        numbers = set(by_name.values()) | {q["containerPort"] for q in c.get("ports", [])}
        container_port = by_name.get(target) if isinstance(target, str) else target
        if container_port not in numbers:
            problems.append(f"{service}: targetPort {target!r} is no port of {c['name']!r}")
        elif container_port != p["port"]:
            # Peers dial the pod's address itself: the container's port, not the Service's.
            problems.append(
                f"{service}: port {p['port']} targets container port {container_port}, "
                "which the peers dial"
            )
        ports.add(p["port"])
    for i, peer in enumerate(peers):
        host, _, port = peer.rpartition(":")
        wanted = f"{job.name}-{i}.{service.name}"
        if host != wanted:
            problems.append(f"{job}: peer {i} is {peer!r}, not on host {wanted!r}")
        if not port.isdigit() or int(port) not in ports:
            problems.append(f"{job}: peer {i} is {peer!r}: not a port of {service} {sorted(ports)}")
    return problems


def _shared_output_problems(
    resources: Sequence[Resource], job: Resource, c: Mapping[str, Any], output: str | None
) -> list[str]:
    pod = pod_spec(job)
    assert pod is not None
    mount = _mount_of(c, output or "")
    volume = {v["name"]: v for v in pod.get("volumes", [])}.get(mount["name"]) if mount else None
    claim_name = (volume or {}).get("persistentVolumeClaim", {}).get("claimName")
    if mount is None or claim_name is None:
        where = f"volume {mount['name']!r}" if mount else "no volume"
        return [f"{job}: --output {output} is on {where}, not a claim every pod mounts"]
    problems: list[str] = []
    if mount.get("readOnly"):
        problems.append(f"{job}: --output {output} is on a read-only mount")
    claim = next(
        (r for r in resources if r.kind == "PersistentVolumeClaim" and r.name == claim_name),
        None,
    )
    if claim is None:
        return [*problems, f"{job}: --output {output} is on claim {claim_name!r}, not defined"]
    modes = claim.doc["spec"].get("accessModes", [])
    if "ReadWriteMany" not in modes:
        problems.append(f"{claim}: access modes {modes}, not ReadWriteMany: one pod at a time")
    if claim.file != job.file:
        problems.append(f"{claim}: not in {job.file}, applied without the kustomization")
    return problems


def mutated(resources: Sequence[Resource]) -> list[Resource]:
    """A deep copy to break on purpose."""
    return [Resource(r.file, copy.deepcopy(r.doc)) for r in resources]
