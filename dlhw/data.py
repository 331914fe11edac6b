"""Data for the notebooks: scikit-learn's digits, generated sequence tasks, minibatches.

Nothing is downloaded. The default real data set is the 1,797 handwritten 8x8 digits that
scikit-learn ships; the sequence tasks are generated from a seed; MNIST and CIFAR-10 can be read
from files a user already has on disk.

Sequence tasks share one layout, chosen so that the same data serve a recurrent network (which
must read the whole input before it can answer) and a transformer:

* ``inputs`` (N, L) int tokens; ``targets`` (N, L) int tokens, with ``IGNORE`` (-1) at every
  position where no answer is expected. A model computes its loss and accuracy only where
  ``targets >= 0``.
* In the default "delayed" layout the input is the T data tokens followed by T ``query`` tokens
  (token id ``vocab_size``), and the answer is expected at the query positions, so L = 2T and the
  model's vocabulary has ``vocab_size + 1`` tokens. With ``aligned=True`` the input is just the T
  data tokens and the answer is expected at the same positions (L = T): only a model that sees
  the whole sequence at once (a transformer without a causal mask) can solve that.
"""
from __future__ import annotations

import gzip
import os
import pickle
import struct

import numpy as np

__all__ = ["IGNORE", "load_digits_split", "one_hot", "make_copy_task", "make_reverse_task",
           "make_sort_task", "make_addition_task", "make_remember_task", "iterate_minibatches",
           "random_shift",
           "load_mnist", "load_cifar10"]

IGNORE = -1
"""Target value of sequence positions that carry no answer (excluded from loss and accuracy)."""


# --------------------------------------------------------------------------------------------
# Digits


def _standardize(splits: dict, flat_train: np.ndarray, min_std: float) -> dict:
    """Scale every split with the training set's per-feature statistics."""
    mean = flat_train.mean(axis=0)
    # A pixel that is (almost) always blank in the training images has a tiny standard
    # deviation; dividing by it would turn a faint stroke in a test image into a huge value.
    # Below ``min_std`` such a feature is only centred.
    std = np.maximum(flat_train.std(axis=0), min_std)
    for key in ("X_train", "X_val", "X_test"):
        x = splits[key]
        splits[key] = (x - mean) / std
    splits["mean"], splits["std"] = mean, std
    return splits


