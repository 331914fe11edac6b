"""dlhw.nn.conv_fast (im2col) against PyTorch's conv2d (float64), against the naive
dlhw.nn.conv, numerical gradients and its own edge cases."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st

from dlhw.gradcheck import numerical_gradient_array, rel_error
from dlhw.nn.conv import conv_backward, conv_forward
from dlhw.nn.conv_fast import conv_backward_fast, conv_forward_fast

FWD_TOL = 1e-10
BWD_TOL = 1e-9
NUM_TOL = 1e-7
FLOOR = 1e-3        # rel_error's floor: entries this small are compared absolutely (cancellation)
NUM_FLOOR = 1e-1    # centred differences carry ~eps * |loss| / h ~ 1e-10 absolute error
SETTINGS = settings(max_examples=25, deadline=None)


def torch_conv(x, w, b, stride, pad, dout):
    """PyTorch's out, dx, dw, db for the same layer (float64, autograd)."""
    xt, wt, bt = (torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in (x, w, b))
    out = F.conv2d(xt, wt, bt, stride=stride, padding=pad)
    grads = torch.autograd.grad(out, (xt, wt, bt), torch.tensor(dout, dtype=torch.float64))
    return out.detach().numpy(), *(g.numpy() for g in grads)


def check_against_torch(x, w, b, stride, pad, seed=0):
    out, cache = conv_forward_fast(x, w, b, {"stride": stride, "pad": pad})
    dout = np.random.default_rng(seed).standard_normal(out.shape)
    dx, dw, db = conv_backward_fast(dout, cache)
    t_out, t_dx, t_dw, t_db = torch_conv(x, w, b, stride, pad, dout)
    assert out.shape == t_out.shape
    assert dx.shape == x.shape and dw.shape == w.shape and db.shape == b.shape
    assert rel_error(out, t_out, FLOOR) < FWD_TOL
    assert rel_error(dx, t_dx, FLOOR) < BWD_TOL
    assert rel_error(dw, t_dw, FLOOR) < BWD_TOL
    assert rel_error(db, t_db, FLOOR) < BWD_TOL


@st.composite
def conv_problems(draw, max_hw=8, max_k=5):
    """(x, w, b, stride, pad): non-square images and kernels, stride 1-3, pad 0-2."""
    n, c, f = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    h, wd = draw(st.integers(1, max_hw)), draw(st.integers(1, max_hw))
    stride, pad = draw(st.integers(1, 3)), draw(st.integers(0, 2))
    hh = draw(st.integers(1, min(max_k, h + 2 * pad)))
    ww = draw(st.integers(1, min(max_k, wd + 2 * pad)))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    return (rng.standard_normal((n, c, h, wd)), rng.standard_normal((f, c, hh, ww)),
            rng.standard_normal(f), stride, pad)


@SETTINGS
@given(problem=conv_problems())
def test_conv_fast_matches_torch(problem):
    check_against_torch(*problem)


@SETTINGS
@given(problem=conv_problems(), seed=st.integers(0, 2**16))
def test_conv_fast_matches_naive(problem, seed):
    x, w, b, stride, pad = problem
    conv_param = {"stride": stride, "pad": pad}
    out, cache = conv_forward(x, w, b, conv_param)
    out_fast, cache_fast = conv_forward_fast(x, w, b, conv_param)
    assert rel_error(out_fast, out, FLOOR) < FWD_TOL
    dout = np.random.default_rng(seed).standard_normal(out.shape)
    for fast, naive in zip(conv_backward_fast(dout, cache_fast), conv_backward(dout, cache)):
        assert fast.shape == naive.shape
        assert rel_error(fast, naive, FLOOR) < BWD_TOL


@pytest.mark.parametrize("shape_x, shape_w, stride, pad", [
    ((2, 3, 5, 5), (3, 3, 3, 3), 1, 1),
    ((2, 2, 6, 7), (2, 2, 2, 3), 2, 0),
    ((1, 2, 7, 5), (2, 2, 3, 3), 3, 2),     # stride does not divide: last rows dropped
    ((1, 2, 3, 4), (2, 2, 5, 6), 1, 1),     # kernel as large as the padded input: 1x1 out
])
def test_conv_fast_numerical_gradients(shape_x, shape_w, stride, pad):
    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal(shape_x), rng.standard_normal(shape_w), rng.standard_normal(shape_w[0])
    conv_param = {"stride": stride, "pad": pad}
    out, cache = conv_forward_fast(x, w, b, conv_param)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = conv_backward_fast(dout, cache)
    num_dx = numerical_gradient_array(lambda z: conv_forward_fast(z, w, b, conv_param)[0], x, dout)
    num_dw = numerical_gradient_array(lambda z: conv_forward_fast(x, z, b, conv_param)[0], w, dout)
    num_db = numerical_gradient_array(lambda z: conv_forward_fast(x, w, z, conv_param)[0], b, dout)
    assert rel_error(dx, num_dx, NUM_FLOOR) < NUM_TOL
    assert rel_error(dw, num_dw, NUM_FLOOR) < NUM_TOL
    assert rel_error(db, num_db, NUM_FLOOR) < NUM_TOL


