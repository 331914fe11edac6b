"""dlhw.nn.normalization against PyTorch's batch_norm and layer_norm (float64).

PyTorch keeps the UNBIASED batch variance (divide by n - 1) in running_var, dlhw the biased
one (divide by n), as the graded API says; the comparisons of running_var rescale PyTorch's
batch term by (n - 1) / n, n the number of values per feature. PyTorch's momentum 0.1 is the
weight of the new batch, our momentum 0.9 that of the old running value.
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings, strategies as st

from dlhw.gradcheck import numerical_gradient_array, rel_error
from dlhw.nn.normalization import (batchnorm_backward, batchnorm_forward, layernorm_backward,
                                   layernorm_forward, spatial_batchnorm_backward,
                                   spatial_batchnorm_forward)

FWD_TOL = 1e-10
BWD_TOL = 1e-9
NUM_TOL = 1e-7
SETTINGS = settings(max_examples=20, deadline=None)


def t64(a, grad=False):
    return torch.tensor(a, dtype=torch.float64, requires_grad=grad)


def torch_batchnorm(x, gamma, beta, dout, training, running_mean=None, running_var=None,
                    momentum=0.9, eps=1e-5):
    """PyTorch's output, gradients (dx, dgamma, dbeta) and updated running statistics."""
    C = x.shape[1]
    rm = t64(np.zeros(C) if running_mean is None else running_mean)
    rv = t64(np.ones(C) if running_var is None else running_var)
    xt, gt, bt = t64(x, True), t64(gamma, True), t64(beta, True)
    out = F.batch_norm(xt, rm, rv, gt, bt, training=training, momentum=1 - momentum, eps=eps)
    grads = torch.autograd.grad(out, (xt, gt, bt), t64(dout))
    return out.detach().numpy(), [g.numpy() for g in grads], rm.numpy(), rv.numpy()


def assert_close(a, b, tol):
    """Relative error below tol, except for entries that are ~0 by cancellation.

    Normalization gradients are differences of nearly equal terms (for N = 2 or D = 1 they
    are exactly 0 mathematically), where both libraries leave rounding noise ~1e-16 times the
    terms; an elementwise relative error of noise against noise means nothing, so such
    entries get an absolute tolerance of 1e-12 times the array's largest entry (at least 1).
    """
    assert a.shape == b.shape
    np.testing.assert_allclose(a, b, rtol=tol, atol=1e-12 * np.max(np.abs(b), initial=1.0))


def check_against_torch(ours, theirs, fwd_tol=FWD_TOL, bwd_tol=BWD_TOL):
    (out, grads), (t_out, t_grads) = ours, theirs
    assert_close(out, t_out, fwd_tol)
    for g, t_g in zip(grads, t_grads):
        assert_close(g, t_g, bwd_tol)


def expected_running_var(old, torch_new, momentum, n):
    """Our running_var from PyTorch's: its batch term is the biased one times n / (n - 1)."""
    return momentum * old + (torch_new - momentum * old) * (n - 1) / n


def random_bn_inputs(rng, shape, scale=1.0, offset=0.0):
    x = rng.standard_normal(shape) * scale + offset
    C = shape[1]
    return x, rng.standard_normal(C), rng.standard_normal(C), rng.standard_normal(shape)


# ---------------------------------------------------------------------------- batchnorm

@SETTINGS
@given(n=st.integers(2, 8), d=st.integers(1, 6), scale=st.sampled_from([1e-2, 1.0, 1e2]),
       momentum=st.floats(0.0, 0.99), seed=st.integers(0, 2**16))
