"""Small Adult projects for the pipeline tests: a few thousand rows, one tiny epoch."""

from __future__ import annotations

import csv
import gzip
import random
import re
from pathlib import Path
from typing import Any

ADULT = Path(__file__).resolve().parents[2] / "examples" / "adult"
NUMERIC = ("age", "fnlwgt", "education-num", "capital-gain", "capital-loss", "hours-per-week")

# Fast and still good enough to pass an AUC floor of 0.7 on 1,000 test rows.
MODEL = """\
[model]
task = "binary"
hidden = [16]
epochs = 1
learning_rate = 0.01
schedule = "constant"
parity_records = 20
seed = 42
"""


def write_adult(folder: Path, *, train_rows: int = 3000, test_rows: int = 1000) -> dict[str, Path]:
    """The first rows of the bundled Adult train and test files as plain CSV."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for key, name, rows in (
        ("train", "adult.data.csv.gz", train_rows),
        ("test", "adult.test.csv.gz", test_rows),
    ):
        target = folder / name.removesuffix(".gz")
        with gzip.open(ADULT / name, "rt") as src, target.open("w") as dst:
            for index, line in enumerate(src):
                if index > rows:
                    break
                dst.write(line)
        out[key] = target
    return out


def write_project(
    root: Path,
    data: dict[str, Path],
    *,
    model: str = MODEL,
    extra: str = "",
    train: str | None = None,
) -> Path:
    """A mooring.toml under ``root`` pointing at the shared data files."""
    root.mkdir(parents=True, exist_ok=True)
    toml = root / "mooring.toml"
    toml.write_text(
        '[project]\nname = "income"\nhome = "state"\n'
        f'[data]\ntrain = "{train or data["train"].as_posix()}"\n'
        f'eval = "{data["test"].as_posix()}"\n'
        'label = "class"\npositive = ">50K"\nna_values = ["?", ""]\n'
        '[contract]\ncritical = ["age", "education-num"]\n'
        f"{model}"
        "[evaluation]\nbootstrap = { samples = 0 }\n"
        '[[evaluation.gates]]\nmetric = "auc"\nlower = 0.7\n'
        "[rollout]\nsteps = [10, 50, 100]\n"
        "[serving]\nwarmup_requests = 1\npoll_interval_s = 0.1\nlog_sample_rate = 1.0\n"
        "log_flush_rows = 50\nlog_flush_s = 0.2\n"
        f"[pipeline]\ncpu_hour_price = 0.05\n{extra}",
        encoding="utf-8",
    )
    return toml


def edit(toml: Path, pattern: str, replacement: str) -> None:
    """Replace one regex match in a project file (exactly one must exist)."""
    text = toml.read_text(encoding="utf-8")
    new, count = re.subn(pattern, replacement, text, count=1, flags=re.MULTILINE)
    assert count == 1, f"{pattern!r} not in {toml}"
    toml.write_text(new, encoding="utf-8")


def request_rows(test_csv: Path, count: int) -> list[dict[str, Any]]:
    """Rows of the test file as a client sends them: numbers as numbers, '?' as null."""
    rows: list[dict[str, Any]] = []
    with test_csv.open(newline="") as fh:
        for raw in csv.DictReader(fh):
            row: dict[str, Any] = {}
            for key, value in raw.items():
                if key == "class":
                    continue
                if value in ("?", ""):
                    row[key] = None
                else:
                    row[key] = float(value) if key in NUMERIC else value
            rows.append(row)
            if len(rows) == count:
                break
    return rows


def break_ages(source: Path, target: Path) -> Path:
    """A copy of ``source`` whose critical 'age' column holds text and impossible values."""
    lines = source.read_text().splitlines()
    header = lines[0].split(",")
    index = header.index("age")
    out = [lines[0]]
    for number, line in enumerate(lines[1:]):
        fields = line.split(",")
        fields[index] = "old" if number % 3 == 0 else "999"
        out.append(",".join(fields))
    target.write_text("\n".join(out) + "\n")
    return target


def shuffle_labels(source: Path, target: Path, *, seed: int = 0) -> Path:
    """A copy of ``source`` whose ``class`` column is shuffled: nothing left to learn."""
    lines = source.read_text().splitlines()
    header = lines[0].split(",")
    index = header.index("class")
    rows = [line.split(",") for line in lines[1:] if line]
    labels = [row[index] for row in rows]
    random.Random(seed).shuffle(labels)
    for row, label in zip(rows, labels, strict=True):
        row[index] = label
    target.write_text("\n".join([lines[0], *(",".join(row) for row in rows)]) + "\n")
    return target


def without_gates(toml: Path) -> Path:
    """The project with its ``[[evaluation.gates]]`` (an AUC floor) removed."""
    edit(toml, r'^\[\[evaluation\.gates\]\]\nmetric = "auc"\nlower = 0\.7\n', "")
    return toml
