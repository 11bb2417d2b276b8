"""Benchmark: the REST server of two (or more) source trees of mooring, side by side.

A refactor of the serving core must leave throughput and latency as they were, and two
separate runs of ``bench_serving.py`` differ by the machine's drift as much as by the
change. This script serves one model from every tree named on its command line at once
and drives them in interleaved cells, so a slow moment of the shared machine hits all of
them.

Each tree is ``NAME=PATH``: a label and a source tree whose ``src/mooring`` is the code
to run (a ``git worktree`` of an older commit, or this checkout). Its server is
``python -m mooring serve --model-dir DIR --schema schema.yaml --workers N
--no-access-log`` started with this interpreter (the venv's) and ``PYTHONPATH=PATH/src``
first, so that tree's mooring is imported rather than the venv's editable install. Before
anything runs, ``python -c "import mooring"`` under each tree's environment must name
``PATH/src/mooring/__init__.py``; once the servers are up, every process of each server
(the supervisor and its workers) is checked again: its ``PYTHONPATH`` (``/proc``) and the
mooring source folders in its Python stacks (``py-spy dump --full-filenames``, where
py-spy is installed). Both checks are in the report.

The model is ``bench_serving.py``'s: the Adult model trained once for one epoch by
``bench_serving.py --build-model`` (with this interpreter's own mooring, the checkout
the benchmark runs from, or with a tree's code under ``--build-tree NAME``), one folder
served by every tree, and 64 real rows of the Adult test file. Every server reads the
``[serving]`` settings of ``bench_serving.py``'s logging servers: ``max_in_flight =
1024`` (these cells measure the batcher, not admission) and ``log_sample_rate = 1.0``
(every request goes to the prediction log where the server has a log folder; with
``--model-dir`` neither tree opens one, so nothing is logged), plus any ``--serving
KEY=VALUE``. ``--log`` serves each tree from a registry project of its own instead
(``work/logged-<tree>.toml``, made by this checkout's code, so every tree must read
this checkout's registry), whose log folder takes every request. All servers start at
once; each is ready when ``/v2/health/ready`` answers, then answers a few warm-up
requests and one unrecorded ``wrk`` second per request size.

Cells (``wrk``, closed loop, ``--latency``; a Lua script POSTs the rows in turn):

* ``1 row c=32``: single-row bodies ``{"instances": [row]}`` cycling over the 64 rows,
  ``-t2 -c32``;
* ``64 rows c=32``: the 64 rows in one body, ``-t2 -c32``;
* ``1 row c=1``: single rows, ``-t1 -c1`` (latency without queueing).

``--rounds`` rounds (5); in each round every cell runs on every tree back to back, the
trees' order rotating by round (two trees: alternating). Each run records 200s per second
(non-2xx answers are not throughput), rows/s, p50/p90/p99, non-2xx answers and socket
errors, and the 1-minute load average when it started. Per cell and tree the report
gives the median over rounds and every round's value; per cell, each tree's req/s over
the first tree's: the median of the per-round ratios (a round's two runs are seconds
apart) and their spread (min–max). A server that exits mid-run stops the benchmark with
the end of its log.

Everything shares the machine (servers and ``wrk``), so the numbers include that
contention: note the load average. The table is printed as Markdown and written with the
machine's description (CPUs, load average before and after, Python, platform, wrk) and
each tree's commit to ``benchmarks/results/trees-<time>.json`` (and ``.md``); nothing is
asserted.

``--work DIR`` keeps the model (and the servers' files) there: a model built there before
(``model_dir.txt``, as ``bench_serving.py --work`` keeps it) is served again rather than
trained.

``--guard`` (``make bench-guard``): the trees are ``reference``, the commit recorded in
``benchmarks/reference.toml``, and ``now``, this checkout as it is. The reference is a
detached ``git worktree`` in the temporary folder (``mooring-bench-reference-<commit>``,
made on the first run and reused while it is clean and at that commit; those of earlier
references are removed with ``git worktree remove``, which refuses a changed one), the
model is trained once by the reference's code and kept beside it (``…-work``), and the
servers run ``--workers 2`` unless told otherwise. After the table, one line per cell
gives now ÷ reference (the median of the per-round ratios, their min–max, and whether
every round was above 1, below it, or on both sides), and a run of 3 rounds or more is
appended to ``benchmarks/guard-history.md`` (the date, the commit of the working tree and
its uncommitted files under src, the load average, each cell's ratio; a shorter run is a
smoke run, printed only). Nothing is asserted:
a loss is read, then explained or fixed. The reference moves only with a measured
reason, written in ``reference.toml`` beside the commit.

Usage::

    git worktree add ../before <commit>     # the tree before the change
    python benchmarks/bench_trees.py before=../before after=.        # ~5 minutes
    python benchmarks/bench_trees.py before=../before after=. --rounds 3 --duration 4
    python benchmarks/bench_trees.py a=../before b=../before       # the harness's noise
    python benchmarks/bench_trees.py --guard                       # make bench-guard
    python benchmarks/bench_trees.py --guard --rounds 1 --duration 2   # a smoke run
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bench_serving as bs
from _wrk import lua_script, wrk

RESULTS = bs.RESULTS
WRK_TIMEOUT_S = bs.WRK_TIMEOUT_S
REFERENCE = bs.ROOT / "benchmarks" / "reference.toml"
GUARD_HISTORY = bs.ROOT / "benchmarks" / "guard-history.md"
GUARD_PREFIX = "mooring-bench-reference-"
GUARD_WORKERS = 2  # --guard's default: the serving benchmark's two workers
GUARD_KEPT_ROUNDS = 3  # a --guard run of fewer rounds is a smoke run: printed, not kept


@dataclass(frozen=True)
class Cell:
    """One wrk load shape."""

    label: str
    rows: int
    connections: int
    threads: int


CELLS = (
    Cell("1 row c=32", 1, 32, 2),
    Cell("64 rows c=32", 64, 32, 2),
    Cell("1 row c=1", 1, 1, 1),
)


@dataclass(frozen=True)
class Tree:
    """A source tree of mooring under a label."""

    name: str
    root: Path

    @property
    def src(self) -> Path:
        return self.root / "src"

    def env(self) -> dict[str, str]:
        """This process's environment with the tree's ``src`` first on ``PYTHONPATH``."""
        rest = os.environ.get("PYTHONPATH")
        path = str(self.src) + (os.pathsep + rest if rest else "")
        return {**os.environ, "PYTHONPATH": path, "TF_CPP_MIN_LOG_LEVEL": "3"}


def parse_trees(specs: list[str]) -> list[Tree]:
    """``NAME=PATH`` pairs as trees (each PATH holding ``src/mooring``)."""
    trees: list[Tree] = []
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise SystemExit(f"a tree is NAME=PATH, got {spec!r}")
        if name in {t.name for t in trees}:
            raise SystemExit(f"the name {name!r} is given twice")
        root = Path(path).expanduser().resolve()
        if not (root / "src" / "mooring" / "__init__.py").is_file():
            raise SystemExit(f"{name}: {root} has no src/mooring/__init__.py")
        trees.append(Tree(name, root))
    if len(trees) < 2:
        raise SystemExit("name at least two trees, e.g. before=../before after=.")
    return trees


def imported_from(tree: Tree) -> str:
    """The file ``import mooring`` loads under the tree's environment; it must be the
    tree's own (the venv's editable install must not win)."""
    done = subprocess.run(
        [sys.executable, "-c", "import mooring; print(mooring.__file__)"],
        capture_output=True,
        text=True,
        env=tree.env(),
        check=False,
    )
    found = done.stdout.strip()
    wanted = tree.src / "mooring" / "__init__.py"
    if done.returncode != 0 or Path(found).resolve() != wanted:
        raise SystemExit(
            f"{tree.name}: `import mooring` under PYTHONPATH={tree.src} loads {found!r}, "
            f"not {wanted}\n{done.stderr[-2000:]}"
        )
    return found


def git_state(root: Path) -> dict[str, Any]:
    """The tree's commit and its uncommitted changes under ``src`` (read without taking
    the index lock: other people may be working in the checkout)."""

    def git(*args: str) -> str:
        cmd = ["git", "--no-optional-locks", "-C", str(root), *args]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        return done.stdout.strip() if done.returncode == 0 else ""

    changed = git("status", "--porcelain", "--", "src").splitlines()
    return {
        "commit": git("rev-parse", "--short", "HEAD") or None,
        "subject": git("log", "-1", "--format=%s") or None,
        "changed_under_src": len(changed),
    }


# -- --guard: the recorded reference tree ------------------------------------------------
@dataclass(frozen=True)
class Reference:
    """``benchmarks/reference.toml``: the commit ``--guard`` serves beside the working
    tree, the date it was set and the measured reason it was set or moved."""

    commit: str
    set: str
    reason: str


def read_reference(path: Path = REFERENCE) -> Reference:
    """The reference of ``path``; a missing or malformed field stops the run, naming it.

    Example: ``read_reference().commit`` is a full 40-hex hash, e.g. ``"f534901a…"``.
    """
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SystemExit(
            f'{path} is missing: write commit = "<git rev-parse of the reference>", '
            'set = <date> and reason = "<the measurement that justifies it>"'
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise SystemExit(f"{path} is not valid TOML ({exc}): correct it") from None
    commit, when, reason = data.get("commit"), data.get("set"), data.get("reason")
    if not isinstance(commit, str) or re.fullmatch(r"[0-9a-f]{40}", commit) is None:
        raise SystemExit(
            f"{path}: commit = {commit!r} is not a full commit hash; write the output of "
            "`git rev-parse <commit>` (40 hex digits)"
        )
    if not isinstance(when, datetime.date):
        raise SystemExit(f"{path}: set = {when!r} is not a date; write e.g. set = 2026-11-30")
    if not isinstance(reason, str) or not reason.strip():
        raise SystemExit(
            f"{path}: reason = {reason!r}; write the measured reason the reference was set "
            "or moved (the run and its ratios)"
        )
    return Reference(commit, when.isoformat(), " ".join(reason.split()))


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True)


def remove_stale_references(repo: Path, base: Path, keep: Path) -> list[Path]:
    """Remove this repository's reference worktrees under ``base`` other than ``keep``
    (those of an earlier reference) and their ``-work`` folders; returns those removed.

    ``git worktree remove`` without ``--force``: a tree with changes is kept, and said so.
    """
    listed = _git(repo, "worktree", "list", "--porcelain").stdout
    paths = [
        Path(line[len("worktree ") :])
        for line in listed.splitlines()
        if line.startswith("worktree ")
    ]
    removed = []
    for path in paths:
        if path.parent != base or not path.name.startswith(GUARD_PREFIX) or path == keep:
            continue
        done = _git(repo, "worktree", "remove", str(path))
        if done.returncode != 0:
            print(f"kept the earlier reference tree {path}: {done.stderr.strip()}", flush=True)
            continue
        shutil.rmtree(path.with_name(path.name + "-work"), ignore_errors=True)
        removed.append(path)
        print(f"removed the earlier reference tree {path}", flush=True)
    return removed


def reference_tree(ref: Reference, repo: Path = bs.ROOT, base: Path | None = None) -> Path:
    """The reference's detached worktree (``<base>/mooring-bench-reference-<commit>``):
    made if absent, reused while it is clean and at the commit."""
    base = (base or Path(tempfile.gettempdir())).resolve()
    folder = base / f"{GUARD_PREFIX}{ref.commit[:12]}"
    if _git(repo, "rev-parse", "--verify", "--quiet", f"{ref.commit}^{{commit}}").returncode:
        raise SystemExit(
            f"{REFERENCE}: commit {ref.commit} is not in the history of {repo}; fetch it "
            "(git fetch) or correct the file"
        )
    remove_stale_references(repo, base, keep=folder)
    if folder.exists():
        head = _git(folder, "rev-parse", "HEAD").stdout.strip()
        changed = _git(folder, "status", "--porcelain").stdout.strip()
        if head != ref.commit or changed:
            found = f"at {head[:12]}" if head else "not a git tree"
            raise SystemExit(
                f"{folder}: the reference tree should be a clean checkout of {ref.commit[:12]}, "
                f"it is {found}{' with changes' if changed else ''}; remove it "
                f"(git worktree remove --force {folder}, or rm -r it) and run again"
            )
        print(f"reference: reusing {folder}", flush=True)
        return folder
    _git(repo, "worktree", "prune")  # registrations of trees whose folder was deleted
    done = _git(repo, "worktree", "add", "--detach", str(folder), ref.commit)
    if done.returncode != 0:
        raise SystemExit(f"git worktree add {folder} {ref.commit[:12]} failed: {done.stderr}")
    print(f"reference: made {folder} at {ref.commit[:12]}", flush=True)
    return folder


def verdict(ratio: dict[str, Any]) -> str:
    """Where a cell's per-round ratios lie against 1: all above, all below, or both."""
    if ratio["min"] is None or ratio["max"] is None:
        return "no ratio"
    if ratio["min"] >= 1.0:
        return "above 1 in every round"
    if ratio["max"] < 1.0:
        return "below 1 in every round"
    return "the rounds on both sides of 1"


