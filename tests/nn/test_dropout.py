"""dlhw.nn.dropout: inverted dropout with p the probability of KEEPING a unit.

PyTorch draws its masks from its own generator, so masks cannot be compared; what can be is
the scaling (PyTorch's dropout with drop probability 1 - p scales kept units by 1 / p too),
the statistics of the mask, and the gradient.
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st

from dlhw.gradcheck import numerical_gradient_array, rel_error
from dlhw.nn.dropout import dropout_backward, dropout_forward

SETTINGS = settings(max_examples=20, deadline=None)


@SETTINGS
@given(shape=st.lists(st.integers(1, 6), min_size=1, max_size=4),
       p=st.floats(0.05, 1.0), seed=st.integers(0, 2**16))
def test_train_mode_keeps_or_zeroes_each_unit(shape, p, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) + 3.0              # no exact zeros in x
    dout = rng.standard_normal(shape)
    out, cache = dropout_forward(x, {"mode": "train", "p": p, "seed": seed})
    dx = dropout_backward(dout, cache)
    kept = out != 0
    assert out.shape == x.shape and dx.shape == x.shape
    np.testing.assert_allclose(out[kept], x[kept] / p, rtol=1e-15)
    # the gradient flows through the same units, with the same 1/p
    np.testing.assert_allclose(dx[kept], dout[kept] / p, rtol=1e-15)
    assert np.all(dx[~kept] == 0)


@pytest.mark.parametrize("p", [0.2, 0.5, 0.9])
def test_mask_keeps_a_fraction_p_and_preserves_the_mean(p):
    x = np.ones((200, 500))
    out, _ = dropout_forward(x, {"mode": "train", "p": p, "seed": 1})
    # 1e5 Bernoulli(p) draws: the standard deviation of the fraction is < 0.0016
    assert abs(np.mean(out != 0) - p) < 0.01
    assert abs(out.mean() - 1.0) < 0.01 / p           # inverted dropout: E[out] = x


@pytest.mark.parametrize("p", [0.25, 0.5, 0.8])
def test_scaling_matches_torch(p):
    # PyTorch's p is the probability of DROPPING a unit: its 1 - p is ours
    x = np.ones((50, 40))
    t_out = F.dropout(torch.tensor(x), p=1 - p, training=True).numpy()
    out, _ = dropout_forward(x, {"mode": "train", "p": p, "seed": 0})
    np.testing.assert_allclose(np.unique(out[out != 0]), np.unique(t_out[t_out != 0]), rtol=1e-15)
    # and PyTorch's eval mode is the identity, as ours
    t_eval = F.dropout(torch.tensor(x), p=1 - p, training=False).numpy()
    np.testing.assert_array_equal(dropout_forward(x, {"mode": "test", "p": p})[0], t_eval)


def test_test_mode_is_identity():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 3, 2))
    dout = rng.standard_normal((4, 3, 2))
    out, cache = dropout_forward(x, {"mode": "test", "p": 0.3})
    np.testing.assert_array_equal(out, x)
    assert out is not x and not np.shares_memory(out, x)
    np.testing.assert_array_equal(dropout_backward(dout, cache), dout)


def test_keep_probability_one_is_identity_in_train_mode():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((10, 10))
    dout = rng.standard_normal((10, 10))
    out, cache = dropout_forward(x, {"mode": "train", "p": 1.0})
    np.testing.assert_array_equal(out, x)
    np.testing.assert_array_equal(dropout_backward(dout, cache), dout)


def test_seed_makes_the_mask_reproducible():
    x = np.ones((30, 30))
    a, _ = dropout_forward(x, {"mode": "train", "p": 0.5, "seed": 7})
    b, _ = dropout_forward(x, {"mode": "train", "p": 0.5, "seed": 7})
    c, _ = dropout_forward(x, {"mode": "train", "p": 0.5, "seed": 8})
    np.testing.assert_array_equal(a, b)
    assert np.any(a != c)
    # without a seed the global generator is used: np.random.seed reproduces it
    np.random.seed(11)
    d, _ = dropout_forward(x, {"mode": "train", "p": 0.5})
    e, _ = dropout_forward(x, {"mode": "train", "p": 0.5})
    np.random.seed(11)
    f, _ = dropout_forward(x, {"mode": "train", "p": 0.5, "seed": None})
    np.testing.assert_array_equal(d, f)
    assert np.any(d != e)


def test_backward_numerical_gradient():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((6, 5))
    dout = rng.standard_normal((6, 5))
    param = {"mode": "train", "p": 0.6, "seed": 5}      # fixed seed: the same mask every call
    dx = dropout_backward(dout, dropout_forward(x, param)[1])
    assert rel_error(dx, numerical_gradient_array(lambda z: dropout_forward(z, param)[0], x, dout)) < 1e-9


def test_single_example():
    x = np.array([[2.0, -4.0, 1.0]])
    out, cache = dropout_forward(x, {"mode": "train", "p": 0.5, "seed": 0})
    assert out.shape == (1, 3) and np.all((out == 0) | (out == 2 * x))
    assert dropout_backward(np.ones((1, 3)), cache).shape == (1, 3)


def test_param_dict_is_not_modified():
    param = {"mode": "train", "p": 0.5, "seed": 3}
    dropout_forward(np.ones((3, 3)), param)
    assert param == {"mode": "train", "p": 0.5, "seed": 3}


def test_rejects_bad_params():
    x = np.ones((2, 3))
    with pytest.raises(ValueError, match=r"dropout_forward: dropout_param is missing the key\(s\) \['p'\]"):
        dropout_forward(x, {"mode": "train"})
    with pytest.raises(ValueError, match=r"dropout_forward: dropout_param is missing the key\(s\) \['mode'\]"):
        dropout_forward(x, {"p": 0.5})
    with pytest.raises(ValueError, match=r"dropout_forward: dropout_param must be a dict"):
        dropout_forward(x, None)
    with pytest.raises(ValueError, match=r"dropout_forward: dropout_param\['mode'\] must be one of"):
        dropout_forward(x, {"mode": "eval", "p": 0.5})
    for bad_p in (0, 0.0, -0.1, 1.5, float("nan"), "0.5", True):
        with pytest.raises(ValueError, match=r"dropout_forward: dropout_param\['p'\].*must be a number in \(0, 1\]"):
            dropout_forward(x, {"mode": "train", "p": bad_p})
    _, cache = dropout_forward(x, {"mode": "train", "p": 0.5})
    with pytest.raises(ValueError, match=r"dropout_backward: dout must have shape \(2, 3\).*got \(3, 2\)"):
        dropout_backward(np.ones((3, 2)), cache)
