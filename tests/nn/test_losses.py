"""dlhw.nn.losses against PyTorch's cross_entropy and mse_loss (float64), numerical gradients."""
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st

from dlhw.gradcheck import numerical_gradient, rel_error
from dlhw.nn.losses import mse_loss, softmax_loss

FWD_TOL = 1e-10
BWD_TOL = 1e-9
NUM_TOL = 1e-7
# Entries below FLOOR are compared absolutely (to FLOOR * tol): there both libraries hold
# rounding noise, e.g. tanh' = 1 - y^2 near y = +-1 inherits a one-ulp difference of y.
FLOOR = 1e-4
SETTINGS = settings(max_examples=25, deadline=None)


def torch_cross_entropy(x, y):
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    loss = F.cross_entropy(xt, torch.tensor(y, dtype=torch.long))
    loss.backward()
    return loss.item(), xt.grad.numpy()


def torch_mse(x, y):
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    loss = F.mse_loss(xt, torch.tensor(y, dtype=torch.float64))
    loss.backward()
    return loss.item(), xt.grad.numpy()


# ------------------------------------------------------------------------------ softmax

@SETTINGS
@given(n=st.integers(1, 6), c=st.integers(1, 6), scale=st.sampled_from([1e-3, 1.0, 30.0, 1e3]),
       seed=st.integers(0, 2**16))
def test_softmax_loss_matches_torch(n, c, scale, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c)) * scale
    y = rng.integers(0, c, size=n)
    loss, dx = softmax_loss(x, y)
    t_loss, t_dx = torch_cross_entropy(x, y)
    assert isinstance(loss, float)
    assert dx.shape == x.shape
    assert rel_error(np.array(loss), np.array(t_loss), floor=FLOOR) < FWD_TOL
    assert rel_error(dx, t_dx, floor=FLOOR) < BWD_TOL


def test_softmax_loss_numerical_gradient():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 4))
    y = np.array([0, 3, 1, 1, 2])
    _, dx = softmax_loss(x, y)
    assert rel_error(dx, numerical_gradient(lambda z: softmax_loss(z, y)[0], x)) < NUM_TOL


def test_softmax_loss_huge_logits_stay_finite():
    # exp(1000) overflows; shifted by the row maximum nothing does
    x = np.array([[1000.0, 0.0, -1000.0], [1e3, 1e3 + 1, 1e3 - 2], [-1e3, 1e3, 5e2]])
    y = np.array([2, 0, 0])
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        loss, dx = softmax_loss(x, y)
    assert np.isfinite(loss) and np.all(np.isfinite(dx))
    t_loss, t_dx = torch_cross_entropy(x, y)
    assert rel_error(np.array(loss), np.array(t_loss), floor=FLOOR) < FWD_TOL
    assert rel_error(dx, t_dx, floor=FLOOR) < BWD_TOL
    # the first and last rows: the target's probability underflows, -log p is exactly the gap
    np.testing.assert_allclose(loss, (2000.0 + (1.0 + np.log1p(np.exp(-1) + np.exp(-3))) + 2000.0) / 3,
                               rtol=1e-14)


def test_softmax_loss_known_values():
    # uniform logits: loss log C and gradient (1/C - onehot) / N, the notes' sanity check
    x = np.zeros((2, 4))
    loss, dx = softmax_loss(x, np.array([1, 3]))
    assert loss == pytest.approx(np.log(4), rel=1e-15)
    np.testing.assert_allclose(dx, [[0.125, -0.375, 0.125, 0.125], [0.125, 0.125, 0.125, -0.375]])


def test_softmax_loss_single_example_and_single_class():
    loss, dx = softmax_loss(np.array([[2.0, -1.0, 0.5]]), np.array([1]))
    t_loss, t_dx = torch_cross_entropy(np.array([[2.0, -1.0, 0.5]]), np.array([1]))
    assert rel_error(np.array(loss), np.array(t_loss), floor=FLOOR) < FWD_TOL and rel_error(dx, t_dx, floor=FLOOR) < BWD_TOL
    loss, dx = softmax_loss(np.array([[3.0], [-7.0]]), np.array([0, 0]))
    assert loss == 0.0 and np.all(dx == 0.0)