def test_batchnorm_train_matches_torch(n, d, scale, momentum, seed):
    rng = np.random.default_rng(seed)
    x, gamma, beta, dout = random_bn_inputs(rng, (n, d), scale, offset=rng.standard_normal(d))
    rm0, rv0 = rng.standard_normal(d), rng.uniform(0.5, 2.0, d)
    bn_param = {"mode": "train", "momentum": momentum, "running_mean": rm0, "running_var": rv0}
    out, cache = batchnorm_forward(x, gamma, beta, bn_param)
    grads = batchnorm_backward(dout, cache)
    t_out, t_grads, t_rm, t_rv = torch_batchnorm(x, gamma, beta, dout, True, rm0, rv0, momentum)
    check_against_torch((out, grads), (t_out, t_grads))
    assert_close(bn_param["running_mean"], t_rm, FWD_TOL)
    assert_close(bn_param["running_var"], expected_running_var(rv0, t_rv, momentum, n), FWD_TOL)


def test_batchnorm_numerical_gradients():
    rng = np.random.default_rng(0)
    x, gamma, beta, dout = random_bn_inputs(rng, (6, 4), scale=2.0, offset=1.0)

    def fwd(x_, g_, b_):
        return batchnorm_forward(x_, g_, b_, {"mode": "train"})[0]

    dx, dgamma, dbeta = batchnorm_backward(dout, batchnorm_forward(x, gamma, beta, {"mode": "train"})[1])
    assert rel_error(dx, numerical_gradient_array(lambda z: fwd(z, gamma, beta), x, dout)) < NUM_TOL
    assert rel_error(dgamma, numerical_gradient_array(lambda z: fwd(x, z, beta), gamma, dout)) < NUM_TOL
    assert rel_error(dbeta, numerical_gradient_array(lambda z: fwd(x, gamma, z), beta, dout)) < NUM_TOL


