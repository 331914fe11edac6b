"""Scaled dot-product attention, multi-head attention and sinusoidal positional encoding.

Attention is a soft dictionary look-up. Each query is compared with every key; the softmax of
the scores says how much of each value to take::

    S = Q K^T / sqrt(D)        (..., Tq, Tk)   scores
    P = softmax(S) along keys  (..., Tq, Tk)   every row sums to 1
    out = P V                  (..., Tq, Dv)

Why divide by sqrt(D): for queries and keys with independent unit-variance entries, q . k has
variance D, so without the scaling the softmax saturates as D grows (one weight near 1, the
rest near 0) and its gradient vanishes.

A mask removes keys: where it is False, the score becomes -inf and the weight exactly 0
(a causal mask lets query t see keys 0..t only). The mask follows PyTorch's
``scaled_dot_product_attention`` with a boolean ``attn_mask``: True means "may attend".
"""
from __future__ import annotations

import numpy as np

from dlhw.validation import as_array, require_shape, shape_str

__all__ = ["attention_forward", "attention_backward", "multi_head_attention_forward",
           "multi_head_attention_backward", "positional_encoding"]


def attention_forward(q, k, v, mask=None):
    """Scaled dot-product attention ``softmax(q k^T / sqrt(D)) v``, with an optional mask.

    Any leading axes (batch, heads, ...) are allowed; they must be the same for q, k and v.

    Parameters
    ----------
    q : array of shape (..., Tq, D), queries
    k : array of shape (..., Tk, D), keys
    v : array of shape (..., Tk, Dv), values
    mask : None or boolean array broadcastable to (..., Tq, Tk), e.g. (Tq, Tk) for a causal
        mask; True where the query may attend to the key (as PyTorch's
        ``scaled_dot_product_attention`` with a boolean ``attn_mask``). Every query must keep at
        least one key: PyTorch returns NaN for a fully masked row, this function raises a
        ValueError instead, since such a row has no meaningful softmax.

    Returns
    -------
    out : array of shape (..., Tq, Dv)
    cache : what ``attention_backward`` needs
    """
    fn = "attention_forward"
    q, k, v = as_array(fn, "q", q), as_array(fn, "k", k), as_array(fn, "v", v)
    sizes = require_shape(fn, "q", q, (..., "Tq", "D"))
    require_shape(fn, "k", k, (..., "Tk", "D"), sizes)
    require_shape(fn, "v", v, (..., "Tk", "Dv"), sizes)
    lead = q.shape[:-2]
    for name, arr in (("k", k), ("v", v)):
        if arr.shape[:-2] != lead:
            raise ValueError(f"{fn}: {name} must have the leading axes of q, "
                             f"{shape_str(lead)} followed by (Tk, D) for k or (Tk, Dv) for v; "
                             f"got {shape_str(arr.shape)}")
    if sizes["Tk"] == 0 or sizes["D"] == 0:
        raise ValueError(f"{fn}: k must hold at least one key of at least one feature, shape "
                         f"(..., Tk >= 1, D >= 1); got {shape_str(k.shape)}")
    if mask is not None:
        mask = np.asarray(mask)
        full = lead + (sizes["Tq"], sizes["Tk"])
        if mask.dtype != np.bool_:
            raise ValueError(f"{fn}: mask must be a boolean array (True = may attend); "
                             f"got dtype {mask.dtype}")
        try:
            ok = np.broadcast_shapes(mask.shape, full) == full
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(f"{fn}: mask must be broadcastable to (..., Tq, Tk) = "
                             f"{shape_str(full)}; got {shape_str(mask.shape)}")
        # Broadcasting only repeats rows, so checking the mask as given checks every row
        if not np.atleast_1d(mask).any(axis=-1).all():
            raise ValueError(f"{fn}: mask leaves a query row with no key to attend to (all "
                             "False along the last axis); every query needs at least one True")
    ### BEGIN SOLUTION
    scale = 1.0 / np.sqrt(q.shape[-1])
    p = q @ np.swapaxes(k, -1, -2)                # scores, (..., Tq, Tk); matmul over the batch
    p *= scale
    if mask is not None:
        np.copyto(p, -np.inf, where=~mask)        # exp(-inf) = 0: masked keys get no weight
    # Softmax in place: subtracting the row max keeps exp from overflowing and changes nothing
    # (every row has a finite max because every row keeps a key)
    p -= p.max(axis=-1, keepdims=True)
    np.exp(p, out=p)
    p /= p.sum(axis=-1, keepdims=True)
    out = p @ v
    cache = (q, k, v, p, out, scale)
    ### END SOLUTION
    return out, cache