def load_digits_split(val: float = 0.15, test: float = 0.15, seed: int = 0, flatten: bool = True,
                      standardize: bool = True) -> dict:
    """scikit-learn's handwritten digits, split into train / validation / test sets.

    The split is stratified (every set has the ten classes in the same proportions) and
    reproducible from ``seed``. Standardization uses the training set's statistics only, so
    that nothing about the validation and test images leaks into training.

    Parameters
    ----------
    val, test : fractions of the 1,797 images held out for validation and test (0 allowed)
    seed : seed of the shuffle
    flatten : images as rows of 64 features (True) or as (1, 8, 8) single-channel images
    standardize : subtract the per-pixel training mean and divide by the per-pixel training
        standard deviation (floored at one grey level of the 0..16 scale); otherwise the raw
        intensities divided by 16, in [0, 1]

    Returns
    -------
    dict with
        X_train (N_train, 64) or (N_train, 1, 8, 8) float64, y_train (N_train,) int64 in 0..9,
        X_val, y_val, X_test, y_test likewise (N_val or N_test rows, possibly 0),
        mean (64,) and std (64,) when standardized (in raw 0..16 units).
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if not (0 <= val < 1 and 0 <= test < 1 and val + test < 1):
        raise ValueError("load_digits_split: val and test must be fractions in [0, 1) with "
                         f"val + test < 1; got val={val}, test={test}")
    digits = load_digits()
    X = digits.data.astype(np.float64)              # (1797, 64), intensities 0..16
    y = digits.target.astype(np.int64)
    idx = np.arange(len(y))

    def split(ids, frac, rs):
        if frac == 0:
            return ids, ids[:0]
        return train_test_split(ids, test_size=frac, stratify=y[ids], random_state=rs)

    rest, test_ids = split(idx, test, seed)
    # val is a fraction of the whole set, so rescale it to a fraction of what remains
    train_ids, val_ids = split(rest, val / (1 - test) if val else 0, seed + 1)

    out = {}
    for name, ids in (("train", train_ids), ("val", val_ids), ("test", test_ids)):
        out[f"X_{name}"] = X[ids] if standardize else X[ids] / 16.0
        out[f"y_{name}"] = y[ids]
    if standardize:
        out = _standardize(out, out["X_train"], min_std=1.0)
    if not flatten:
        for name in ("train", "val", "test"):
            out[f"X_{name}"] = out[f"X_{name}"].reshape(-1, 1, 8, 8)
    return out


# --------------------------------------------------------------------------------------------
# Generated sequence tasks


def one_hot(tokens, num_classes: int) -> np.ndarray:
    """One-hot encoding of integer tokens.

    Parameters
    ----------
    tokens : int array of any shape (S...), values in 0..num_classes-1
    num_classes : V, the vocabulary size

    Returns
    -------
    out : float64 array of shape (S..., V), out[..., t] = 1 where tokens == t
    """
    tokens = np.asarray(tokens)
    if tokens.size and (tokens.min() < 0 or tokens.max() >= num_classes):
        raise ValueError(f"one_hot: tokens must lie in 0..{num_classes - 1}; "
                         f"got values from {tokens.min()} to {tokens.max()}")
    return np.eye(num_classes)[tokens.astype(np.int64)]


def _check_counts(func: str, num_samples: int, seq_len: int, vocab_size: int) -> None:
    if num_samples < 1 or seq_len < 1 or vocab_size < 2:
        raise ValueError(f"{func}: need num_samples >= 1, seq_len >= 1 and vocab_size >= 2; got "
                         f"num_samples={num_samples}, seq_len={seq_len}, vocab_size={vocab_size}")


def _sequence_task(func: str, transform, num_samples: int, seq_len: int, vocab_size: int,
                   seed, aligned: bool):
    """Random data tokens, their transform, laid out as described in the module docstring."""
    _check_counts(func, num_samples, seq_len, vocab_size)
    rng = np.random.default_rng(seed)
    x = rng.integers(0, vocab_size, size=(num_samples, seq_len))
    answer = transform(x)
    if aligned:
        return x, answer
    query = np.full_like(x, vocab_size)              # the extra token that means "answer now"
    inputs = np.concatenate([x, query], axis=1)
    targets = np.concatenate([np.full_like(x, IGNORE), answer], axis=1)
    return inputs, targets


def make_copy_task(num_samples: int, seq_len: int, vocab_size: int = 8, seed=None,
                   aligned: bool = False):
    """Copy task: reproduce the T data tokens.

    Parameters
    ----------
    num_samples : N
    seq_len : T, number of data tokens
    vocab_size : V, data tokens are 0..V-1 (the query token is V)
    seed : seed of the generator
    aligned : layout (see the module docstring)

    Returns
    -------
    inputs : int64 array of shape (N, 2T) (aligned: (N, T)), tokens in 0..V
    targets : int64 array of inputs' shape, IGNORE where no answer is due, else tokens in 0..V-1
    """
    return _sequence_task("make_copy_task", lambda x: x.copy(), num_samples, seq_len,
                          vocab_size, seed, aligned)


def make_reverse_task(num_samples: int, seq_len: int, vocab_size: int = 8, seed=None,
                      aligned: bool = False):
    """Reverse task: output the T data tokens last to first.

    Parameters and returns as in ``make_copy_task``: inputs and targets (N, 2T), or (N, T)
    with ``aligned=True``.
    """
    return _sequence_task("make_reverse_task", lambda x: x[:, ::-1].copy(), num_samples,
                          seq_len, vocab_size, seed, aligned)


def make_sort_task(num_samples: int, seq_len: int, vocab_size: int = 8, seed=None,
                   aligned: bool = False):
    """Sort task: output the T data tokens in ascending order.

    Parameters and returns as in ``make_copy_task``: inputs and targets (N, 2T), or (N, T)
    with ``aligned=True``.
    """
    return _sequence_task("make_sort_task", lambda x: np.sort(x, axis=1), num_samples, seq_len,
                          vocab_size, seed, aligned)


def make_addition_task(num_samples: int, num_digits: int = 3, seed=None):
    """Addition of two numbers written digit by digit, least significant digit first.

    The input is ``a`` (num_digits digits), the token PLUS (10), ``b`` (num_digits digits),
    then num_digits + 1 EQUALS tokens (11) at which the digits of ``a + b`` are due. Writing
    the least significant digit first lets a recurrent network carry as it reads. The
    vocabulary has 12 tokens; answers are digits 0..9.

    Parameters
    ----------
    num_samples : N
    num_digits : K, digits per operand
    seed : seed of the generator

    Returns
    -------
    inputs : int64 array of shape (N, 3K + 2), tokens in 0..11
    targets : int64 array of shape (N, 3K + 2), IGNORE on the first 2K + 1 positions, then the
        K + 1 digits of a + b, least significant first
    """
    _check_counts("make_addition_task", num_samples, num_digits, 10)
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 10, size=(num_samples, num_digits))
    b = rng.integers(0, 10, size=(num_samples, num_digits))
    place = 10 ** np.arange(num_digits + 1)           # digit i is worth 10^i
    total = (a * place[:-1]).sum(axis=1) + (b * place[:-1]).sum(axis=1)
    s = (total[:, None] // place) % 10                # (N, K+1), least significant first
    n = num_samples
    inputs = np.concatenate([a, np.full((n, 1), 10), b, np.full((n, num_digits + 1), 11)], axis=1)
    targets = np.concatenate([np.full((n, 2 * num_digits + 1), IGNORE), s], axis=1)
    return inputs.astype(np.int64), targets.astype(np.int64)


def make_remember_task(num_samples: int, seq_len: int, num_classes: int = 4,
                       num_distractors: int = 4, seed=None):
    """Remember the first token over a long run of distractors, then name it.

    The first token is the signal, one of 0..C-1; the T - 1 tokens after it are random
    distractors drawn from C..C+K-1 and carry no information. The label is the signal. A
    classifier that reads the sequence and answers from its last hidden state must carry the
    signal across T - 1 steps: a plain RNN's gradient through that many tanh steps vanishes, so
    it stays at chance (1 / C), while an LSTM's cell can keep it. Measured with
    ``dlhw.models.RecurrentNet`` (H = 32, Adam 1e-2, batches of 64) at T = 30: the RNN at
    chance after 600 steps, the LSTM (``forget_bias=2``) at 100% after 100-200 steps.

    Parameters
    ----------
    num_samples : N
    seq_len : T, total length including the signal
    num_classes : C, number of signal values (chance accuracy is 1 / C)
    num_distractors : K, number of distractor tokens
    seed : seed of the generator

    Returns
    -------
    inputs : int64 array of shape (N, T), tokens in 0..C+K-1 (vocabulary size C + K)
    labels : int64 array of shape (N,), the signal, in 0..C-1
    """
    _check_counts("make_remember_task", num_samples, seq_len, num_classes)
    if num_distractors < 1:
        raise ValueError(f"make_remember_task: num_distractors must be >= 1; got {num_distractors}")
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, num_classes, size=num_samples)
    inputs = rng.integers(num_classes, num_classes + num_distractors, size=(num_samples, seq_len))
    inputs[:, 0] = labels
    return inputs.astype(np.int64), labels.astype(np.int64)


# --------------------------------------------------------------------------------------------
# Minibatches


def iterate_minibatches(X, y, batch_size: int, shuffle: bool = True, seed=None, drop_last: bool = False):
    """Yield ``(X_batch, y_batch)`` pairs covering the data once (one epoch).

    Parameters
    ----------
    X : array of shape (N, ...)
    y : array of shape (N, ...) (or None: batches of X only, with y_batch None)
    batch_size : B; the last batch may be smaller unless ``drop_last``
    shuffle : visit the samples in a random order (drawn from ``seed``, an int, None or a
        numpy Generator) instead of in order
    drop_last : skip a last batch smaller than B

    Yields
    ------
    X_batch : array of shape (B, ...), y_batch : array of shape (B, ...) or None
    """
    X = np.asarray(X)
    n = len(X)
    if y is not None and len(y) != n:
        raise ValueError(f"iterate_minibatches: X and y must have the same number of samples; "
                         f"got {n} and {len(y)}")
    if batch_size < 1:
        raise ValueError(f"iterate_minibatches: batch_size must be >= 1; got {batch_size}")
    order = np.random.default_rng(seed).permutation(n) if shuffle else np.arange(n)
    for start in range(0, n, batch_size):
        ids = order[start:start + batch_size]
        if drop_last and len(ids) < batch_size:
            break
        yield X[ids], (None if y is None else np.asarray(y)[ids])


def random_shift(X, rng=None, max_shift: int = 1) -> np.ndarray:
    """Data augmentation: every image moved by its own random offset of up to max_shift pixels.

    The image is padded by repeating its border pixels (the digits' borders are blank, whatever
    the normalization) and cropped back to its size at a random offset, so a digit may move by
    -max_shift .. max_shift pixels along each axis. Made to be passed as
    ``Trainer(augment=random_shift)``.

    Parameters
    ----------
    X : images of shape (N, C, H, W), or (N, D) rows of square single-channel images
    rng : numpy Generator, seed or None
    max_shift : s >= 0

    Returns
    -------
    out : array of X's shape
    """
    X = np.asarray(X)
    rng = np.random.default_rng(rng)
    flat = X.ndim == 2
    if flat:
        side = int(round(np.sqrt(X.shape[1])))
        if side * side != X.shape[1]:
            raise ValueError(f"random_shift: rows of {X.shape[1]} features are not square images")
        X = X.reshape(len(X), 1, side, side)
    if X.ndim != 4:
        raise ValueError(f"random_shift: X must have shape (N, C, H, W) or (N, D); got {X.shape}")
    N, C, H, W = X.shape
    s = int(max_shift)
    padded = np.pad(X, ((0, 0), (0, 0), (s, s), (s, s)), mode="edge")
    dy, dx = rng.integers(0, 2 * s + 1, size=(2, N))
    rows = (dy[:, None] + np.arange(H))[:, None, :, None]      # (N, 1, H, 1)
    cols = (dx[:, None] + np.arange(W))[:, None, None, :]      # (N, 1, 1, W)
    out = padded[np.arange(N)[:, None, None, None], np.arange(C)[None, :, None, None], rows, cols]
    return out.reshape(N, -1) if flat else out


# --------------------------------------------------------------------------------------------
# Larger data sets from local files


def _read_idx(path: str) -> np.ndarray:
    """An IDX file (MNIST's format), optionally gzipped: big-endian header, then uint8 data."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"load_mnist: {path} is not an unsigned-byte IDX file")
    shape = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"load_mnist: {path} holds {data.size} values; its header says {shape}")
    return data.reshape(shape)