def test_batchnorm_train_output_is_standardized():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((200, 3)) * [1.0, 5.0, 0.1] + [10.0, -3.0, 0.0]
    out, _ = batchnorm_forward(x, np.ones(3), np.zeros(3), {"mode": "train"})
    np.testing.assert_allclose(out.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(out.std(axis=0), 1.0, rtol=1e-3)      # eps shrinks it a little


def test_batchnorm_creates_and_updates_running_stats_in_place():
    rng = np.random.default_rng(2)
    x, gamma, beta, _ = random_bn_inputs(rng, (5, 3), offset=2.0)
    bn_param = {"mode": "train"}
    batchnorm_forward(x, gamma, beta, bn_param)
    # from zeros and ones, with the defaults momentum 0.9 and the biased variance
    np.testing.assert_allclose(bn_param["running_mean"], 0.1 * x.mean(axis=0), rtol=1e-14)
    np.testing.assert_allclose(bn_param["running_var"], 0.9 + 0.1 * x.var(axis=0), rtol=1e-14)
    assert bn_param["running_mean"].shape == (3,) and bn_param["running_var"].shape == (3,)
    first = bn_param["running_mean"].copy()
    batchnorm_forward(x, gamma, beta, bn_param)
    np.testing.assert_allclose(bn_param["running_mean"], 0.9 * first + 0.1 * x.mean(axis=0), rtol=1e-14)


def test_batchnorm_test_mode_uses_running_stats():
    rng = np.random.default_rng(3)
    x, gamma, beta, dout = random_bn_inputs(rng, (7, 4))
    rm, rv = rng.standard_normal(4), rng.uniform(0.1, 3.0, 4)
    bn_param = {"mode": "test", "running_mean": rm.copy(), "running_var": rv.copy(), "eps": 1e-3}
    out, cache = batchnorm_forward(x, gamma, beta, bn_param)
    grads = batchnorm_backward(dout, cache)
    t_out, t_grads, _, _ = torch_batchnorm(x, gamma, beta, dout, False, rm, rv, eps=1e-3)
    check_against_torch((out, grads), (t_out, t_grads))
    np.testing.assert_allclose(out, gamma * (x - rm) / np.sqrt(rv + 1e-3) + beta, rtol=1e-13)
    # test mode leaves the running statistics alone
    np.testing.assert_array_equal(bn_param["running_mean"], rm)
    np.testing.assert_array_equal(bn_param["running_var"], rv)
    # and each example's output does not depend on the rest of the batch
    single, _ = batchnorm_forward(x[2:3], gamma, beta, bn_param)
    np.testing.assert_allclose(single, out[2:3], rtol=1e-14)


def test_batchnorm_test_mode_numerical_gradient():
    rng = np.random.default_rng(4)
    x, gamma, beta, dout = random_bn_inputs(rng, (3, 5))
    bn_param = {"mode": "test", "running_mean": rng.standard_normal(5), "running_var": rng.uniform(0.5, 2, 5)}
    dx, _, _ = batchnorm_backward(dout, batchnorm_forward(x, gamma, beta, bn_param)[1])
    num = numerical_gradient_array(lambda z: batchnorm_forward(z, gamma, beta, bn_param)[0], x, dout)
    assert rel_error(dx, num) < NUM_TOL


def test_batchnorm_running_stats_converge_to_the_data():
    rng = np.random.default_rng(5)
    mu, sigma = np.array([3.0, -1.0]), np.array([2.0, 0.5])
    bn_param = {"mode": "train"}
    for _ in range(200):
        batchnorm_forward(rng.standard_normal((64, 2)) * sigma + mu, np.ones(2), np.zeros(2), bn_param)
    np.testing.assert_allclose(bn_param["running_mean"], mu, atol=0.1)
    np.testing.assert_allclose(bn_param["running_var"], sigma ** 2, rtol=0.1)
    # so that test mode standardizes fresh data from the same distribution
    bn_param["mode"] = "test"
    out, _ = batchnorm_forward(rng.standard_normal((2000, 2)) * sigma + mu, np.ones(2), np.zeros(2), bn_param)
    np.testing.assert_allclose(out.mean(axis=0), 0.0, atol=0.1)
    np.testing.assert_allclose(out.std(axis=0), 1.0, atol=0.1)


def test_batchnorm_tiny_variance_eps_matters():
    # variance ~1e-8, far below eps = 1e-5: eps sets the scale, and PyTorch agrees
    rng = np.random.default_rng(6)
    x, gamma, beta, dout = random_bn_inputs(rng, (16, 5), scale=1e-4, offset=3.0)
    out, cache = batchnorm_forward(x, gamma, beta, {"mode": "train"})
    grads = batchnorm_backward(dout, cache)
    t_out, t_grads, _, _ = torch_batchnorm(x, gamma, beta, dout, True)
    check_against_torch((out, grads), (t_out, t_grads))
    x_hat, _ = batchnorm_forward(x, np.ones(5), np.zeros(5), {"mode": "train"})
    np.testing.assert_allclose(x_hat.std(axis=0), np.sqrt(x.var(axis=0) / (x.var(axis=0) + 1e-5)), rtol=1e-10)
    assert np.all(x_hat.std(axis=0) < 0.1)              # without eps it would be 1
    # a smaller eps reaches through to the scale, as PyTorch's
    out, cache = batchnorm_forward(x, gamma, beta, {"mode": "train", "eps": 1e-12})
    t_out, t_grads, _, _ = torch_batchnorm(x, gamma, beta, dout, True, eps=1e-12)
    check_against_torch((out, batchnorm_backward(dout, cache)), (t_out, t_grads), 1e-9, 1e-8)


def test_batchnorm_constant_feature_is_finite():
    rng = np.random.default_rng(7)
    x, gamma, beta, dout = random_bn_inputs(rng, (4, 3))
    x[:, 1] = 5.0                                       # zero variance: only eps is left
    out, cache = batchnorm_forward(x, gamma, beta, {"mode": "train"})
    grads = batchnorm_backward(dout, cache)
    assert np.all(np.isfinite(out)) and all(np.all(np.isfinite(g)) for g in grads)
    t_out, t_grads, _, _ = torch_batchnorm(x, gamma, beta, dout, True)
    check_against_torch((out, grads), (t_out, t_grads))


def test_batchnorm_single_example_in_train_mode():
    # PyTorch refuses a batch of one in training; here the variance is 0, x_hat = 0, out = beta
    x, gamma, beta = np.array([[1.0, -2.0, 3.0]]), np.array([2.0, 3.0, 4.0]), np.array([0.5, 0.0, -1.0])
    bn_param = {"mode": "train"}
    out, cache = batchnorm_forward(x, gamma, beta, bn_param)
    np.testing.assert_array_equal(out, beta[None, :])
    dx, dgamma, dbeta = batchnorm_backward(np.array([[1.0, 2.0, 3.0]]), cache)
    np.testing.assert_array_equal(dx, 0.0)
    np.testing.assert_array_equal(dgamma, 0.0)
    np.testing.assert_array_equal(dbeta, [1.0, 2.0, 3.0])
    np.testing.assert_allclose(bn_param["running_var"], 0.9, rtol=1e-15)


def test_batchnorm_does_not_modify_its_inputs():
    rng = np.random.default_rng(8)
    x, gamma, beta, dout = random_bn_inputs(rng, (5, 4))
    copies = [a.copy() for a in (x, gamma, beta, dout)]
    _, cache = batchnorm_forward(x, gamma, beta, {"mode": "train"})
    first = batchnorm_backward(dout, cache)
    second = batchnorm_backward(dout, cache)              # the cache survives a backward pass
    for a, c in zip((x, gamma, beta, dout), copies):
        np.testing.assert_array_equal(a, c)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)


