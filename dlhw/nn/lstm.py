"""Long short-term memory (LSTM): gates, a cell state, and their backward pass.

One step, with rows as examples and the four gates stacked along one 4H axis::

    a = x Wx + prev_h Wh + b                    (N, 4H), blocks [a_i | a_f | a_o | a_g]
    i = sigmoid(a_i)   input gate               (N, H)
    f = sigmoid(a_f)   forget gate
    o = sigmoid(a_o)   output gate
    g = tanh(a_g)      candidate cell update
    next_c = f * prev_c + i * g
    next_h = o * tanh(next_c)

The gate order i, f, o, g is the lecture notes' (and most numpy courses'); PyTorch's
``nn.LSTM`` stacks i, f, g, o, so comparisons with it permute the last two blocks.

The cell state is the "gradient highway": dprev_c = f * dnext_c involves no weight matrix and
no squashing derivative, so with f close to 1 gradients survive many steps.

A note on the lecture notes' ``lstm_step_backward`` (kept for a later notebook that asks
students to find its slips; do not copy it):

1. ``dag = (1 - np.tanh(ag)) ** 2 * dg`` squares the wrong thing. The derivative of tanh is
   ``1 - tanh(a)^2``, i.e. ``(1 - g ** 2) * dg``. The slip gives (1 - g)^2, which agrees with
   1 - g^2 only at g = 0 (and in the limit g -> 1), so the gradients of the g block of Wx, Wh
   and b, and dx and dprev_h, are wrong.
2. ``dnext_c += o * (1 - np.tanh(next_c) ** 2) * dnext_h`` adds into the caller's array in
   place: the gradient passed in is silently changed, so two calls with the same arrays give
   two different answers, and a caller who reuses its array (a numerical gradient check, a
   sequence loop that keeps it) works with a corrupted gradient. Use a new variable.
3. ``dprev_h = da.dot(Wh.T, da.T)`` passes ``da.T`` as the ``out`` argument of ``ndarray.dot``,
   which numpy rejects ("output array is not acceptable": wrong shape, not C-contiguous). The
   product is just ``da @ Wh.T``.
4. As printed, its docstring is never closed, and it recomputes sigmoid(ai) etc. although i, f, o are in
   the cache (harmless but wasteful).
"""
from __future__ import annotations

import numpy as np

from dlhw.validation import as_array, require_shape, shape_str

__all__ = ["lstm_step_forward", "lstm_step_backward", "lstm_forward", "lstm_backward"]


def lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b):
    """One time step of an LSTM (gates i, f, o, g along the 4H axis).

    Parameters
    ----------
    x : array of shape (N, D), the inputs at this step
    prev_h : array of shape (N, H), previous hidden state
    prev_c : array of shape (N, H), previous cell state
    Wx : array of shape (D, 4H), input-to-hidden weights
    Wh : array of shape (H, 4H), hidden-to-hidden weights
    b : array of shape (4H,), biases

    Returns
    -------
    next_h : array of shape (N, H)
    next_c : array of shape (N, H)
    cache : what ``lstm_step_backward`` needs
    """
    fn = "lstm_step_forward"
    x, prev_h, prev_c = as_array(fn, "x", x), as_array(fn, "prev_h", prev_h), as_array(fn, "prev_c", prev_c)
    Wx, Wh, b = as_array(fn, "Wx", Wx), as_array(fn, "Wh", Wh), as_array(fn, "b", b)
    sizes = require_shape(fn, "x", x, ("N", "D"))
    require_shape(fn, "prev_h", prev_h, ("N", "H"), sizes)
    require_shape(fn, "prev_c", prev_c, ("N", "H"), sizes)
    sizes["4H"] = 4 * sizes["H"]
    require_shape(fn, "Wx", Wx, ("D", "4H"), sizes)
    require_shape(fn, "Wh", Wh, ("H", "4H"), sizes)
    require_shape(fn, "b", b, ("4H",), sizes)
    ### BEGIN SOLUTION
    H = prev_h.shape[1]
    gates = x @ Wx + prev_h @ Wh + b                  # pre-activations, (N, 4H)
    # sigmoid(a) = 1 / (1 + exp(-a)). For a < -709, exp(-a) overflows to inf and 1 / inf = 0
    # is the right limit, so the overflow warning is silenced, not the result changed.
    with np.errstate(over="ignore"):
        gates[:, :3 * H] = 1.0 / (1.0 + np.exp(-gates[:, :3 * H]))
    gates[:, 3 * H:] = np.tanh(gates[:, 3 * H:])
    i, f, o, g = gates[:, :H], gates[:, H:2 * H], gates[:, 2 * H:3 * H], gates[:, 3 * H:]
    next_c = f * prev_c + i * g
    tanh_c = np.tanh(next_c)
    next_h = o * tanh_c
    # The gate activations suffice for the derivatives: sigmoid' = s (1 - s), tanh' = 1 - t^2
    cache = (x, prev_h, prev_c, Wx, Wh, gates, tanh_c)
    ### END SOLUTION
    return next_h, next_c, cache


