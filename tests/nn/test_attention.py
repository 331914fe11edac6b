"""dlhw.nn.attention against torch (scaled_dot_product_attention, nn.MultiheadAttention, manual
ops with autograd) and numerical gradients.

Gradients are compared normwise (largest difference over largest entry): a query that sees a
single key has dq = 0 exactly in theory, and two correct implementations then disagree in the
1e-17 noise, which an elementwise relative error would blow up.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st

from dlhw.gradcheck import numerical_gradient_array, rel_error
from dlhw.nn.attention import (attention_backward, attention_forward, multi_head_attention_backward,
                               multi_head_attention_forward, positional_encoding)


def err(a, b):
    """Normwise error: max |a - b| over max |b|, the latter floored at 1e-2.

    The inputs here are of order 1, so are the gradients; the floor keeps an all-zero expected
    gradient (a query with one key) from turning 1e-17 noise into a huge relative error.
    """
    assert a.shape == b.shape
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-2)) if b.size else 0.0


def random_mask(rng, shape):
    """A random boolean mask in which every row (last axis) keeps at least one key."""
    mask = rng.random(shape) < 0.5
    keep = rng.integers(0, shape[-1], size=shape[:-1])
    np.put_along_axis(mask, keep[..., None], True, axis=-1)
    return mask


def torch_sdpa(q, k, v, mask, dout):
    ts = [torch.tensor(a, requires_grad=True) for a in (q, k, v)]
    out = F.scaled_dot_product_attention(*ts, attn_mask=None if mask is None else torch.tensor(mask))
    out.backward(torch.tensor(dout))
    return [out.detach().numpy()] + [t.grad.numpy() for t in ts]


def check_against_sdpa(q, k, v, mask, rng):
    out, cache = attention_forward(q, k, v, mask)
    dout = rng.standard_normal(out.shape)
    ours = [out, *attention_backward(dout, cache)]
    theirs = torch_sdpa(q, k, v, mask, dout)
    assert rel_error(ours[0], theirs[0]) < 1e-10
    for name, a, e in zip(["dq", "dk", "dv"], ours[1:], theirs[1:]):
        assert err(a, e) < 1e-12, name


# ------------------------------------------------------------------ scaled dot-product attention

@settings(max_examples=25, deadline=None)
@given(lead=st.lists(st.integers(1, 3), min_size=0, max_size=2), Tq=st.integers(1, 6),
       Tk=st.integers(1, 6), D=st.integers(1, 5), Dv=st.integers(1, 5),
       mask_kind=st.sampled_from(["none", "full", "rows", "2d", "keys"]), seed=st.integers(0, 2**31))
def test_matches_sdpa(lead, Tq, Tk, D, Dv, mask_kind, seed):
    rng = np.random.default_rng(seed)
    lead = (2, *lead)                         # torch's SDPA wants a batch axis at least
    q = rng.standard_normal((*lead, Tq, D))
    k = rng.standard_normal((*lead, Tk, D))
    v = rng.standard_normal((*lead, Tk, Dv))
    mask = {"none": None,
            "full": random_mask(rng, (*lead, Tq, Tk)),          # one mask per example
            "rows": random_mask(rng, (*[1] * len(lead), Tq, Tk)),
            "2d": random_mask(rng, (Tq, Tk)),                    # shared by the batch
            "keys": random_mask(rng, (lead[0],) + (1,) * (len(lead) - 1) + (1, Tk))}[mask_kind]  # padding
    check_against_sdpa(q, k, v, mask, rng)


@pytest.mark.parametrize("T", [1, 7])
def test_causal_mask(T):
    rng = np.random.default_rng(T)
    q, k, v = (rng.standard_normal((3, 2, T, 4)) for _ in range(3))
    mask = np.tril(np.ones((T, T), dtype=bool))
    check_against_sdpa(q, k, v, mask, rng)
    ts = [torch.tensor(a) for a in (q, k, v)]
    out, _ = attention_forward(q, k, v, mask)
    assert rel_error(out, F.scaled_dot_product_attention(*ts, is_causal=True).numpy()) < 1e-10
    # query 0 sees only key 0: its output is v[..., 0, :] exactly
    assert np.allclose(out[..., 0, :], v[..., 0, :], rtol=0, atol=1e-15)


def test_one_key_per_query():
    """A mask that leaves exactly one key per query turns attention into a gather."""
    rng = np.random.default_rng(0)
    N, Tq, Tk, D = 2, 5, 4, 3
    q, k = rng.standard_normal((N, Tq, D)), rng.standard_normal((N, Tk, D))
    v = rng.standard_normal((N, Tk, D))
    pick = rng.integers(0, Tk, size=(N, Tq))
    mask = np.zeros((N, Tq, Tk), dtype=bool)
    np.put_along_axis(mask, pick[..., None], True, axis=-1)
    out, cache = attention_forward(q, k, v, mask)
    assert np.array_equal(out, np.take_along_axis(v, pick[..., None], axis=1))
    dout = rng.standard_normal(out.shape)
    dq, dk, dv = attention_backward(dout, cache)
    assert np.max(np.abs(dq)) < 1e-14 and np.max(np.abs(dk)) < 1e-14   # softmax is constant
    check_against_sdpa(q, k, v, mask, rng)


def test_backward_numerical():
    rng = np.random.default_rng(1)
    q, k = rng.standard_normal((2, 3, 4, 3)), rng.standard_normal((2, 3, 5, 3))
    v = rng.standard_normal((2, 3, 5, 2))
    mask = random_mask(rng, (1, 3, 4, 5))
    out, cache = attention_forward(q, k, v, mask)
    dout = rng.standard_normal(out.shape)
    grads = attention_backward(dout, cache)
    inputs = [q, k, v]
    for i, g in enumerate(grads):
        args = list(inputs)

        def f(z, i=i):
            args[i] = z
            return attention_forward(*args, mask)[0]
        assert err(g, numerical_gradient_array(f, inputs[i].copy(), dout)) < 1e-8


def test_masked_keys_have_no_influence():
    rng = np.random.default_rng(2)
    q, k, v = (rng.standard_normal((2, 4, 3)) for _ in range(3))
    mask = np.ones((4, 4), dtype=bool)
    mask[:, 2] = False                                    # nobody may look at key 2
    out, cache = attention_forward(q, k, v, mask)
    k2, v2 = k.copy(), v.copy()
    k2[:, 2] += 100.0
    v2[:, 2] -= 50.0
    assert np.array_equal(out, attention_forward(q, k2, v2, mask)[0])
    _, dk, dv = attention_backward(rng.standard_normal(out.shape), cache)
    assert np.all(dk[:, 2] == 0) and np.all(dv[:, 2] == 0)


def test_large_scores_are_stable():
    rng = np.random.default_rng(3)
    q, k, v = (rng.standard_normal((2, 5, 4)) for _ in range(3))
    q *= 1e3                                              # scores of order 1e6: exp overflows naively
    check_against_sdpa(q, k, v, None, rng)
    out, cache = attention_forward(q, k, v)
    assert np.all(np.isfinite(out)) and all(np.all(np.isfinite(g)) for g in attention_backward(out, cache))


def test_inputs_not_modified():
    rng = np.random.default_rng(4)
    q, k, v = (rng.standard_normal((2, 3, 4)) for _ in range(3))
    mask = np.tril(np.ones((3, 3), dtype=bool))
    saved = [a.copy() for a in (q, k, v, mask)]
    out, cache = attention_forward(q, k, v, mask)
    dout = rng.standard_normal(out.shape)
    dsaved = dout.copy()
    first = attention_backward(dout, cache)
    second = attention_backward(dout, cache)
    assert all(np.array_equal(a, s) for a, s in zip((q, k, v, mask), saved))
    assert np.array_equal(dout, dsaved)
    assert all(np.array_equal(a, b) for a, b in zip(first, second))


def test_attention_errors():
    rng = np.random.default_rng(5)
    q, k, v = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 5, 4)), rng.standard_normal((2, 5, 6))
    bad = np.ones((3, 5), dtype=bool)
    bad[1] = False
    with pytest.raises(ValueError, match="attention_forward: mask leaves a query row with no key"):
        attention_forward(q, k, v, bad)
    with pytest.raises(ValueError, match="attention_forward: mask must be a boolean array"):
        attention_forward(q, k, v, np.ones((3, 5)))
    with pytest.raises(ValueError, match=r"attention_forward: mask must be broadcastable to \(\.\.\., Tq, Tk\) = \(2, 3, 5\)"):
        attention_forward(q, k, v, np.ones((3, 4), dtype=bool))
    with pytest.raises(ValueError, match=r"attention_forward: mask must be broadcastable"):
        attention_forward(q, k, v, np.ones((4, 3, 5), dtype=bool))
    with pytest.raises(ValueError, match=r"attention_forward: k must have shape \(\.\.\., Tk=5, D=4\); got \(2, 5, 3\)"):
        attention_forward(q, k[..., :3], v)
    with pytest.raises(ValueError, match=r"attention_forward: v must have shape \(\.\.\., Tk=5, Dv\)"):
        attention_forward(q, k, v[:, :4])
    with pytest.raises(ValueError, match=r"attention_forward: k must have the leading axes of q"):
        attention_forward(q, k[:1], v)
    with pytest.raises(ValueError, match=r"attention_forward: q must have shape \(\.\.\., Tq, D\)"):
        attention_forward(q[0, 0], k, v)
    with pytest.raises(ValueError, match=r"attention_forward: k must hold at least one key"):
        attention_forward(q, k[:, :0], v[:, :0])
    with pytest.raises(ValueError, match=r"attention_forward: mask leaves a query row with no key"):
        attention_forward(q, k, v, np.array(False))
    out, _ = attention_forward(q, k, v, np.array(True))           # a 0-d mask broadcasts too
    assert np.array_equal(out, attention_forward(q, k, v)[0])
    _, cache = attention_forward(q, k, v)
    with pytest.raises(ValueError, match=r"attention_backward: dout must have shape \(\.\.\., Tq, Dv\)"):
        attention_backward(np.ones(6), cache)


# ------------------------------------------------------------------ multi-head attention

def mha_inputs(rng, N, Tq, Tk, D):
    x_q, x_kv = rng.standard_normal((N, Tq, D)), rng.standard_normal((N, Tk, D))
    Ws = [rng.standard_normal((D, D)) / math.sqrt(D) for _ in range(4)]
    return [x_q, x_kv, *Ws]


def torch_mha_manual(x_q, x_kv, Wq, Wk, Wv, Wo, h, mask):
    """Multi-head attention spelled out in torch ops (explicit softmax, no SDPA)."""
    N, Tq, D = x_q.shape
    Tk, Dh = x_kv.shape[1], D // h

    def split(z, T):
        return z.reshape(N, T, h, Dh).transpose(1, 2)
    Q, K, V = split(x_q @ Wq, Tq), split(x_kv @ Wk, Tk), split(x_kv @ Wv, Tk)
    scores = Q @ K.transpose(-1, -2) / math.sqrt(Dh)
    if mask is not None:
        scores = scores.masked_fill(~torch.tensor(mask), float("-inf"))
    heads = torch.softmax(scores, dim=-1) @ V
    return heads.transpose(1, 2).reshape(N, Tq, D) @ Wo


@settings(max_examples=15, deadline=None)
@given(N=st.integers(1, 3), Tq=st.integers(1, 5), Tk=st.integers(1, 5), Dh=st.integers(1, 3),
       h=st.integers(1, 3), masked=st.booleans(), seed=st.integers(0, 2**31))
def test_mha_matches_manual_torch(N, Tq, Tk, Dh, h, masked, seed):
    rng = np.random.default_rng(seed)
    D = Dh * h
    inputs = mha_inputs(rng, N, Tq, Tk, D)
    mask = random_mask(rng, (N, 1, Tq, Tk)) if masked else None
    out, cache = multi_head_attention_forward(*inputs, h, mask)
    dout = rng.standard_normal(out.shape)
    grads = multi_head_attention_backward(dout, cache)
    ts = [torch.tensor(a, requires_grad=True) for a in inputs]
    expected = torch_mha_manual(*ts, h, mask)
    expected.backward(torch.tensor(dout))
    assert rel_error(out, expected.detach().numpy()) < 1e-10
    for name, g, t in zip(["dx_q", "dx_kv", "dWq", "dWk", "dWv", "dWo"], grads, ts):
        assert err(g, t.grad.numpy()) < 1e-12, name


def test_mha_matches_torch_module_self_attention():
    """nn.MultiheadAttention (bias=False): the other oracle. Its bool mask means "blocked"."""
    rng = np.random.default_rng(6)
    N, T, D, h = 3, 6, 8, 2
    x, _, Wq, Wk, Wv, Wo = mha_inputs(rng, N, T, T, D)
    mask = np.tril(np.ones((T, T), dtype=bool))
    out, cache = multi_head_attention_forward(x, x, Wq, Wk, Wv, Wo, h, mask)
    dout = rng.standard_normal(out.shape)
    dx_q, dx_kv, dWq, dWk, dWv, dWo = multi_head_attention_backward(dout, cache)

    mha = torch.nn.MultiheadAttention(D, h, bias=False, batch_first=True).double()
    with torch.no_grad():
        mha.in_proj_weight.copy_(torch.tensor(np.concatenate([Wq.T, Wk.T, Wv.T])))
        mha.out_proj.weight.copy_(torch.tensor(Wo.T))
    xt = torch.tensor(x, requires_grad=True)
    o, _ = mha(xt, xt, xt, attn_mask=torch.tensor(~mask), need_weights=False)
    o.backward(torch.tensor(dout))
    assert rel_error(out, o.detach().numpy()) < 1e-10
    assert err(dx_q + dx_kv, xt.grad.numpy()) < 1e-12           # self-attention: both paths
    gq, gk, gv = mha.in_proj_weight.grad.numpy().reshape(3, D, D)
    for a, e in [(dWq, gq.T), (dWk, gk.T), (dWv, gv.T), (dWo, mha.out_proj.weight.grad.numpy().T)]:
        assert err(a, e) < 1e-12


@pytest.mark.parametrize("h", [1, 4])
def test_mha_backward_numerical(h):
    rng = np.random.default_rng(h)
    N, Tq, Tk, D = 2, 3, 4, 4
    inputs = mha_inputs(rng, N, Tq, Tk, D)
    mask = random_mask(rng, (Tq, Tk))
    out, cache = multi_head_attention_forward(*inputs, h, mask)
    dout = rng.standard_normal(out.shape)
    grads = multi_head_attention_backward(dout, cache)
    for i, g in enumerate(grads):
        args = list(inputs)

        def f(z, i=i):
            args[i] = z
            return multi_head_attention_forward(*args, h, mask)[0]
        assert err(g, numerical_gradient_array(f, inputs[i].copy(), dout)) < 1e-8


def test_mha_errors():
    rng = np.random.default_rng(7)
    x_q, x_kv, Wq, Wk, Wv, Wo = mha_inputs(rng, 2, 3, 4, 6)
    with pytest.raises(ValueError, match="multi_head_attention_forward: num_heads must divide the feature size D = 6; got 4"):
        multi_head_attention_forward(x_q, x_kv, Wq, Wk, Wv, Wo, 4)
    with pytest.raises(ValueError, match="multi_head_attention_forward: num_heads must be a positive int"):
        multi_head_attention_forward(x_q, x_kv, Wq, Wk, Wv, Wo, 0)
    with pytest.raises(ValueError, match=r"multi_head_attention_forward: Wv must have shape \(D=6, D=6\)"):
        multi_head_attention_forward(x_q, x_kv, Wq, Wk, Wv[:5], Wo, 2)
    with pytest.raises(ValueError, match=r"multi_head_attention_forward: x_kv must have shape \(N=2, Tk, D=6\)"):
        multi_head_attention_forward(x_q, x_kv[:1], Wq, Wk, Wv, Wo, 2)
    with pytest.raises(ValueError, match=r"mask must be broadcastable to \(N, num_heads, Tq, Tk\) = \(2, 3, 3, 4\)"):
        multi_head_attention_forward(x_q, x_kv, Wq, Wk, Wv, Wo, 3, np.ones((2, 3, 4), dtype=bool))
    _, cache = multi_head_attention_forward(x_q, x_kv, Wq, Wk, Wv, Wo, 3)
    with pytest.raises(ValueError, match=r"multi_head_attention_backward: dout must have shape \(N, Tq, D\)"):
        multi_head_attention_backward(np.ones((3, 6)), cache)


# ------------------------------------------------------------------ positional encoding

@pytest.mark.parametrize("T,D", [(1, 1), (5, 4), (7, 5), (50, 16), (3, 1), (0, 3)])
def test_positional_encoding_formula(T, D):
    pe = positional_encoding(T, D)
    assert pe.shape == (T, D)
    expected = np.empty((T, D))
    for t in range(T):
        for j in range(D):
            i2 = j - j % 2                                   # the 2i of this column's pair
            angle = t / 10000 ** (i2 / D)
            expected[t, j] = math.sin(angle) if j % 2 == 0 else math.cos(angle)
    assert np.allclose(pe, expected, rtol=0, atol=1e-13)


def test_positional_encoding_properties():
    pe = positional_encoding(64, 10)
    assert np.array_equal(pe[0], np.tile([0.0, 1.0], 5))         # sin 0, cos 0
    assert np.all(np.abs(pe) <= 1.0)
    assert len({tuple(np.round(r, 12)) for r in pe}) == 64        # every position distinct
    # A shift by k is a rotation of every (sin, cos) pair by k * frequency
    k = 5
    freq = 1.0 / 10000 ** (np.arange(0, 10, 2) / 10)
    c, s = np.cos(k * freq), np.sin(k * freq)
    sin_t, cos_t = pe[:-k, 0::2], pe[:-k, 1::2]
    assert np.allclose(pe[k:, 0::2], sin_t * c + cos_t * s, atol=1e-12)
    assert np.allclose(pe[k:, 1::2], cos_t * c - sin_t * s, atol=1e-12)


def test_positional_encoding_errors():
    with pytest.raises(ValueError, match="positional_encoding: D must be an int >= 1"):
        positional_encoding(4, 0)
    with pytest.raises(ValueError, match="positional_encoding: T must be an int >= 0"):
        positional_encoding(-1, 4)
    with pytest.raises(ValueError, match="positional_encoding: T must be an int"):
        positional_encoding(2.5, 4)