def _find(folder: str, stems, func: str) -> str:
    for stem in stems:
        for name in (stem, stem + ".gz"):
            if os.path.exists(os.path.join(folder, name)):
                return os.path.join(folder, name)
    raise ValueError(f"{func}: none of {list(stems)} (optionally .gz) found in {folder}")


def _finish(func: str, X_train, y_train, X_test, y_test, image_shape, flatten, num_val):
    """Scale to [0, 1] float64, reshape, carve a validation set off the end of train."""
    out = {}
    if not 0 <= num_val < len(X_train):
        raise ValueError(f"{func}: num_val must be in 0..{len(X_train) - 1}; got {num_val}")
    cut = len(X_train) - num_val
    parts = {"train": (X_train[:cut], y_train[:cut]), "val": (X_train[cut:], y_train[cut:]),
             "test": (X_test, y_test)}
    for name, (X, y) in parts.items():
        X = np.asarray(X, dtype=np.float64) / 255.0
        X = X.reshape((len(X), -1 if len(X) else int(np.prod(image_shape))) if flatten
                      else (len(X),) + image_shape)
        out[f"X_{name}"], out[f"y_{name}"] = X, np.asarray(y, dtype=np.int64).reshape(-1)
    return out


def load_mnist(path: str, flatten: bool = False, num_val: int = 0) -> dict:
    """MNIST from files on disk (nothing is downloaded).

    Parameters
    ----------
    path : either a folder holding the four IDX files (``train-images-idx3-ubyte``,
        ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``,
        each optionally ``.gz``) or an ``.npz`` file with arrays x_train, y_train, x_test,
        y_test (the layout Keras uses)
    flatten : rows of 784 features instead of (1, 28, 28) images
    num_val : number of training images (the last ones) held out as a validation set

    Returns
    -------
    dict with X_train (N, 1, 28, 28) or (N, 784) float64 in [0, 1], y_train (N,) int64,
    X_val, y_val (num_val rows), X_test, y_test
    """
    if str(path).endswith(".npz"):
        with np.load(path) as f:
            arrays = [f[k] for k in ("x_train", "y_train", "x_test", "y_test")]
    elif os.path.isdir(path):
        stems = [("train-images-idx3-ubyte", "train-images.idx3-ubyte"),
                 ("train-labels-idx1-ubyte", "train-labels.idx1-ubyte"),
                 ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"),
                 ("t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte")]
        arrays = [_read_idx(_find(path, s, "load_mnist")) for s in stems]
    else:
        raise ValueError(f"load_mnist: path must be a folder of IDX files or an .npz file; got {path!r}")
    return _finish("load_mnist", *arrays, image_shape=(1, 28, 28), flatten=flatten, num_val=num_val)