def lstm_step_backward(dnext_h, dnext_c, cache):
    """Backward pass of ``lstm_step_forward``.

    Parameters
    ----------
    dnext_h : array of shape (N, H), gradient of the loss with respect to next_h
    dnext_c : array of shape (N, H), gradient with respect to next_c (from the next step);
        not modified
    cache : the cache returned by ``lstm_step_forward``

    Returns
    -------
    dx : array of shape (N, D)
    dprev_h : array of shape (N, H)
    dprev_c : array of shape (N, H)
    dWx : array of shape (D, 4H)
    dWh : array of shape (H, 4H)
    db : array of shape (4H,)
    """
    fn = "lstm_step_backward"
    dnext_h, dnext_c = as_array(fn, "dnext_h", dnext_h), as_array(fn, "dnext_c", dnext_c)
    sizes = require_shape(fn, "dnext_h", dnext_h, ("N", "H"))
    require_shape(fn, "dnext_c", dnext_c, ("N", "H"), sizes)
    ### BEGIN SOLUTION
    x, prev_h, prev_c, Wx, Wh, gates, tanh_c = cache
    H = prev_h.shape[1]
    i, f, o, g = gates[:, :H], gates[:, H:2 * H], gates[:, 2 * H:3 * H], gates[:, 3 * H:]
    # next_c reaches the loss directly (dnext_c) and through next_h = o * tanh(next_c).
    # A new array: adding into dnext_c in place would change the caller's gradient.
    dc = dnext_c + dnext_h * o * (1.0 - tanh_c ** 2)
    dgates = np.empty_like(gates)     # gradients of the activated gates i, f, o, g ...
    dgates[:, :H] = dc * g
    dgates[:, H:2 * H] = dc * prev_c
    dgates[:, 2 * H:3 * H] = dnext_h * tanh_c
    dgates[:, 3 * H:] = dc * i
    # ... and then of their pre-activations: sigmoid' = s (1 - s), tanh' = 1 - tanh^2
    s = gates[:, :3 * H]
    dgates[:, :3 * H] *= s * (1.0 - s)
    dgates[:, 3 * H:] *= 1.0 - g ** 2
    dprev_c = dc * f
    dx = dgates @ Wx.T
    dprev_h = dgates @ Wh.T
    dWx = x.T @ dgates
    dWh = prev_h.T @ dgates
    db = dgates.sum(axis=0)
    ### END SOLUTION
    return dx, dprev_h, dprev_c, dWx, dWh, db