def attention_backward(dout, cache):
    """Backward pass of ``attention_forward``.

    Parameters
    ----------
    dout : array of shape (..., Tq, Dv), gradient of the loss with respect to out
    cache : the cache returned by ``attention_forward``

    Returns
    -------
    dq : array of shape (..., Tq, D)
    dk : array of shape (..., Tk, D)
    dv : array of shape (..., Tk, Dv)
    """
    dout = as_array("attention_backward", "dout", dout)
    require_shape("attention_backward", "dout", dout, (..., "Tq", "Dv"))
    ### BEGIN SOLUTION
    q, k, v, p, out, scale = cache
    dv = np.swapaxes(p, -1, -2) @ dout
    dp = dout @ np.swapaxes(v, -1, -2)            # (..., Tq, Tk)
    # Softmax backward, row by row: ds_j = p_j (dp_j - sum_l p_l dp_l). The row sum
    # sum_l p_l (dout . v_l) equals dout . out, which is cheaper (Dv terms instead of Tk).
    dp -= np.sum(dout * out, axis=-1, keepdims=True)
    dp *= p                                       # masked entries have p = 0: no gradient
    dp *= scale                                   # through S = scale * q k^T
    dq = dp @ k
    dk = np.swapaxes(dp, -1, -2) @ q
    ### END SOLUTION
    return dq, dk, dv


def multi_head_attention_forward(x_q, x_kv, Wq, Wk, Wv, Wo, num_heads, mask=None):
    """Multi-head attention without biases: queries from x_q, keys and values from x_kv.

    Q = x_q Wq, K = x_kv Wk and V = x_kv Wv are split along the feature axis into num_heads
    heads of size Dh = D / num_heads; each head runs ``attention_forward`` on its own slice
    (scaled by 1 / sqrt(Dh)); the heads' outputs are concatenated and projected by Wo.
    Self-attention is ``x_q is x_kv``; the caller then adds dx_q and dx_kv.

    Parameters
    ----------
    x_q : array of shape (N, Tq, D), the sequence that asks
    x_kv : array of shape (N, Tk, D), the sequence attended to
    Wq, Wk, Wv : arrays of shape (D, D), projections to queries, keys, values
    Wo : array of shape (D, D), output projection
    num_heads : int dividing D
    mask : None or boolean array broadcastable to (N, num_heads, Tq, Tk), e.g. (Tq, Tk) for a
        causal mask or (N, 1, 1, Tk) for padding; True = may attend (see ``attention_forward``)

    Returns
    -------
    out : array of shape (N, Tq, D)
    cache : what ``multi_head_attention_backward`` needs
    """
    fn = "multi_head_attention_forward"
    x_q, x_kv = as_array(fn, "x_q", x_q), as_array(fn, "x_kv", x_kv)
    Ws = [as_array(fn, name, W) for name, W in (("Wq", Wq), ("Wk", Wk), ("Wv", Wv), ("Wo", Wo))]
    sizes = require_shape(fn, "x_q", x_q, ("N", "Tq", "D"))
    require_shape(fn, "x_kv", x_kv, ("N", "Tk", "D"), sizes)
    for name, W in zip(("Wq", "Wk", "Wv", "Wo"), Ws):
        require_shape(fn, name, W, ("D", "D"), sizes)
    Wq, Wk, Wv, Wo = Ws
    D = sizes["D"]
    if isinstance(num_heads, bool) or not isinstance(num_heads, (int, np.integer)) or num_heads < 1:
        raise ValueError(f"{fn}: num_heads must be a positive int; got {num_heads!r}")
    if D % num_heads:
        raise ValueError(f"{fn}: num_heads must divide the feature size D = {D}; got {num_heads}")
    if mask is not None:
        mask = np.asarray(mask)
        full = (sizes["N"], num_heads, sizes["Tq"], sizes["Tk"])
        try:
            ok = np.broadcast_shapes(mask.shape, full) == full
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(f"{fn}: mask must be broadcastable to (N, num_heads, Tq, Tk) = "
                             f"{shape_str(full)}; got {shape_str(mask.shape)}")
    ### BEGIN SOLUTION
    N, Tq, _ = x_q.shape
    Tk = x_kv.shape[1]
    Dh = D // num_heads

    # (N, T, D) -> (N, heads, T, Dh): head j owns features j*Dh .. (j+1)*Dh - 1
    Q = (x_q @ Wq).reshape(N, Tq, num_heads, Dh).transpose(0, 2, 1, 3)
    K = (x_kv @ Wk).reshape(N, Tk, num_heads, Dh).transpose(0, 2, 1, 3)
    V = (x_kv @ Wv).reshape(N, Tk, num_heads, Dh).transpose(0, 2, 1, 3)
    heads, attn_cache = attention_forward(Q, K, V, mask)          # (N, heads, Tq, Dh)
    concat = heads.transpose(0, 2, 1, 3).reshape(N, Tq, D)        # heads side by side again
    out = concat @ Wo
    cache = (x_q, x_kv, Wq, Wk, Wv, Wo, num_heads, attn_cache, concat)
    ### END SOLUTION
    return out, cache


