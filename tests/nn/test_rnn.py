"""dlhw.nn.rnn against PyTorch (nn.RNN, manual ops, autograd) and numerical gradients."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from dlhw.gradcheck import numerical_gradient_array, rel_error
from dlhw.nn.rnn import clip_grad_norm, rnn_backward, rnn_forward, rnn_step_backward, rnn_step_forward


def make(rng, N, T, D, H, scale=0.5):
    x = rng.standard_normal((N, T, D))
    h0 = rng.standard_normal((N, H))
    Wx = rng.standard_normal((D, H)) * scale
    Wh = rng.standard_normal((H, H)) * scale
    b = rng.standard_normal(H) * scale
    return x, h0, Wx, Wh, b


def torch_rnn(x, h0, Wx, Wh, b, dh):
    """torch.nn.RNN (tanh) with dlhw's weights copied in; returns h and every gradient."""
    D, H = Wx.shape
    rnn = torch.nn.RNN(D, H, nonlinearity="tanh", batch_first=True).double()
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(torch.tensor(Wx.T))      # torch computes x W^T
        rnn.weight_hh_l0.copy_(torch.tensor(Wh.T))
        rnn.bias_ih_l0.copy_(torch.tensor(b))
        rnn.bias_hh_l0.zero_()                          # torch has two biases; one suffices
    xt = torch.tensor(x, requires_grad=True)
    h0t = torch.tensor(h0[None], requires_grad=True)
    h, _ = rnn(xt, h0t)
    h.backward(torch.tensor(dh))
    return (h.detach().numpy(), xt.grad.numpy(), h0t.grad[0].numpy(), rnn.weight_ih_l0.grad.numpy().T,
            rnn.weight_hh_l0.grad.numpy().T, rnn.bias_ih_l0.grad.numpy())


def test_step_forward_matches_torch_ops():
    rng = np.random.default_rng(0)
    x, h0, Wx, Wh, b = make(rng, 4, 1, 5, 6)
    x = x[:, 0]
    next_h, _ = rnn_step_forward(x, h0, Wx, Wh, b)
    t = [torch.tensor(a) for a in (x, h0, Wx, Wh, b)]
    expected = torch.tanh(t[0] @ t[2] + t[1] @ t[3] + t[4]).numpy()
    assert rel_error(next_h, expected) < 1e-12


def test_step_backward_autograd_and_numerical():
    rng = np.random.default_rng(1)
    x, h0, Wx, Wh, b = make(rng, 3, 1, 4, 5)
    x = x[:, 0]
    dnext = rng.standard_normal((3, 5))
    _, cache = rnn_step_forward(x, h0, Wx, Wh, b)
    grads = rnn_step_backward(dnext, cache)

    ts = [torch.tensor(a, requires_grad=True) for a in (x, h0, Wx, Wh, b)]
    torch.tanh(ts[0] @ ts[2] + ts[1] @ ts[3] + ts[4]).backward(torch.tensor(dnext))
    inputs = [x, h0, Wx, Wh, b]
    for k, (g, tt) in enumerate(zip(grads, ts)):
        assert g.shape == inputs[k].shape
        assert rel_error(g, tt.grad.numpy()) < 1e-10
        args = list(inputs)

        def f(z, k=k):
            args[k] = z
            return rnn_step_forward(*args)[0]
        assert rel_error(g, numerical_gradient_array(f, inputs[k].copy(), dnext)) < 1e-7


@settings(max_examples=20, deadline=None)
@given(N=st.integers(1, 4), T=st.integers(1, 6), D=st.integers(1, 5), H=st.integers(1, 6),
       seed=st.integers(0, 2**31))
def test_sequence_matches_torch_rnn(N, T, D, H, seed):
    rng = np.random.default_rng(seed)
    x, h0, Wx, Wh, b = make(rng, N, T, D, H)
    dh = rng.standard_normal((N, T, H))
    h, cache = rnn_forward(x, h0, Wx, Wh, b)
    ours = (h,) + rnn_backward(dh, cache)
    theirs = torch_rnn(x, h0, Wx, Wh, b, dh)
    for name, a, e in zip(["h", "dx", "dh0", "dWx", "dWh", "db"], ours, theirs):
        assert a.shape == e.shape, name
        assert rel_error(a, e) < 1e-9, name


@pytest.mark.parametrize("T", [1, 4])
def test_sequence_backward_numerical(T):
    rng = np.random.default_rng(T)
    N, D, H = 2, 3, 4
    inputs = list(make(rng, N, T, D, H))
    dh = rng.standard_normal((N, T, H))
    _, cache = rnn_forward(*inputs)
    grads = rnn_backward(dh, cache)
    for k, g in enumerate(grads):
        args = list(inputs)

        def f(z, k=k):
            args[k] = z
            return rnn_forward(*args)[0]
        assert rel_error(g, numerical_gradient_array(f, inputs[k].copy(), dh)) < 1e-7


