"""dlhw.nn.conv (the naive convolution) against PyTorch's conv2d (float64), numerical gradients,
the lecture notes' worked example and its own edge cases."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st

from dlhw.gradcheck import numerical_gradient_array, rel_error
from dlhw.nn.conv import conv_backward, conv_forward

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


def out_size(n, k, stride, pad):
    return 1 + (n + 2 * pad - k) // stride


def check_against_torch(x, w, b, stride, pad, seed=0):
    conv_param = {"stride": stride, "pad": pad}
    out, cache = conv_forward(x, w, b, conv_param)
    Ho, Wo = out_size(x.shape[2], w.shape[2], stride, pad), out_size(x.shape[3], w.shape[3], stride, pad)
    assert out.shape == (x.shape[0], w.shape[0], Ho, Wo)
    dout = np.random.default_rng(seed).standard_normal(out.shape)
    dx, dw, db = conv_backward(dout, cache)
    t_out, t_dx, t_dw, t_db = torch_conv(x, w, b, stride, pad, dout)
    assert dx.shape == x.shape and dw.shape == w.shape and db.shape == b.shape
    assert rel_error(out, t_out, FLOOR) < FWD_TOL
    assert rel_error(dx, t_dx, FLOOR) < BWD_TOL
    assert rel_error(dw, t_dw, FLOOR) < BWD_TOL
    assert rel_error(db, t_db, FLOOR) < BWD_TOL


def check_numerical(x, w, b, stride, pad, seed=0):
    conv_param = {"stride": stride, "pad": pad}
    out, cache = conv_forward(x, w, b, conv_param)
    dout = np.random.default_rng(seed).standard_normal(out.shape)
    dx, dw, db = conv_backward(dout, cache)
    num_dx = numerical_gradient_array(lambda z: conv_forward(z, w, b, conv_param)[0], x, dout)
    num_dw = numerical_gradient_array(lambda z: conv_forward(x, z, b, conv_param)[0], w, dout)
    num_db = numerical_gradient_array(lambda z: conv_forward(x, w, z, conv_param)[0], b, dout)
    assert rel_error(dx, num_dx, NUM_FLOOR) < NUM_TOL
    assert rel_error(dw, num_dw, NUM_FLOOR) < NUM_TOL
    assert rel_error(db, num_db, NUM_FLOOR) < NUM_TOL


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
def test_conv_matches_torch(problem):
    check_against_torch(*problem)


@settings(max_examples=6, deadline=None)
@given(problem=conv_problems(max_hw=5, max_k=3))
def test_conv_numerical_gradients_random_shapes(problem):
    check_numerical(*problem)


@pytest.mark.parametrize("shape_x, shape_w, stride, pad", [
    ((2, 3, 5, 5), (3, 3, 3, 3), 1, 1),     # "same" convolution
    ((2, 2, 6, 7), (2, 2, 2, 3), 2, 0),     # stride 2, no padding, non-square
    ((1, 2, 7, 5), (2, 2, 3, 3), 3, 2),     # stride does not divide: last rows dropped
])
def test_conv_numerical_gradients(shape_x, shape_w, stride, pad):
    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal(shape_x), rng.standard_normal(shape_w), rng.standard_normal(shape_w[0])
    check_numerical(x, w, b, stride, pad)


def test_stride_2_pad_0():
    rng = np.random.default_rng(2)
    x, w, b = rng.standard_normal((2, 3, 9, 7)), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    out, _ = conv_forward(x, w, b, {"stride": 2, "pad": 0})
    assert out.shape == (2, 4, 4, 3)
    check_against_torch(x, w, b, 2, 0)


def test_1x1_kernel_is_a_per_pixel_affine_map():
    rng = np.random.default_rng(3)
    x, w, b = rng.standard_normal((2, 3, 4, 5)), rng.standard_normal((6, 3, 1, 1)), rng.standard_normal(6)
    out, _ = conv_forward(x, w, b, {"stride": 1, "pad": 0})
    expected = np.einsum("nchw,fc->nfhw", x, w[:, :, 0, 0]) + b[:, None, None]
    assert rel_error(out, expected, FLOOR) < FWD_TOL
    check_against_torch(x, w, b, 1, 0)
    check_against_torch(x, w, b, 2, 1)       # 1x1 with padding: the border outputs are just b


def test_kernel_as_large_as_the_padded_input_gives_1x1():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 2, 3, 4))
    w, b = rng.standard_normal((3, 2, 5, 6)), rng.standard_normal(3)
    out, _ = conv_forward(x, w, b, {"stride": 1, "pad": 1})
    assert out.shape == (2, 3, 1, 1)
    check_against_torch(x, w, b, 1, 1)
    check_against_torch(x, w, b, 3, 1)       # any stride: there is only one window
    check_numerical(x, w, b, 2, 1)


def test_floor_drops_unreached_rows_and_their_gradient_is_zero():
    # H + 2 pad - HH = 7 - 3 = 4 is not a multiple of stride 3: PyTorch floors to 2 rows
    rng = np.random.default_rng(5)
    x, w, b = rng.standard_normal((1, 1, 7, 7)), rng.standard_normal((1, 1, 3, 3)), rng.standard_normal(1)
    out, cache = conv_forward(x, w, b, {"stride": 3, "pad": 0})
    assert out.shape == (1, 1, 2, 2)
    dx, _, _ = conv_backward(np.ones_like(out), cache)
    assert np.all(dx[:, :, 6, :] == 0) and np.all(dx[:, :, :, 6] == 0)
    check_against_torch(x, w, b, 3, 0)


def test_lecture_example_is_cross_correlation():
    # The notes' worked example: conv2(A, B) with MATLAB's valid, same and full shapes. A true
    # convolution flips the kernel, so conv_forward (cross-correlation) needs B flipped.
    A = np.array([[0, 0, 1, 2], [2, 2, 0, 0], [2, 1, 2, 2], [3, 0, 1, 1]], dtype=float)
    B = np.array([[0, 0, -1], [1, -1, 1], [-1, 1, 1]], dtype=float)
    valid = np.array([[-3, 0], [4, 3]])
    same = np.array([[0, -1, -1, -1], [0, -3, 0, 1], [-1, 4, 3, -1], [-2, 5, 1, 4]])
    full = np.array([[0, 0, 0, 0, -1, -2], [0, 0, -1, -1, -1, 2], [2, 0, -3, 0, 1, 0],
                     [0, -1, 4, 3, -1, 1], [1, -2, 5, 1, 4, 3], [-3, 3, 2, 0, 2, 1]])
    x, flipped, b = A[None, None], B[::-1, ::-1][None, None], np.zeros(1)
    for pad, expected in [(0, valid), (1, same), (2, full)]:
        out, _ = conv_forward(x, flipped, b, {"stride": 1, "pad": pad})
        np.testing.assert_array_equal(out[0, 0], expected)
    out, _ = conv_forward(x, B[None, None], b, {"stride": 1, "pad": 0})
    assert not np.array_equal(out[0, 0], valid)     # without the flip: a different answer


def test_bias_and_zero_padding():
    # a zero image gives the bias everywhere, whatever the padding
    x, w, b = np.zeros((1, 2, 3, 3)), np.ones((2, 2, 2, 2)), np.array([0.5, -1.0])
    out, _ = conv_forward(x, w, b, {"stride": 1, "pad": 2})
    assert out.shape == (1, 2, 6, 6)
    np.testing.assert_array_equal(out[0, 0], 0.5)
    np.testing.assert_array_equal(out[0, 1], -1.0)


def test_inputs_are_not_modified_and_lists_are_accepted():
    rng = np.random.default_rng(6)
    x, w, b = rng.standard_normal((1, 2, 4, 4)), rng.standard_normal((2, 2, 3, 3)), rng.standard_normal(2)
    copies = [a.copy() for a in (x, w, b)]
    out, cache = conv_forward(x, w, b, {"stride": 1, "pad": 1})
    dout = rng.standard_normal(out.shape)
    dout_copy = dout.copy()
    conv_backward(dout, cache)
    for a, c in zip((x, w, b, dout), (*copies, dout_copy)):
        np.testing.assert_array_equal(a, c)
    out_list, _ = conv_forward(x.tolist(), w.tolist(), b.tolist(), {"stride": 1, "pad": 1})
    np.testing.assert_array_equal(out_list, out)


# ------------------------------------------------------------------------------ errors

GOOD = {"x": np.zeros((2, 3, 5, 5)), "w": np.zeros((4, 3, 3, 3)), "b": np.zeros(4),
        "conv_param": {"stride": 1, "pad": 1}}


@pytest.mark.parametrize("name, value, match", [
    ("x", np.zeros((3, 5, 5)), r"conv_forward: x must have shape \(N, C, H, W\); got \(3, 5, 5\)"),
    ("w", np.zeros((4, 2, 3, 3)), r"conv_forward: w must have shape \(F=4, C=3, HH, WW\) \(C: the channels of x\); got \(4, 2, 3, 3\)"),
    ("w", np.zeros((4, 3, 3)), r"conv_forward: w must have shape \(F, C=3, HH, WW\)"),
    ("b", np.zeros(5), r"conv_forward: b must have shape \(F=4,\).*got \(5,\)"),
    ("b", np.zeros((4, 1)), r"conv_forward: b must have shape \(F=4,\)"),
    ("conv_param", {"pad": 1}, r"conv_forward: conv_param is missing the key\(s\) \['stride'\]"),
    ("conv_param", {"stride": 1}, r"conv_forward: conv_param is missing the key\(s\) \['pad'\]"),
    ("conv_param", None, r"conv_forward: conv_param must be a dict"),
    ("conv_param", {"stride": 0, "pad": 1}, r"conv_param\['stride'\] must be an int >= 1; got 0"),
    ("conv_param", {"stride": 1.5, "pad": 1}, r"conv_param\['stride'\] must be an int >= 1"),
    ("conv_param", {"stride": 1, "pad": -1}, r"conv_param\['pad'\] must be an int >= 0; got -1"),
    ("w", np.zeros((4, 3, 8, 3)), r"conv_forward: w must have a kernel .* \(7, 7\); got w of shape \(4, 3, 8, 3\)"),
])
def test_conv_forward_errors(name, value, match):
    args = dict(GOOD, **{name: value})
    with pytest.raises(ValueError, match=match):
        conv_forward(args["x"], args["w"], args["b"], args["conv_param"])


def test_conv_backward_errors():
    _, cache = conv_forward(GOOD["x"], GOOD["w"], GOOD["b"], GOOD["conv_param"])
    with pytest.raises(ValueError, match=r"conv_backward: dout must have shape \(N, F, H', W'\); got \(2, 4, 5\)"):
        conv_backward(np.zeros((2, 4, 5)), cache)
    with pytest.raises(ValueError, match=r"conv_backward: dout must have shape \(2, 4, 5, 5\).*got \(2, 4, 4, 5\)"):
        conv_backward(np.zeros((2, 4, 4, 5)), cache)