def _rounds(n: int) -> str:
    return "1 round" if n == 1 else f"{n} rounds"


def ratio_lines(report: dict[str, Any]) -> list[str]:
    """One line per cell and tree after the first: its req/s ÷ the first tree's."""
    first = report["trees"][0]["name"]
    lines = []
    for cell in CELLS:
        for name, r in report["ratios"][cell.label].items():
            if r["median"] is None:
                lines.append(f"* {cell.label}: {name} ÷ {first}: no ratio (nothing answered)")
                continue
            lines.append(
                f"* {cell.label}: {name} ÷ {first} = **{r['median']:.3f}** "
                f"({r['min']:.3f}–{r['max']:.3f} over {_rounds(len(r['per_round']))}; {verdict(r)})"
            )
    return lines


HISTORY_HEADER = (
    "| date (UTC) | now (commit; uncommitted files under src) | reference | workers, rounds × s "
    "| load average before → after | " + " | ".join(c.label for c in CELLS) + " |"
)


def history_row(report: dict[str, Any]) -> str:
    """The history's row of a ``--guard`` run: each cell's now ÷ reference, median (min–max)."""
    now = next(t for t in report["trees"] if t["name"] == "now")
    ref = next(t for t in report["trees"] if t["name"] == "reference")
    m = report["machine"]
    cells = []
    for cell in CELLS:
        r = report["ratios"][cell.label]["now"]
        cells.append(
            "—" if r["median"] is None else f"{r['median']:.3f} ({r['min']:.3f}–{r['max']:.3f})"
        )
    when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(report["started"]))
    changed = now["git"]["changed_under_src"]
    return (
        f"| {when} | {now['git']['commit']}; {changed} | {ref['git']['commit']} "
        f"| {report['workers']}, {report['rounds']} × {report['duration_s']:g} "
        f"| {m['load_average_start'][0]:.2f} → {m['load_average_end'][0]:.2f} | "
        + " | ".join(cells)
        + " |"
    )


