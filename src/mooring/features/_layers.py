"""Keras 3 preprocessing layers built from a :class:`FeatureSpec` (state from statistics).

Each raw input is a rank-1 tensor ``[batch]``: ``float32`` for numbers (NaN =
missing) and ``string`` for text (``""`` = missing). Each feature becomes a
``float32`` block ``[batch, width]``:

* numeric: missing → imputed (plus a 0/1 is-missing column for ``indicator``);
  ``normalize`` → ``Normalization`` then clipped to ±clip; ``log_normalize`` →
  sign·log1p(|x|) first; ``bucketize`` → ``Discretization`` + one-hot
  ``CategoryEncoding``; ``passthrough`` → clamped to the training range;
* categorical: ``StringLookup``/``IntegerLookup`` with the spec's vocabulary
  (missing first when it is its own category) → ``CategoryEncoding`` one-hot or
  ``Embedding``; ``hashing`` → ``Hashing`` → ``Embedding``;
* crosses: ``HashedCrossing`` of the components' discrete values → one-hot or
  ``Embedding``.

No layer is adapted: the state is set from the spec, so building is instant and
does not touch the data.
"""

from __future__ import annotations

import hashlib
import warnings
from typing import Any

import keras
from keras import layers, ops

from mooring.features._spec import CategoricalFeature, CrossFeature, FeatureSpec, NumericFeature

__all__ = [
    "MISSING_INTEGER",
    "block_name",
    "build_inputs",
    "build_preprocessing",
    "functional_model",
]

# Missing integer codes are looked up as this value (never a real code in practice).
MISSING_INTEGER = -(2**62)


def _safe(name: str) -> str:
    """A Keras name derived from a column name: ASCII letters, digits and '_' only.

    Keras refuses '/' in names and TensorFlow refuses spaces and non-ASCII letters in
    op names, so a column named ``od280/od315`` or ``größe`` would crash the build; a
    name that had to change gets a short hash of the original, so two columns that
    differ only in such characters (``a-b``, ``a b``) stay distinct.

    Examples:
        >>> _safe("age"), _safe("od280/od315")
        ('age', 'od280_od315_bd59ac')
    """
    slug = "".join(ch if (ch.isalnum() and ch.isascii()) or ch == "_" else "_" for ch in name)
    if slug == name and slug[:1].isalpha():
        return name
    digest = hashlib.sha1(name.encode("utf-8")).hexdigest()[:6]
    stem = slug.strip("_")[:40]
    return f"{stem if stem[:1].isalpha() else 'col_' + stem}_{digest}"


def build_inputs(spec: FeatureSpec) -> dict[str, Any]:
    """One ``keras.Input`` of shape ``[batch]`` per feature, keyed by its column's name.

    The dict's keys are the column names (what the model is called with); the Keras
    tensors carry :func:`_safe` names, which Keras and TensorFlow accept for any column.
    """
    return {f.name: keras.Input(shape=(), dtype=f.dtype, name=_safe(f.name)) for f in spec.features}


def functional_model(inputs: Any, outputs: Any, name: str) -> keras.Model:
    """``keras.Model(inputs, outputs)`` for inputs keyed by column name, not tensor name.

    Keras matches a dict of inputs by its keys and only warns that a key differs from its
    tensor's name; here they differ on purpose (see :func:`build_inputs`).
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="When providing `inputs` as a dict")
        return keras.Model(inputs=inputs, outputs=outputs, name=name)


def build_preprocessing(
    spec: FeatureSpec, inputs: dict[str, Any] | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Symbolic inputs and one encoded ``[batch, width]`` float32 block per feature and cross.

    Examples:
        >>> from mooring.features._spec import NumericFeature
        >>> spec = FeatureSpec(features=(NumericFeature("x", "normalize", "impute", 5.0, 0.0),))
        >>> inputs, encoded = build_preprocessing(spec)
        >>> tuple(encoded["x"].shape)
        (None, 1)
    """
    inputs = inputs if inputs is not None else build_inputs(spec)
    encoded: dict[str, Any] = {}
    discrete: dict[str, Any] = {}
    for feature in spec.features:
        raw = inputs[feature.name]
        if isinstance(feature, NumericFeature):
            encoded[feature.name] = _numeric(feature, raw)
        else:
            index = _lookup(feature, raw)
            discrete[feature.name] = index
            encoded[feature.name] = _encode_index(feature, index)
    for cross in spec.crosses:
        encoded[cross.name] = _cross(cross, spec, inputs, discrete)
    # Each block passes through a named identity, so the exported model's explanation
    # can find it again (integrated gradients over the encoded blocks).
    encoded = {
        key: layers.Identity(name=block_name(i))(block)
        for i, (key, block) in enumerate(encoded.items())
    }
    return inputs, encoded


