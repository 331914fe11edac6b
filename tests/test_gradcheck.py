"""dlhw.gradcheck: numerical gradients of functions with known gradients, rel_error's properties."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from dlhw.gradcheck import numerical_gradient, numerical_gradient_array, rel_error


def test_quadratic_form():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((5, 5))
    x = rng.standard_normal(5)
    grad = numerical_gradient(lambda v: v @ A @ v, x)
    assert rel_error(grad, (A + A.T) @ x) < 1e-8


def test_elementwise_functions_any_shape():
    rng = np.random.default_rng(1)
    x = rng.uniform(0.5, 2.0, (2, 3, 4))
    assert rel_error(numerical_gradient(lambda v: np.sum(np.sin(v)), x), np.cos(x)) < 1e-8
    assert rel_error(numerical_gradient(lambda v: np.sum(np.log(v) * v), x), np.log(x) + 1) < 1e-8
    assert rel_error(numerical_gradient(lambda v: np.sum(v ** 3), x), 3 * x ** 2) < 1e-8


def test_softmax_cross_entropy_gradient():
    # d/dz [-log softmax(z)_y] = softmax(z) - onehot(y)
    z = np.array([0.5, -1.0, 2.0, 0.1])

    def loss(v):
        return -(v[2] - np.log(np.sum(np.exp(v))))

    p = np.exp(z) / np.exp(z).sum()
    assert rel_error(numerical_gradient(loss, z), p - np.eye(4)[2]) < 1e-8


def test_scalar_and_zero_d_input():
    x = np.array(1.5)
    assert numerical_gradient(lambda v: float(v) ** 2, x) == pytest.approx(3.0, rel=1e-9)


def test_x_restored_after_the_call():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 4))
    before = x.copy()
    numerical_gradient(lambda v: np.sum(v ** 2), x)
    np.testing.assert_array_equal(x, before)


def test_centred_differences_are_second_order():
    # For a cubic the centred quotient's error is exactly h^2 (one-sided would be O(h)).
    x = np.array([1.0])
    for h in (1e-2, 1e-3):
        grad = numerical_gradient(lambda v: v[0] ** 3, x, h=h)
        assert grad[0] - 3.0 == pytest.approx(h ** 2, rel=1e-4)


def test_numerical_gradient_array_of_a_layer():
    rng = np.random.default_rng(3)
    W = rng.standard_normal((4, 3))
    x = rng.standard_normal((2, 4))
    dout = rng.standard_normal((2, 3))
    dx = numerical_gradient_array(lambda v: np.tanh(v @ W), x, dout)
    analytic = (dout * (1 - np.tanh(x @ W) ** 2)) @ W.T
    assert dx.shape == x.shape
    assert rel_error(dx, analytic) < 1e-8


@pytest.mark.parametrize("bad", [[1.0, 2.0], np.array([1.0, 2.0], dtype=np.float32),
                                 np.array([1, 2]), 3.0])
def test_rejects_non_float64_arrays(bad):
    with pytest.raises(ValueError, match="numerical_gradient: x must be a float64 numpy array"):
        numerical_gradient(lambda v: float(np.sum(v)), bad)


def test_rel_error_properties():
    a = np.array([1.0, -2.0, 0.0])
    assert rel_error(a, a) == 0.0
    assert rel_error(np.zeros(3), np.zeros(3)) == 0.0       # the floor: no 0 / 0
    assert rel_error(a, -a) == pytest.approx(1.0)             # the largest possible value
    assert rel_error(np.array([1.0]), np.array([1.0 + 1e-8])) == pytest.approx(5e-9, rel=1e-6)
    assert rel_error(np.array([]), np.array([])) == 0.0
    assert rel_error([1.0, 2.0], (1.0, 2.0)) == 0.0           # array-likes are fine here


@settings(max_examples=25, deadline=None)
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=3), seed=st.integers(0, 2 ** 16))
def test_rel_error_symmetric_and_bounded(shape, seed):
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal(shape), rng.standard_normal(shape)
    e = rel_error(a, b)
    assert e == rel_error(b, a)
    assert 0.0 <= e <= 1.0
    assert rel_error(a, a * (1 + 1e-9)) < 1e-9


def test_rel_error_shape_mismatch():
    with pytest.raises(ValueError, match=r"rel_error: b must have shape \(2, 3\)"):
        rel_error(np.zeros((2, 3)), np.zeros((3, 2)))
