"""A corpus of real models, exported as their users export them, for the op allow-list.

:data:`CORPUS` maps a name to ``(family, builder)``; each builder writes a SavedModel to
the folder it is given and returns it. The families: every Keras 3 layer family and
preprocessing layer (``model.export``), networks written with plain TensorFlow
(``tf.Module`` with ``tf.function``, ``tf.saved_model.save``), YDF's inference
(``to_tensorflow_saved_model``), and mooring's own exports (the training layer's
signature, :mod:`tests._support.serving_model`; the trained MLP, linear model and trees
are the benchmark's, :func:`mooring_export`). :data:`SAMPLE` is a few of each family,
cheap enough for the suite.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

__all__ = ["CORPUS", "SAMPLE", "mooring_export"]

L = keras.layers
WORDS = ["good", "bad", "great", "awful", "fine", "plain", "odd", "new"]

Builder = Callable[[Path], Path]


def _keras(folder: Path, inputs: Any, outputs: Any) -> Path:
    keras.utils.set_random_seed(0)
    keras.Model(inputs, outputs).export(str(folder), verbose=False)
    return folder


def _stack(shape: Sequence[int | None], *layers: Any, dtype: str = "float32") -> Builder:
    """A Keras model: an input of ``shape`` through ``layers``, flattened to a score."""

    def build(folder: Path) -> Path:
        keras.utils.set_random_seed(0)
        inp = keras.Input(tuple(shape), dtype=dtype, name="x")
        x = inp
        for layer in layers:
            x = layer(x)
        out = L.Dense(1, activation="sigmoid")(L.Flatten()(x)) if len(x.shape) > 1 else x
        return _keras(folder, inp, out)

    return build


def _merging(folder: Path) -> Path:
    a, b = keras.Input((4,), name="a"), keras.Input((4,), name="b")
    parts = [
        L.Add()([a, b]),
        L.Subtract()([a, b]),
        L.Multiply()([a, b]),
        L.Average()([a, b]),
        L.Maximum()([a, b]),
        L.Minimum()([a, b]),
        L.Dot(axes=1, normalize=True)([a, b]),
    ]
    return _keras(folder, {"a": a, "b": b}, L.Dense(1)(L.Concatenate()(parts)))


def _attention(folder: Path) -> Path:
    q, v = keras.Input((5, 8), name="q"), keras.Input((6, 8), name="v")
    parts = [
        L.Attention(use_scale=True)([q, v]),
        L.AdditiveAttention()([q, v]),
        L.MultiHeadAttention(num_heads=2, key_dim=4)(q, v),
        L.GroupQueryAttention(head_dim=4, num_query_heads=4, num_key_value_heads=2)(q, v),
    ]
    x = L.GlobalAveragePooling1D()(L.Concatenate()(parts))
    return _keras(folder, {"q": q, "v": v}, L.Dense(1)(x))


def _masked_rnn(folder: Path) -> Path:
    inp = keras.Input((6,), dtype="int32", name="tokens")
    x = L.Embedding(20, 4, mask_zero=True)(inp)
    x = L.LSTM(4, return_sequences=True)(x)
    x = L.GRU(4)(x)
    return _keras(folder, inp, L.Dense(1)(x))


def _text(mode: str, **options: Any) -> Builder:
    def build(folder: Path) -> Path:
        inp = keras.Input((1,), dtype="string", name="text")
        if mode == "tf_idf":
            layer = L.TextVectorization(output_mode=mode, **options)
            layer.set_vocabulary(WORDS, idf_weights=np.linspace(1, 2, len(WORDS)))
        else:
            layer = L.TextVectorization(output_mode=mode, vocabulary=WORDS, **options)
        x = layer(inp)
        if mode == "int":
            x = L.GlobalAveragePooling1D()(L.Embedding(len(WORDS) + 2, 4)(x))
        return _keras(folder, inp, L.Dense(1)(x))

    return build


def _lookups(folder: Path) -> Path:
    s = keras.Input((2,), dtype="string", name="s")
    i = keras.Input((2,), dtype="int64", name="i")
    parts = [
        L.StringLookup(vocabulary=["a", "b", "c"], output_mode="multi_hot")(s),
        L.StringLookup(vocabulary=["a", "b", "c"], output_mode="count")(s),
        L.StringLookup(vocabulary=["a", "b"], output_mode="tf_idf", idf_weights=[1.0, 2.0])(s),
        L.IntegerLookup(vocabulary=[1, 2, 3], output_mode="one_hot")(i[:, :1]),
        L.Hashing(num_bins=7, output_mode="one_hot")(s[:, :1]),
        L.Hashing(num_bins=7, salt=3)(s),
        L.CategoryEncoding(num_tokens=5, output_mode="multi_hot")(i),
        L.HashedCrossing(num_bins=9, output_mode="one_hot")((s[:, 0], i[:, 0])),
    ]
    cast = [L.Flatten()(keras.ops.cast(p, "float32")) for p in parts]
    return _keras(folder, {"s": s, "i": i}, L.Dense(1)(L.Concatenate()(cast)))


def _numeric_preprocessing(folder: Path) -> Path:
    inp = keras.Input((3,), name="x")
    norm = L.Normalization(mean=[1.0, 2.0, 3.0], variance=[1.0, 4.0, 9.0])(inp)
    disc = L.Discretization(bin_boundaries=[0.0, 1.0, 2.0], output_mode="one_hot")(inp[:, :1])
    x = L.Concatenate()([norm, L.Rescaling(0.5, offset=1.0)(inp), disc])
    return _keras(folder, inp, L.Dense(1)(x))


def _image_preprocessing(folder: Path) -> Path:
    """Resizing, cropping and the augmentation layers, which pass images through in
    inference."""
    inp = keras.Input((16, 16, 3), name="image")
    x = L.Resizing(12, 12)(inp)
    x = L.Resizing(10, 10, interpolation="nearest", crop_to_aspect_ratio=True)(x)
    x = L.CenterCrop(8, 8)(x)
    for layer in (
        L.RandomFlip(),
        L.RandomRotation(0.1),
        L.RandomZoom(0.1),
        L.RandomContrast(0.1),
        L.RandomBrightness(0.1),
        L.RandomTranslation(0.1, 0.1),
        L.RandomCrop(8, 8),
        L.RandomHue(0.1),
        L.RandomSaturation(0.1),
        L.RandomGrayscale(),
        L.RandomSharpness(0.1),
        L.RandomShear(0.1),
        L.RandomColorJitter(),
        L.RandomInvert(),
        L.RandomPosterization(4),
        L.Solarization(),
        L.AutoContrast(),
    ):
        x = layer(x)
    x = L.GlobalAveragePooling2D()(L.Conv2D(2, 3)(x))
    return _keras(folder, inp, L.Dense(1)(x))


def _audio(folder: Path) -> Path:
    inp = keras.Input((400,), name="audio")
    mel = L.MelSpectrogram(fft_length=64, sequence_stride=32, num_mel_bins=8)(inp)
    stft = L.STFTSpectrogram(frame_length=32, frame_step=16)(L.Reshape((400, 1))(inp))
    x = L.Concatenate()([L.Flatten()(mel), L.Flatten()(stft)])
    return _keras(folder, inp, L.Dense(1)(x))


def _application(name: str, shape: tuple[int, int, int], **options: Any) -> Builder:
    def build(folder: Path) -> Path:
        keras.utils.set_random_seed(0)
        make = getattr(keras.applications, name)
        model = make(weights=None, input_shape=shape, classes=3, **options)
        model.export(str(folder), verbose=False)
        return folder

    return build


# -- plain TensorFlow --------------------------------------------------------------


class _Math(tf.Module):  # type: ignore[misc]
    @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="x")])
    def serve(self, x: Any) -> dict[str, Any]:
        m = tf.matmul(x, x, transpose_b=True) + tf.eye(tf.shape(x)[0])
        parts = [
            tf.math.log1p(tf.abs(x)),
            tf.math.exp(-tf.square(x)),
            tf.math.sqrt(tf.abs(x) + 1.0),
            tf.math.rsqrt(tf.abs(x) + 1.0),
            tf.math.sin(x) + tf.math.cos(x) + tf.math.tan(x * 0.1),
            tf.math.atan2(x, x + 1.0),
            tf.math.erf(x),
            tf.math.floormod(x, 3.0),
            tf.math.pow(tf.abs(x), 1.5),
            tf.clip_by_value(x, -1.0, 1.0),
            tf.math.cumsum(x, axis=1),
            tf.math.cumprod(x, axis=1),
            tf.round(x) + tf.floor(x) + tf.math.ceil(x),
            tf.math.reciprocal_no_nan(x),
            tf.where(tf.math.is_finite(x), x, 0.0),
            tf.math.minimum(x, 0.0) + tf.math.maximum(x, 0.0),
            tf.sign(x) * tf.math.softplus(x),
        ]
        reduced = [
            tf.reduce_sum(x, 1),
            tf.reduce_mean(x, 1),
            tf.reduce_max(x, 1),
            tf.reduce_min(x, 1),
            tf.reduce_prod(x, 1),
            tf.math.reduce_logsumexp(x, 1),
            tf.math.reduce_std(x, 1),
            tf.cast(tf.argmax(x, 1), tf.float32),
            tf.cast(tf.argmin(x, 1), tf.float32),
            tf.linalg.trace(m) + tf.zeros_like(x[:, 0]),
            tf.linalg.diag_part(m),
        ]
        return {"y": tf.concat(parts, 1), "r": tf.stack(reduced, 1)}


class _LinearAlgebra(tf.Module):  # type: ignore[misc]
    @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32, name="x")])
    def serve(self, x: Any) -> dict[str, Any]:
        gram = tf.matmul(x, x, transpose_a=True) + 3.0 * tf.eye(3)
        chol = tf.linalg.cholesky(gram)
        solved = tf.linalg.solve(gram, tf.ones([3, 1]))
        inv = tf.linalg.inv(gram)
        eig = tf.linalg.eigh(gram)[0]
        s = tf.linalg.svd(gram, compute_uv=False)
        q, _ = tf.linalg.qr(gram)
        det = tf.linalg.det(gram)
        tri = tf.linalg.triangular_solve(chol, tf.ones([3, 1]))
        e = tf.einsum("ij,jk->ik", x, inv)
        t = tf.tensordot(x, q, axes=1)
        total = tf.reduce_sum(solved) + tf.reduce_sum(eig) + tf.reduce_sum(s) + det
        return {"y": e + t + tf.reduce_sum(tri) + total}


class _Shapes(tf.Module):  # type: ignore[misc]
    @tf.function(input_signature=[tf.TensorSpec([None, 6], tf.float32, name="x")])
    def serve(self, x: Any) -> dict[str, Any]:
        a, b = tf.split(x, 2, axis=1)
        stacked = tf.stack([a, b], axis=2)
        t = tf.transpose(stacked, [0, 2, 1])
        r = tf.reshape(t, [-1, 6])
        g = tf.gather(r, [5, 4, 3, 2, 1, 0], axis=1)
        gn = tf.gather_nd(
            g, tf.stack([tf.range(tf.shape(g)[0]), tf.zeros_like(tf.range(tf.shape(g)[0]))], 1)
        )
        rev = tf.reverse(g, [1])
        padded = tf.pad(rev, [[0, 0], [1, 1]])
        sliced = padded[:, 1:-1:1]
        tiled = tf.tile(sliced[:, :1], [1, 6])
        top = tf.math.top_k(x, k=2).values
        order = tf.cast(tf.argsort(x, axis=1), tf.float32)
        sort = tf.sort(x, axis=1)
        squeezed = tf.squeeze(tf.expand_dims(x, 1), 1)
        scatter = tf.tensor_scatter_nd_update(x, [[0, 0]], [1.0])
        onehot = tf.one_hot(tf.cast(tf.abs(x[:, 0]), tf.int32) % 6, 6)
        ones = tf.ones_like(x) + tf.zeros([1, 6]) + tf.fill([1, 6], 2.0)
        seq = tf.sequence_mask(tf.cast(tf.abs(x[:, 0]), tf.int32) % 6, 6, dtype=tf.float32)
        bool_mask = tf.boolean_mask(x, x[:, 0] > 0)
        unique = tf.unique(tf.reshape(tf.cast(x, tf.int32), [-1]))[0]
        extra = tf.reduce_sum(bool_mask) + tf.cast(tf.reduce_sum(unique), tf.float32)
        y = r + rev + sliced + tiled + order + sort + squeezed + scatter + onehot + ones + seq
        return {
            "y": y + extra + tf.reduce_sum(gn),
            "top": top,
            "size": tf.size(x) + tf.rank(x) + tf.shape(x)[0],
        }


class _ControlFlow(tf.Module):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.w = tf.Variable(tf.ones([4]), name="w")
        self.calls = tf.Variable(0, dtype=tf.int64, name="calls")

    @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="x")])
    def serve(self, x: Any) -> dict[str, Any]:
        total = tf.constant(0.0)
        for i in tf.range(3):
            total += tf.cast(i, tf.float32)
        ta = tf.TensorArray(tf.float32, size=0, dynamic_size=True)
        for row in tf.range(tf.shape(x)[0]):
            ta = ta.write(row, tf.reduce_sum(x[row]))
        sums = ta.stack()
        branch = tf.cond(tf.reduce_sum(x) > 0, lambda: x * self.w, lambda: x - self.w)
        case = tf.switch_case(tf.cast(tf.reduce_sum(x) > 0, tf.int32), [lambda: 1.0, lambda: 2.0])
        mapped = tf.map_fn(lambda r: r * 2.0, x)
        scanned = tf.scan(lambda a, r: a + r, x)
        tf.debugging.assert_all_finite(x, "finite")
        self.calls.assign_add(1)
        return {"y": branch + mapped + scanned + total + case, "sums": sums}


class _Strings(tf.Module):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        init = tf.lookup.KeyValueTensorInitializer(WORDS, tf.range(len(WORDS), dtype=tf.int64))
        self.table = tf.lookup.StaticHashTable(init, -1)
        self.vocab = tf.lookup.StaticVocabularyTable(init, num_oov_buckets=2)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serve(self, text: Any) -> dict[str, Any]:
        lower = tf.strings.lower(tf.strings.strip(text))
        clean = tf.strings.regex_replace(lower, r"[^a-z ]", "")
        words = tf.strings.split(clean)
        ids = self.table.lookup(words)
        more = self.vocab.lookup(words)
        hashed = tf.strings.to_hash_bucket_fast(words, 10)
        strong = tf.strings.to_hash_bucket_strong(words, 10, key=[1, 2])
        lengths = tf.strings.length(text)
        joined = tf.strings.join([text, tf.strings.as_string(lengths)], separator="-")
        first = tf.strings.substr(joined, 0, 3)
        upper = tf.strings.upper(first)
        matched = tf.strings.regex_full_match(upper, "[A-Z]+.*")
        number = tf.strings.to_number(tf.strings.as_string(tf.cast(lengths, tf.float32)))
        ngrams = tf.strings.ngrams(words, 2)
        chars = tf.strings.unicode_split(clean, "UTF-8")
        reduced = tf.strings.reduce_join(words, axis=1, separator=" ")
        counts = tf.cast(ids.row_lengths() + chars.row_lengths() + ngrams.row_lengths(), tf.float32)
        score = tf.reduce_sum(tf.cast(ids + more + hashed + strong, tf.float32), axis=1)
        return {
            "score": score + counts + number + tf.cast(matched, tf.float32),
            "joined": reduced,
        }


class _SparseRagged(tf.Module):  # type: ignore[misc]
    @tf.function(input_signature=[tf.TensorSpec([None, 5], tf.float32, name="x")])
    def serve(self, x: Any) -> dict[str, Any]:
        sparse = tf.sparse.from_dense(tf.where(x > 0, x, 0.0))
        dense = tf.sparse.to_dense(sparse)
        product = tf.sparse.sparse_dense_matmul(sparse, tf.ones([5, 2]))
        summed = tf.sparse.reduce_sum(sparse, axis=1)
        ragged = tf.RaggedTensor.from_tensor(x, padding=0.0)
        rsum = tf.reduce_sum(ragged, axis=1)
        rdense = ragged.to_tensor(default_value=0.0, shape=[None, 5])
        ids = tf.cast(tf.abs(x[:, 0]), tf.int32) % 3
        segments = tf.math.unsorted_segment_sum(x, ids, 3)
        bins = tf.math.bincount(ids, minlength=3, dtype=tf.float32)
        hist = tf.histogram_fixed_width(x, [-3.0, 3.0], nbins=4)
        return {
            "y": dense + rdense,
            "p": product,
            "s": summed + rsum,
            "g": tf.reduce_sum(segments)
            + tf.reduce_sum(bins)
            + tf.cast(tf.reduce_sum(hist), tf.float32),
        }


class _Signal(tf.Module):  # type: ignore[misc]
    @tf.function(input_signature=[tf.TensorSpec([None, 64], tf.float32, name="x")])
    def serve(self, x: Any) -> dict[str, Any]:
        spectrum = tf.abs(tf.signal.rfft(x))
        stft = tf.abs(tf.signal.stft(x, frame_length=16, frame_step=8))
        back = tf.signal.irfft(tf.signal.rfft(x))
        complex_ = tf.signal.fft(tf.complex(x, tf.zeros_like(x)))
        dct = tf.signal.dct(x)
        frames = tf.signal.frame(x, 16, 8)
        return {
            "y": tf.reduce_sum(spectrum, 1)
            + tf.reduce_sum(stft, [1, 2])
            + tf.reduce_sum(back, 1)
            + tf.reduce_sum(tf.math.real(complex_), 1)
            + tf.reduce_sum(dct, 1)
            + tf.reduce_sum(frames, [1, 2])
        }


class _Images(tf.Module):  # type: ignore[misc]
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="jpeg")])
    def serve(self, jpeg: Any) -> dict[str, Any]:
        def one(data: Any) -> Any:
            image = tf.io.decode_image(data, channels=3, expand_animations=False)
            image = tf.image.convert_image_dtype(image, tf.float32)
            image = tf.image.resize(image, [16, 16])
            image = tf.image.resize_with_crop_or_pad(image, 12, 12)
            image = tf.image.rgb_to_grayscale(tf.image.adjust_brightness(image, 0.1))
            return tf.reduce_mean(tf.image.per_image_standardization(image))

        decoded = tf.map_fn(one, jpeg, fn_output_signature=tf.float32)
        return {"y": decoded}


class _Random(tf.Module):  # type: ignore[misc]
    """Test-time noise: a seeded generator and stateless random ops (Monte Carlo
    dropout as some imported networks serve it)."""

    def __init__(self) -> None:
        super().__init__()
        self.gen = tf.random.Generator.from_seed(1)

    @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="x")])
    def serve(self, x: Any) -> dict[str, Any]:
        shape = tf.shape(x)
        noise = self.gen.normal(shape) + tf.random.stateless_uniform(shape, seed=[1, 2])
        dropped = tf.nn.dropout(x, 0.5, seed=1)
        drawn = tf.random.uniform(shape) + tf.random.normal(shape)
        return {"y": x + 0.0 * (noise + dropped + drawn)}


class _Nn(tf.Module):  # type: ignore[misc]
    """A hand-written network with tf.nn ops, its weights as variables."""

    def __init__(self) -> None:
        super().__init__()
        self.kernel = tf.Variable(tf.random.stateless_normal([3, 3, 1, 4], seed=[1, 1]))
        self.dense = tf.Variable(tf.random.stateless_normal([4, 3], seed=[1, 2]))

    @tf.function(input_signature=[tf.TensorSpec([None, 8, 8, 1], tf.float32, name="image")])
    def serve(self, image: Any) -> dict[str, Any]:
        x = tf.nn.conv2d(image, self.kernel, strides=1, padding="SAME")
        x = tf.nn.bias_add(x, tf.zeros([4]))
        x = tf.nn.leaky_relu(tf.nn.relu6(tf.nn.elu(tf.nn.selu(x))))
        x = tf.nn.max_pool2d(x, 2, 2, "VALID") + tf.nn.avg_pool2d(x, 2, 2, "VALID")
        x = tf.nn.local_response_normalization(x)
        mean, var = tf.nn.moments(x, [0, 1, 2])
        x = tf.nn.batch_normalization(x, mean, var, None, None, 1e-3)
        logits = tf.matmul(tf.reduce_mean(x, [1, 2]), self.dense)
        top = tf.nn.in_top_k(tf.zeros_like(logits[:, 0], tf.int32), logits, 1)
        return {
            "probabilities": tf.nn.softmax(logits),
            "log": tf.nn.log_softmax(logits),
            "l2": tf.math.l2_normalize(logits, 1) * tf.cast(top[:, None], tf.float32),
        }


class _Gradients(tf.Module):  # type: ignore[misc]
    """Saliency at serving time: the gradient of a network's score to its input."""

    def __init__(self) -> None:
        super().__init__()
        keras.utils.set_random_seed(0)
        inp = keras.Input((4,))
        self.model = keras.Model(inp, L.Dense(1, activation="sigmoid")(L.Dense(8, "tanh")(inp)))

    @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="x")])
    def serve(self, x: Any) -> dict[str, Any]:
        with tf.GradientTape() as tape:
            tape.watch(x)
            score = self.model(x)
        return {"score": score, "saliency": tape.gradient(score, x)}