def append_history(row: str, path: Path = GUARD_HISTORY) -> None:
    """Append ``row`` to the history's table (its last block), written atomically."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if HISTORY_HEADER not in text:
        raise SystemExit(
            f"{path} has no history table (its header row changed?); restore the header "
            f"{HISTORY_HEADER!r} as the file's last table"
        )
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text.rstrip("\n") + "\n" + row + "\n", encoding="utf-8")
    os.replace(tmp, path)


def build_model(tree: Tree | None, work: Path) -> Path:
    """``bench_serving.py``'s Adult model (one epoch), trained in a fresh process with
    ``tree``'s code (None: this interpreter's own mooring); its exported folder
    (``work/schema.yaml`` beside it)."""
    env = tree.env() if tree else {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [sys.executable, bs.__file__, "--build-model", str(work)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        who = tree.name if tree else "this checkout"
        raise SystemExit(f"building the model with {who} failed:\n{done.stderr[-3000:]}")
    return Path(done.stdout.strip().splitlines()[-1])


def serving_config(work: Path, given: list[str]) -> Path:
    """The project file every server reads: bench_serving's ``mooring-dir`` settings."""
    lines = bs.serving_lines(given, log_sample_rate=1.0, max_in_flight=1024)
    config = work / "mooring.toml"
    config.write_text(
        f'[project]\nname = "{bs.NAME}"\n[data]\ntrain = "unused.csv"\n[serving]\n'
        + "".join(f"{line}\n" for line in lines)
    )
    return config