def test_batchnorm_rejects_bad_input():
    x, g = np.ones((2, 3)), np.ones(3)
    with pytest.raises(ValueError, match=r"batchnorm_forward: x must have shape \(N, D\); got \(2, 3, 1\)"):
        batchnorm_forward(np.ones((2, 3, 1)), g, g, {"mode": "train"})
    with pytest.raises(ValueError, match=r"batchnorm_forward: gamma must have shape \(D=3,\); got \(2,\)"):
        batchnorm_forward(x, np.ones(2), g, {"mode": "train"})
    with pytest.raises(ValueError, match=r"batchnorm_forward: beta must have shape \(D=3,\); got \(3, 1\)"):
        batchnorm_forward(x, g, np.ones((3, 1)), {"mode": "train"})
    with pytest.raises(ValueError, match=r"batchnorm_forward: bn_param is missing the key\(s\) \['mode'\]"):
        batchnorm_forward(x, g, g, {})
    with pytest.raises(ValueError, match=r"batchnorm_forward: bn_param\['mode'\] must be one of"):
        batchnorm_forward(x, g, g, {"mode": "eval"})
    with pytest.raises(ValueError, match=r"batchnorm_forward: bn_param\['running_var'\] must have shape \(D=3,\)"):
        batchnorm_forward(x, g, g, {"mode": "test", "running_var": np.ones(4)})
    with pytest.raises(ValueError, match=r"batchnorm_forward: x must have shape \(N, D\) with N >= 1"):
        batchnorm_forward(np.ones((0, 3)), g, g, {"mode": "train"})
    _, cache = batchnorm_forward(x, g, g, {"mode": "train"})
    with pytest.raises(ValueError, match=r"batchnorm_backward: dout must have shape \(2, 3\).*got \(3, 2\)"):
        batchnorm_backward(np.ones((3, 2)), cache)


# ---------------------------------------------------------------------------- layernorm

def torch_layernorm(x, gamma, beta, dout, eps=1e-5):
    xt, gt, bt = t64(x, True), t64(gamma, True), t64(beta, True)
    out = F.layer_norm(xt, (x.shape[-1],), gt, bt, eps)
    grads = torch.autograd.grad(out, (xt, gt, bt), t64(dout))
    return out.detach().numpy(), [g.numpy() for g in grads]


@SETTINGS
@given(lead=st.lists(st.integers(1, 4), min_size=1, max_size=3), d=st.integers(2, 6),
       scale=st.sampled_from([1e-2, 1.0, 1e2]), seed=st.integers(0, 2**16))
def test_layernorm_matches_torch(lead, d, scale, seed):
    rng = np.random.default_rng(seed)
    shape = (*lead, d)
    x = rng.standard_normal(shape) * scale + rng.standard_normal((*lead, 1))
    gamma, beta, dout = rng.standard_normal(d), rng.standard_normal(d), rng.standard_normal(shape)
    out, cache = layernorm_forward(x, gamma, beta, {})
    grads = layernorm_backward(dout, cache)
    check_against_torch((out, grads), torch_layernorm(x, gamma, beta, dout))


