"""Benchmark: mooring statistics + validation against a bare Arrow scan and pandas.

A file shaped like the UCI Adult census data (default 2 million rows) is made by
resampling the real rows with a fixed seed, written once as CSV and as Parquet
and cached under ``benchmarks/data/``. For each format, these contenders run
side by side in the same invocation, reading included:

* ``mooring_validate``: what ``mooring validate --config mooring.toml`` does on
  a project whose schema is inferred from the training data (``Project.validate``
  with a fresh home): hash the file (the statistics cache key), one streaming pass
  for the statistics, ``infer_schema``, then judge those statistics against the
  schema — a single read. The hashing time is recorded on its own as well.
* ``mooring`` (two reads): ``compute_statistics`` (the statistics-only time is
  recorded from this run), ``infer_schema``, then ``validate`` reading the same
  file a second time against that schema — what ``mooring stats`` followed by
  ``mooring validate data --schema schema.yaml`` costs, the path for new data
  checked against a saved schema.
* ``validate_saved``: ``mooring validate new.csv --schema schema.yaml``, the check of
  a new file against a saved contract. The schema is inferred once, before any timing,
  from the bundled Adult rows the file is resampled from (the training data), saved
  as YAML with ``Schema.save``; the child loads it with ``Schema.load`` as the CLI
  does, and only ``validate(path, schema, options, contract)`` is timed (one read).
  Its floors: at most 1.5x the bare scan for CSV, 1.2x for Parquet.
* ``arrow_scan``: a bare streaming pyarrow scan computing count, min, max and mean
  per column — close to the limit of what reading and summarising can cost.
* ``arrow_scan_dict`` (Parquet only): the same scan reading the text columns as
  dictionaries, as mooring does — the stricter limit for Parquet, reported next
  to the plain scan.
* ``pandas``: ``read_csv``/``read_parquet`` (pyarrow engine), ``describe()`` and
  ``value_counts()`` of every string column.

Every measurement runs in a fresh subprocess, so peak resident memory (the
child's own ``ru_maxrss``) is not contaminated by earlier runs; repeats are
interleaved and medians reported. A second section streams the CSV through
``compute_statistics`` with small and large batch budgets to show that memory is
bounded by the batch size, not the file size.

Times are reported, never asserted: the floors (mooring ≤ 3x the bare scan,
mooring faster than pandas, bounded streaming memory) are evaluated and printed
for the statistics alone, for ``mooring validate`` (one read) and for the
two-read variant; ``validate_saved`` is held to its own floors (CSV ≤ 1.5x scan,
Parquet ≤ 1.2x scan), printed and stored in the JSON with the ratio behind them.

Usage::

    python benchmarks/bench_contract.py --rows 2000000 --repeats 3   # the headline run
    python benchmarks/bench_contract.py --rows 2000 --repeats 1 --out b.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
ADULT = ROOT / "examples" / "adult" / "adult.data.csv.gz"
LABEL = "class"
# Adult marks missing values with '?'; the examples' mooring.toml says the same.
NA_VALUES = ("?", "")
FORMATS = ("csv", "parquet")
TOOLS = ("mooring", "mooring_validate", "validate_saved", "arrow_scan", "pandas")
TOOLS_BY_FORMAT = {"csv": TOOLS, "parquet": (*TOOLS, "arrow_scan_dict")}
CHUNK_ROWS = 250_000
MAX_SCAN_RATIO = 3.0
# validate_saved (a new file against a saved contract) against the bare scan, per format.
SAVED_MAX_SCAN_RATIO = {"csv": 1.5, "parquet": 1.2}


# ---------------------------------------------------------------- data generation


def data_paths(data_dir: Path, rows: int, seed: int) -> dict[str, Path]:
    stem = f"adult_{rows}_seed{seed}"
    return {"csv": data_dir / f"{stem}.csv", "parquet": data_dir / f"{stem}.parquet"}


def generate(data_dir: Path, rows: int, seed: int) -> dict[str, Path]:
    """Write (once) ``rows`` rows resampled from Adult as CSV and Parquet; return the paths."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    paths = data_paths(data_dir, rows, seed)
    if all(p.is_file() for p in paths.values()):
        return paths
    data_dir.mkdir(parents=True, exist_ok=True)
    # Keep '?' as text so the CSV looks exactly like the source; Parquet gets real nulls.
    source = pacsv.read_csv(
        ADULT, convert_options=pacsv.ConvertOptions(null_values=[], strings_can_be_null=False)
    )
    rng = np.random.default_rng(seed)
    tmp = {fmt: p.with_name(p.name + ".tmp") for fmt, p in paths.items()}
    parquet_schema = source.schema
    # Unquoted, like the source file (Adult has no delimiters inside values).
    plain = pacsv.WriteOptions(quoting_style="none", quoting_header="none")
    with (
        pacsv.CSVWriter(tmp["csv"], source.schema, write_options=plain) as csv_out,
        pq.ParquetWriter(tmp["parquet"], parquet_schema) as pq_out,
    ):
        done = 0
        while done < rows:
            n = min(CHUNK_ROWS, rows - done)
            chunk = source.take(pa.array(rng.integers(0, source.num_rows, n)))
            csv_out.write_table(chunk)
            columns = [
                pc.if_else(pc.equal(col, "?"), pa.scalar(None, col.type), col)
                if pa.types.is_string(col.type)
                else col
                for col in chunk.columns
            ]
            pq_out.write_table(pa.table(columns, schema=parquet_schema))
            done += n
    for fmt, p in paths.items():
        os.replace(tmp[fmt], p)
    return paths