def spawn(tree: Tree, model_dir: Path | None, work: Path, config: Path, workers: int) -> bs.Server:
    """Start ``tree``'s ``mooring serve --model-dir`` (not waiting for it); with no
    ``model_dir``, the production version of ``config``'s registry (``--log``)."""
    port = bs.free_port()
    cmd = [sys.executable, "-m", "mooring", "serve", "--config", str(config),
           "--port", str(port), "--no-access-log", "--workers", str(workers)]  # fmt: skip
    if model_dir is not None:
        cmd += ["--model-dir", str(model_dir), "--schema", str(work / "schema.yaml")]
    logs = work / "logs"
    logs.mkdir(exist_ok=True)
    log = logs / f"{tree.name}-{port}.log"
    spawned = time.perf_counter()
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, env=tree.env(), cwd=work, stdout=out, stderr=subprocess.STDOUT)
    probe = f"http://127.0.0.1:{port}/v2/health/ready"
    return bs.Server(tree.name, proc, port, probe, None, spawned, log)


def _py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.is_file() else shutil.which("py-spy")


def _pythonpath(pid: int) -> str | None:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return None
    for item in raw.split(b"\0"):
        if item.startswith(b"PYTHONPATH="):
            return item.split(b"=", 1)[1].decode(errors="replace")
    return None


