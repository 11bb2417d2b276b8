"""The resolved feature spec: what each input column becomes, with its fitted state.

A :class:`FeatureSpec` is the feature layer's single source of truth. It holds,
per feature, the options (transform, encoding, missing-value policy) *and* the
state those options need (mean and variance, bucket boundaries, vocabulary),
all taken from the contract layer's statistics. It serialises to plain JSON
(saved in ``mooring.json`` beside the model) and has a content hash that covers
the options, the state and the fingerprint of the statistics it came from.

Build one with :func:`mooring.features.build_feature_spec`; turn it into Keras
layers with :func:`mooring.features._layers.build_preprocessing`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import orjson

from mooring.errors import SchemaError

__all__ = [
    "CategoricalFeature",
    "CrossFeature",
    "Feature",
    "FeatureSpec",
    "NumericFeature",
]

SPEC_VERSION = 1


@dataclass(frozen=True)
class NumericFeature:
    """A number column: imputed, transformed and bounded.

    ``mean``/``variance`` describe the transformed value (log space for
    ``log_normalize``); ``impute`` is the raw value that replaces a missing one;
    ``lower``/``upper`` are the training range (passthrough values are clamped to
    it); ``constant`` marks a column with (near) zero variance.
    """

    name: str
    transform: Literal["normalize", "log_normalize", "bucketize", "passthrough"]
    missing: Literal["impute", "indicator"]
    clip: float
    impute: float
    mean: float = 0.0
    variance: float = 1.0
    boundaries: tuple[float, ...] = ()
    lower: float = 0.0
    upper: float = 0.0
    constant: bool = False
    kind: Literal["numeric"] = "numeric"

    @property
    def dtype(self) -> str:
        return "float32"

    @property
    def width(self) -> int:
        """Number of model inputs this feature produces."""
        base = len(self.boundaries) + 1 if self.transform == "bucketize" else 1
        return base + (1 if self.missing == "indicator" else 0)


@dataclass(frozen=True)
class CategoricalFeature:
    """A categorical column: looked up in a vocabulary (or hashed), then encoded.

    ``source`` is ``string`` for text and boolean columns (input ``tf.string``,
    ``""`` = missing) and ``integer`` for integer codes (input ``tf.float32``,
    NaN = missing). Vocabulary order is by training count, most frequent first,
    ties by value: deterministic for the same statistics. Lookup indices are:
    ``0 .. oov-1`` out of vocabulary, then (``missing = "category"``) one index
    for missing, then the vocabulary.
    """

    name: str
    encoding: Literal["one_hot", "embedding", "hashing"]
    missing: Literal["category", "oov"]
    source: Literal["string", "integer"] = "string"
    vocabulary: tuple[str, ...] = ()
    oov: int = 1
    dim: int | None = None
    bins: int | None = None
    kind: Literal["categorical"] = "categorical"

    @property
    def dtype(self) -> str:
        return "string" if self.source == "string" else "float32"

    @property
    def size(self) -> int:
        """Number of distinct lookup indices (or hash bins)."""
        if self.encoding == "hashing":
            return int(self.bins or 0)
        return self.oov + (1 if self.missing == "category" else 0) + len(self.vocabulary)

    @property
    def width(self) -> int:
        return self.size if self.encoding == "one_hot" else int(self.dim or 0)


Feature = NumericFeature | CategoricalFeature


@dataclass(frozen=True)
class CrossFeature:
    """A hashed cross of two or more features (numbers crossed by their bucket).

    ``boundaries`` holds, for each numeric component, the bucket boundaries used to
    turn it into a discrete value (empty for categorical components).
    """

    columns: tuple[str, ...]
    bins: int
    dim: int | None
    boundaries: tuple[tuple[float, ...], ...] = ()

    @property
    def name(self) -> str:
        return "_x_".join(self.columns)

    @property
    def width(self) -> int:
        return self.bins if not self.dim else self.dim


@dataclass(frozen=True)
class FeatureSpec:
    """Every model input, in a fixed order, plus crosses and provenance.

    Examples:
        >>> spec = FeatureSpec(features=(NumericFeature("age", "normalize", "impute", 5.0, 38.0,
        ...                                             mean=38.0, variance=169.0),))
        >>> spec.names, spec.input_dtypes()
        (['age'], {'age': 'float32'})
    """

    features: tuple[Feature, ...]
    crosses: tuple[CrossFeature, ...] = ()
    statistics_fingerprint: str = ""
    schema_fingerprint: str = ""
    version: int = SPEC_VERSION
    warnings: tuple[str, ...] = field(default=(), compare=False)

    @property
    def names(self) -> list[str]:
        """Input column names, in model order."""
        return [f.name for f in self.features]

    def __getitem__(self, name: str) -> Feature:
        for feature in self.features:
            if feature.name == name:
                return feature
        raise SchemaError(f"feature {name!r} is not in the feature spec; features: {self.names}")

    def input_dtypes(self) -> dict[str, str]:
        """Raw input dtype per column: ``float32`` (NaN = missing) or ``string`` ("" = missing)."""
        return {f.name: f.dtype for f in self.features}

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": "mooring.feature_spec",
            "version": self.version,
            "statistics_fingerprint": self.statistics_fingerprint,
            "schema_fingerprint": self.schema_fingerprint,
            "features": [_feature_dict(f) for f in self.features],
            "crosses": [
                {
                    "columns": list(c.columns),
                    "bins": c.bins,
                    "dim": c.dim,
                    "boundaries": [list(b) for b in c.boundaries],
                }
                for c in self.crosses
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureSpec:
        if data.get("format") != "mooring.feature_spec":
            raise SchemaError("not a mooring feature spec (missing format: mooring.feature_spec)")
        features: list[Feature] = []
        for item in data["features"]:
            values = dict(item)
            kind = values.pop("kind")
            if kind == "numeric":
                values["boundaries"] = tuple(values.get("boundaries", ()))
                features.append(NumericFeature(**values))
            else:
                values["vocabulary"] = tuple(values.get("vocabulary", ()))
                features.append(CategoricalFeature(**values))
        crosses = tuple(
            CrossFeature(
                columns=tuple(c["columns"]),
                bins=int(c["bins"]),
                dim=c["dim"],
                boundaries=tuple(tuple(b) for b in c["boundaries"]),
            )
            for c in data.get("crosses", [])
        )
        return cls(
            features=tuple(features),
            crosses=crosses,
            statistics_fingerprint=str(data.get("statistics_fingerprint", "")),
            schema_fingerprint=str(data.get("schema_fingerprint", "")),
            version=int(data.get("version", SPEC_VERSION)),
        )

    def fingerprint(self) -> str:
        """sha256 of the canonical JSON: options, fitted state and the statistics' hash."""
        return hashlib.sha256(orjson.dumps(self.to_dict(), option=orjson.OPT_SORT_KEYS)).hexdigest()


def _feature_dict(feature: Feature) -> dict[str, Any]:
    out = asdict(feature)
    for key in ("boundaries", "vocabulary"):
        if key in out:
            out[key] = list(out[key])
    return out