def block_name(index: int) -> str:
    """The layer that marks the ``index``-th encoded block (features, then crosses).

    Examples:
        >>> block_name(0)
        'mooring_block_0'
    """
    return f"mooring_block_{index}"


def _numeric(feature: NumericFeature, raw: Any) -> Any:
    name = _safe(feature.name)
    missing = ops.isnan(raw)
    value = ops.where(missing, ops.cast(feature.impute, "float32"), raw)
    value = ops.expand_dims(value, -1)
    if feature.transform in ("normalize", "log_normalize"):
        if feature.transform == "log_normalize":
            value = ops.sign(value) * ops.log1p(ops.abs(value))
        value = layers.Normalization(
            mean=feature.mean, variance=feature.variance, name=f"{name}_normalize"
        )(value)
        # Clipping after normalising bounds the influence of values far outside training.
        block = ops.clip(value, -feature.clip, feature.clip)
    elif feature.transform == "bucketize":
        index = layers.Discretization(
            bin_boundaries=list(feature.boundaries), name=f"{name}_bucketize"
        )(value)
        block = layers.CategoryEncoding(
            num_tokens=len(feature.boundaries) + 1, output_mode="one_hot", name=f"{name}_onehot"
        )(ops.squeeze(index, -1))
    else:
        block = ops.clip(value, feature.lower, feature.upper)
    if feature.missing == "indicator":
        indicator = ops.expand_dims(ops.cast(missing, "float32"), -1)
        block = ops.concatenate([block, indicator], axis=-1)
    return block


def _lookup(feature: CategoricalFeature, raw: Any) -> Any:
    """The integer index of each value (out-of-vocabulary first, then missing, then vocabulary)."""
    name = _safe(feature.name)
    if feature.source == "integer":
        codes = ops.cast(
            ops.where(ops.isnan(raw), ops.cast(MISSING_INTEGER, "float32"), raw), "int64"
        )
        if feature.encoding == "hashing":
            return layers.Hashing(num_bins=int(feature.bins or 2), name=f"{name}_hash")(codes)
        vocab = [int(v) for v in feature.vocabulary]
        if feature.missing == "category":
            vocab = [MISSING_INTEGER, *vocab]
        return layers.IntegerLookup(
            vocabulary=vocab,
            num_oov_indices=feature.oov,
            mask_token=None,
            output_mode="int",
            name=f"{name}_lookup",
        )(codes)
    if feature.encoding == "hashing":
        return layers.Hashing(num_bins=int(feature.bins or 2), name=f"{name}_hash")(raw)
    words = list(feature.vocabulary)
    if feature.missing == "category":
        words = ["", *words]
    return layers.StringLookup(
        vocabulary=words,
        num_oov_indices=feature.oov,
        mask_token=None,
        output_mode="int",
        name=f"{name}_lookup",
    )(raw)


def _encode_index(feature: CategoricalFeature, index: Any) -> Any:
    name = _safe(feature.name)
    if feature.encoding == "one_hot":
        return layers.CategoryEncoding(
            num_tokens=feature.size, output_mode="one_hot", name=f"{name}_onehot"
        )(index)
    return layers.Embedding(
        input_dim=feature.size, output_dim=int(feature.dim or 8), name=f"{name}_embedding"
    )(index)


def _cross(
    cross: CrossFeature, spec: FeatureSpec, inputs: dict[str, Any], discrete: dict[str, Any]
) -> Any:
    parts = []
    for column, boundaries in zip(cross.columns, cross.boundaries, strict=True):
        feature = spec[column]
        if isinstance(feature, NumericFeature):
            raw = inputs[column]
            value = ops.where(ops.isnan(raw), ops.cast(feature.impute, "float32"), raw)
            index = layers.Discretization(
                bin_boundaries=list(boundaries), name=f"{_safe(cross.name)}_{_safe(column)}_bucket"
            )(ops.expand_dims(value, -1))
            parts.append(ops.cast(ops.squeeze(index, -1), "int64"))
        else:
            parts.append(ops.cast(discrete[column], "int64"))
    name = _safe(cross.name)
    crossed = layers.HashedCrossing(num_bins=cross.bins, output_mode="int", name=f"{name}_cross")(
        tuple(parts)
    )
    if cross.dim:
        return layers.Embedding(input_dim=cross.bins, output_dim=cross.dim, name=f"{name}_emb")(
            crossed
        )
    return layers.CategoryEncoding(
        num_tokens=cross.bins, output_mode="one_hot", name=f"{name}_onehot"
    )(crossed)