FRAME_FILE = re.compile(r"\((/[^()]*?/mooring/[^()]*?\.py)(?::\d+)?\)$", re.MULTILINE)


def package_root(path: str) -> str:
    """The folder holding the ``mooring`` package that ``path`` (one of its files) is in:
    ``<tree>/src`` for a source tree."""
    parts = path.split("/")
    # The outermost "mooring" folder, so a subpackage of that name would not count.
    return "/".join(parts[: parts.index("mooring")])


def running_from(tree: Tree, server: bs.Server) -> dict[str, Any]:
    """Where each process of a running server takes mooring from: its ``PYTHONPATH`` and
    the folders holding the ``mooring`` package in its stacks (``py-spy dump``)."""
    spy = _py_spy()
    processes = []
    for pid in bs.process_tree(server.proc.pid):
        entry: dict[str, Any] = {"pid": pid, "pythonpath": _pythonpath(pid)}
        if spy is not None:
            cmd = [spy, "dump", "--full-filenames", "--pid", str(pid)]
            try:
                done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
                roots = sorted({package_root(f) for f in FRAME_FILE.findall(done.stdout)})
                entry["mooring_roots"] = roots
                if done.returncode != 0:
                    entry["error"] = done.stderr.strip()[-300:]
            except (OSError, subprocess.TimeoutExpired) as exc:
                entry["error"] = repr(exc)
        processes.append(entry)
    wanted = str(tree.src)
    seen = {root for p in processes for root in p.get("mooring_roots", [])}
    paths_ok = all((p["pythonpath"] or "").split(os.pathsep)[0] == wanted for p in processes)
    return {
        "processes": processes,
        "pythonpath_first_is_tree": paths_ok,
        "stack_roots": sorted(seen),
        "stacks_only_this_tree": (seen == {wanted}) if spy is not None else None,
    }


def run_cell(server: bs.Server, script: Path, cell: Cell, seconds: float) -> dict[str, Any]:
    """One wrk run of ``cell`` against ``server``; stops the benchmark if the server died."""
    load = os.getloadavg()[0]
    started = time.time()
    try:
        res = wrk(server.url, script, seconds, cell.connections, cell.threads, WRK_TIMEOUT_S)
    except subprocess.CalledProcessError as exc:
        raise SystemExit(f"wrk failed against {server.name}: {exc}") from None
    dead = server.exited()
    if dead is not None:
        raise SystemExit(
            f"{server.name} exited ({dead['returncode']}) during {cell.label}:\n{dead['log_tail']}"
        )
    return {
        **res,
        "rows_per_s": res["rps"] * cell.rows,
        "load_1m": load,
        "started": started,
    }


