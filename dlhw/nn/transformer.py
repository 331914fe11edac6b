"""A pre-LN transformer block built from the graded layers.

    h   = x + MHA(LN1(x))                                 self-attention, residual
    out = h + relu(LN2(h) W1 + b1) W2 + b2                position-wise feed-forward, residual

"Pre-LN" puts the layer norms inside the residual branches (the original paper put them after
the additions). The residual path x -> h -> out is then a plain sum, so gradients reach early
blocks undamped, and deep stacks train without a learning-rate warm-up being critical.

The feed-forward network acts on every position alone: the (N, T, D) activations are viewed as
N T rows of D features, so the affine layers (which flatten each example) see (N T, D).
"""
from __future__ import annotations

import numpy as np

from dlhw.nn.attention import multi_head_attention_backward, multi_head_attention_forward
from dlhw.nn.layers import affine_backward, affine_forward, relu_backward, relu_forward
from dlhw.nn.normalization import layernorm_backward, layernorm_forward
from dlhw.validation import as_array, require_keys, require_shape

__all__ = ["transformer_block_forward", "transformer_block_backward", "init_transformer_block_params"]


def init_transformer_block_params(D, hidden, rng=None):
    """Initial parameters of a transformer block, the dict ``transformer_block_forward`` takes.

    Layer norms start as the identity (gamma = 1, beta = 0) and biases at 0. The attention
    projections are drawn from N(0, 1/D) (Xavier/Glorot for a square matrix, so the variance of
    activations is kept); W1 feeds a relu and gets Kaiming's N(0, 2/D); W2 gets N(0, 1/hidden).

    Parameters
    ----------
    D : int >= 1, model (feature) size
    hidden : int >= 1, width of the feed-forward layer (typically 4 D)
    rng : numpy Generator, an int seed, or None (a fresh unseeded generator)

    Returns
    -------
    params : dict with 'ln1_gamma', 'ln1_beta' (D,); 'Wq', 'Wk', 'Wv', 'Wo' (D, D);
        'ln2_gamma', 'ln2_beta' (D,); 'W1' (D, hidden); 'b1' (hidden,); 'W2' (hidden, D);
        'b2' (D,)
    """
    for name, val in (("D", D), ("hidden", hidden)):
        if isinstance(val, bool) or not isinstance(val, (int, np.integer)) or val < 1:
            raise ValueError(f"init_transformer_block_params: {name} must be an int >= 1; got {val!r}")
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    params = {"ln1_gamma": np.ones(D), "ln1_beta": np.zeros(D)}
    for name in ("Wq", "Wk", "Wv", "Wo"):
        params[name] = rng.normal(0.0, np.sqrt(1.0 / D), size=(D, D))
    params.update(ln2_gamma=np.ones(D), ln2_beta=np.zeros(D),
                  W1=rng.normal(0.0, np.sqrt(2.0 / D), size=(D, hidden)), b1=np.zeros(hidden),
                  W2=rng.normal(0.0, np.sqrt(1.0 / hidden), size=(hidden, D)), b2=np.zeros(D))
    return params


