"""dlhw.nn.transformer against a PyTorch re-implementation of the pre-LN block, autograd and
numerical gradients."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st

from dlhw.gradcheck import numerical_gradient_array
from dlhw.nn.transformer import (init_transformer_block_params, transformer_block_backward,
                                 transformer_block_forward)

KEYS = ("ln1_gamma", "ln1_beta", "Wq", "Wk", "Wv", "Wo", "ln2_gamma", "ln2_beta", "W1", "b1", "W2", "b2")


def err(a, b):
    """Normwise error, max |a - b| over max |b|, floored at 1: the values are of order 1, and a
    gradient that is zero in exact arithmetic (layernorm over one feature) carries ~1e-13 of
    rounding in PyTorch (hypothesis found ln2_gamma's -2.7e-13 against our exact 0)."""
    assert a.shape == b.shape
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1.0))


def random_params(rng, D, F_):
    """Initial parameters, then perturbed so that gammas, betas and biases are not trivial."""
    p = init_transformer_block_params(D, F_, rng)
    return {k: v + 0.2 * rng.standard_normal(v.shape) for k, v in p.items()}


def torch_block(x, p, h, mask):
    """The pre-LN block in torch: layer_norm, explicit multi-head softmax attention, MLP."""
    N, T, D = x.shape
    Dh = D // h

    def split(z):
        return z.reshape(N, T, h, Dh).transpose(1, 2)
    a = F.layer_norm(x, (D,), p["ln1_gamma"], p["ln1_beta"], eps=1e-5)
    Q, K, V = split(a @ p["Wq"]), split(a @ p["Wk"]), split(a @ p["Wv"])
    s = Q @ K.transpose(-1, -2) / math.sqrt(Dh)
    if mask is not None:
        s = s.masked_fill(~torch.tensor(mask), float("-inf"))
    att = (torch.softmax(s, dim=-1) @ V).transpose(1, 2).reshape(N, T, D) @ p["Wo"]
    hid = x + att
    z = F.layer_norm(hid, (D,), p["ln2_gamma"], p["ln2_beta"], eps=1e-5)
    return hid + torch.relu(z @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"]


def compare(x, params, h, mask, rng):
    out, cache = transformer_block_forward(x, params, h, mask)
    dout = rng.standard_normal(out.shape)
    dx, grads = transformer_block_backward(dout, cache)
    assert sorted(grads) == sorted(params)
    tp = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    xt = torch.tensor(x, requires_grad=True)
    expected = torch_block(xt, tp, h, mask)
    expected.backward(torch.tensor(dout))
    assert err(out, expected.detach().numpy()) < 1e-12
    assert err(dx, xt.grad.numpy()) < 1e-11
    for k in params:
        assert grads[k].shape == params[k].shape, k
        assert err(grads[k], tp[k].grad.numpy()) < 1e-11, k


@settings(max_examples=15, deadline=None)
@given(N=st.integers(1, 3), T=st.integers(1, 5), Dh=st.integers(1, 3), h=st.integers(1, 3),
       F_=st.integers(1, 8), causal=st.booleans(), seed=st.integers(0, 2**31))
def test_matches_torch(N, T, Dh, h, F_, causal, seed):
    rng = np.random.default_rng(seed)
    D = Dh * h          # D = 1 is degenerate (layer norm outputs beta) but must still agree
    x = rng.standard_normal((N, T, D))
    mask = np.tril(np.ones((T, T), dtype=bool)) if causal else None
    compare(x, random_params(rng, D, F_), h, mask, rng)


def test_sequence_of_length_one_and_padding_mask():
    rng = np.random.default_rng(0)
    compare(rng.standard_normal((2, 1, 4)), random_params(rng, 4, 6), 2, None, rng)
    mask = np.ones((3, 1, 1, 5), dtype=bool)               # per-sequence padding of keys
    mask[0, ..., 3:] = False
    mask[1, ..., 1:] = False
    compare(rng.standard_normal((3, 5, 4)), random_params(rng, 4, 6), 2, mask, rng)


def test_backward_numerical():
    rng = np.random.default_rng(1)
    N, T, D, F_, h = 2, 3, 4, 5, 2
    x = rng.standard_normal((N, T, D))
    params = random_params(rng, D, F_)
    mask = np.tril(np.ones((T, T), dtype=bool))
    out, cache = transformer_block_forward(x, params, h, mask)
    dout = rng.standard_normal(out.shape)
    dx, grads = transformer_block_backward(dout, cache)
    num = numerical_gradient_array(lambda z: transformer_block_forward(z, params, h, mask)[0], x.copy(), dout)
    assert err(dx, num) < 1e-8
    for k in KEYS:
        p = dict(params)

        def f(z, k=k):
            p[k] = z
            return transformer_block_forward(x, p, h, mask)[0]
        assert err(grads[k], numerical_gradient_array(f, params[k].copy(), dout)) < 1e-8, k


def test_init_params():
    p = init_transformer_block_params(8, 32, np.random.default_rng(0))
    assert list(p) == list(KEYS)
    shapes = {"ln1_gamma": (8,), "ln1_beta": (8,), "Wq": (8, 8), "Wk": (8, 8), "Wv": (8, 8),
              "Wo": (8, 8), "ln2_gamma": (8,), "ln2_beta": (8,), "W1": (8, 32), "b1": (32,),
              "W2": (32, 8), "b2": (8,)}
    assert {k: v.shape for k, v in p.items()} == shapes
    assert np.all(p["ln1_gamma"] == 1) and np.all(p["ln2_beta"] == 0) and np.all(p["b1"] == 0)
    q = init_transformer_block_params(8, 32, 0)                    # an int seed works too
    assert all(np.array_equal(p[k], q[k]) for k in p)
    big = init_transformer_block_params(256, 512, 1)
    assert abs(big["Wq"].std() - 1 / 16) < 0.01 and abs(big["W1"].std() - math.sqrt(2 / 256)) < 0.01
    with pytest.raises(ValueError, match="init_transformer_block_params: hidden must be an int >= 1"):
        init_transformer_block_params(8, 0)


def test_transformer_errors():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 4))
    params = random_params(rng, 4, 6)
    missing = {k: v for k, v in params.items() if k != "ln2_beta"}
    with pytest.raises(ValueError, match=r"transformer_block_forward: params is missing the key\(s\) \['ln2_beta'\]"):
        transformer_block_forward(x, missing, 2)
    bad = dict(params, b1=np.zeros(5))
    with pytest.raises(ValueError, match=r"transformer_block_forward: params\['b1'\] must have shape \(F=6,\)"):
        transformer_block_forward(x, bad, 2)
    bad = dict(params, W2=np.zeros((6, 3)))
    with pytest.raises(ValueError, match=r"transformer_block_forward: params\['W2'\] must have shape \(F=6, D=4\)"):
        transformer_block_forward(x, bad, 2)
    with pytest.raises(ValueError, match=r"transformer_block_forward: x must have shape \(N, T, D\)"):
        transformer_block_forward(x[0], params, 2)
    with pytest.raises(ValueError, match="num_heads must divide the feature size D = 4; got 3"):
        transformer_block_forward(x, params, 3)
    _, cache = transformer_block_forward(x, params, 2)
    with pytest.raises(ValueError, match=r"transformer_block_backward: dout must have shape \(N, T, D\)"):
        transformer_block_backward(np.ones((3, 4)), cache)