def drive(
    servers: dict[str, bs.Server],
    scripts: dict[int, Path],
    rounds: int,
    seconds: float,
) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Every cell on every tree, ``rounds`` times, the trees' order rotating by round;
    each (cell, tree)'s runs in round order."""
    names = list(servers)
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for cell in CELLS:
            for name in order:
                res = run_cell(servers[name], scripts[cell.rows], cell, seconds)
                runs.setdefault((cell.label, name), []).append(res)
                print(
                    f"round {r + 1} {cell.label:<13} {name:<10} {res['rps']:>8,.0f} req/s "
                    f"p50 {res.get('p50_ms', 0):.2f} ms p99 {res.get('p99_ms', 0):.2f} ms "
                    f"non-2xx {res['non_2xx']} socket {res['socket_error_count']} "
                    f"(load {res['load_1m']:.2f})",
                    flush=True,
                )
    return runs


def summarize(
    runs: dict[tuple[str, str], list[dict[str, Any]]], names: list[str]
) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """Per (cell, tree): medians and every round; per cell and tree after the first: the
    req/s ratio to the first tree, per round, its median and spread."""
    cells: list[dict[str, Any]] = []
    ratios: dict[str, dict[str, Any]] = {}
    for cell in CELLS:
        for name in names:
            rs = runs[(cell.label, name)]
            cells.append(
                {
                    "cell": cell.label,
                    "tree": name,
                    "rows": cell.rows,
                    "concurrency": cell.connections,
                    "threads": cell.threads,
                    "rps": statistics.median(r["rps"] for r in rs),
                    "rows_per_s": statistics.median(r["rows_per_s"] for r in rs),
                    "p50_ms": _median([r.get("p50_ms") for r in rs]),
                    "p90_ms": _median([r.get("p90_ms") for r in rs]),
                    "p99_ms": _median([r.get("p99_ms") for r in rs]),
                    "non_2xx": sum(r["non_2xx"] for r in rs),
                    "socket_errors": sum(r["socket_error_count"] for r in rs),
                    "rounds": rs,
                }
            )
        first = runs[(cell.label, names[0])]
        per_tree: dict[str, Any] = {}
        for name in names[1:]:
            pairs = zip(runs[(cell.label, name)], first, strict=True)
            per_round = [a["rps"] / b["rps"] for a, b in pairs if b["rps"]]
            per_tree[name] = {
                "per_round": per_round,
                "median": statistics.median(per_round) if per_round else None,
                "min": min(per_round, default=None),
                "max": max(per_round, default=None),
            }
        ratios[cell.label] = per_tree
    return cells, ratios