def test_softmax_loss_rows_of_gradient_sum_to_zero():
    rng = np.random.default_rng(1)
    _, dx = softmax_loss(rng.standard_normal((6, 5)) * 10, rng.integers(0, 5, size=6))
    np.testing.assert_allclose(dx.sum(axis=1), 0.0, atol=1e-16)


def test_softmax_loss_accepts_any_integer_dtype():
    x = np.random.default_rng(2).standard_normal((3, 4))
    ref = softmax_loss(x, np.array([0, 1, 3]))[0]
    for dtype in (np.int8, np.uint8, np.int32, np.int64):
        assert softmax_loss(x, np.array([0, 1, 3], dtype=dtype))[0] == ref
    assert softmax_loss(x, [0, 1, 3])[0] == ref


def test_softmax_loss_rejects_bad_input():
    x = np.zeros((2, 3))
    with pytest.raises(ValueError, match=r"softmax_loss: y must hold class indices in \[0, C\) = \[0, 3\)"):
        softmax_loss(x, np.array([0, 3]))
    with pytest.raises(ValueError, match=r"softmax_loss: y must hold class indices"):
        softmax_loss(x, np.array([-1, 0]))
    with pytest.raises(ValueError, match=r"softmax_loss: y must hold integer class indices"):
        softmax_loss(x, np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"softmax_loss: y must have shape \(N=2,\).*got \(3,\)"):
        softmax_loss(x, np.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"softmax_loss: y must have shape \(N=2,\).*got \(2, 1\)"):
        softmax_loss(x, np.array([[0], [1]]))
    with pytest.raises(ValueError, match=r"softmax_loss: x must have shape \(N, C\); got \(3,\)"):
        softmax_loss(np.zeros(3), np.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"softmax_loss: x must have shape \(N, C\) with N, C >= 1"):
        softmax_loss(np.zeros((0, 3)), np.zeros(0, dtype=int))


# ---------------------------------------------------------------------------------- mse

@SETTINGS
@given(shape=st.lists(st.integers(1, 5), min_size=1, max_size=4), seed=st.integers(0, 2**16))
def test_mse_loss_matches_torch(shape, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    y = rng.standard_normal(shape)
    loss, dx = mse_loss(x, y)
    t_loss, t_dx = torch_mse(x, y)
    assert isinstance(loss, float) and dx.shape == x.shape
    assert rel_error(np.array(loss), np.array(t_loss), floor=FLOOR) < FWD_TOL
    assert rel_error(dx, t_dx, floor=FLOOR) < BWD_TOL


def test_mse_loss_numerical_gradient_and_known_value():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 3))
    y = rng.standard_normal((4, 3))
    _, dx = mse_loss(x, y)
    assert rel_error(dx, numerical_gradient(lambda z: mse_loss(z, y)[0], x)) < NUM_TOL
    # the mean over all N * D elements, not over the batch: (1 + 4 + 0 + 9) / 4
    loss, dx = mse_loss(np.array([[1.0, 2.0], [0.0, 3.0]]), np.zeros((2, 2)))
    assert loss == 3.5
    np.testing.assert_array_equal(dx, [[0.5, 1.0], [0.0, 1.5]])


def test_mse_loss_single_example():
    loss, dx = mse_loss(np.array([2.0]), np.array([-1.0]))
    assert loss == 9.0 and dx.tolist() == [6.0]


def test_mse_loss_rejects_bad_input():
    with pytest.raises(ValueError, match=r"mse_loss: y must have shape \(2, 3\).*got \(3, 2\)"):
        mse_loss(np.zeros((2, 3)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"mse_loss: x must not be empty"):
        mse_loss(np.zeros((0, 3)), np.zeros((0, 3)))