def test_sequence_equals_repeated_steps():
    rng = np.random.default_rng(3)
    x, h0, Wx, Wh, b = make(rng, 3, 5, 4, 2)
    h, _ = rnn_forward(x, h0, Wx, Wh, b)
    prev = h0
    for t in range(5):
        prev, _ = rnn_step_forward(x[:, t], prev, Wx, Wh, b)
        assert rel_error(h[:, t], prev) < 1e-14


def test_only_last_step_loss():
    """Gradient only at the last step: it must still reach every input step (BPTT)."""
    rng = np.random.default_rng(4)
    x, h0, Wx, Wh, b = make(rng, 2, 6, 3, 4)
    dh = np.zeros((2, 6, 4))
    dh[:, -1] = rng.standard_normal((2, 4))
    _, cache = rnn_forward(x, h0, Wx, Wh, b)
    dx = rnn_backward(dh, cache)[0]
    assert np.all(np.abs(dx[:, 0]).sum(axis=1) > 0)
    assert rel_error(dx, torch_rnn(x, h0, Wx, Wh, b, dh)[1]) < 1e-9


def test_rnn_errors():
    rng = np.random.default_rng(5)
    x, h0, Wx, Wh, b = make(rng, 2, 3, 4, 5)
    with pytest.raises(ValueError, match=r"rnn_forward: Wx must have shape \(D=4, H=5\)"):
        rnn_forward(x, h0, Wx[:3], Wh, b)
    with pytest.raises(ValueError, match=r"rnn_forward: x must have shape \(N, T, D\)"):
        rnn_forward(x[:, 0], h0, Wx, Wh, b)
    with pytest.raises(ValueError, match=r"rnn_forward: h0 must have shape \(N=2, H\)"):
        rnn_forward(x, h0[:1], Wx, Wh, b)
    with pytest.raises(ValueError, match=r"rnn_forward: x must have shape \(N, T, D\) with T >= 1"):
        rnn_forward(x[:, :0], h0, Wx, Wh, b)
    with pytest.raises(ValueError, match=r"rnn_step_forward: b must have shape \(H=5,\)"):
        rnn_step_forward(x[:, 0], h0, Wx, Wh, b[:4])
    _, cache = rnn_forward(x, h0, Wx, Wh, b)
    with pytest.raises(ValueError, match=r"rnn_backward: dh must have shape \(N, T, H\)"):
        rnn_backward(np.zeros((2, 5)), cache)
    _, cache = rnn_step_forward(x[:, 0], h0, Wx, Wh, b)
    with pytest.raises(ValueError, match=r"rnn_step_backward: dnext_h must have shape \(N, H\)"):
        rnn_step_backward(np.zeros(5), cache)


# ------------------------------------------------------------------ gradient clipping

@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**31), max_norm=st.floats(0.01, 20.0), n=st.integers(1, 4))
def test_clip_matches_torch(seed, max_norm, n):
    rng = np.random.default_rng(seed)
    grads = [rng.standard_normal(tuple(rng.integers(1, 4, size=rng.integers(1, 3)))) for _ in range(n)]
    before = [g.copy() for g in grads]
    clipped, total = clip_grad_norm(grads, max_norm)
    params = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
    for p, g in zip(params, grads):
        p.grad = torch.tensor(g)
    total_t = torch.nn.utils.clip_grad_norm_(params, max_norm)
    assert abs(total - float(total_t)) <= 1e-12 * total
    for c, p, g, b in zip(clipped, params, grads, before):
        # torch divides by total + 1e-6: a relative difference of at most 1e-6 / total
        assert np.allclose(c, p.grad.numpy(), rtol=2e-6 / min(total, 1.0) + 1e-12, atol=0)
        assert np.array_equal(g, b)                       # inputs untouched
    new_norm = np.sqrt(sum(np.sum(c * c) for c in clipped))
    assert new_norm <= max_norm * (1 + 1e-12) or np.isclose(new_norm, total)
    if total <= max_norm:
        assert all(np.array_equal(c, g) for c, g in zip(clipped, grads))


def test_clip_exact_scale_and_direction():
    grads = [np.array([3.0, 0.0]), np.array([[0.0], [4.0]])]     # joint norm 5
    clipped, total = clip_grad_norm(grads, 1.0)
    assert total == 5.0
    assert np.allclose(clipped[0], [0.6, 0.0]) and np.allclose(clipped[1], [[0.0], [0.8]])
    same, total = clip_grad_norm(grads, 5.0)                      # not above max_norm: unchanged
    assert total == 5.0 and np.array_equal(same[0], grads[0]) and same[0] is not grads[0]


def test_clip_errors():
    with pytest.raises(ValueError, match="clip_grad_norm: max_norm must be a positive number"):
        clip_grad_norm([np.ones(2)], 0.0)
    with pytest.raises(ValueError, match="clip_grad_norm: grads must be a list"):
        clip_grad_norm(np.ones(2), 1.0)