def transformer_block_forward(x, params, num_heads, mask=None):
    """Forward pass of a pre-LN transformer block (self-attention and feed-forward).

    Parameters
    ----------
    x : array of shape (N, T, D)
    params : dict with 'ln1_gamma', 'ln1_beta' (D,); 'Wq', 'Wk', 'Wv', 'Wo' (D, D);
        'ln2_gamma', 'ln2_beta' (D,); 'W1' (D, F); 'b1' (F,); 'W2' (F, D); 'b2' (D,), F being
        the feed-forward width (see ``init_transformer_block_params``)
    num_heads : int dividing D
    mask : None or boolean array broadcastable to (N, num_heads, T, T), True = may attend,
        e.g. a (T, T) causal mask (see ``multi_head_attention_forward``)

    Returns
    -------
    out : array of shape (N, T, D)
    cache : what ``transformer_block_backward`` needs
    """
    fn = "transformer_block_forward"
    x = as_array(fn, "x", x)
    # every parameter and its shape; F is the feed-forward width, bound by W1
    shapes = {"ln1_gamma": ("D",), "ln1_beta": ("D",), "Wq": ("D", "D"), "Wk": ("D", "D"),
              "Wv": ("D", "D"), "Wo": ("D", "D"), "ln2_gamma": ("D",), "ln2_beta": ("D",),
              "W1": ("D", "F"), "b1": ("F",), "W2": ("F", "D"), "b2": ("D",)}
    require_keys(fn, "params", params, shapes)
    p = {key: as_array(fn, f"params['{key}']", params[key]) for key in shapes}
    sizes = require_shape(fn, "x", x, ("N", "T", "D"))
    require_shape(fn, "params['W1']", p["W1"], ("D", "F"), sizes)
    for key, shape in shapes.items():
        require_shape(fn, f"params['{key}']", p[key], shape, sizes)
    if isinstance(num_heads, bool) or not isinstance(num_heads, (int, np.integer)) or num_heads < 1:
        raise ValueError(f"{fn}: num_heads must be a positive int; got {num_heads!r}")
    if sizes["D"] % num_heads:
        raise ValueError(f"{fn}: num_heads must divide the feature size D = {sizes['D']}; "
                         f"got {num_heads}")
    ### BEGIN SOLUTION
    N, T, D = x.shape
    ln = {"eps": 1e-5}
    # attention sub-layer: normalize, attend (queries, keys and values from the same input)
    a, ln1_cache = layernorm_forward(x, p["ln1_gamma"], p["ln1_beta"], ln)
    a, mha_cache = multi_head_attention_forward(a, a, p["Wq"], p["Wk"], p["Wv"], p["Wo"],
                                                num_heads, mask)
    h = x + a
    # feed-forward sub-layer, on N T rows of D features
    z, ln2_cache = layernorm_forward(h.reshape(N * T, D), p["ln2_gamma"], p["ln2_beta"], ln)
    z, fc1_cache = affine_forward(z, p["W1"], p["b1"])
    z, relu_cache = relu_forward(z)
    z, fc2_cache = affine_forward(z, p["W2"], p["b2"])
    out = h + z.reshape(N, T, D)
    cache = (x.shape, ln1_cache, mha_cache, ln2_cache, fc1_cache, relu_cache, fc2_cache)
    ### END SOLUTION
    return out, cache


def transformer_block_backward(dout, cache):
    """Backward pass of ``transformer_block_forward``.

    Parameters
    ----------
    dout : array of shape (N, T, D), gradient of the loss with respect to out
    cache : the cache returned by ``transformer_block_forward``

    Returns
    -------
    dx : array of shape (N, T, D)
    grads : dict with the keys of params, each gradient of its parameter's shape
    """
    dout = as_array("transformer_block_backward", "dout", dout)
    require_shape("transformer_block_backward", "dout", dout, ("N", "T", "D"))
    ### BEGIN SOLUTION
    x_shape, ln1_cache, mha_cache, ln2_cache, fc1_cache, relu_cache, fc2_cache = cache
    N, T, D = x_shape
    grads = {}
    # out = h + FFN(h): the residual passes dout to h unchanged, the branch adds its part
    dz, grads["W2"], grads["b2"] = affine_backward(dout.reshape(N * T, D), fc2_cache)
    dz = relu_backward(dz, relu_cache)
    dz, grads["W1"], grads["b1"] = affine_backward(dz, fc1_cache)
    dz, grads["ln2_gamma"], grads["ln2_beta"] = layernorm_backward(dz, ln2_cache)
    dh = dout + dz.reshape(N, T, D)
    # h = x + MHA(LN1(x)): LN1(x) fed queries, keys and values, so its gradients add up
    dq, dkv, grads["Wq"], grads["Wk"], grads["Wv"], grads["Wo"] = multi_head_attention_backward(dh, mha_cache)
    da, grads["ln1_gamma"], grads["ln1_beta"] = layernorm_backward(dq + dkv, ln1_cache)
    dx = dh + da
    ### END SOLUTION
    return dx, grads