# ---------------------------------------------------------------- the contenders


def run_mooring(path: str, batch_mb: float, validate_too: bool = True) -> dict[str, Any]:
    from mooring.config._base import DEFAULT_NA_VALUES
    from mooring.config._data import ContractConfig
    from mooring.contract._io import ReadOptions
    from mooring.contract._schema import infer_schema
    from mooring.contract._statistics import compute_statistics
    from mooring.contract._validation import validate

    options = ReadOptions(na_values=(*DEFAULT_NA_VALUES, *NA_VALUES), batch_mb=batch_mb)
    contract = ContractConfig()
    start = time.perf_counter()
    stats = compute_statistics(path, options)
    stats_s = time.perf_counter() - start
    out: dict[str, Any] = {"stats_s": stats_s, "rows": stats.num_rows}
    if validate_too:
        schema = infer_schema(stats, label=LABEL, contract=contract)
        result = validate(path, schema, options=options, contract=contract)
        out["seconds"] = time.perf_counter() - start
        out["validate_s"] = out["seconds"] - stats_s
        out["errors"] = sum(a.severity == "error" for a in result.anomalies)
        out["anomalies"] = len(result.anomalies)
    else:
        out["seconds"] = stats_s
    return out


def run_mooring_validate(path: str, batch_mb: float) -> dict[str, Any]:
    """``Project.validate()`` on a fresh project over ``path``: what ``mooring validate`` does."""
    import tempfile

    from mooring._project import Project
    from mooring.config._base import DEFAULT_NA_VALUES

    na_values = list(dict.fromkeys([*DEFAULT_NA_VALUES, *NA_VALUES]))
    with tempfile.TemporaryDirectory(prefix="bench-contract-") as folder:
        config = Path(folder) / "mooring.toml"
        # JSON strings and lists are valid TOML basic strings and arrays.
        config.write_text(
            f'[project]\nname = "bench"\nhome = {json.dumps(str(Path(folder) / "home"))}\n\n'
            f"[data]\ntrain = {json.dumps(path)}\nlabel = {json.dumps(LABEL)}\n"
            f"na_values = {json.dumps(na_values)}\nbatch_mb = {batch_mb}\n",
            encoding="utf-8",
        )
        start = time.perf_counter()
        project = Project.load(config)
        project.data_fingerprint("train")  # kept for the run: validate() does not hash again
        fingerprint_s = time.perf_counter() - start
        result = project.validate()
        seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "fingerprint_s": fingerprint_s,
        "validate_s": seconds - fingerprint_s,
        "rows": result.statistics.num_rows,
        "errors": len(result.train.errors),
        "anomalies": len(result.train.anomalies),
    }


def _bench_options(batch_mb: float) -> Any:
    from mooring.config._base import DEFAULT_NA_VALUES
    from mooring.contract._io import ReadOptions

    return ReadOptions(na_values=(*DEFAULT_NA_VALUES, *NA_VALUES), batch_mb=batch_mb)