def lstm_forward(x, h0, Wx, Wh, b):
    """An LSTM run over a whole sequence, from hidden state h0 and cell state c0 = 0.

    Parameters
    ----------
    x : array of shape (N, T, D), the input sequences
    h0 : array of shape (N, H), the initial hidden state
    Wx : array of shape (D, 4H), input-to-hidden weights (gates i, f, o, g)
    Wh : array of shape (H, 4H), hidden-to-hidden weights
    b : array of shape (4H,), biases

    Returns
    -------
    h : array of shape (N, T, H), the hidden states h_1 ... h_T
    cache : what ``lstm_backward`` needs
    """
    fn = "lstm_forward"
    x, h0 = as_array(fn, "x", x), as_array(fn, "h0", h0)
    Wx, Wh, b = as_array(fn, "Wx", Wx), as_array(fn, "Wh", Wh), as_array(fn, "b", b)
    sizes = require_shape(fn, "x", x, ("N", "T", "D"))
    if sizes["T"] == 0:
        raise ValueError(f"{fn}: x must have shape (N, T, D) with T >= 1 time steps; got {shape_str(x.shape)}")
    require_shape(fn, "h0", h0, ("N", "H"), sizes)
    sizes["4H"] = 4 * sizes["H"]
    require_shape(fn, "Wx", Wx, ("D", "4H"), sizes)
    require_shape(fn, "Wh", Wh, ("H", "4H"), sizes)
    require_shape(fn, "b", b, ("4H",), sizes)
    ### BEGIN SOLUTION
    N, T, _ = x.shape
    H = h0.shape[1]
    # Time-major storage, so that each step reads and writes contiguous (N, ...) blocks.
    # The input part x_t Wx + b of every step is one matmul over all (T N) rows; only
    # prev_h Wh has to wait for the previous step.
    gates = (x.transpose(1, 0, 2).reshape(T * N, -1) @ Wx + b).reshape(T, N, 4 * H)
    c = np.empty((T, N, H))
    tanh_c = np.empty((T, N, H))
    h = np.empty((T, N, H))
    prev_h, prev_c = h0, np.zeros_like(h0)
    for t in range(T):
        a = gates[t]                                   # a view: activated in place
        a += prev_h @ Wh
        s = a[:, :3 * H]                               # sigmoid in place, as in the step
        np.negative(s, out=s)
        with np.errstate(over="ignore"):               # exp(-a) = inf gives sigmoid 0: right
            np.exp(s, out=s)
        s += 1.0
        np.reciprocal(s, out=s)
        np.tanh(a[:, 3 * H:], out=a[:, 3 * H:])
        i, f, o, g = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
        prev_c = c[t]
        np.multiply(f, c[t - 1] if t else 0.0, out=prev_c)
        prev_c += i * g
        np.tanh(prev_c, out=tanh_c[t])
        prev_h = h[t]
        np.multiply(o, tanh_c[t], out=prev_h)
    cache = (x, h0, Wx, Wh, gates, c, tanh_c, h)
    h_out = h.transpose(1, 0, 2).copy()
    ### END SOLUTION
    return h_out, cache


def lstm_backward(dh, cache):
    """Backpropagation through time for ``lstm_forward``.

    Parameters
    ----------
    dh : array of shape (N, T, H), upstream gradient of every hidden state h_1 ... h_T
    cache : the cache returned by ``lstm_forward``

    Returns
    -------
    dx : array of shape (N, T, D)
    dh0 : array of shape (N, H)
    dWx : array of shape (D, 4H)
    dWh : array of shape (H, 4H)
    db : array of shape (4H,)
    """
    dh = as_array("lstm_backward", "dh", dh)
    require_shape("lstm_backward", "dh", dh, ("N", "T", "H"))
    ### BEGIN SOLUTION
    x, h0, Wx, Wh, gates, c, tanh_c, h = cache
    T, N, H = h.shape
    dgates = np.empty_like(gates)        # gradient of every step's pre-activations, (T, N, 4H)
    dnext_h = np.zeros((N, H))           # gradient reaching h_t from step t + 1
    dc = np.zeros((N, H))                # gradient reaching c_t from step t + 1
    WhT = np.ascontiguousarray(Wh.T)
    for t in reversed(range(T)):
        a, da = gates[t], dgates[t]
        i, f, o, g = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
        dnext_h += dh[:, t]                          # loss at step t plus the later steps
        dc += dnext_h * o * (1.0 - tanh_c[t] ** 2)   # dc is our own array: in place is safe
        np.multiply(dc, g, out=da[:, :H])
        if t:
            np.multiply(dc, c[t - 1], out=da[:, H:2 * H])
        else:
            da[:, H:2 * H] = 0.0                     # c0 = 0
        np.multiply(dnext_h, tanh_c[t], out=da[:, 2 * H:3 * H])
        np.multiply(dc, i, out=da[:, 3 * H:])
        s = a[:, :3 * H]
        da[:, :3 * H] *= s * (1.0 - s)               # sigmoid' = s (1 - s)
        da[:, 3 * H:] *= 1.0 - g ** 2                # tanh' = 1 - tanh^2
        dc *= f                                      # on to c_{t-1}: the highway
        dnext_h = da @ WhT
    dh0 = dnext_h
    # Shared weights: sum over steps = one matmul over all (T N) rows. Step t read h_{t-1}.
    dg2 = dgates.reshape(T * N, 4 * H)
    h_prev = np.concatenate([h0[None], h[:-1]], axis=0).reshape(T * N, H)
    x2 = x.transpose(1, 0, 2).reshape(T * N, -1)
    dx = (dg2 @ Wx.T).reshape(T, N, -1).transpose(1, 0, 2)
    dWx = x2.T @ dg2
    dWh = h_prev.T @ dg2
    db = dg2.sum(axis=0)
    ### END SOLUTION
    return dx, dh0, dWx, dWh, db
