"""dlhw.nn.pooling (max pooling) against PyTorch's max_pool2d (float64), numerical gradients,
ties and its own edge cases."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st

from dlhw.gradcheck import numerical_gradient_array, rel_error
from dlhw.nn.pooling import max_pool_backward, max_pool_forward

BWD_TOL = 1e-12
NUM_TOL = 1e-7
SETTINGS = settings(max_examples=25, deadline=None)


def torch_pool(x, ph, pw, stride, dout):
    """PyTorch's out and dx for the same pooling (float64, autograd)."""
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    out = F.max_pool2d(xt, (ph, pw), stride=stride)
    (dx,) = torch.autograd.grad(out, (xt,), torch.tensor(dout, dtype=torch.float64))
    return out.detach().numpy(), dx.numpy()


def pool_param(ph, pw, stride):
    return {"pool_height": ph, "pool_width": pw, "stride": stride}


def check_against_torch(x, ph, pw, stride, seed=0):
    out, cache = max_pool_forward(x, pool_param(ph, pw, stride))
    n, c, h, w = x.shape
    assert out.shape == (n, c, 1 + (h - ph) // stride, 1 + (w - pw) // stride)
    dout = np.random.default_rng(seed).standard_normal(out.shape)
    dx = max_pool_backward(dout, cache)
    t_out, t_dx = torch_pool(x, ph, pw, stride, dout)
    np.testing.assert_array_equal(out, t_out)        # a maximum is exact
    assert dx.shape == x.shape
    assert rel_error(dx, t_dx) < BWD_TOL             # sums of the same terms, maybe reordered


@st.composite
def pool_problems(draw, ties=False):
    """(x, ph, pw, stride): non-square images and windows, stride 1-3 (overlapping or not)."""
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    h, w = draw(st.integers(1, 8)), draw(st.integers(1, 8))
    ph, pw = draw(st.integers(1, min(h, 4))), draw(st.integers(1, min(w, 4)))
    stride = draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    # ties: small integers, so that most windows hold their maximum more than once
    x = rng.integers(-1, 2, (n, c, h, w)).astype(float) if ties else rng.standard_normal((n, c, h, w))
    return x, ph, pw, stride


@SETTINGS
@given(problem=pool_problems())
def test_max_pool_matches_torch(problem):
    check_against_torch(*problem)


@SETTINGS
@given(problem=pool_problems(ties=True))
def test_max_pool_ties_match_torch(problem):
    check_against_torch(*problem)


@pytest.mark.parametrize("shape, ph, pw, stride", [
    ((2, 3, 6, 6), 2, 2, 2),      # the usual 2x2 stride 2
    ((2, 2, 7, 5), 3, 2, 1),      # overlapping, non-square
    ((1, 2, 7, 8), 3, 3, 2),      # overlapping, stride 2
    ((1, 1, 7, 7), 2, 2, 3),      # gaps between windows; floored
])
def test_max_pool_numerical_gradient(shape, ph, pw, stride):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape)        # no ties almost surely: the max is differentiable
    param = pool_param(ph, pw, stride)
    out, cache = max_pool_forward(x, param)
    dout = rng.standard_normal(out.shape)
    dx = max_pool_backward(dout, cache)
    num_dx = numerical_gradient_array(lambda z: max_pool_forward(z, param)[0], x, dout)
    assert rel_error(dx, num_dx, 1e-1) < NUM_TOL   # floor: ~1e-10 absolute noise


def test_ties_send_the_gradient_to_the_first_maximum_only():
    x = np.array([[[[1.0, 3.0, 3.0, 0.0],
                    [3.0, 2.0, 0.0, 0.0],
                    [5.0, 5.0, 7.0, 7.0],
                    [5.0, 5.0, 7.0, 7.0]]]])
    out, cache = max_pool_forward(x, pool_param(2, 2, 2))
    np.testing.assert_array_equal(out[0, 0], [[3.0, 3.0], [5.0, 7.0]])
    dx = max_pool_backward(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]), cache)
    expected = np.array([[0.0, 1.0, 2.0, 0.0],     # row-major first: (0, 1), not (1, 0)
                         [0.0, 0.0, 0.0, 0.0],
                         [3.0, 0.0, 4.0, 0.0],
                         [0.0, 0.0, 0.0, 0.0]])
    np.testing.assert_array_equal(dx[0, 0], expected)
    check_against_torch(x, 2, 2, 2)


