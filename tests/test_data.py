"""dlhw.data: the digits split, generated sequence tasks, minibatches, local MNIST/CIFAR files."""
import gzip
import os
import pickle
import struct

import numpy as np
import pytest

from dlhw.data import (IGNORE, iterate_minibatches, load_cifar10, load_digits_split, load_mnist,
                       make_addition_task, make_copy_task, make_remember_task, make_reverse_task,
                       make_sort_task, one_hot)


def test_digits_split_sizes_stratification_and_disjointness():
    d = load_digits_split()
    n = [len(d[f"y_{s}"]) for s in ("train", "val", "test")]
    assert sum(n) == 1797 and abs(n[1] - 270) <= 1 and abs(n[2] - 270) <= 1
    assert d["X_train"].shape == (n[0], 64) and d["X_train"].dtype == np.float64
    for s in ("train", "val", "test"):
        counts = np.bincount(d[f"y_{s}"], minlength=10) / len(d[f"y_{s}"])
        assert np.all(np.abs(counts - 0.1) < 0.02)       # every class in its share
    rows = {tuple(np.round(r, 8)) for r in d["X_train"]}
    # the digits contain a few duplicate images, so allow a handful of coincidences
    assert sum(tuple(np.round(r, 8)) in rows for r in d["X_test"]) < 5


def test_digits_standardized_with_train_statistics_only():
    d = load_digits_split(seed=3)
    assert np.allclose(d["X_train"].mean(axis=0), 0, atol=1e-12)
    std = d["X_train"].std(axis=0)
    assert np.all((np.abs(std - 1) < 1e-9) | (std < 1))   # floored features are only centred
    assert abs(d["X_val"].mean()) > 1e-6                  # not re-centred on its own statistics
    raw = load_digits_split(seed=3, standardize=False)
    assert raw["X_train"].min() >= 0 and raw["X_train"].max() <= 1
    assert np.allclose(d["X_test"], (raw["X_test"] * 16 - d["mean"]) / d["std"])


def test_digits_images_seed_and_fractions():
    d = load_digits_split(flatten=False)
    assert d["X_train"].shape[1:] == (1, 8, 8) and d["X_test"].shape[1:] == (1, 8, 8)
    a, b = load_digits_split(seed=1), load_digits_split(seed=1)
    assert np.array_equal(a["y_train"], b["y_train"])
    assert not np.array_equal(a["y_train"], load_digits_split(seed=2)["y_train"])
    d = load_digits_split(val=0, test=0.2)
    assert len(d["y_val"]) == 0 and d["X_val"].shape == (0, 64)
    with pytest.raises(ValueError, match="val and test"):
        load_digits_split(val=0.6, test=0.5)


def test_one_hot():
    out = one_hot(np.array([[0, 2], [1, 1]]), 3)
    assert out.shape == (2, 2, 3) and np.array_equal(out.argmax(-1), [[0, 2], [1, 1]])
    assert np.all(out.sum(-1) == 1)
    with pytest.raises(ValueError, match="0..2"):
        one_hot([3], 3)


@pytest.mark.parametrize("make,transform", [(make_copy_task, lambda x: x),
                                            (make_reverse_task, lambda x: x[:, ::-1]),
                                            (make_sort_task, lambda x: np.sort(x, axis=1))])
def test_sequence_tasks(make, transform):
    inputs, targets = make(50, 6, vocab_size=5, seed=0)
    assert inputs.shape == targets.shape == (50, 12)
    data, query = inputs[:, :6], inputs[:, 6:]
    assert data.min() >= 0 and data.max() < 5 and np.all(query == 5)
    assert np.all(targets[:, :6] == IGNORE)
    assert np.array_equal(targets[:, 6:], transform(data))
    x, t = make(50, 6, vocab_size=5, seed=0, aligned=True)
    assert np.array_equal(x, data) and np.array_equal(t, transform(data))
    assert np.array_equal(make(5, 3, seed=7)[0], make(5, 3, seed=7)[0])
    with pytest.raises(ValueError, match="seq_len"):
        make(5, 0)


def test_addition_task_sums():
    inputs, targets = make_addition_task(200, num_digits=3, seed=0)
    assert inputs.shape == targets.shape == (200, 11)
    place = 10 ** np.arange(4)
    a = (inputs[:, 0:3] * place[:3]).sum(1)
    b = (inputs[:, 4:7] * place[:3]).sum(1)
    s = (targets[:, 7:] * place).sum(1)
    assert np.array_equal(a + b, s)
    assert np.all(inputs[:, 3] == 10) and np.all(inputs[:, 7:] == 11) and np.all(targets[:, :7] == IGNORE)


