"""dlhw.linear against torch losses, numpy/scikit-learn solvers and numerical gradients."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.neighbors import KNeighborsClassifier

from dlhw.gradcheck import numerical_gradient, rel_error
from dlhw.linear import (least_squares_fit, logistic_loss, minibatch_sgd, nearest_neighbour_predict,
                         softmax_regression_loss)


# --- least squares -------------------------------------------------------------------------

def test_least_squares_matches_lstsq():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((50, 6)), rng.standard_normal(50)
    w = least_squares_fit(X, y)
    assert w.shape == (6,)
    assert rel_error(w, np.linalg.lstsq(X, y, rcond=None)[0]) < 1e-10
    np.testing.assert_allclose(X.T @ (X @ w - y), 0, atol=1e-10)   # the normal equations


@pytest.mark.parametrize("l2", [0.1, 3.0])
def test_ridge_matches_sklearn(l2):
    rng = np.random.default_rng(1)
    X, Y = rng.standard_normal((40, 5)), rng.standard_normal((40, 3))
    w = least_squares_fit(X, Y, l2=l2)
    assert w.shape == (5, 3)
    ridge = Ridge(alpha=l2, fit_intercept=False, solver="cholesky").fit(X, Y)
    assert rel_error(w, ridge.coef_.T) < 1e-10


def test_intercept_through_a_ones_column():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((30, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 4.0 + 0.01 * rng.standard_normal(30)
    w = least_squares_fit(np.hstack([X, np.ones((30, 1))]), y)
    reg = LinearRegression().fit(X, y)
    assert rel_error(w[:3], reg.coef_) < 1e-10 and rel_error(w[3:], np.array([reg.intercept_])) < 1e-10


def test_least_squares_errors():
    with pytest.raises(ValueError, match=r"least_squares_fit: y must have shape \(N=4,\) or \(N, K\)"):
        least_squares_fit(np.ones((4, 2)), np.ones(5))
    with pytest.raises(ValueError, match=r"least_squares_fit: X must have shape \(N, D\)"):
        least_squares_fit(np.ones(4), np.ones(4))
    with pytest.raises(ValueError, match="least_squares_fit: l2 must be >= 0"):
        least_squares_fit(np.ones((4, 2)), np.ones(4), l2=-1.0)


# --- logistic regression ------------------------------------------------------------------

def torch_logistic(w, X, t, l2):
    wt = torch.tensor(w, requires_grad=True)
    loss = (F.binary_cross_entropy_with_logits(torch.from_numpy(X) @ wt, torch.from_numpy(t))
            + 0.5 * l2 * (wt * wt).sum())
    loss.backward()
    return loss.item(), wt.grad.numpy()


@settings(max_examples=20, deadline=None)
@given(N=st.integers(1, 30), D=st.integers(1, 6), l2=st.sampled_from([0.0, 0.1, 2.0]),
       scale=st.sampled_from([0.1, 1.0, 30.0]), seed=st.integers(0, 2 ** 16))
def test_logistic_matches_torch(N, D, l2, scale, seed):
    rng = np.random.default_rng(seed)
    w, X = rng.standard_normal(D), scale * rng.standard_normal((N, D))
    t = rng.integers(0, 2, N).astype(float)
    loss, grad = logistic_loss(w, X, t, l2)
    loss_t, grad_t = torch_logistic(w, X, t, l2)
    assert abs(loss - loss_t) <= 1e-10 * max(1.0, abs(loss_t))
    # Relative, with an absolute floor: a saturated sigmoid (|logit| ~ 100) makes sigmoid(z) - t
    # a difference of numbers near 1, exact only to ~1e-16 in absolute terms, so a gradient of
    # 1e-13 carries a relative error of 1e-3 in any float64 implementation (hypothesis found one).
    assert np.max(np.abs(grad - grad_t)) <= 1e-9 * np.max(np.abs(grad_t)) + 1e-14 * scale * N


def test_logistic_numerical_gradient_and_soft_targets():
    rng = np.random.default_rng(3)
    w, X, t = rng.standard_normal(4), rng.standard_normal((12, 4)), rng.uniform(0, 1, 12)
    loss, grad = logistic_loss(w, X, t, l2=0.3)
    assert rel_error(grad, numerical_gradient(lambda v: logistic_loss(v, X, t, 0.3)[0], w.copy())) < 1e-8
    assert loss == pytest.approx(torch_logistic(w, X, t, 0.3)[0], rel=1e-12)


def test_logistic_large_logits():
    # Logits of +-1000: sigmoid saturates, yet the loss is finite and exact.
    X = np.array([[1000.0], [-1000.0], [1000.0], [-1000.0]])
    t = np.array([1.0, 0.0, 0.0, 1.0])
    loss, grad = logistic_loss(np.ones(1), X, t)
    assert np.isfinite(loss) and np.all(np.isfinite(grad))
    assert loss == pytest.approx(500.0, rel=1e-14)          # two right (~0), two off by 1000
    loss_t, grad_t = torch_logistic(np.ones(1), X, t, 0.0)
    assert loss == pytest.approx(loss_t, rel=1e-12)
    np.testing.assert_allclose(grad, grad_t, rtol=1e-12)


def test_logistic_gradient_formula():
    # grad = X^T (h - t) / N, h = sigmoid(Xw), as the notes derive it.
    rng = np.random.default_rng(4)
    w, X, t = rng.standard_normal(3), rng.standard_normal((7, 3)), rng.integers(0, 2, 7).astype(float)
    h = 1 / (1 + np.exp(-X @ w))
    assert rel_error(logistic_loss(w, X, t)[1], X.T @ (h - t) / 7) < 1e-12


def test_logistic_errors():
    with pytest.raises(ValueError, match=r"logistic_loss: w must have shape \(D=3,\)"):
        logistic_loss(np.ones(2), np.ones((4, 3)), np.ones(4))
    with pytest.raises(ValueError, match=r"logistic_loss: t must have shape \(N=4,\)"):
        logistic_loss(np.ones(3), np.ones((4, 3)), np.ones(5))
    with pytest.raises(ValueError, match=r"logistic_loss: t must hold targets in \[0, 1\]"):
        logistic_loss(np.ones(3), np.ones((2, 3)), np.array([0.0, 2.0]))


# --- softmax regression -------------------------------------------------------------------

def torch_softmax(W, X, y, l2):
    Wt = torch.tensor(W, requires_grad=True)
    loss = F.cross_entropy(torch.from_numpy(X) @ Wt, torch.from_numpy(y)) + 0.5 * l2 * (Wt * Wt).sum()
    loss.backward()
    return loss.item(), Wt.grad.numpy()


@settings(max_examples=20, deadline=None)
@given(N=st.integers(1, 30), D=st.integers(1, 6), C=st.integers(2, 6),
       l2=st.sampled_from([0.0, 0.1]), scale=st.sampled_from([0.1, 1.0, 100.0]),
       seed=st.integers(0, 2 ** 16))
def test_softmax_matches_torch(N, D, C, l2, scale, seed):
    rng = np.random.default_rng(seed)
    W, X, y = rng.standard_normal((D, C)), scale * rng.standard_normal((N, D)), rng.integers(0, C, N)
    loss, dW = softmax_regression_loss(W, X, y, l2)
    loss_t, dW_t = torch_softmax(W, X, y, l2)
    assert abs(loss - loss_t) <= 1e-10 * max(1.0, abs(loss_t))
    assert dW.shape == (D, C)
    assert rel_error(dW, dW_t) < 1e-9


def test_softmax_numerical_gradient():
    rng = np.random.default_rng(5)
    W, X, y = rng.standard_normal((4, 3)), rng.standard_normal((10, 4)), rng.integers(0, 3, 10)
    _, dW = softmax_regression_loss(W, X, y, l2=0.2)
    num = numerical_gradient(lambda V: softmax_regression_loss(V, X, y, 0.2)[0], W.copy())
    assert rel_error(dW, num) < 1e-8


def test_softmax_large_logits():
    X = np.array([[1000.0, 0.0], [0.0, -1000.0]])
    W = np.eye(2)
    y = np.array([1, 1])
    loss, dW = softmax_regression_loss(W, X, y)
    assert np.isfinite(loss) and np.all(np.isfinite(dW))
    loss_t, dW_t = torch_softmax(W, X, y, 0.0)
    assert loss == pytest.approx(loss_t, rel=1e-12) and loss == pytest.approx(1000.0, rel=1e-12)
    np.testing.assert_allclose(dW, dW_t, rtol=1e-12, atol=1e-15)


def test_softmax_uniform_start():
    # W = 0 gives every class probability 1/C: loss log(C), the sanity check of the notes' era.
    loss, _ = softmax_regression_loss(np.zeros((5, 10)), np.ones((3, 5)), np.array([0, 4, 9]))
    assert loss == pytest.approx(np.log(10), rel=1e-14)


def test_softmax_errors():
    X, W = np.ones((3, 4)), np.ones((4, 5))
    with pytest.raises(ValueError, match=r"softmax_regression_loss: y must hold integer class indices in \[0, C\) = \[0, 5\)"):
        softmax_regression_loss(W, X, np.array([0, 5, 1]))
    with pytest.raises(ValueError, match="softmax_regression_loss: y must hold integer class indices"):
        softmax_regression_loss(W, X, np.array([0.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match=r"softmax_regression_loss: W must have shape \(D=4, C\)"):
        softmax_regression_loss(np.ones((3, 5)), X, np.array([0, 1, 2]))


# --- minibatch SGD -------------------------------------------------------------------------

def test_minibatch_sgd_matches_an_independent_torch_loop():
    rng = np.random.default_rng(6)
    X, y = rng.standard_normal((23, 4)), rng.integers(0, 3, 23)
    W0 = 0.1 * rng.standard_normal((4, 3))
    w, history = minibatch_sgd(softmax_regression_loss, W0, X, y, learning_rate=0.5, batch_size=5,
                               epochs=4, rng=np.random.default_rng(42))
    assert history.shape == (4 * 5,)                      # ceil(23 / 5) = 5 batches per epoch
    # The same orders, drawn from the same seed; torch's loss and autograd gradient.
    order_rng = np.random.default_rng(42)
    Wt = torch.tensor(W0, requires_grad=True)
    losses = []
    for _ in range(4):
        order = order_rng.permutation(23)
        for start in range(0, 23, 5):
            b = order[start:start + 5]
            loss = F.cross_entropy(torch.from_numpy(X[b]) @ Wt, torch.from_numpy(y[b]))
            loss.backward()
            with torch.no_grad():
                Wt -= 0.5 * Wt.grad
            Wt.grad = None
            losses.append(loss.item())
    assert rel_error(w, Wt.detach().numpy()) < 1e-10
    assert rel_error(history, np.array(losses)) < 1e-10


def test_full_batch_is_gradient_descent_and_w0_untouched():
    rng = np.random.default_rng(7)
    X, t = rng.standard_normal((16, 3)), rng.integers(0, 2, 16).astype(float)
    w0 = np.zeros(3)
    w, history = minibatch_sgd(logistic_loss, w0, X, t, 0.3, batch_size=16, epochs=10,
                               rng=np.random.default_rng(0))
    np.testing.assert_array_equal(w0, np.zeros(3))
    v = w0.copy()
    for step in range(10):
        loss, grad = logistic_loss(v, X, t)
        assert history[step] == pytest.approx(loss, rel=1e-12)   # order does not change a mean
        v = v - 0.3 * grad
    assert rel_error(w, v) < 1e-12
    assert np.all(np.diff(history) < 0)                           # small steps: loss goes down


def test_minibatch_sgd_reaches_least_squares():
    rng = np.random.default_rng(8)
    X = np.hstack([rng.standard_normal((200, 3)), np.ones((200, 1))])
    y = X @ np.array([2.0, -1.0, 0.5, 3.0]) + 0.1 * rng.standard_normal(200)

    def mse(w, Xb, yb):
        r = Xb @ w - yb
        return 0.5 * np.mean(r ** 2), Xb.T @ r / len(yb)

    w, history = minibatch_sgd(mse, np.zeros(4), X, y, 0.05, batch_size=20, epochs=60,
                               rng=np.random.default_rng(1))
    assert np.max(np.abs(w - least_squares_fit(X, y))) < 0.05
    assert history[-10:].mean() < 0.1 * history[:10].mean()


def test_minibatch_sgd_errors():
    X, y = np.ones((5, 2)), np.zeros(5)
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="minibatch_sgd: batch_size must be an integer >= 1"):
        minibatch_sgd(logistic_loss, np.zeros(2), X, y, 0.1, 0, 1, rng)
    with pytest.raises(ValueError, match="minibatch_sgd: epochs must be an integer >= 0"):
        minibatch_sgd(logistic_loss, np.zeros(2), X, y, 0.1, 2, -1, rng)
    with pytest.raises(ValueError, match="minibatch_sgd: rng must be a numpy.random.Generator"):
        minibatch_sgd(logistic_loss, np.zeros(2), X, y, 0.1, 2, 1, 0)
    with pytest.raises(ValueError, match=r"minibatch_sgd: y must have shape \(N=5,\)"):
        minibatch_sgd(logistic_loss, np.zeros(2), X, np.zeros(4), 0.1, 2, 1, rng)
    with pytest.raises(ValueError, match="minibatch_sgd: loss_fn must be callable"):
        minibatch_sgd(None, np.zeros(2), X, y, 0.1, 2, 1, rng)


# --- nearest neighbours --------------------------------------------------------------------

@pytest.mark.parametrize("k", [1, 3, 4, 7])
def test_knn_matches_sklearn(k):
    rng = np.random.default_rng(9)
    X_train, X_test = rng.standard_normal((120, 5)), rng.standard_normal((40, 5))
    y_train = rng.choice([3, 7, 10, 12], size=120)
    ours = nearest_neighbour_predict(X_train, y_train, X_test, k)
    sk = KNeighborsClassifier(n_neighbors=k, algorithm="brute").fit(X_train, y_train).predict(X_test)
    assert ours.shape == (40,) and ours.dtype == y_train.dtype
    np.testing.assert_array_equal(ours, sk)


def test_knn_on_its_training_set_and_ties():
    rng = np.random.default_rng(10)
    X = rng.standard_normal((15, 3))
    y = rng.integers(0, 4, 15)
    np.testing.assert_array_equal(nearest_neighbour_predict(X, y, X, 1), y)
    # Two neighbours, one vote each: the smaller label wins.
    X_train = np.array([[0.0], [1.0], [10.0]])
    assert nearest_neighbour_predict(X_train, np.array([5, 2, 2]), np.array([[0.4]]), k=2)[0] == 2
    assert nearest_neighbour_predict(X_train, np.array([1, 2, 2]), np.array([[0.6]]), k=2)[0] == 1


def test_knn_errors():
    with pytest.raises(ValueError, match=r"nearest_neighbour_predict: X_test must have shape \(M=2, D=3\)"):
        nearest_neighbour_predict(np.ones((4, 3)), np.zeros(4), np.ones((2, 2)))
    with pytest.raises(ValueError, match=r"nearest_neighbour_predict: k must be an integer in \[1, N\] = \[1, 4\]"):
        nearest_neighbour_predict(np.ones((4, 3)), np.zeros(4), np.ones((2, 3)), k=5)
    with pytest.raises(ValueError, match=r"nearest_neighbour_predict: y_train must have shape \(N=4,\)"):
        nearest_neighbour_predict(np.ones((4, 3)), np.zeros(3), np.ones((2, 3)))