def multi_head_attention_backward(dout, cache):
    """Backward pass of ``multi_head_attention_forward``.

    Parameters
    ----------
    dout : array of shape (N, Tq, D), gradient of the loss with respect to out
    cache : the cache returned by ``multi_head_attention_forward``

    Returns
    -------
    dx_q : array of shape (N, Tq, D)
    dx_kv : array of shape (N, Tk, D)
    dWq, dWk, dWv, dWo : arrays of shape (D, D)
    """
    dout = as_array("multi_head_attention_backward", "dout", dout)
    require_shape("multi_head_attention_backward", "dout", dout, ("N", "Tq", "D"))
    ### BEGIN SOLUTION
    x_q, x_kv, Wq, Wk, Wv, Wo, num_heads, attn_cache, concat = cache
    N, Tq, D = x_q.shape
    Tk = x_kv.shape[1]
    Dh = D // num_heads

    dWo = concat.reshape(-1, D).T @ dout.reshape(-1, D)
    dheads = (dout @ Wo.T).reshape(N, Tq, num_heads, Dh).transpose(0, 2, 1, 3)
    dQ, dK, dV = attention_backward(dheads, attn_cache)
    # back from (N, heads, T, Dh) to (N T, D) rows, then through the projections
    dQ = dQ.transpose(0, 2, 1, 3).reshape(N * Tq, D)
    dK = dK.transpose(0, 2, 1, 3).reshape(N * Tk, D)
    dV = dV.transpose(0, 2, 1, 3).reshape(N * Tk, D)
    xq2, xkv2 = x_q.reshape(-1, D), x_kv.reshape(-1, D)
    dWq = xq2.T @ dQ
    dWk = xkv2.T @ dK
    dWv = xkv2.T @ dV
    dx_q = (dQ @ Wq.T).reshape(N, Tq, D)
    dx_kv = (dK @ Wk.T + dV @ Wv.T).reshape(N, Tk, D)   # x_kv feeds both K and V
    ### END SOLUTION
    return dx_q, dx_kv, dWq, dWk, dWv, dWo


def positional_encoding(T, D):
    """Sinusoidal positional encoding of the Transformer paper (and the notes).

    ``PE[t, 2i] = sin(t / 10000^(2i / D))`` and ``PE[t, 2i + 1] = cos(t / 10000^(2i / D))``:
    each pair of columns is a sine/cosine of one frequency, the frequencies falling
    geometrically from 1 to about 1/10000, so that every position gets a distinct code and
    PE[t + k] is a fixed linear function (a rotation per pair) of PE[t]. For odd D the last
    column is a sine without its cosine partner.

    Parameters
    ----------
    T : int >= 0, number of positions (t = 0 .. T - 1)
    D : int >= 1, model (feature) size

    Returns
    -------
    pe : array of shape (T, D)
    """
    fn = "positional_encoding"
    for name, val, low in (("T", T, 0), ("D", D, 1)):
        if isinstance(val, bool) or not isinstance(val, (int, np.integer)) or val < low:
            raise ValueError(f"{fn}: {name} must be an int >= {low}; got {val!r}")
    ### BEGIN SOLUTION
    two_i = np.arange(0, D, 2)                                 # 2i of every sine column
    angle = np.arange(T)[:, None] / 10000.0 ** (two_i / D)     # (T, ceil(D / 2))
    pe = np.empty((T, D))
    pe[:, 0::2] = np.sin(angle)
    pe[:, 1::2] = np.cos(angle[:, :D // 2])                    # odd D: one cosine fewer
    ### END SOLUTION
    return pe