def _median(values: list[Any]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


HEADERS = ["cell", "tree", "req/s", "req/s per round", "rows/s", "p50 ms", "p99 ms",
           "non-2xx / socket errors"]  # fmt: skip


def render(report: dict[str, Any]) -> str:
    """The report's table (and the trees), as Markdown."""
    names = [t["name"] for t in report["trees"]]
    first = names[0]
    rows = []
    for c in report["cells"]:
        ratio = report["ratios"][c["cell"]].get(c["tree"])
        if ratio is None or ratio["median"] is None:
            ratio_text = "1 (base)" if c["tree"] == first else "—"
        else:
            ratio_text = f"{ratio['median']:.3f} ({ratio['min']:.3f}–{ratio['max']:.3f})"
        per_round = ", ".join(f"{r['rps']:,.0f}" for r in c["rounds"])
        errors = f"{c['non_2xx']} / {c['socket_errors']}"
        rows.append([c["cell"], c["tree"], c["rps"], per_round, c["rows_per_s"],
                     c["p50_ms"], c["p99_ms"], errors, ratio_text])  # fmt: skip
    m = report["machine"]
    rounds = "1 round" if report["rounds"] == 1 else f"{report['rounds']} rounds"
    lines = [
        f"## Serving, trees side by side ({rounds} of {report['duration_s']:g} s cells, "
        f"--workers {report['workers']}{', every request logged' if report.get('logged') else ''}"
        "; medians over rounds)",
        "",
        bs.markdown([*HEADERS, f"req/s ÷ {first}: median (min–max)"], rows),
        "",
    ]
    ref = report.get("reference")
    if ref:
        lines += [
            f"### now ÷ reference ({ref['commit'][:12]}, set {ref['set']}), per cell",
            "",
        ]
    else:
        lines += [f"### Each tree ÷ {first}, per cell", ""]
    lines += [*ratio_lines(report), ""]
    for t in report["trees"]:
        check = t["running"]
        lines.append(
            f"* `{t['name']}`: {t['root']} at {t['git']['commit']} "
            f"({t['git']['changed_under_src']} uncommitted files under src), imports "
            f"{t['imported_from']}; running: PYTHONPATH first "
            f"{check['pythonpath_first_is_tree']}, stacks from {check['stack_roots']}"
        )
    lines.append(
        f"* machine: {m['cpus']} CPUs, load average {_load(m['load_average_start'])} before, "
        f"{_load(m['load_average_end'])} after; Python {m['python']}; {m['wrk']}"
    )
    return "\n".join(lines) + "\n"


def _load(values: tuple[float, ...] | list[float]) -> str:
    return " / ".join(f"{v:.2f}" for v in values)


def logged_projects(
    trees: list[Tree], model_dir: Path, work: Path, given: list[str]
) -> dict[str, Path]:
    """Per tree, a registry project of its own (``work/logged-<tree>.toml``, made by this
    checkout's code) holding the model as production, whose prediction log takes every
    request (``--log``)."""
    lines = bs.serving_lines(given, log_sample_rate=1.0, max_in_flight=1024)
    projects: dict[str, Path] = {}
    for tree in trees:
        shutil.rmtree(work / f"home-logged-{tree.name}", ignore_errors=True)
        projects[tree.name] = bs.registry_project(model_dir, work, f"logged-{tree.name}", lines)
    return projects


def start_all(
    trees: list[Tree],
    model_dir: Path,
    work: Path,
    config: Path,
    workers: int,
    projects: dict[str, Path],
) -> dict[str, bs.Server]:
    """Every tree's server, started at once and waited for; raises if one fails. A tree
    of ``projects`` serves its project's registry rather than ``model_dir``."""
    servers: dict[str, bs.Server] = {}
    try:
        for tree in trees:
            project = projects.get(tree.name)
            if project is not None:
                servers[tree.name] = spawn(tree, None, work, project, workers)
            else:
                servers[tree.name] = spawn(tree, model_dir, work, config, workers)
        for name, server in servers.items():
            print(f"{name}: ready {server.wait():.1f} s after its spawn", flush=True)
    except BaseException:
        for server in servers.values():
            bs.stop_server(server.proc)
        raise
    return servers


def warm(servers: dict[str, bs.Server], bodies: list[bytes], scripts: dict[int, Path]) -> None:
    """A few answered requests per body, then one unrecorded wrk second per body."""
    for server in servers.values():
        bs.warm_up(server, bodies)
        for script in scripts.values():
            wrk(server.url, script, 1, 32)


def served_model(builder: Tree | None, work: Path, built_with: str) -> Path:
    """The model of ``work``: the one recorded in ``model_dir.txt`` there, else one
    trained now by ``builder``'s code (then recorded)."""
    kept = work / "model_dir.txt"
    if kept.is_file() and Path(kept.read_text()).is_dir() and (work / "schema.yaml").is_file():
        model_dir = Path(kept.read_text())
        print(f"the Adult model built before: {model_dir}", flush=True)
        return model_dir
    t0 = time.perf_counter()
    model_dir = build_model(builder, work)
    kept.write_text(str(model_dir))
    print(f"built the Adult model with {built_with} in {time.perf_counter() - t0:.1f} s")
    return model_dir


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("trees", nargs="*", metavar="NAME=PATH", help="source trees to serve")
    parser.add_argument(
        "--guard",
        action="store_true",
        help="serve benchmarks/reference.toml's commit (reference) beside this checkout "
        "(now) and append the run to benchmarks/guard-history.md (make bench-guard)",
    )
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (5)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per cell (5)")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help=f"`mooring serve --workers` (1; with --guard {GUARD_WORKERS})",
    )
    parser.add_argument(
        "--work",
        type=Path,
        default=None,
        help="keep the model and the servers' files here; a model built there before "
        "(model_dir.txt) is reused (with --guard: a folder beside the reference tree)",
    )
    parser.add_argument("--out", type=Path, default=None, help="the JSON report's path")
    parser.add_argument(
        "--log",
        action="store_true",
        help="serve each tree from a registry project of its own, every request logged "
        "(the trees must read this checkout's registry)",
    )
    parser.add_argument(
        "--build-tree",
        default=None,
        help="the tree whose code trains the model (default: this interpreter's mooring)",
    )
    parser.add_argument(
        "--serving",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="another [serving] setting for every server (repeatable)",
    )
    args = parser.parse_args()
    if args.guard and args.trees:
        raise SystemExit(
            f"--guard serves its own trees (reference, now); drop {' '.join(args.trees)}"
        )
    if args.guard and args.build_tree:
        raise SystemExit("--guard trains the model with the reference's code; drop --build-tree")
    if args.workers is None:
        args.workers = GUARD_WORKERS if args.guard else 1
    if args.rounds < 1 or args.duration < 1 or args.workers < 1:
        raise SystemExit("--rounds, --duration and --workers take values >= 1")
    return args