def _module(cls: type[tf.Module]) -> Builder:
    def build(folder: Path) -> Path:
        module = cls()
        tf.saved_model.save(module, str(folder), signatures={"serving_default": module.serve})
        return folder

    return build


def _ydf(kind: str, task: str) -> Builder:
    """A YDF model on a small synthetic table, exported to a SavedModel of YDF's ops."""

    def build(folder: Path) -> Path:
        import ydf

        rng = np.random.default_rng(0)
        n = 200
        age = rng.uniform(18, 80, n).astype(np.float32)
        job = rng.choice(["a", "b", "c"], n)
        label: Any = (age + (job == "a") * 20 > 50).astype(int)
        if task == "regression":
            label = age * 2.0 + (job == "b")
        elif task == "multiclass":
            label = np.digitize(age, [35, 55])
        data = {"age": age, "job": job, "y": label}
        tasks = {
            "classification": ydf.Task.CLASSIFICATION,
            "regression": ydf.Task.REGRESSION,
            "multiclass": ydf.Task.CLASSIFICATION,
        }
        learners = {
            "gbt": lambda: ydf.GradientBoostedTreesLearner(
                label="y", task=tasks[task], num_trees=5
            ),
            "rf": lambda: ydf.RandomForestLearner(label="y", task=tasks[task], num_trees=5),
            "cart": lambda: ydf.CartLearner(label="y", task=tasks[task]),
        }
        model = learners[kind]().train(data, verbose=0)
        model.to_tensorflow_saved_model(str(folder), mode="tf")
        return folder

    return build