def save_contract(out: Path, batch_mb: float) -> Path:
    """Infer the contract from the bundled Adult rows (the training data) and save it as YAML."""
    from mooring.config._data import ContractConfig
    from mooring.contract._schema import infer_schema
    from mooring.contract._statistics import compute_statistics

    stats = compute_statistics(ADULT, _bench_options(batch_mb))
    schema = infer_schema(stats, label=LABEL, contract=ContractConfig())
    out.parent.mkdir(parents=True, exist_ok=True)
    return schema.save(out)


def run_validate_saved(path: str, schema_path: str, batch_mb: float) -> dict[str, Any]:
    """``mooring validate new.csv --schema schema.yaml``: only ``validate`` is timed."""
    from mooring.config._data import ContractConfig
    from mooring.contract._schema import Schema
    from mooring.contract._validation import validate

    options = _bench_options(batch_mb)
    contract = ContractConfig()
    schema = Schema.load(schema_path).with_overrides(contract)
    start = time.perf_counter()
    result = validate(path, schema, options=options, contract=contract)
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "rows": result.num_rows,
        "errors": len(result.errors),
        "anomalies": len(result.anomalies),
    }


def run_arrow_scan(
    path: str, fmt: str, batch_mb: float, dictionary: bool = False
) -> dict[str, Any]:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    start = time.perf_counter()
    batches: Any
    if fmt == "csv":
        batches = pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(block_size=int(batch_mb * (1 << 20))),
            convert_options=pacsv.ConvertOptions(
                null_values=list(NA_VALUES), strings_can_be_null=True
            ),
        )
    else:
        # pyarrow's default batch (64Ki rows, about 10 MiB of Adult-shaped data in memory).
        text = [f.name for f in pq.read_schema(path) if pa.types.is_string(f.type)]
        batches = pq.ParquetFile(path, read_dictionary=text if dictionary else None).iter_batches()
    summary: dict[str, dict[str, Any]] = {}
    rows = 0
    for batch in batches:
        rows += batch.num_rows
        for name, col in zip(batch.schema.names, batch.columns, strict=True):
            acc = summary.setdefault(name, {"count": 0, "min": None, "max": None, "sum": 0.0})
            acc["count"] += len(col) - col.null_count
            # min/max/mean are defined for numbers; text columns get their count only.
            if not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type)):
                continue
            extremes = pc.min_max(col).as_py()
            for key, pick in (("min", min), ("max", max)):
                if extremes[key] is not None:
                    acc[key] = extremes[key] if acc[key] is None else pick(acc[key], extremes[key])
            acc["sum"] += pc.sum(col).as_py() or 0.0
    for acc in summary.values():
        acc["mean"] = acc["sum"] / acc["count"] if acc["count"] else None
    return {"seconds": time.perf_counter() - start, "rows": rows}


def run_pandas(path: str, fmt: str) -> dict[str, Any]:
    import pandas as pd

    start = time.perf_counter()
    if fmt == "csv":
        frame = pd.read_csv(path, engine="pyarrow", na_values=list(NA_VALUES))
    else:
        frame = pd.read_parquet(path, engine="pyarrow")
    frame.describe()
    for name in frame.columns:
        if not pd.api.types.is_numeric_dtype(frame[name]):
            frame[name].value_counts()
    return {"seconds": time.perf_counter() - start, "rows": len(frame)}


