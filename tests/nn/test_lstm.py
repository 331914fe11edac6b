"""dlhw.nn.lstm against torch.nn.LSTM / LSTMCell (gates permuted) and numerical gradients.

dlhw stacks the gates i, f, o, g along the 4H axis, PyTorch i, f, g, o: ``perm`` below maps
one to the other (it swaps the last two blocks, so it is its own inverse).
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from dlhw.gradcheck import numerical_gradient_array, rel_error
from dlhw.nn.lstm import lstm_backward, lstm_forward, lstm_step_backward, lstm_step_forward


def perm(H):
    return np.r_[0:2 * H, 3 * H:4 * H, 2 * H:3 * H]


def make(rng, N, T, D, H, scale=0.4):
    x = rng.standard_normal((N, T, D))
    h0 = rng.standard_normal((N, H))
    Wx = rng.standard_normal((D, 4 * H)) * scale
    Wh = rng.standard_normal((H, 4 * H)) * scale
    b = rng.standard_normal(4 * H) * scale
    return x, h0, Wx, Wh, b


def copy_weights(module, Wx, Wh, b, suffix=""):
    H = Wh.shape[0]
    p = perm(H)
    with torch.no_grad():
        getattr(module, "weight_ih" + suffix).copy_(torch.tensor(Wx[:, p].T))
        getattr(module, "weight_hh" + suffix).copy_(torch.tensor(Wh[:, p].T))
        getattr(module, "bias_ih" + suffix).copy_(torch.tensor(b[p]))
        getattr(module, "bias_hh" + suffix).zero_()


def torch_lstm(x, h0, Wx, Wh, b, dh):
    """torch.nn.LSTM (c0 = 0) with dlhw's weights; h and the gradients in dlhw's layout."""
    D, H = Wx.shape[0], Wh.shape[0]
    lstm = torch.nn.LSTM(D, H, batch_first=True).double()
    copy_weights(lstm, Wx, Wh, b, "_l0")
    xt = torch.tensor(x, requires_grad=True)
    h0t = torch.tensor(h0[None], requires_grad=True)
    h, _ = lstm(xt, (h0t, torch.zeros_like(h0t)))
    h.backward(torch.tensor(dh))
    p = perm(H)
    return (h.detach().numpy(), xt.grad.numpy(), h0t.grad[0].numpy(), lstm.weight_ih_l0.grad.numpy().T[:, p],
            lstm.weight_hh_l0.grad.numpy().T[:, p], lstm.bias_ih_l0.grad.numpy()[p])


def step_inputs(rng, N, D, H):
    x, h0, Wx, Wh, b = make(rng, N, 1, D, H)
    return [x[:, 0], h0, rng.standard_normal((N, H)), Wx, Wh, b]


# ------------------------------------------------------------------ one step

@settings(max_examples=15, deadline=None)
@given(N=st.integers(1, 4), D=st.integers(1, 5), H=st.integers(1, 5), seed=st.integers(0, 2**31))
def test_step_matches_lstm_cell(N, D, H, seed):
    rng = np.random.default_rng(seed)
    inputs = step_inputs(rng, N, D, H)
    dnext_h, dnext_c = rng.standard_normal((N, H)), rng.standard_normal((N, H))
    next_h, next_c, cache = lstm_step_forward(*inputs)
    grads = lstm_step_backward(dnext_h, dnext_c, cache)

    cell = torch.nn.LSTMCell(D, H).double()
    copy_weights(cell, *inputs[3:])
    xt, ht, ct = (torch.tensor(a, requires_grad=True) for a in inputs[:3])
    h_t, c_t = cell(xt, (ht, ct))
    torch.autograd.backward([h_t, c_t], [torch.tensor(dnext_h), torch.tensor(dnext_c)])
    assert rel_error(next_h, h_t.detach().numpy()) < 1e-10
    assert rel_error(next_c, c_t.detach().numpy()) < 1e-10
    p = perm(H)
    expected = [xt.grad.numpy(), ht.grad.numpy(), ct.grad.numpy(), cell.weight_ih.grad.numpy().T[:, p],
                cell.weight_hh.grad.numpy().T[:, p], cell.bias_ih.grad.numpy()[p]]
    for name, g, e in zip(["dx", "dprev_h", "dprev_c", "dWx", "dWh", "db"], grads, expected):
        assert rel_error(g, e) < 1e-9, name


def test_step_backward_numerical():
    rng = np.random.default_rng(0)
    N, D, H = 3, 4, 5
    inputs = step_inputs(rng, N, D, H)
    dnext_h, dnext_c = rng.standard_normal((N, H)), rng.standard_normal((N, H))
    _, _, cache = lstm_step_forward(*inputs)
    grads = lstm_step_backward(dnext_h, dnext_c, cache)
    for k, g in enumerate(grads):
        args = list(inputs)

        def f(z, k=k):
            args[k] = z
            h, c, _ = lstm_step_forward(*args)
            return np.concatenate([h, c], axis=1)     # both outputs carry gradient
        num = numerical_gradient_array(f, inputs[k].copy(), np.concatenate([dnext_h, dnext_c], axis=1))
        assert rel_error(g, num) < 1e-7


def test_step_backward_leaves_dnext_c_alone():
    rng = np.random.default_rng(1)
    inputs = step_inputs(rng, 2, 3, 4)
    dnext_h, dnext_c = rng.standard_normal((2, 4)), rng.standard_normal((2, 4))
    saved = dnext_c.copy()
    _, _, cache = lstm_step_forward(*inputs)
    first = lstm_step_backward(dnext_h, dnext_c, cache)
    assert np.array_equal(dnext_c, saved)
    second = lstm_step_backward(dnext_h, dnext_c, cache)       # same call, same answer
    assert all(np.array_equal(a, b) for a, b in zip(first, second))


def step_backward_with_dag_slip(dnext_h, dnext_c, x, prev_h, prev_c, Wx, Wh, b):
    """A correct step backward except for the lecture notes' tanh slip: (1 - g)^2 for 1 - g^2."""
    H = prev_h.shape[1]
    a = x @ Wx + prev_h @ Wh + b
    i, f, o = (1.0 / (1.0 + np.exp(-a[:, k * H:(k + 1) * H])) for k in range(3))
    g = np.tanh(a[:, 3 * H:])
    tc = np.tanh(f * prev_c + i * g)
    dc = dnext_c + dnext_h * o * (1 - tc ** 2)
    dg = dc * i
    da = np.concatenate([dc * g * i * (1 - i), dc * prev_c * f * (1 - f), dnext_h * tc * o * (1 - o),
                         (1 - g) ** 2 * dg], axis=1)            # the slip is the last block
    return da @ Wx.T, da @ Wh.T, dc * f, x.T @ da, prev_h.T @ da, da.sum(axis=0)


