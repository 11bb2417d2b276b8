"""The contract travels with the project, as a user meets it on the command line.

One module-scoped project on the Adult sample, with a real registry and real training:
the first run writes ``contract/schema.yaml``; a new file that lost ``workclass`` is
refused by ``validate`` and by ``run`` (nothing trained or registered); a hand edit of the
contract stops the next run; ``schema diff`` names the change and ``schema accept``
records it in the audit log; the next run trains under the new contract, and its
version, which lacks an input production's clients send, is refused as a canary until
forced with a reason. The commands run through the CLI's entry point in the test's
process (``tests/_support/cli.py``).
"""

from __future__ import annotations

import gzip
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from mooring.config import load_config
from mooring.pipeline._contracts import CONTRACT_FILE
from mooring.registry import Registry
from tests._support.broken_adult import csv_bytes, drop_column, map_column
from tests._support.cli import mooring_in_process
from tests._support.project import write_project

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("contract-travels")]


def _said(done: object) -> str:
    return " ".join((done.stdout + done.stderr).split())  # type: ignore[attr-defined]


def _rows(path: Path) -> tuple[list[str], list[list[str]]]:
    lines = path.read_text().splitlines()
    return lines[0].split(","), [line.split(",") for line in lines[1:]]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, small_adult: dict[str, Path]) -> Path:
    root = tmp_path_factory.mktemp("travels")
    write_project(root, small_adult)
    first = mooring_in_process("run", cwd=root)
    assert first.returncode == 0, _said(first)
    return root


@pytest.fixture(scope="module")
def lost_workclass(project: Path, small_adult: dict[str, Path]) -> Path:
    header, rows = _rows(small_adult["train"])
    path = project / "new.csv"
    path.write_bytes(csv_bytes(*drop_column(header, rows, "workclass")))
    return path


def _registry(project: Path) -> Registry:
    return Registry.from_config(load_config(project / "mooring.toml"))


def test_the_first_run_writes_the_contract_and_audits_its_adoption(project: Path) -> None:
    contract = project / CONTRACT_FILE
    assert contract.is_file() and "workclass:" in contract.read_text()
    with _registry(project) as registry:
        [adopted] = registry.contract_events("income")
        mv = registry.get("income", version=1)
    assert adopted.action == "contract_adopted" and adopted.after is not None
    assert "training data" in (adopted.reason or "")
    # The version names the contract it was trained under, as the audit log does.
    assert mv.lineage.contract_fingerprint == adopted.after["fingerprint"]


def test_validate_checks_a_new_file_against_production_without_a_schema(
    project: Path, lost_workclass: Path
) -> None:
    done = mooring_in_process("validate", lost_workclass.name, cwd=project)
    assert done.returncode == 1, _said(done)
    assert "production v1 of income" in _said(done) and "'workclass' is missing" in _said(done)
    assert "Traceback" not in _said(done)
    as_json = mooring_in_process("validate", lost_workclass.name, "--json", cwd=project)
    report = json.loads(as_json.stdout)
    assert report["reference"] == "production v1 of income"
    assert [(a["kind"], a["column"], a["severity"]) for a in report["anomalies"]] == [
        ("missing_column", "workclass", "error")
    ]
    # Serving data has no label; training data must.
    header, rows = _rows(lost_workclass)
    no_label = project / "requests.csv"
    no_label.write_bytes(csv_bytes(*drop_column(header, rows, "class")))
    assert (
        mooring_in_process(
            "validate", "requests.csv", "--against", "production", cwd=project
        ).returncode
        == 1
    )
    done = mooring_in_process("validate", "requests.csv", "--environment", "serving", cwd=project)
    assert "'class'" not in _said(done) and "'workclass' is missing" in _said(done)


def test_run_stops_before_training_on_a_file_that_lost_a_column(
    project: Path, lost_workclass: Path
) -> None:
    runs = set((project / "state" / "runs").iterdir())
    done = mooring_in_process("run", "--train-data", lost_workclass.name, cwd=project)
    assert done.returncode == 1, _said(done)
    assert "'workclass' is missing" in _said(done) and "Traceback" not in _said(done)
    new_runs = set((project / "state" / "runs").iterdir()) - runs
    assert not [model for run in new_runs for model in run.glob("**/saved_model.pb")]
    with _registry(project) as registry:
        assert [v.version for v in registry.versions("income")] == [1]