def _serving(kind: str) -> Builder:
    def build(folder: Path) -> Path:
        from tests._support.serving_model import build_model_dir, build_regression_model_dir

        return (build_regression_model_dir if kind == "regression" else build_model_dir)(folder)

    return build


def _imported(name: str) -> Builder:
    def build(folder: Path) -> Path:
        from tests._support import byom, imported_models

        builders: dict[str, Callable[[Path], Path]] = {
            "cnn": imported_models.build_cnn,
            "two_inputs": imported_models.build_two_inputs,
            "text": imported_models.build_text,
            "sequence": imported_models.build_sequence,
            "module": imported_models.build_module,
            "tabular": byom.tabular_saved_model,
            "ranker": byom.ranker_module,
            "cased": byom.cased_module,
            "asset_table": _asset_table,
        }
        return builders[name](folder)

    return build


def _asset_table(folder: Path) -> Path:
    from tests._support.hostile_models import asset_table

    return asset_table(folder)


def mooring_export(kind: str) -> Builder:
    """The Adult project's model of ``kind`` (mlp, linear, gbt) as ``mooring run``
    trains and exports it (the network's explain signature included): trained briefly,
    for the benchmark."""

    def build(folder: Path) -> Path:
        from tests._support.distributed import train_adult

        return Path(train_adult(folder, workers=1, kind=kind).model_dir)

    return build