def test_notes_dag_slip_is_caught():
    """The notes' ``(1 - np.tanh(ag)) ** 2`` would fail the gradient check by a wide margin."""
    rng = np.random.default_rng(2)
    N, D, H = 4, 3, 5
    inputs = step_inputs(rng, N, D, H)
    dnext_h, dnext_c = rng.standard_normal((N, H)), rng.standard_normal((N, H))
    _, _, cache = lstm_step_forward(*inputs)
    ours = lstm_step_backward(dnext_h, dnext_c, cache)
    slipped = step_backward_with_dag_slip(dnext_h, dnext_c, *inputs)

    # The gradient of b's g block by centred differences, the oracle a check would use
    b = inputs[5].copy()

    def f(bz):
        h, c, _ = lstm_step_forward(*inputs[:5], bz)
        return np.concatenate([h, c], axis=1)
    db_num = numerical_gradient_array(f, b, np.concatenate([dnext_h, dnext_c], axis=1))
    assert rel_error(ours[5], db_num) < 1e-7
    assert rel_error(slipped[5][3 * H:], db_num[3 * H:]) > 1e-2          # caught
    assert rel_error(slipped[5][:3 * H], db_num[:3 * H]) < 1e-7          # the rest is right
    for name, k in [("dx", 0), ("dprev_h", 1), ("dWx", 3), ("dWh", 4)]:
        assert rel_error(slipped[k], ours[k]) > 1e-2, name
    assert rel_error(slipped[2], ours[2]) < 1e-12                       # dprev_c is unaffected


# ------------------------------------------------------------------ whole sequences

@settings(max_examples=20, deadline=None)
@given(N=st.integers(1, 4), T=st.integers(1, 6), D=st.integers(1, 5), H=st.integers(1, 5),
       seed=st.integers(0, 2**31))
def test_sequence_matches_torch_lstm(N, T, D, H, seed):
    rng = np.random.default_rng(seed)
    x, h0, Wx, Wh, b = make(rng, N, T, D, H)
    dh = rng.standard_normal((N, T, H))
    h, cache = lstm_forward(x, h0, Wx, Wh, b)
    ours = (h,) + lstm_backward(dh, cache)
    theirs = torch_lstm(x, h0, Wx, Wh, b, dh)
    for name, a, e in zip(["h", "dx", "dh0", "dWx", "dWh", "db"], ours, theirs):
        assert a.shape == e.shape, name
        assert rel_error(a, e) < 1e-9, name