def test_overlapping_windows_add_their_gradients():
    # one large pixel is the maximum of all four 2x2 windows of a 3x3 image at stride 1
    x = np.zeros((1, 1, 3, 3))
    x[0, 0, 1, 1] = 10.0
    out, cache = max_pool_forward(x, pool_param(2, 2, 1))
    np.testing.assert_array_equal(out, 10.0)
    dx = max_pool_backward(np.full((1, 1, 2, 2), 0.5), cache)
    assert dx[0, 0, 1, 1] == 2.0 and dx.sum() == 2.0


def test_window_as_large_as_the_image_and_1x1_windows():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 4, 5))
    out, _ = max_pool_forward(x, pool_param(4, 5, 1))
    np.testing.assert_array_equal(out[:, :, 0, 0], x.max(axis=(2, 3)))   # global max pooling
    check_against_torch(x, 4, 5, 2)
    out, _ = max_pool_forward(x, pool_param(1, 1, 1))
    np.testing.assert_array_equal(out, x)                                # the identity
    check_against_torch(x, 1, 1, 2)                                      # subsampling


def test_floor_leaves_unreached_pixels_with_zero_gradient():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 2, 5, 5))
    out, cache = max_pool_forward(x, pool_param(2, 2, 2))
    assert out.shape == (1, 2, 2, 2)
    dx = max_pool_backward(np.ones_like(out), cache)
    assert np.all(dx[:, :, 4, :] == 0) and np.all(dx[:, :, :, 4] == 0)
    check_against_torch(x, 2, 2, 2)


def test_inputs_are_not_modified():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 2, 4, 4))
    x_copy = x.copy()
    out, cache = max_pool_forward(x, pool_param(2, 2, 2))
    out[...] = 0.0                        # writing to out must not reach x or the cache
    dout = rng.standard_normal(out.shape)
    dout_copy = dout.copy()
    dx = max_pool_backward(dout, cache)
    np.testing.assert_array_equal(x, x_copy)
    np.testing.assert_array_equal(dout, dout_copy)
    assert rel_error(dx, torch_pool(x, 2, 2, 2, dout)[1]) < BWD_TOL


# ------------------------------------------------------------------------------ errors

@pytest.mark.parametrize("x, param, match", [
    (np.zeros((3, 4, 4)), pool_param(2, 2, 2), r"max_pool_forward: x must have shape \(N, C, H, W\); got \(3, 4, 4\)"),
    (np.zeros((1, 1, 4, 4)), {"pool_height": 2, "pool_width": 2},
     r"max_pool_forward: pool_param is missing the key\(s\) \['stride'\]"),
    (np.zeros((1, 1, 4, 4)), {"stride": 2}, r"missing the key\(s\) \['pool_height', 'pool_width'\]"),
    (np.zeros((1, 1, 4, 4)), pool_param(0, 2, 2), r"pool_param\['pool_height'\] must be an int >= 1; got 0"),
    (np.zeros((1, 1, 4, 4)), pool_param(2, 2, 1.0), r"pool_param\['stride'\] must be an int >= 1; got 1.0"),
    (np.zeros((1, 1, 4, 3)), pool_param(2, 4, 1),
     r"max_pool_forward: the pool window \(pool_height, pool_width\) = \(2, 4\) must fit in x .* \(1, 1, 4, 3\)"),
])
def test_max_pool_forward_errors(x, param, match):
    with pytest.raises(ValueError, match=match):
        max_pool_forward(x, param)


def test_max_pool_backward_errors():
    _, cache = max_pool_forward(np.zeros((2, 3, 4, 4)), pool_param(2, 2, 2))
    with pytest.raises(ValueError, match=r"max_pool_backward: dout must have shape \(N, C, H', W'\); got \(2, 3, 2\)"):
        max_pool_backward(np.zeros((2, 3, 2)), cache)
    with pytest.raises(ValueError, match=r"max_pool_backward: dout must have shape \(2, 3, 2, 2\).*got \(2, 3, 4, 4\)"):
        max_pool_backward(np.zeros((2, 3, 4, 4)), cache)