@pytest.mark.parametrize("shape_x, shape_w, stride, pad, out_hw", [
    ((2, 3, 9, 7), (4, 3, 3, 3), 2, 0, (4, 3)),      # stride 2, no padding
    ((2, 3, 4, 5), (6, 3, 1, 1), 1, 0, (4, 5)),      # 1x1 kernel
    ((2, 3, 4, 5), (6, 3, 1, 1), 2, 1, (3, 4)),      # 1x1 kernel, stride and padding
    ((2, 2, 3, 4), (3, 2, 5, 6), 1, 1, (1, 1)),      # kernel = padded input
    ((2, 2, 3, 4), (3, 2, 5, 6), 3, 1, (1, 1)),
    ((1, 1, 7, 7), (1, 1, 3, 3), 3, 0, (2, 2)),      # floored: the last row and column unused
    ((1, 1, 1, 1), (1, 1, 1, 1), 1, 0, (1, 1)),      # the smallest layer there is
])
def test_conv_fast_edge_cases(shape_x, shape_w, stride, pad, out_hw):
    rng = np.random.default_rng(2)
    x, w, b = rng.standard_normal(shape_x), rng.standard_normal(shape_w), rng.standard_normal(shape_w[0])
    out, _ = conv_forward_fast(x, w, b, {"stride": stride, "pad": pad})
    assert out.shape == (shape_x[0], shape_w[0], *out_hw)
    check_against_torch(x, w, b, stride, pad)


def test_conv_fast_benchmark_sized_layer_matches_torch():
    # the benchmark's layer: 64 CIFAR-sized images, 32 3x3 filters, "same" padding
    rng = np.random.default_rng(3)
    check_against_torch(rng.standard_normal((64, 3, 32, 32)), rng.standard_normal((32, 3, 3, 3)),
                        rng.standard_normal(32), 1, 1)


def test_conv_fast_backward_in_blocks_with_a_partial_last_block():
    # K * H' * W' = 72 * 400 makes the backward work in blocks of 4 images: 5 = 4 + 1
    rng = np.random.default_rng(5)
    check_against_torch(rng.standard_normal((5, 8, 20, 20)), rng.standard_normal((3, 8, 3, 3)),
                        rng.standard_normal(3), 1, 1)
    check_against_torch(rng.standard_normal((5, 8, 41, 39)), rng.standard_normal((3, 8, 3, 3)),
                        rng.standard_normal(3), 2, 1)


def test_conv_fast_cache_reuse_and_non_contiguous_dout():
    rng = np.random.default_rng(4)
    x, w, b = rng.standard_normal((2, 3, 6, 5)), rng.standard_normal((4, 3, 3, 2)), rng.standard_normal(4)
    x_copy = x.copy()
    out, cache = conv_forward_fast(x, w, b, {"stride": 1, "pad": 1})
    dout = rng.standard_normal(out.shape)
    first = conv_backward_fast(dout, cache)
    # the same gradient handed over as a non-contiguous view, and a second backward on the cache
    dout_view = np.ascontiguousarray(dout.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2)
    second = conv_backward_fast(dout_view, cache)
    for a, c in zip(first, second):
        np.testing.assert_array_equal(a, c)
    np.testing.assert_array_equal(x, x_copy)


# ------------------------------------------------------------------------------ errors

GOOD = {"x": np.zeros((2, 3, 5, 5)), "w": np.zeros((4, 3, 3, 3)), "b": np.zeros(4),
        "conv_param": {"stride": 1, "pad": 1}}


@pytest.mark.parametrize("name, value, match", [
    ("x", np.zeros((3, 5, 5)), r"conv_forward_fast: x must have shape \(N, C, H, W\); got \(3, 5, 5\)"),
    ("w", np.zeros((4, 2, 3, 3)), r"conv_forward_fast: w must have shape \(F=4, C=3, HH, WW\).*got \(4, 2, 3, 3\)"),
    ("b", np.zeros(5), r"conv_forward_fast: b must have shape \(F=4,\).*got \(5,\)"),
    ("conv_param", {"pad": 1}, r"conv_forward_fast: conv_param is missing the key\(s\) \['stride'\]"),
    ("conv_param", {"stride": 1}, r"conv_forward_fast: conv_param is missing the key\(s\) \['pad'\]"),
    ("conv_param", {"stride": 0, "pad": 1}, r"conv_param\['stride'\] must be an int >= 1; got 0"),
    ("conv_param", {"stride": 1, "pad": 0.5}, r"conv_param\['pad'\] must be an int >= 0; got 0.5"),
    ("w", np.zeros((4, 3, 3, 8)), r"conv_forward_fast: w must have a kernel .* \(7, 7\); got w of shape \(4, 3, 3, 8\)"),
])
def test_conv_forward_fast_errors(name, value, match):
    args = dict(GOOD, **{name: value})
    with pytest.raises(ValueError, match=match):
        conv_forward_fast(args["x"], args["w"], args["b"], args["conv_param"])


def test_conv_backward_fast_errors():
    _, cache = conv_forward_fast(GOOD["x"], GOOD["w"], GOOD["b"], GOOD["conv_param"])
    with pytest.raises(ValueError, match=r"conv_backward_fast: dout must have shape \(N, F, H', W'\)"):
        conv_backward_fast(np.zeros((2, 4, 25)), cache)
    with pytest.raises(ValueError, match=r"conv_backward_fast: dout must have shape \(2, 4, 5, 5\).*got \(2, 3, 5, 5\)"):
        conv_backward_fast(np.zeros((2, 3, 5, 5)), cache)
