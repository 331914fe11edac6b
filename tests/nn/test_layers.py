"""dlhw.nn.layers against PyTorch (float64), numerical gradients and its own edge cases."""
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st

from dlhw.gradcheck import numerical_gradient_array, rel_error
from dlhw.nn.layers import (affine_backward, affine_forward, leaky_relu_backward,
                            leaky_relu_forward, relu_backward, relu_forward, sigmoid_backward,
                            sigmoid_forward, tanh_backward, tanh_forward)

FWD_TOL = 1e-10
BWD_TOL = 1e-9
NUM_TOL = 1e-7
# Entries below FLOOR are compared absolutely (to FLOOR * tol): there both libraries hold
# rounding noise, e.g. tanh' = 1 - y^2 near y = +-1 inherits a one-ulp difference of y.
FLOOR = 1e-4
SETTINGS = settings(max_examples=20, deadline=None)


def t64(a, grad=False):
    return torch.tensor(a, dtype=torch.float64, requires_grad=grad)


def torch_grads(f, inputs, dout):
    """Autograd gradients of sum(f(*inputs) * dout) with respect to every input."""
    ts = [t64(a, grad=True) for a in inputs]
    out = f(*ts)
    grads = torch.autograd.grad(out, ts, t64(dout))
    return out.detach().numpy(), [g.numpy() for g in grads]


# ------------------------------------------------------------------------------ affine

def check_affine(x, w, b, dout):
    out, cache = affine_forward(x, w, b)
    dx, dw, db = affine_backward(dout, cache)
    t_out, (t_dx, t_dw, t_db) = torch_grads(lambda x, w, b: F.linear(x.flatten(1), w.T, b),
                                            [x, w, b], dout)
    assert out.shape == (x.shape[0], w.shape[1])
    assert dx.shape == x.shape and dw.shape == w.shape and db.shape == b.shape
    assert rel_error(out, t_out, floor=FLOOR) < FWD_TOL
    assert rel_error(dx, t_dx, floor=FLOOR) < BWD_TOL
    assert rel_error(dw, t_dw, floor=FLOOR) < BWD_TOL
    assert rel_error(db, t_db, floor=FLOOR) < BWD_TOL


@SETTINGS
@given(n=st.integers(1, 4), dims=st.lists(st.integers(1, 4), min_size=1, max_size=3),
       m=st.integers(1, 5), seed=st.integers(0, 2**16))
def test_affine_matches_torch(n, dims, m, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, *dims))
    d = int(np.prod(dims))
    check_affine(x, rng.standard_normal((d, m)), rng.standard_normal(m), rng.standard_normal((n, m)))


def test_affine_4d_input_and_numerical_gradients():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 2, 3, 2))          # an image batch, flattened to (3, 12)
    w = rng.standard_normal((12, 4))
    b = rng.standard_normal(4)
    dout = rng.standard_normal((3, 4))
    check_affine(x, w, b, dout)
    dx, dw, db = affine_backward(dout, affine_forward(x, w, b)[1])
    assert rel_error(dx, numerical_gradient_array(lambda z: affine_forward(z, w, b)[0], x, dout)) < NUM_TOL
    assert rel_error(dw, numerical_gradient_array(lambda z: affine_forward(x, z, b)[0], w, dout)) < NUM_TOL
    assert rel_error(db, numerical_gradient_array(lambda z: affine_forward(x, w, z)[0], b, dout)) < NUM_TOL


def test_affine_single_example():
    rng = np.random.default_rng(1)
    check_affine(rng.standard_normal((1, 5)), rng.standard_normal((5, 3)), rng.standard_normal(3),
                 rng.standard_normal((1, 3)))


def test_affine_known_values():
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    w = np.array([[1.0, 0.0, -1.0], [2.0, 1.0, 0.5]])
    b = np.array([0.5, -1.0, 0.0])
    out, _ = affine_forward(x, w, b)
    np.testing.assert_array_equal(out, [[5.5, 1.0, 0.0], [11.5, 3.0, -1.0]])


def test_affine_rejects_bad_shapes():
    x, w, b = np.ones((4, 3, 2)), np.ones((6, 5)), np.ones(5)
    with pytest.raises(ValueError, match=r"affine_forward: x must have shape \(N, d1, \.\.\., dk\)"):
        affine_forward(np.ones(6), w, b)
    with pytest.raises(ValueError, match=r"affine_forward: w must have shape \(D=6, M\).*got \(5, 5\)"):
        affine_forward(x, np.ones((5, 5)), b)
    with pytest.raises(ValueError, match=r"affine_forward: b must have shape \(M=5,\); got \(4,\)"):
        affine_forward(x, w, np.ones(4))
    _, cache = affine_forward(x, w, b)
    with pytest.raises(ValueError, match=r"affine_backward: dout must have shape \(4, 5\).*got \(4, 4\)"):
        affine_backward(np.ones((4, 4)), cache)