def test_layernorm_numerical_gradients():
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 3, 5)) * 2.0
    gamma, beta, dout = rng.standard_normal(5), rng.standard_normal(5), rng.standard_normal((2, 3, 5))
    ln_param = {"eps": 1e-5}

    def fwd(x_, g_, b_):
        return layernorm_forward(x_, g_, b_, ln_param)[0]

    dx, dgamma, dbeta = layernorm_backward(dout, layernorm_forward(x, gamma, beta, ln_param)[1])
    assert rel_error(dx, numerical_gradient_array(lambda z: fwd(z, gamma, beta), x, dout)) < NUM_TOL
    assert rel_error(dgamma, numerical_gradient_array(lambda z: fwd(x, z, beta), gamma, dout)) < NUM_TOL
    assert rel_error(dbeta, numerical_gradient_array(lambda z: fwd(x, gamma, z), beta, dout)) < NUM_TOL


def test_layernorm_single_feature_gives_beta():
    # D = 1: each example is its own mean, x_hat = 0 exactly (PyTorch leaves rounding noise
    # ~1e-16 |x| / sqrt(eps) there, which is why the comparison above starts at D = 2)
    x = np.array([[100.0], [-3.0], [0.5]])
    out, cache = layernorm_forward(x, np.array([2.0]), np.array([0.25]), {})
    np.testing.assert_array_equal(out, 0.25)
    dx, dgamma, dbeta = layernorm_backward(np.array([[1.0], [2.0], [3.0]]), cache)
    np.testing.assert_array_equal(dx, 0.0)
    np.testing.assert_array_equal(dgamma, 0.0)
    np.testing.assert_array_equal(dbeta, [6.0])


def test_layernorm_single_example_and_eps():
    # one example is enough: the statistics are over its own features
    rng = np.random.default_rng(10)
    x = rng.standard_normal((1, 6)) * 1e-4 + 3.0         # variance ~1e-8: eps dominates
    gamma, beta, dout = rng.standard_normal(6), rng.standard_normal(6), rng.standard_normal((1, 6))
    for eps in (1e-5, 1e-3):
        out, cache = layernorm_forward(x, gamma, beta, {"eps": eps})
        check_against_torch((out, layernorm_backward(dout, cache)), torch_layernorm(x, gamma, beta, dout, eps))
    out, _ = layernorm_forward(x, np.ones(6), np.zeros(6), {})
    assert out.std() < 0.1                                # not standardized to 1: eps matters


def test_layernorm_rows_are_standardized():
    rng = np.random.default_rng(11)
    x = rng.standard_normal((4, 100)) * rng.uniform(0.5, 5, (4, 1)) + rng.standard_normal((4, 1)) * 10
    out, _ = layernorm_forward(x, np.ones(100), np.zeros(100), {})
    np.testing.assert_allclose(out.mean(axis=1), 0.0, atol=1e-12)
    np.testing.assert_allclose(out.std(axis=1), 1.0, rtol=1e-3)


def test_layernorm_rejects_bad_input():
    x, g = np.ones((2, 3)), np.ones(3)
    with pytest.raises(ValueError, match=r"layernorm_forward: gamma must have shape \(D=3,\); got \(2,\)"):
        layernorm_forward(x, np.ones(2), g, {})
    with pytest.raises(ValueError, match=r"layernorm_forward: beta must have shape \(D=3,\); got \(4,\)"):
        layernorm_forward(x, g, np.ones(4), {})
    with pytest.raises(ValueError, match=r"layernorm_forward: x must have shape \(\.\.\., D\); got \(\)"):
        layernorm_forward(np.float64(1.0), g, g, {})
    with pytest.raises(ValueError, match=r"layernorm_forward: ln_param must be a dict"):
        layernorm_forward(x, g, g, None)
    _, cache = layernorm_forward(x, g, g, {})
    with pytest.raises(ValueError, match=r"layernorm_backward: dout must have shape \(2, 3\).*got \(2, 4\)"):
        layernorm_backward(np.ones((2, 4)), cache)