@pytest.mark.parametrize("T,H", [(1, 3), (4, 1), (3, 4)])
def test_sequence_backward_numerical(T, H):
    rng = np.random.default_rng(10 * T + H)
    N, D = 2, 3
    inputs = list(make(rng, N, T, D, H))
    dh = rng.standard_normal((N, T, H))
    _, cache = lstm_forward(*inputs)
    grads = lstm_backward(dh, cache)
    for k, g in enumerate(grads):
        args = list(inputs)

        def f(z, k=k):
            args[k] = z
            return lstm_forward(*args)[0]
        assert rel_error(g, numerical_gradient_array(f, inputs[k].copy(), dh)) < 1e-7


def test_sequence_equals_repeated_steps_from_zero_cell():
    rng = np.random.default_rng(3)
    x, h0, Wx, Wh, b = make(rng, 3, 5, 4, 2)
    h, _ = lstm_forward(x, h0, Wx, Wh, b)
    prev_h, prev_c = h0, np.zeros_like(h0)
    for t in range(5):
        prev_h, prev_c, _ = lstm_step_forward(x[:, t], prev_h, prev_c, Wx, Wh, b)
        assert rel_error(h[:, t], prev_h) < 1e-13


def test_forward_does_not_modify_inputs_and_backward_is_repeatable():
    rng = np.random.default_rng(4)
    inputs = make(rng, 2, 3, 4, 3)
    saved = [a.copy() for a in inputs]
    dh = rng.standard_normal((2, 3, 3))
    dh_saved = dh.copy()
    _, cache = lstm_forward(*inputs)
    first = lstm_backward(dh, cache)
    second = lstm_backward(dh, cache)
    assert all(np.array_equal(a, s) for a, s in zip(inputs, saved))
    assert np.array_equal(dh, dh_saved)
    assert all(np.array_equal(a, b) for a, b in zip(first, second))


def test_saturated_gates_no_overflow_warning():
    rng = np.random.default_rng(5)
    x, h0, Wx, Wh, b = make(rng, 2, 3, 4, 3, scale=1.0)
    x = x * 1e4                                        # pre-activations of order 1e4
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        h, cache = lstm_forward(x, h0, Wx, Wh, b)
        grads = lstm_backward(np.ones((2, 3, 3)), cache)
    assert np.all(np.isfinite(h)) and all(np.all(np.isfinite(g)) for g in grads)
    assert rel_error(h, torch_lstm(x, h0, Wx, Wh, b, np.ones((2, 3, 3)))[0]) < 1e-9


def test_lstm_errors():
    rng = np.random.default_rng(6)
    x, h0, Wx, Wh, b = make(rng, 2, 3, 4, 5)
    with pytest.raises(ValueError, match=r"lstm_forward: Wx must have shape \(D=4, 4H=20\)"):
        lstm_forward(x, h0, Wx[:, :15], Wh, b)
    with pytest.raises(ValueError, match=r"lstm_forward: Wh must have shape \(H=5, 4H=20\)"):
        lstm_forward(x, h0, Wx, Wh[:4], b)
    with pytest.raises(ValueError, match=r"lstm_forward: b must have shape \(4H=20,\)"):
        lstm_forward(x, h0, Wx, Wh, b[:5])
    with pytest.raises(ValueError, match=r"lstm_forward: x must have shape \(N, T, D\) with T >= 1"):
        lstm_forward(x[:, :0], h0, Wx, Wh, b)
    with pytest.raises(ValueError, match=r"lstm_step_forward: prev_c must have shape \(N=2, H=5\)"):
        lstm_step_forward(x[:, 0], h0, h0[:, :4], Wx, Wh, b)
    _, cache = lstm_forward(x, h0, Wx, Wh, b)
    with pytest.raises(ValueError, match=r"lstm_backward: dh must have shape \(N, T, H\)"):
        lstm_backward(np.zeros((2, 5)), cache)
    _, _, cache = lstm_step_forward(x[:, 0], h0, h0, Wx, Wh, b)
    with pytest.raises(ValueError, match=r"lstm_step_backward: dnext_c must have shape \(N=2, H=5\)"):
        lstm_step_backward(np.zeros((2, 5)), np.zeros((2, 4)), cache)