def main() -> None:
    args = parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed (Debian: apt-get install wrk)")
    reference = None
    if args.guard:
        reference = read_reference()
        ref_root = reference_tree(reference)
        args.trees = [f"reference={ref_root}", f"now={bs.ROOT}"]
        args.build_tree = "reference"  # a model the older code is sure to read
        args.work = args.work or ref_root.with_name(ref_root.name + "-work")
    trees = parse_trees(args.trees)
    by_name = {t.name: t for t in trees}
    builder = by_name.get(args.build_tree) if args.build_tree else None
    if args.build_tree and builder is None:
        raise SystemExit(f"--build-tree names none of {list(by_name)}")
    built_with = builder.name if builder else f"this checkout ({bs.ROOT})"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out_path: Path = args.out or RESULTS / f"{'guard' if args.guard else 'trees'}-{stamp}.json"
    started = time.time()
    load_start = os.getloadavg()
    info: dict[str, dict[str, Any]]
    info = {t.name: {"imported_from": imported_from(t), "git": git_state(t.root)} for t in trees}
    for name, i in info.items():
        print(f"{name}: imports {i['imported_from']} ({i['git']['commit']})", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        model_dir = served_model(builder, work, built_with)
        rows = bs.request_rows(model_dir, 64)
        bodies = [json.dumps({"instances": [r]}).encode() for r in rows]
        batch = json.dumps({"instances": rows}).encode()
        scripts = {
            1: lua_script(work, bodies, "single.lua"),
            64: lua_script(work, [batch], "batch.lua"),
        }
        config = serving_config(work, args.serving)
        projects = logged_projects(trees, model_dir, work, args.serving) if args.log else {}
        servers = start_all(trees, model_dir, work, config, args.workers, projects)
        try:
            warm(servers, [bodies[0], batch], scripts)
            for tree in trees:
                info[tree.name]["running"] = running_from(tree, servers[tree.name])
                print(f"{tree.name}: running from {info[tree.name]['running']['stack_roots']}")
            runs = drive(servers, scripts, args.rounds, args.duration)
        finally:
            stragglers = [p for s in servers.values() for p in bs.stop_server(s.proc)]

    cells, ratios = summarize(runs, [t.name for t in trees])
    report = {
        "benchmark": "guard" if args.guard else "trees",
        "started": started,
        "reference": None if reference is None else vars(reference),
        "rounds": args.rounds,
        "duration_s": args.duration,
        "workers": args.workers,
        "logged": args.log,
        "serving": bs.serving_lines(args.serving, log_sample_rate=1.0, max_in_flight=1024),
        "model_built_with": built_with,
        "trees": [{"name": t.name, "root": str(t.root), **info[t.name]} for t in trees],
        "machine": bs.machine(load_start),
        "cells": cells,
        "ratios": ratios,
        "stragglers": stragglers,
    }
    text = render(report)
    print()
    print(text)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(report, indent=2) + "\n")
    out_path.with_suffix(".md").write_text(text)
    print(f"wrote {out_path} and {out_path.with_suffix('.md').name}")
    if args.guard and args.rounds >= GUARD_KEPT_ROUNDS:
        append_history(history_row(report))
        print(f"appended the run to {GUARD_HISTORY}")
    elif args.guard:
        print(
            f"not appended to {GUARD_HISTORY.name}: {args.rounds} round(s), a smoke run "
            f"(runs of {GUARD_KEPT_ROUNDS} rounds or more are kept)"
        )


if __name__ == "__main__":
    main()
