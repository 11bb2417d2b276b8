"""Model builders: the preprocessed inputs in, the model body out; mooring adds the head.

A builder is a function ``builder(features, config) -> keras tensor`` where
``features`` maps each feature (and cross) name to its encoded ``[batch, width]``
float32 block and ``config`` is the ``[model]`` section. It returns the body's
output, a rank-2 tensor ``[batch, units]``. The built-in ``"mlp"`` concatenates
the blocks and stacks dense layers; a project names its own with
``builder = "package.module:function"`` in ``[model]`` (an import path, so the
training processes and workers find it too). Images or text can come later as
builders without changing the rest of the pipeline.

Examples:
    >>> resolve_builder("mlp") is mlp
    True
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import keras
from keras import layers, ops

from mooring.config._model import ModelConfig
from mooring.errors import ConfigError
from mooring.features._layers import build_preprocessing, functional_model
from mooring.features._spec import FeatureSpec
from mooring.training._labels import LabelEncoding

__all__ = [
    "BUILDERS",
    "Builder",
    "build_model",
    "linear",
    "mlp",
    "resolve_builder",
    "resolve_kind",
]

Builder = Callable[[dict[str, Any], ModelConfig], Any]


def mlp(features: dict[str, Any], config: ModelConfig) -> Any:
    """The built-in body: concatenate, then dense layers (optional batch norm, dropout)."""
    blocks = list(features.values())
    x = layers.Concatenate(name="features")(blocks) if len(blocks) > 1 else blocks[0]
    for i, units in enumerate(config.hidden):
        x = layers.Dense(units, use_bias=not config.batch_norm, name=f"hidden_{i}")(x)
        if config.batch_norm:
            x = layers.BatchNormalization(name=f"hidden_{i}_norm")(x)
        x = layers.Activation(config.activation, name=f"hidden_{i}_{config.activation}")(x)
        if config.dropout > 0:
            x = layers.Dropout(config.dropout, name=f"hidden_{i}_dropout")(x)
    return x


def linear(features: dict[str, Any], config: ModelConfig) -> Any:
    """The linear baseline's body: the encoded blocks side by side, no hidden layer.

    With mooring's head on top this is logistic regression (binary), multinomial
    logistic regression (multiclass) or linear regression on the standardised target,
    over the same preprocessing layers as the MLP (normalised numbers, one-hot
    categories, buckets, crosses).
    """
    blocks = list(features.values())
    return layers.Concatenate(name="features")(blocks) if len(blocks) > 1 else blocks[0]


BUILDERS: dict[str, Builder] = {"mlp": mlp, "linear": linear}


def resolve_builder(reference: str) -> Builder:
    """A registered name or ``package.module:function`` → the builder function.

    Raises:
        ConfigError: the module cannot be imported, the attribute is missing, or it
            is not callable.
    """
    if reference in BUILDERS:
        return BUILDERS[reference]
    module_name, sep, attr = reference.partition(":")
    if not sep:
        raise ConfigError(
            f"[model] builder = {reference!r} is not a registered builder "
            f"({sorted(BUILDERS)}) nor an import path 'package.module:function'"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(
            f"[model] builder = {reference!r}: cannot import module {module_name!r} ({exc}); "
            "install the package or put its folder on PYTHONPATH"
        ) from None
    fn = getattr(module, attr, None)
    if fn is None or not callable(fn):
        raise ConfigError(
            f"[model] builder = {reference!r}: module {module_name!r} has no function "
            f"{attr!r}; define def {attr}(features, config) returning a keras tensor"
        )
    return fn  # type: ignore[no-any-return]


def resolve_kind(config: ModelConfig) -> Builder:
    """The body of ``[model] kind``: the configured builder for mlp, the linear body for linear.

    Raises:
        ConfigError: ``kind = "gbt"`` (trees are not a Keras body) or a bad builder.
    """
    if config.kind == "linear":
        return linear
    if config.kind != "mlp":
        raise ConfigError(f"[model] kind = {config.kind!r} is not a Keras model")
    return resolve_builder(config.builder)


def _check_body(body: Any, reference: str) -> Any:
    if not isinstance(body, keras.KerasTensor):
        raise ConfigError(
            f"[model] builder = {reference!r} returned {type(body).__name__}; it must return "
            "the body's output tensor (a keras tensor of shape [batch, units]) built from the "
            "features it received"
        )
    if len(body.shape) != 2 or body.shape[-1] is None:
        raise ConfigError(
            f"[model] builder = {reference!r} returned a tensor of shape {tuple(body.shape)}; "
            "it must be rank 2, [batch, units] with a known number of units — flatten it"
        )
    return body


def build_model(
    spec: FeatureSpec, label: LabelEncoding, config: ModelConfig, builder: Builder | None = None
) -> keras.Model:
    """Raw named inputs → preprocessing → body → head, as one functional Keras model.

    The head is one sigmoid unit (binary), a softmax over the label vocabulary
    (multiclass) or one linear unit predicting the standardised target (regression).

    Raises:
        ConfigError: the builder fails or returns something other than a
            ``[batch, units]`` keras tensor.
    """
    builder = builder or resolve_kind(config)
    inputs, encoded = build_preprocessing(spec)
    try:
        body = builder(dict(encoded), config)
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(
            f"[model] builder = {config.builder!r} failed while building the model: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    body = _check_body(body, config.builder)
    if label.task == "binary":
        output = layers.Dense(1, activation="sigmoid", name="head")(body)
    elif label.task == "multiclass":
        output = layers.Dense(label.num_classes, activation="softmax", name="head")(body)
    else:
        output = layers.Dense(1, name="head")(body)
    return functional_model(inputs, ops.cast(output, "float32"), name="mooring_model")