def _broken(small_adult: dict[str, Path]) -> dict[str, tuple[bytes, int, str]]:
    header, rows = _rows(small_adult["train"])

    def column(name: str, value: Callable[[int, str], str]) -> bytes:
        return csv_bytes(header, map_column(header, rows, name, value))

    gz = gzip.compress(csv_bytes(header, rows))
    return {
        "renamed": (
            csv_bytes(["work_class" if h == "workclass" else h for h in header], rows),
            1,
            "'workclass' is missing and the new column 'work_class' holds values like its own",
        ),
        "reordered": (csv_bytes(header[::-1], [r[::-1] for r in rows]), 0, "PASSED"),
        "int to text": (column("hours-per-week", lambda n, v: f"{v}h"), 1, "are not integer"),
        "a new category": (
            column("race", lambda n, v: "Martian" if n % 50 == 0 else v),
            0,
            "categories not in the domain (e.g. 'Martian')",
        ),
        "out of range": (column("age", lambda n, v: "400" if n == 3 else v), 1, "outside [9, 98]"),
        "all null": (column("occupation", lambda n, v: "?"), 1, "null_fraction occupation"),
        "constant": (column("relationship", lambda n, v: "Husband"), 0, "'Husband'"),
        "byte-order mark": (b"\xef\xbb\xbf" + csv_bytes(header, rows), 0, "PASSED"),
        "duplicate header names": (
            csv_bytes(["age" if h == "fnlwgt" else h for h in header], rows),
            2,
            "repeats column names ['age']",
        ),
        "truncated gzip": (gz[: len(gz) // 2], 2, "truncated"),
        "header only": (csv_bytes(header, []), 1, "has no rows"),
        "empty": (b"", 2, "is empty"),
    }


def test_broken_copies_are_judged_against_the_projects_contract(
    project: Path, small_adult: dict[str, Path], tmp_path: Path
) -> None:
    contract = (project / CONTRACT_FILE).read_bytes()
    for case, (data, code, names) in _broken(small_adult).items():
        path = tmp_path / ("new.csv.gz" if case == "truncated gzip" else "new.csv")
        path.write_bytes(data)
        done = mooring_in_process("validate", str(path), cwd=project)
        assert done.returncode == code, f"{case}: {_said(done)[:1500]}"
        assert names in _said(done), f"{case}: {_said(done)[:1500]}"
        assert "Traceback" not in _said(done), case
        path.unlink()
    assert (project / CONTRACT_FILE).read_bytes() == contract


def test_a_parquet_shard_unlike_its_siblings_is_named(
    project: Path, small_adult: dict[str, Path], tmp_path: Path
) -> None:
    table = pacsv.read_csv(small_adult["train"])
    (tmp_path / "day").mkdir()
    pq.write_table(table.slice(0, 1000), tmp_path / "day" / "a.parquet")
    pq.write_table(table.slice(1000, 1000).drop(["workclass"]), tmp_path / "day" / "b.parquet")
    done = mooring_in_process("validate", str(tmp_path / "day"), cwd=project)
    assert done.returncode == 2 and "b.parquet has no column(s) ['workclass']" in _said(done)
    ages = pa.array([None] * 1000, pa.int64())
    pq.write_table(
        table.slice(1000, 1000).set_column(0, "age", ages), tmp_path / "day" / "b.parquet"
    )
    done = mooring_in_process("validate", str(tmp_path / "day"), cwd=project)
    assert done.returncode == 1 and "null_fraction age" in _said(done)


def test_a_contract_kept_with_the_project_is_the_reference_before_any_deployment(
    project: Path, small_adult: dict[str, Path], lost_workclass: Path, tmp_path: Path
) -> None:
    # A clone of the project: its mooring.toml and contract file, no registry yet.
    write_project(tmp_path, small_adult)
    (tmp_path / "contract").mkdir()
    shutil.copy(project / CONTRACT_FILE, tmp_path / CONTRACT_FILE)
    done = mooring_in_process("validate", str(lost_workclass), cwd=tmp_path)
    assert done.returncode == 1 and "against contract/schema.yaml" in _said(done)
    assert "'workclass' is missing" in _said(done)
    refused = mooring_in_process("run", "--train-data", str(lost_workclass), cwd=tmp_path)
    assert refused.returncode == 1 and "'workclass' is missing" in _said(refused)
    assert not (tmp_path / "state" / "registry.db").exists()
    # Listing the models before the first run creates nothing, and that run goes on.
    listed = mooring_in_process("models", "list", cwd=tmp_path)
    assert listed.returncode == 0 and "no models yet" in _said(listed), _said(listed)
    shown = mooring_in_process("models", "show", "income", cwd=tmp_path)
    assert shown.returncode == 2 and "nothing is in the registry yet" in _said(shown), _said(shown)
    for command in (
        ["drift"],
        ["score", "-d", str(lost_workclass), "-o", "scored"],
        ["export", "lite", "income"],
    ):
        said = mooring_in_process(*command, cwd=tmp_path)
        assert said.returncode == 2 and "nothing is in the registry yet" in _said(said), command
    assert not (tmp_path / "state" / "registry.db").exists()
    assert not (tmp_path / "state" / "artifacts").exists()
    first = mooring_in_process("run", cwd=tmp_path)
    assert first.returncode == 0, _said(first)
    with _registry(tmp_path) as registry:
        [adopted] = registry.contract_events("income")
    assert adopted.reason == "first contract of the project, from the project's contract file"
    assert (tmp_path / CONTRACT_FILE).read_bytes() == (project / CONTRACT_FILE).read_bytes()


def test_a_hand_edited_contract_stops_the_run_until_accepted(project: Path) -> None:
    contract = project / CONTRACT_FILE
    original = contract.read_text()
    contract.write_text(original.replace("  hours-per-week:", "  hours_per_week:"))
    try:
        done = mooring_in_process("run", cwd=project)
        assert done.returncode == 1, _said(done)
        assert "changed since it was last accepted" in _said(done)
        assert "mooring schema accept contract/schema.yaml -r REASON" in _said(done)
        diff = mooring_in_process(
            "schema", "diff", "production", CONTRACT_FILE, "--json", cwd=project
        )
        changes = json.loads(diff.stdout)["changes"]
        assert [(c["kind"], c["before"], c["after"], c["breaking"]) for c in changes] == [
            ("renamed", "hours-per-week", "hours_per_week", True)
        ]
    finally:
        contract.write_text(original)


def test_accept_records_the_change_and_the_next_run_trains_under_it(
    project: Path, lost_workclass: Path
) -> None:
    diff = mooring_in_process("schema", "diff", "production", lost_workclass.name, cwd=project)
    assert diff.returncode == 0 and "column 'workclass' (string) is removed" in _said(diff)
    refused = mooring_in_process("schema", "accept", lost_workclass.name, cwd=project)
    assert refused.returncode == 2 and "needs a reason" in _said(refused)
    done = mooring_in_process(
        "schema", "accept", lost_workclass.name, "-r", "workclass is no longer collected",
        "--actor", "ana", cwd=project,
    )  # fmt: skip
    assert done.returncode == 0, _said(done)
    assert "workclass:" not in (project / CONTRACT_FILE).read_text()
    with _registry(project) as registry:
        accepted = registry.contract_events("income")[-1]
        assert registry.verify_audit().ok
    assert (accepted.action, accepted.actor) == ("contract_accepted", "ana")
    assert accepted.reason == "workclass is no longer collected" and accepted.after is not None
    assert {"kind": "removed", "column": "workclass"}.items() <= accepted.after["changes"][
        0
    ].items()
    # The next run trains under the accepted contract; the version it registers lacks an
    # input production's clients send, so it is not made the canary.
    run = mooring_in_process("run", "--train-data", lost_workclass.name, cwd=project)
    assert run.returncode == 1, _said(run)
    assert "registered but not deployed" in _said(run) and "'workclass'" in _said(run)
    with _registry(project) as registry:
        v2 = registry.get("income", version=2)
        assert registry.deployment("income").canary is None
    assert v2.lineage.contract_fingerprint == accepted.after["fingerprint"]
    assert "workclass" not in v2.run_record["schema"]["columns"]
    deploy = ("models", "deploy", "income", "-p", "1", "--canary", "2", "-w", "50")
    refused = mooring_in_process(*deploy, cwd=project)
    assert refused.returncode != 0 and "unexpected field 'workclass'" in _said(refused)
    forced = mooring_in_process(
        *deploy, "--force", "-r", "clients send the new contract", cwd=project
    )
    assert forced.returncode == 0, _said(forced)
    with _registry(project) as registry:
        assert registry.deployment("income").canary == 2
        assert registry.history("income")[-1].forced


def test_a_deleted_contract_is_not_guessed_again_from_new_data(
    project: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(project, copy)
    (copy / CONTRACT_FILE).unlink()
    done = mooring_in_process("run", cwd=copy)
    assert done.returncode == 1 and "does not exist, but the project accepted" in _said(done)
