"""The ``explain`` signature's cost on Adult, for ``bench_attributions.py --cost``: run once
per source tree (``PYTHONPATH=<tree>/src``), it prints one JSON line.

A network ([64, 32]) is built on 4,000 Adult training rows' statistics (its weights do
not change the cost) and exported with ``export_model`` (with the training rows' sample
as the background where the tree's ``export_model`` takes one); then the folder's
explainer is loaded and explains 1 row and 200 rows, each the median of 5 calls.
"""

from __future__ import annotations

import inspect
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ADULT = Path(__file__).resolve().parent.parent / "examples" / "adult"


def main() -> None:
    import keras

    import mooring
    from mooring.config import MooringConfig
    from mooring.contract._io import ReadOptions
    from mooring.contract._schema import infer_schema
    from mooring.contract._statistics import compute_statistics
    from mooring.explain import load_explainer
    from mooring.features._infer import build_feature_spec
    from mooring.features._inputs import columns_from_table
    from mooring.training._builders import build_model, resolve_kind
    from mooring.training._export import export_model
    from mooring.training._labels import resolve_label

    read = {"na_values": "?", "skipinitialspace": True}
    frame = pd.read_csv(ADULT / "adult.data.csv.gz", **read).sample(4000, random_state=0)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        frame.to_csv(root / "train.csv", index=False)
        cfg = MooringConfig.from_mapping(
            {
                "project": {"name": "cost"},
                "data": {"train": str(root / "train.csv"), "label": "class", "positive": ">50K"},
                "model": {"hidden": [64, 32]},
            },
            root=root,
        )
        stats = compute_statistics(root / "train.csv", ReadOptions.from_config(cfg.data))
        schema = infer_schema(stats, label="class")
        label = resolve_label(cfg, stats, schema)
        spec = build_feature_spec(cfg.features, statistics=stats, schema=schema, label="class")
        keras.utils.set_random_seed(1)
        model = build_model(spec, label, cfg.model, resolve_kind(cfg.model))
        import pyarrow as pa

        table = pa.Table.from_pandas(frame, preserve_index=False)
        kwargs = {}
        if "reference" in inspect.signature(export_model).parameters:
            from mooring.training._explain import reference_sample

            kwargs["reference"] = reference_sample(columns_from_table(table, spec), seed=1)
        t0 = time.perf_counter()
        export_model(model, spec, label, root / "model", **kwargs)
        export_seconds = time.perf_counter() - t0
        t0 = time.perf_counter()
        explainer = load_explainer(root / "model")
        load_seconds = time.perf_counter() - t0
        rows = frame.drop(columns=["class"]).iloc[:200]
        one = {c: rows[c].iloc[:1].tolist() for c in rows.columns}
        many = {c: rows[c].tolist() for c in rows.columns}
        explainer.explain(one)  # the first call traces nothing more, but warms the caches

        def timed(columns: dict[str, list[object]]) -> float:
            runs = []
            for _ in range(5):
                t = time.perf_counter()
                explainer.explain(columns)
                runs.append(time.perf_counter() - t)
            return statistics.median(runs)

        result = {
            "tree": str(Path(mooring.__file__).resolve().parents[2]),
            "background": "training rows" if kwargs else "one row of imputed values",
            "export_seconds": round(export_seconds, 2),
            "explainer_load_seconds": round(load_seconds, 2),
            "explain_1_row_seconds": round(timed(one), 4),
            "explain_200_rows_seconds": round(timed(many), 3),
        }
    print(json.dumps(result))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