# ------------------------------------------------------------------------- activations

ACTIVATIONS = {
    "relu": (relu_forward, relu_backward, F.relu),
    "leaky_relu": (leaky_relu_forward, leaky_relu_backward, F.leaky_relu),
    "sigmoid": (sigmoid_forward, sigmoid_backward, torch.sigmoid),
    "tanh": (tanh_forward, tanh_backward, torch.tanh),
}

shapes = st.lists(st.integers(1, 5), min_size=1, max_size=4)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
@SETTINGS
@given(shape=shapes, scale=st.sampled_from([0.1, 1.0, 10.0]), seed=st.integers(0, 2**16))
def test_activation_matches_torch(name, shape, scale, seed):
    forward, backward, torch_f = ACTIVATIONS[name]
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * scale
    x.flat[0] = 0.0                  # the kink of relu and leaky relu: derivative as PyTorch's
    dout = rng.standard_normal(shape)
    out, cache = forward(x)
    dx = backward(dout, cache)
    t_out, (t_dx,) = torch_grads(torch_f, [x], dout)
    assert out.shape == x.shape and dx.shape == x.shape
    assert rel_error(out, t_out, floor=FLOOR) < FWD_TOL
    assert rel_error(dx, t_dx, floor=FLOOR) < BWD_TOL


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_numerical_gradient(name):
    forward, backward, _ = ACTIVATIONS[name]
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 5))
    x[np.abs(x) < 0.01] = 0.5        # keep centred differences away from the kink
    dout = rng.standard_normal((4, 5))
    dx = backward(dout, forward(x)[1])
    assert rel_error(dx, numerical_gradient_array(lambda z: forward(z)[0], x, dout)) < NUM_TOL


@pytest.mark.parametrize("slope", [0.0, 0.2, 1.0, -0.5])
def test_leaky_relu_slope_matches_torch(slope):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 4))
    x[0, 0] = 0.0
    dout = rng.standard_normal((3, 4))
    out, cache = leaky_relu_forward(x, slope)
    dx = leaky_relu_backward(dout, cache)
    t_out, (t_dx,) = torch_grads(lambda z: F.leaky_relu(z, slope), [x], dout)
    assert rel_error(out, t_out, floor=FLOOR) < FWD_TOL
    assert rel_error(dx, t_dx, floor=FLOOR) < BWD_TOL


def test_leaky_relu_rejects_bad_slope():
    with pytest.raises(ValueError, match="leaky_relu_forward: negative_slope"):
        leaky_relu_forward(np.ones(3), "steep")
    with pytest.raises(ValueError, match="leaky_relu_forward: negative_slope must be a finite float"):
        leaky_relu_forward(np.ones(3), np.inf)


def test_sigmoid_and_tanh_large_inputs_no_overflow():
    x = np.array([-1e4, -1000.0, -750.0, -710.0, -40.0, 0.0, 40.0, 710.0, 1000.0, 1e4])
    dout = np.ones_like(x)
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        s, s_cache = sigmoid_forward(x)
        ds = sigmoid_backward(dout, s_cache)
        t, t_cache = tanh_forward(x)
        dt = tanh_backward(dout, t_cache)
    for a in (s, ds, t, dt):
        assert np.all(np.isfinite(a))
    assert np.all((s >= 0) & (s <= 1))
    assert s[0] == 0.0 and s[-1] == 1.0 and s[5] == 0.5
    assert rel_error(s, torch.sigmoid(t64(x)).numpy()) < FWD_TOL
    assert rel_error(t, torch.tanh(t64(x)).numpy()) < FWD_TOL
    # far out, both saturate: no gradient flows
    assert ds[0] == 0.0 and ds[-1] == 0.0 and dt[0] == 0.0 and dt[-1] == 0.0


def test_sigmoid_small_values_keep_relative_precision():
    # 1 / (1 + exp(40)) ~ 4.2e-18 must not round to 0: exp(-40) / (1 + exp(-40)) keeps it
    s, _ = sigmoid_forward(np.array([-40.0, -700.0]))
    np.testing.assert_allclose(s, np.exp([-40.0, -700.0]) / (1 + np.exp([-40.0, -700.0])), rtol=1e-14)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_backward_rejects_wrong_dout(name):
    forward, backward, _ = ACTIVATIONS[name]
    _, cache = forward(np.ones((2, 3)))
    with pytest.raises(ValueError, match=rf"{name}_backward: dout must have shape \(2, 3\).*got \(3, 2\)"):
        backward(np.ones((3, 2)), cache)