_SEQ = (10, 3)
CORPUS: dict[str, tuple[str, Builder]] = {
    # Keras 3 layer families (model.export).
    "keras-dense": ("keras core", _stack((6,), L.Dense(8, "relu"), L.Dense(4, "gelu"))),
    "keras-activations": (
        "keras core",
        _stack(
            (6,),
            L.Dense(6, "swish"),
            L.Activation("selu"),
            L.Activation("softplus"),
            L.Activation("softsign"),
            L.Activation("hard_sigmoid"),
            L.Activation("mish"),
            L.Activation("elu"),
            L.Activation("exponential"),
            L.Activation("log_softmax"),
            L.Activation("hard_silu"),
            L.Activation("relu6"),
            L.Activation("tanh_shrink"),
            L.Activation("celu"),
            L.LeakyReLU(),
            L.PReLU(),
            L.ELU(),
            L.ReLU(max_value=6.0),
            L.Softmax(),
        ),
    ),
    "keras-einsum": ("keras core", _stack((4, 6), L.EinsumDense("abc,cd->abd", (4, 3)))),
    "keras-embedding": (
        "keras core",
        _stack((5,), L.Embedding(30, 4), L.GlobalAveragePooling1D(), dtype="int32"),
    ),
    "keras-conv1d": (
        "keras convolution",
        _stack(_SEQ, L.Conv1D(4, 3, padding="causal", dilation_rate=2), L.Conv1DTranspose(2, 3)),
    ),
    "keras-conv2d": (
        "keras convolution",
        _stack((8, 8, 2), L.Conv2D(4, 3, strides=2, padding="same"), L.Conv2DTranspose(2, 3)),
    ),
    "keras-conv3d": (
        "keras convolution",
        _stack((6, 6, 6, 1), L.Conv3D(2, 3), L.Conv3DTranspose(2, 2)),
    ),
    "keras-separable-depthwise": (
        "keras convolution",
        _stack(
            (8, 8, 2),
            L.SeparableConv2D(4, 3),
            L.DepthwiseConv2D(3),
            L.Reshape((16, 4)),
            L.SeparableConv1D(4, 3),
            L.DepthwiseConv1D(3),
        ),
    ),
    "keras-pooling-1d": (
        "keras pooling",
        _stack(_SEQ, L.MaxPooling1D(2), L.AveragePooling1D(2, padding="same")),
    ),
    "keras-pooling-2d": (
        "keras pooling",
        _stack((8, 8, 2), L.MaxPooling2D(2), L.AveragePooling2D(2), L.GlobalMaxPooling2D()),
    ),
    "keras-pooling-3d": (
        "keras pooling",
        _stack((4, 4, 4, 1), L.MaxPooling3D(2), L.AveragePooling3D(1), L.GlobalAveragePooling3D()),
    ),
    "keras-adaptive-pooling": (
        "keras pooling",
        _stack((8, 8, 2), L.AdaptiveAveragePooling2D(4), L.AdaptiveMaxPooling2D(2)),
    ),
    "keras-simple-rnn": ("keras recurrent", _stack(_SEQ, L.SimpleRNN(4))),
    "keras-lstm": ("keras recurrent", _stack(_SEQ, L.LSTM(4, return_sequences=True), L.LSTM(3))),
    "keras-gru": (
        "keras recurrent",
        _stack(_SEQ, L.GRU(4, reset_after=False, return_sequences=True), L.GRU(3)),
    ),
    "keras-bidirectional": (
        "keras recurrent",
        _stack(
            _SEQ, L.Bidirectional(L.LSTM(4, return_sequences=True)), L.TimeDistributed(L.Dense(2))
        ),
    ),
    "keras-conv-lstm": (
        "keras recurrent",
        _stack((3, 8, 8, 1), L.ConvLSTM2D(2, 3)),
    ),
    "keras-conv-lstm-1d": ("keras recurrent", _stack((3, 8, 1), L.ConvLSTM1D(2, 3))),
    "keras-masked-rnn": ("keras recurrent", _masked_rnn),
    "keras-attention": ("keras attention", _attention),
    "keras-normalization": (
        "keras normalization",
        _stack(
            (8, 4),
            L.BatchNormalization(),
            L.LayerNormalization(),
            L.GroupNormalization(groups=2),
            L.UnitNormalization(),
            L.RMSNormalization(),
        ),
    ),
    "keras-spectral-normalization": (
        "keras normalization",
        _stack((6,), L.SpectralNormalization(L.Dense(4))),
    ),
    "keras-regularization": (
        "keras regularization",
        _stack(
            (8, 4),
            L.Dropout(0.5),
            L.SpatialDropout1D(0.2),
            L.GaussianNoise(0.1),
            L.GaussianDropout(0.1),
            L.AlphaDropout(0.1),
            L.ActivityRegularization(0.01),
        ),
    ),
    "keras-reshaping": (
        "keras reshaping",
        _stack(
            (6, 4),
            L.Cropping1D(1),
            L.ZeroPadding1D(1),
            L.UpSampling1D(2),
            L.Permute((2, 1)),
            L.Reshape((4, 12)),
            L.Flatten(),
            L.RepeatVector(2),
        ),
    ),
    "keras-reshaping-2d-3d": (
        "keras reshaping",
        _stack(
            (4, 4, 4, 2),
            L.ZeroPadding3D(1),
            L.Cropping3D(1),
            L.UpSampling3D(2),
            L.Reshape((8, 8, 16)),
            L.ZeroPadding2D(1),
            L.Cropping2D(1),
            L.UpSampling2D(2, interpolation="bilinear"),
        ),
    ),
    "keras-masking": (
        "keras reshaping",
        _stack(_SEQ, L.Masking(0.0), L.SimpleRNN(2), L.Identity()),
    ),
    "keras-merging": ("keras merging", _merging),
    "keras-string-lookups": ("keras preprocessing", _lookups),
    "keras-numeric-preprocessing": ("keras preprocessing", _numeric_preprocessing),
    "keras-text-int": ("keras preprocessing", _text("int", output_sequence_length=6)),
    "keras-text-multi-hot-ngrams": ("keras preprocessing", _text("multi_hot", ngrams=2)),
    "keras-text-tf-idf": ("keras preprocessing", _text("tf_idf")),
    "keras-text-count-split": (
        "keras preprocessing",
        _text("count", split="character", standardize="lower"),
    ),
    "keras-image-preprocessing": ("keras preprocessing", _image_preprocessing),
    "keras-audio-preprocessing": ("keras preprocessing", _audio),
    # Ordinary imported networks.
    "keras-mobilenet-v3": (
        "imported network",
        _application("MobileNetV3Small", (32, 32, 3), include_preprocessing=True),
    ),
    "keras-resnet50": ("imported network", _application("ResNet50", (32, 32, 3))),
    "keras-efficientnet-b0": ("imported network", _application("EfficientNetB0", (32, 32, 3))),
    "keras-densenet121": ("imported network", _application("DenseNet121", (32, 32, 3))),
    "imported-cnn": ("imported network", _imported("cnn")),
    "imported-two-inputs": ("imported network", _imported("two_inputs")),
    "imported-text": ("imported network", _imported("text")),
    "imported-sequence": ("imported network", _imported("sequence")),
    "imported-module": ("imported network", _imported("module")),
    "imported-tabular": ("imported network", _imported("tabular")),
    "imported-ranker": ("imported network", _imported("ranker")),
    "imported-cased": ("imported network", _imported("cased")),
    "imported-asset-table": ("imported network", _imported("asset_table")),
    # Plain TensorFlow (tf.Module, tf.function, tf.saved_model.save).
    "tf-math": ("plain tensorflow", _module(_Math)),
    "tf-linear-algebra": ("plain tensorflow", _module(_LinearAlgebra)),
    "tf-shapes": ("plain tensorflow", _module(_Shapes)),
    "tf-control-flow": ("plain tensorflow", _module(_ControlFlow)),
    "tf-strings": ("plain tensorflow", _module(_Strings)),
    "tf-sparse-ragged": ("plain tensorflow", _module(_SparseRagged)),
    "tf-signal": ("plain tensorflow", _module(_Signal)),
    "tf-images": ("plain tensorflow", _module(_Images)),
    "tf-random": ("plain tensorflow", _module(_Random)),
    "tf-nn": ("plain tensorflow", _module(_Nn)),
    "tf-gradients": ("plain tensorflow", _module(_Gradients)),
    # YDF's inference (to_tensorflow_saved_model: the ydf_tf op library).
    "ydf-gbt-binary": ("ydf", _ydf("gbt", "classification")),
    "ydf-gbt-regression": ("ydf", _ydf("gbt", "regression")),
    "ydf-rf-multiclass": ("ydf", _ydf("rf", "multiclass")),
    "ydf-cart-binary": ("ydf", _ydf("cart", "classification")),
    # mooring's own exports: the training layer's signature; the trained kinds.
    "mooring-serving-binary": ("mooring", _serving("binary")),
    "mooring-serving-regression": ("mooring", _serving("regression")),
    "mooring-mlp": ("mooring", mooring_export("mlp")),
    "mooring-linear": ("mooring", mooring_export("linear")),
    "mooring-gbt": ("mooring", mooring_export("gbt")),
}

#: A few models of each family, cheap to build: the suite's corpus test.
SAMPLE = (
    "keras-lstm",
    "keras-string-lookups",
    "tf-strings",
    "tf-control-flow",
    "ydf-gbt-binary",
    "mooring-serving-binary",
)