# -------------------------------------------------------------------- spatial batchnorm

@SETTINGS
@given(n=st.integers(1, 3), c=st.integers(1, 4), h=st.integers(1, 4), w=st.integers(1, 4),
       seed=st.integers(0, 2**16))
def test_spatial_batchnorm_train_matches_torch(n, c, h, w, seed):
    assume(n * h * w > 1)                                # PyTorch refuses one value per channel
    rng = np.random.default_rng(seed)
    x, gamma, beta, dout = random_bn_inputs(rng, (n, c, h, w), scale=2.0, offset=1.0)
    bn_param = {"mode": "train"}
    out, cache = spatial_batchnorm_forward(x, gamma, beta, bn_param)
    grads = spatial_batchnorm_backward(dout, cache)
    t_out, t_grads, t_rm, t_rv = torch_batchnorm(x, gamma, beta, dout, True)
    check_against_torch((out, grads), (t_out, t_grads))
    assert_close(bn_param["running_mean"], t_rm, FWD_TOL)
    assert_close(bn_param["running_var"], expected_running_var(np.ones(c), t_rv, 0.9, n * h * w), FWD_TOL)


def test_spatial_batchnorm_test_mode_matches_torch():
    rng = np.random.default_rng(12)
    x, gamma, beta, dout = random_bn_inputs(rng, (2, 3, 4, 5))
    rm, rv = rng.standard_normal(3), rng.uniform(0.5, 2.0, 3)
    bn_param = {"mode": "test", "running_mean": rm, "running_var": rv}
    out, cache = spatial_batchnorm_forward(x, gamma, beta, bn_param)
    grads = spatial_batchnorm_backward(dout, cache)
    check_against_torch((out, grads), torch_batchnorm(x, gamma, beta, dout, False, rm, rv)[:2])


def test_spatial_batchnorm_numerical_gradients():
    rng = np.random.default_rng(13)
    x, gamma, beta, dout = random_bn_inputs(rng, (2, 3, 2, 3), offset=0.5)

    def fwd(x_, g_, b_):
        return spatial_batchnorm_forward(x_, g_, b_, {"mode": "train"})[0]

    dx, dgamma, dbeta = spatial_batchnorm_backward(
        dout, spatial_batchnorm_forward(x, gamma, beta, {"mode": "train"})[1])
    assert rel_error(dx, numerical_gradient_array(lambda z: fwd(z, gamma, beta), x, dout)) < NUM_TOL
    assert rel_error(dgamma, numerical_gradient_array(lambda z: fwd(x, z, beta), gamma, dout)) < NUM_TOL
    assert rel_error(dbeta, numerical_gradient_array(lambda z: fwd(x, gamma, z), beta, dout)) < NUM_TOL


def test_spatial_batchnorm_rejects_bad_input():
    g = np.ones(3)
    with pytest.raises(ValueError, match=r"spatial_batchnorm_forward: x must have shape \(N, C, H, W\); got \(2, 3\)"):
        spatial_batchnorm_forward(np.ones((2, 3)), g, g, {"mode": "train"})
    with pytest.raises(ValueError, match=r"spatial_batchnorm_forward: gamma must have shape \(C=3,\); got \(4,\)"):
        spatial_batchnorm_forward(np.ones((2, 3, 4, 4)), np.ones(4), g, {"mode": "train"})
    with pytest.raises(ValueError, match=r"batchnorm_forward: bn_param is missing the key\(s\) \['mode'\]"):
        spatial_batchnorm_forward(np.ones((2, 3, 4, 4)), g, g, {})
    _, cache = spatial_batchnorm_forward(np.ones((2, 3, 4, 4)), g, g, {"mode": "train"})
    with pytest.raises(ValueError, match=r"spatial_batchnorm_backward: dout must have shape \(2, 3, 4, 4\)"):
        spatial_batchnorm_backward(np.ones((2, 4, 3, 4)), cache)