def load_cifar10(path: str, flatten: bool = False, num_val: int = 0) -> dict:
    """CIFAR-10 from files on disk (nothing is downloaded).

    Parameters
    ----------
    path : either the ``cifar-10-batches-py`` folder (pickled ``data_batch_1`` .. ``_5`` and
        ``test_batch``; batches that are absent are skipped, at least one training batch is
        needed) or an ``.npz`` file with x_train, y_train, x_test, y_test, images either as
        (N, 3, 32, 32), (N, 32, 32, 3) or (N, 3072) rows in CIFAR's channel-major order
    flatten : rows of 3072 features instead of (3, 32, 32) images
    num_val : number of training images (the last ones) held out as a validation set

    Returns
    -------
    dict with X_train (N, 3, 32, 32) or (N, 3072) float64 in [0, 1], y_train (N,) int64,
    X_val, y_val, X_test, y_test

    Notes
    -----
    The folder format is Python pickles: only open files from a source you trust.
    """
    def chw(x):
        x = np.asarray(x)
        if x.ndim == 4 and x.shape[-1] == 3 and x.shape[1] != 3:
            x = x.transpose(0, 3, 1, 2)               # channels-last -> channels-first
        return x.reshape(len(x), 3, 32, 32)

    if str(path).endswith(".npz"):
        with np.load(path) as f:
            xtr, ytr, xte, yte = (f[k] for k in ("x_train", "y_train", "x_test", "y_test"))
    elif os.path.isdir(path):
        def batch(name):
            with open(os.path.join(path, name), "rb") as f:
                d = pickle.load(f, encoding="bytes")
            return d[b"data"], d[b"labels"]
        train = [batch(f"data_batch_{i}") for i in range(1, 6)
                 if os.path.exists(os.path.join(path, f"data_batch_{i}"))]
        if not train or not os.path.exists(os.path.join(path, "test_batch")):
            raise ValueError(f"load_cifar10: {path} must hold data_batch_1 (.. _5) and test_batch")
        xtr = np.concatenate([d for d, _ in train])
        ytr = np.concatenate([np.asarray(lab) for _, lab in train])
        xte, yte = batch("test_batch")
    else:
        raise ValueError(f"load_cifar10: path must be the cifar-10-batches-py folder or an .npz "
                         f"file; got {path!r}")
    return _finish("load_cifar10", chw(xtr), ytr, chw(xte), np.asarray(yte), image_shape=(3, 32, 32),
                   flatten=flatten, num_val=num_val)