def test_remember_task():
    X, y = make_remember_task(100, 20, num_classes=4, num_distractors=3, seed=0)
    assert X.shape == (100, 20) and y.shape == (100,)
    assert np.array_equal(X[:, 0], y) and y.max() < 4
    assert X[:, 1:].min() >= 4 and X[:, 1:].max() < 7
    assert set(np.unique(y)) == {0, 1, 2, 3}


def test_iterate_minibatches():
    X, y = np.arange(23)[:, None], np.arange(23)
    batches = list(iterate_minibatches(X, y, 5, shuffle=True, seed=0))
    assert [len(b) for b, _ in batches] == [5, 5, 5, 5, 3]
    seen = np.concatenate([yb for _, yb in batches])
    assert sorted(seen) == list(range(23)) and not np.array_equal(seen, np.arange(23))
    assert all(np.array_equal(xb[:, 0], yb) for xb, yb in batches)
    ordered = list(iterate_minibatches(X, None, 10, shuffle=False, drop_last=True))
    assert len(ordered) == 2 and ordered[0][1] is None and np.array_equal(ordered[1][0][:, 0], np.arange(10, 20))
    with pytest.raises(ValueError, match="same number"):
        next(iterate_minibatches(X, y[:3], 5))


# ---------------------------------------------------------------------------------------------
# local files: tiny stand-ins written here


def write_idx(path, array, gz=False):
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(">" + "I" * array.ndim, *array.shape)
    opener = gzip.open if gz else open
    with opener(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_load_mnist_idx_and_npz(tmp_path):
    rng = np.random.default_rng(0)
    xtr, ytr = rng.integers(0, 256, (7, 28, 28)), rng.integers(0, 10, 7)
    xte, yte = rng.integers(0, 256, (3, 28, 28)), rng.integers(0, 10, 3)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", xtr, gz=True)
    write_idx(tmp_path / "train-labels-idx1-ubyte", ytr)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", xte)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", yte, gz=True)
    d = load_mnist(str(tmp_path), num_val=2)
    assert d["X_train"].shape == (5, 1, 28, 28) and d["X_val"].shape == (2, 1, 28, 28)
    assert np.allclose(d["X_train"][:, 0] * 255, xtr[:5]) and np.array_equal(d["y_val"], ytr[5:])
    assert np.array_equal(d["y_test"], yte) and d["X_test"].max() <= 1
    np.savez(tmp_path / "mnist.npz", x_train=xtr.astype(np.uint8), y_train=ytr, x_test=xte.astype(np.uint8),
             y_test=yte)
    e = load_mnist(str(tmp_path / "mnist.npz"), flatten=True)
    assert e["X_train"].shape == (7, 784) and np.allclose(e["X_test"].reshape(3, 28, 28), d["X_test"][:, 0])
    with pytest.raises(ValueError, match="IDX"):
        write_idx(tmp_path / "bad", xte)
        with open(tmp_path / "bad", "r+b") as f:
            f.write(b"\x01")
        os.replace(tmp_path / "bad", tmp_path / "t10k-images-idx3-ubyte")
        load_mnist(str(tmp_path))
    with pytest.raises(ValueError, match="folder"):
        load_mnist(str(tmp_path / "missing"))


def test_load_cifar10_batches_and_npz(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    batches = []
    for name in ("data_batch_1", "data_batch_2", "test_batch"):
        data, labels = rng.integers(0, 256, (4, 3072)).astype(np.uint8), list(rng.integers(0, 10, 4))
        batches.append((data, labels))
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": data, b"labels": labels}, f)
    d = load_cifar10(str(folder), num_val=1)
    assert d["X_train"].shape == (7, 3, 32, 32) and d["X_val"].shape == (1, 3, 32, 32)
    # rows are channel-major: the first 1024 values are the red plane
    assert np.allclose(d["X_train"][0, 0].ravel() * 255, batches[0][0][0, :1024])
    assert np.array_equal(d["y_test"], batches[2][1])
    hwc = rng.integers(0, 256, (2, 32, 32, 3)).astype(np.uint8)
    np.savez(tmp_path / "c.npz", x_train=hwc, y_train=[1, 2], x_test=hwc, y_test=[3, 4])
    e = load_cifar10(str(tmp_path / "c.npz"))
    assert np.allclose(e["X_train"] * 255, hwc.transpose(0, 3, 1, 2))
    assert load_cifar10(str(tmp_path / "c.npz"), flatten=True)["X_test"].shape == (2, 3072)
    os.remove(folder / "test_batch")
    with pytest.raises(ValueError, match="test_batch"):
        load_cifar10(str(folder))