def _rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _current_rss_mb() -> float | None:
    try:
        with open("/proc/self/statm", encoding="ascii") as fh:
            pages = int(fh.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


class RssSampler(threading.Thread):
    """Samples current RSS while the work runs: a bounded stream plateaus, a full load climbs."""

    def __init__(self, interval_s: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.interval_s = interval_s
        self.samples: list[tuple[float, float]] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.interval_s):
            rss = _current_rss_mb()
            if rss is not None:
                self.samples.append((time.perf_counter(), rss))

    def halves(self) -> dict[str, float | None]:
        """Highest RSS in the first and in the second half of the sampled period."""
        self._stop_event.set()
        self.join()
        if len(self.samples) < 4:
            return {"rss_first_half_peak_mb": None, "rss_second_half_peak_mb": None}
        middle = (self.samples[0][0] + self.samples[-1][0]) / 2
        first = [rss for t, rss in self.samples if t <= middle]
        second = [rss for t, rss in self.samples if t > middle]
        return {"rss_first_half_peak_mb": max(first), "rss_second_half_peak_mb": max(second)}


def worker(
    task: str, path: str, fmt: str, batch_mb: float, schema_path: str | None = None
) -> dict[str, Any]:
    """Run one measurement in this (fresh) process; report time and peak RSS."""
    # Import everything a contender needs first, so the baseline is comparable across tools.
    import pandas  # noqa: F401
    import pyarrow.csv
    import pyarrow.parquet  # noqa: F401

    import mooring._project
    import mooring.contract._validation  # noqa: F401

    base = _rss_mb()
    runners: dict[str, Callable[[], dict[str, Any]]] = {
        "mooring": lambda: run_mooring(path, batch_mb),
        "mooring_stats": lambda: run_mooring(path, batch_mb, validate_too=False),
        "mooring_validate": lambda: run_mooring_validate(path, batch_mb),
        "validate_saved": lambda: run_validate_saved(path, str(schema_path), batch_mb),
        "arrow_scan": lambda: run_arrow_scan(path, fmt, batch_mb),
        "arrow_scan_dict": lambda: run_arrow_scan(path, fmt, batch_mb, dictionary=True),
        "pandas": lambda: run_pandas(path, fmt),
    }
    sampler = RssSampler()
    sampler.start()
    out = runners[task]()
    out.update(sampler.halves())
    out["baseline_rss_mb"] = base
    out["peak_rss_mb"] = _rss_mb()
    return out


# ---------------------------------------------------------------- orchestration


def measure(
    task: str, path: Path, fmt: str, batch_mb: float, schema_path: Path | None = None
) -> dict[str, Any]:
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        task,
        "--path",
        str(path),
        "--format",
        fmt,
        "--batch-mb",
        str(batch_mb),
    ]
    if schema_path is not None:
        cmd += ["--schema", str(schema_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{task} on {fmt} failed:\n{proc.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _median(runs: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(values) if values else None


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "seconds_median": _median(runs, "seconds"),
        "seconds_all": [r["seconds"] for r in runs],
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        "baseline_rss_mb": _median(runs, "baseline_rss_mb"),
        "rows": runs[0]["rows"],
    }
    for key in ("stats_s", "validate_s", "fingerprint_s"):
        if key in runs[0]:
            out[f"{key.removesuffix('_s')}_seconds_median"] = _median(runs, key)
    if "anomalies" in runs[0]:
        out["anomalies"] = runs[0].get("anomalies")
        out["errors"] = runs[0].get("errors")
    return out


def _bounded(streaming: list[dict[str, Any]], file_mb: float) -> bool | None:
    """Whether streaming a file larger than the batch budget kept memory bounded.

    Bounded: memory grows by less than the file's size and stops growing, i.e. the second
    half of the run peaks no more than 10% of the file size above the first half. None when
    the file is not larger than every budget (a smoke run) or RSS could not be sampled.
    """
    if not streaming or any(s["batch_mb"] >= file_mb for s in streaming):
        return None
    if any(s["rss_first_half_peak_mb"] is None for s in streaming):
        return None
    return all(
        s["growth_mb"] < file_mb
        and s["rss_second_half_peak_mb"] - s["rss_first_half_peak_mb"] < 0.1 * file_mb
        for s in streaming
    )


# Ratio name: (contender, its time key, baseline). "validate" is ``mooring validate`` (one
# read); "two_reads" is statistics then validate reading the file again.
RATIOS = {
    "mooring_stats_vs_scan": ("mooring", "stats_s", "arrow_scan"),
    "mooring_validate_vs_scan": ("mooring_validate", "seconds", "arrow_scan"),
    "mooring_two_reads_vs_scan": ("mooring", "seconds", "arrow_scan"),
    "mooring_stats_vs_pandas": ("mooring", "stats_s", "pandas"),
    "mooring_validate_vs_pandas": ("mooring_validate", "seconds", "pandas"),
    "mooring_two_reads_vs_pandas": ("mooring", "seconds", "pandas"),
    "validate_saved_vs_scan": ("validate_saved", "seconds", "arrow_scan"),
    "validate_saved_vs_pandas": ("validate_saved", "seconds", "pandas"),
}
DICT_RATIOS = {
    "mooring_stats_vs_scan_dict": ("mooring", "stats_s", "arrow_scan_dict"),
    "mooring_validate_vs_scan_dict": ("mooring_validate", "seconds", "arrow_scan_dict"),
    "mooring_two_reads_vs_scan_dict": ("mooring", "seconds", "arrow_scan_dict"),
    "validate_saved_vs_scan_dict": ("validate_saved", "seconds", "arrow_scan_dict"),
}
_MEDIAN_KEY = {"stats_s": "stats_seconds_median", "seconds": "seconds_median"}


def _ratio_specs(fmt: str) -> dict[str, tuple[str, str, str]]:
    return {**RATIOS, **DICT_RATIOS} if fmt == "parquet" else RATIOS


def _ratios(fmt: str, tools: dict[str, dict[str, Any]]) -> dict[str, float]:
    return {
        name: tools[tool][_MEDIAN_KEY[key]] / tools[base]["seconds_median"]
        for name, (tool, key, base) in _ratio_specs(fmt).items()
    }


def _per_repeat_ratios(fmt: str, runs: dict[str, list[dict[str, Any]]]) -> dict[str, float]:
    return {
        name: statistics.median(
            m[key] / other["seconds"] for m, other in zip(runs[tool], runs[base], strict=True)
        )
        for name, (tool, key, base) in _ratio_specs(fmt).items()
    }


def _loadavg() -> list[float] | None:
    """1, 5 and 15 minute load averages: how busy the (shared) machine was."""
    try:
        return [float(v) for v in os.getloadavg()]
    except OSError:
        return None


def saved_floors(formats: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """validate_saved's floors with the numbers behind them (so a miss says by how much)."""
    out: dict[str, dict[str, Any]] = {}
    for fmt in FORMATS:
        ratios, steady = formats[fmt]["ratios"], formats[fmt]["ratios_per_repeat_median"]
        limit = SAVED_MAX_SCAN_RATIO[fmt]
        for name, key, bound in (
            (f"{fmt}_validate_saved_le_{limit:g}x_scan", "validate_saved_vs_scan", limit),
            (f"{fmt}_validate_saved_faster_than_pandas", "validate_saved_vs_pandas", 1.0),
        ):
            out[name] = {
                "ratio": ratios[key],
                "ratio_per_repeat_median": steady[key],
                "limit": bound,
                "met": ratios[key] <= bound,
            }
    return out


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    load_start = _loadavg()
    t0 = time.perf_counter()
    paths = generate(args.data_dir, args.rows, args.seed)
    generate_s = time.perf_counter() - t0
    schema_path = save_contract(args.data_dir / "adult_contract.yaml", args.batch_mb)
    sizes = {fmt: p.stat().st_size / 2**20 for fmt, p in paths.items()}
    raw: dict[str, dict[str, list[dict[str, Any]]]] = {
        fmt: {tool: [] for tool in TOOLS_BY_FORMAT[fmt]} for fmt in FORMATS
    }
    # Interleave so that background load drifts over all contenders alike.
    for repeat in range(args.repeats):
        for fmt in FORMATS:
            for tool in TOOLS_BY_FORMAT[fmt]:
                run = measure(tool, paths[fmt], fmt, args.batch_mb, schema_path)
                raw[fmt][tool].append(run)
                print(
                    f"  repeat {repeat + 1}/{args.repeats} {fmt:8s} {tool:10s} "
                    f"{run['seconds']:8.2f} s  peak {run['peak_rss_mb']:7.0f} MiB",
                    file=sys.stderr,
                    flush=True,
                )
    formats: dict[str, Any] = {}
    for fmt in FORMATS:
        tools = {tool: summarise(raw[fmt][tool]) for tool in TOOLS_BY_FORMAT[fmt]}
        formats[fmt] = {
            "file_mb": sizes[fmt],
            "tools": tools,
            "ratios": _ratios(fmt, tools),
            # Contenders of one repeat run back to back, so per-repeat ratios cancel slow
            # drift in background load; their median is the steadier number on a busy machine.
            "ratios_per_repeat_median": _per_repeat_ratios(fmt, raw[fmt]),
        }
    streaming = []
    for batch_mb in args.memory_batch_mb:
        run = measure("mooring_stats", paths["csv"], "csv", batch_mb)
        streaming.append(
            {
                "batch_mb": batch_mb,
                "seconds": run["seconds"],
                "peak_rss_mb": run["peak_rss_mb"],
                "baseline_rss_mb": run["baseline_rss_mb"],
                "growth_mb": run["peak_rss_mb"] - run["baseline_rss_mb"],
                "rss_first_half_peak_mb": run["rss_first_half_peak_mb"],
                "rss_second_half_peak_mb": run["rss_second_half_peak_mb"],
            }
        )
        print(
            f"  streaming csv batch_mb={batch_mb:g}: {run['seconds']:.2f} s  "
            f"peak {run['peak_rss_mb']:.0f} MiB",
            file=sys.stderr,
            flush=True,
        )
    csv_mb = sizes["csv"]
    floors = {}
    for fmt in FORMATS:
        r = formats[fmt]["ratios"]
        for variant in ("stats", "validate", "two_reads"):
            floors[f"{fmt}_mooring_{variant}_le_{MAX_SCAN_RATIO:g}x_scan"] = (
                r[f"mooring_{variant}_vs_scan"] <= MAX_SCAN_RATIO
            )
            floors[f"{fmt}_mooring_{variant}_faster_than_pandas"] = (
                r[f"mooring_{variant}_vs_pandas"] < 1.0
            )
            if f"mooring_{variant}_vs_scan_dict" in r:
                floors[f"{fmt}_mooring_{variant}_le_{MAX_SCAN_RATIO:g}x_dictionary_scan"] = (
                    r[f"mooring_{variant}_vs_scan_dict"] <= MAX_SCAN_RATIO
                )
    saved = saved_floors(formats)
    for name, floor in saved.items():
        floors[name] = floor["met"]
    # Bounded: streaming a file larger than the batch budget grows memory by less than the
    # file's size. Undecided (None) when the file is not larger than every budget.
    floors["csv_streaming_memory_bounded"] = _bounded(streaming, csv_mb)
    return {
        "benchmark": "contract",
        "rows": args.rows,
        "repeats": args.repeats,
        "seed": args.seed,
        "batch_mb": args.batch_mb,
        "generate_seconds": generate_s,
        "files": {fmt: {"path": paths[fmt].name, "size_mb": sizes[fmt]} for fmt in FORMATS},
        "formats": formats,
        "streaming_memory": {"file": paths["csv"].name, "file_mb": csv_mb, "runs": streaming},
        "floors": floors,
        "validate_saved_floors": saved,
        "contract": schema_path.name,
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "loadavg_start": load_start,
            "loadavg_end": _loadavg(),
        },
    }


def print_table(report: dict[str, Any]) -> None:
    print(
        f"\nmooring contract benchmark: {report['rows']:,} rows shaped like Adult, "
        f"median of {report['repeats']}, batch_mb={report['batch_mb']:g}"
    )
    header = (
        f"{'format':8s} {'contender':22s} {'seconds':>9s} {'x scan':>7s} "
        f"{'x pandas':>8s} {'peak MiB':>9s}"
    )
    print(header)
    print("-" * len(header))
    for fmt in FORMATS:
        block = report["formats"][fmt]
        tools = block["tools"]
        scan = tools["arrow_scan"]["seconds_median"]
        pandas = tools["pandas"]["seconds_median"]
        m, v = tools["mooring"], tools["mooring_validate"]
        saved = tools["validate_saved"]
        rows = [
            ("validate saved schema", saved["seconds_median"], saved["peak_rss_mb"]),
            ("mooring stats", m["stats_seconds_median"], m["peak_rss_mb"]),
            ("mooring validate", v["seconds_median"], v["peak_rss_mb"]),
            ("stats+validate 2 reads", m["seconds_median"], m["peak_rss_mb"]),
            ("arrow scan", scan, tools["arrow_scan"]["peak_rss_mb"]),
            ("pandas", pandas, tools["pandas"]["peak_rss_mb"]),
        ]
        if "arrow_scan_dict" in tools:
            d = tools["arrow_scan_dict"]
            rows.append(("arrow scan, dictionary", d["seconds_median"], d["peak_rss_mb"]))
        for name, seconds, peak in rows:
            print(
                f"{fmt:8s} {name:22s} {seconds:9.2f} {seconds / scan:7.2f} "
                f"{seconds / pandas:8.2f} {peak:9.0f}"
            )
        steady = block["ratios_per_repeat_median"]
        print(
            f"{'':8s} file size {block['file_mb']:.1f} MiB; mooring validate = hash "
            f"{v['fingerprint_seconds_median']:.2f} s + read and check "
            f"{v['validate_seconds_median']:.2f} s; anomalies {v['anomalies']} "
            f"(2 reads: {m['anomalies']})"
        )
        print(
            f"{'':8s} median of per-repeat ratios: "
            f"stats {steady['mooring_stats_vs_scan']:.2f}x scan; "
            f"validate {steady['mooring_validate_vs_scan']:.2f}x scan, "
            f"{steady['mooring_validate_vs_pandas']:.2f}x pandas; "
            f"2 reads {steady['mooring_two_reads_vs_scan']:.2f}x scan, "
            f"{steady['mooring_two_reads_vs_pandas']:.2f}x pandas"
        )
        dict_note = (
            f", {steady['validate_saved_vs_scan_dict']:.2f}x dictionary scan"
            if "validate_saved_vs_scan_dict" in steady
            else ""
        )
        print(
            f"{'':8s} validate against the saved schema (median of per-repeat ratios): "
            f"{steady['validate_saved_vs_scan']:.2f}x scan{dict_note}, "
            f"{steady['validate_saved_vs_pandas']:.2f}x pandas; anomalies {saved['anomalies']}, "
            f"errors {saved['errors']}"
        )
        if "mooring_stats_vs_scan_dict" in steady:
            print(
                f"{'':8s} vs the dictionary scan: stats "
                f"{steady['mooring_stats_vs_scan_dict']:.2f}x, validate "
                f"{steady['mooring_validate_vs_scan_dict']:.2f}x, 2 reads "
                f"{steady['mooring_two_reads_vs_scan_dict']:.2f}x"
            )
    mem = report["streaming_memory"]
    print(f"\nstreaming memory, mooring stats on {mem['file']} ({mem['file_mb']:.1f} MiB):")
    for s in mem["runs"]:
        halves = ""
        if s["rss_first_half_peak_mb"] is not None:
            halves = (
                f"; RSS peak 1st half {s['rss_first_half_peak_mb']:.0f}, "
                f"2nd half {s['rss_second_half_peak_mb']:.0f}"
            )
        print(
            f"  batch_mb={s['batch_mb']:<5g} {s['seconds']:6.2f} s peak {s['peak_rss_mb']:.0f} MiB "
            f"(after imports {s['baseline_rss_mb']:.0f}, growth {s['growth_mb']:.0f}{halves})"
        )
    machine = report["machine"]
    if machine.get("loadavg_start") and machine.get("loadavg_end"):
        start, end = machine["loadavg_start"], machine["loadavg_end"]
        print(
            f"\nload average (1/5/15 min) at start {start[0]:.2f} {start[1]:.2f} {start[2]:.2f}, "
            f"at end {end[0]:.2f} {end[1]:.2f} {end[2]:.2f} on {machine['cpus']} CPUs"
        )
    print("\nfloors:")
    saved = report["validate_saved_floors"]
    for name, ok in report["floors"].items():
        number = ""
        if name in saved:
            number = f"  ({saved[name]['ratio']:.2f}x, limit {saved[name]['limit']:g}x)"
        print(f"  {'n/a   ' if ok is None else 'met   ' if ok else 'MISSED'} {name}{number}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--rows", type=int, default=2_000_000, help="rows of the generated file (headline: 2M)"
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--batch-mb",
        type=float,
        default=16.0,
        help="batch budget for the timed runs (mooring's default is 16)",
    )
    parser.add_argument(
        "--memory-batch-mb",
        type=float,
        nargs="*",
        default=[8.0, 64.0],
        help="batch budgets for the streaming-memory runs",
    )
    parser.add_argument("--data-dir", type=Path, default=HERE / "data")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "bench_contract.json")
    # Internal: one measurement in a fresh process.
    parser.add_argument(
        "--worker", choices=[*TOOLS, "arrow_scan_dict", "mooring_stats"], help=argparse.SUPPRESS
    )
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument("--format", choices=FORMATS, help=argparse.SUPPRESS)
    parser.add_argument("--schema", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        report = worker(args.worker, args.path, args.format, args.batch_mb, args.schema)
        print(json.dumps(report))
        return 0
    report = run_benchmark(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print_table(report)
    print(f"\nresults written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
