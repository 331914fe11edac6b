"""A vanilla (Elman) recurrent network with tanh units, backpropagation through time, clipping.

One step maps the input x_t and the previous hidden state to the next one::

    a_t = x_t Wx + h_{t-1} Wh + b          (N, H)
    h_t = tanh(a_t)

The notes write the same recurrence as a = b + W h + U x with column vectors; here rows are
examples, so the weights multiply from the right (Wx plays U^T, Wh plays W^T).

Backpropagation through time runs the steps in reverse. Every hidden state h_t receives
gradient from two places: the loss at step t (``dh[:, t]``, e.g. from an output layer) and the
next step through Wh. Because the same Wx, Wh, b are used at every step, their gradients are
sums over the steps. Repeated multiplication by Wh^T (and by tanh' <= 1) is what makes
gradients explode or vanish over long sequences; ``clip_grad_norm`` is the usual remedy for the
exploding case.
"""
from __future__ import annotations

import numpy as np

from dlhw.validation import as_array, require_shape, shape_str

__all__ = ["rnn_step_forward", "rnn_step_backward", "rnn_forward", "rnn_backward", "clip_grad_norm"]


def rnn_step_forward(x, prev_h, Wx, Wh, b):
    """One time step of a tanh RNN: ``next_h = tanh(x Wx + prev_h Wh + b)``.

    Parameters
    ----------
    x : array of shape (N, D), the inputs at this step
    prev_h : array of shape (N, H), the hidden state of the previous step
    Wx : array of shape (D, H), input-to-hidden weights
    Wh : array of shape (H, H), hidden-to-hidden weights
    b : array of shape (H,), biases

    Returns
    -------
    next_h : array of shape (N, H)
    cache : what ``rnn_step_backward`` needs
    """
    f = "rnn_step_forward"
    x, prev_h = as_array(f, "x", x), as_array(f, "prev_h", prev_h)
    Wx, Wh, b = as_array(f, "Wx", Wx), as_array(f, "Wh", Wh), as_array(f, "b", b)
    sizes = require_shape(f, "x", x, ("N", "D"))
    require_shape(f, "prev_h", prev_h, ("N", "H"), sizes)
    require_shape(f, "Wx", Wx, ("D", "H"), sizes)
    require_shape(f, "Wh", Wh, ("H", "H"), sizes)
    require_shape(f, "b", b, ("H",), sizes)
    ### BEGIN SOLUTION
    next_h = np.tanh(x @ Wx + prev_h @ Wh + b)
    # tanh'(a) = 1 - tanh(a)^2 is a function of the output, so the output is all we keep of a
    cache = (x, prev_h, Wx, Wh, next_h)
    ### END SOLUTION
    return next_h, cache


def rnn_step_backward(dnext_h, cache):
    """Backward pass of ``rnn_step_forward``.

    Parameters
    ----------
    dnext_h : array of shape (N, H), gradient of the loss with respect to next_h
    cache : the cache returned by ``rnn_step_forward``

    Returns
    -------
    dx : array of shape (N, D)
    dprev_h : array of shape (N, H)
    dWx : array of shape (D, H)
    dWh : array of shape (H, H)
    db : array of shape (H,)
    """
    dnext_h = as_array("rnn_step_backward", "dnext_h", dnext_h)
    require_shape("rnn_step_backward", "dnext_h", dnext_h, ("N", "H"))
    ### BEGIN SOLUTION
    x, prev_h, Wx, Wh, next_h = cache
    da = dnext_h * (1.0 - next_h ** 2)      # through tanh
    dx = da @ Wx.T
    dprev_h = da @ Wh.T
    dWx = x.T @ da
    dWh = prev_h.T @ da
    db = da.sum(axis=0)
    ### END SOLUTION
    return dx, dprev_h, dWx, dWh, db


def rnn_forward(x, h0, Wx, Wh, b):
    """A tanh RNN run over a whole sequence, starting from the hidden state h0.

    Parameters
    ----------
    x : array of shape (N, T, D), the input sequence of each of N examples
    h0 : array of shape (N, H), the initial hidden state
    Wx : array of shape (D, H), input-to-hidden weights
    Wh : array of shape (H, H), hidden-to-hidden weights
    b : array of shape (H,), biases

    Returns
    -------
    h : array of shape (N, T, H), the hidden states h_1 ... h_T (h0 not included)
    cache : what ``rnn_backward`` needs
    """
    f = "rnn_forward"
    x, h0 = as_array(f, "x", x), as_array(f, "h0", h0)
    Wx, Wh, b = as_array(f, "Wx", Wx), as_array(f, "Wh", Wh), as_array(f, "b", b)
    sizes = require_shape(f, "x", x, ("N", "T", "D"))
    if sizes["T"] == 0:
        raise ValueError(f"{f}: x must have shape (N, T, D) with T >= 1 time steps; got {shape_str(x.shape)}")
    require_shape(f, "h0", h0, ("N", "H"), sizes)
    require_shape(f, "Wx", Wx, ("D", "H"), sizes)
    require_shape(f, "Wh", Wh, ("H", "H"), sizes)
    require_shape(f, "b", b, ("H",), sizes)
    ### BEGIN SOLUTION
    N, T, _ = x.shape
    # The input part x_t Wx + b does not depend on the recurrence: one big matmul for all
    # steps instead of T small ones. Only h_{t-1} Wh has to wait for the previous step.
    xw = x @ Wx + b                                   # (N, T, H)
    h = np.empty((N, T, Wh.shape[0]))
    prev_h = h0
    for t in range(T):
        prev_h = np.tanh(xw[:, t] + prev_h @ Wh)
        h[:, t] = prev_h
    cache = (x, h0, Wx, Wh, h)
    ### END SOLUTION
    return h, cache


def rnn_backward(dh, cache):
    """Backpropagation through time for ``rnn_forward``.

    Parameters
    ----------
    dh : array of shape (N, T, H), upstream gradient of every hidden state h_1 ... h_T (the
        part that does not flow through later steps, e.g. from an output layer per step)
    cache : the cache returned by ``rnn_forward``

    Returns
    -------
    dx : array of shape (N, T, D)
    dh0 : array of shape (N, H)
    dWx : array of shape (D, H)
    dWh : array of shape (H, H)
    db : array of shape (H,)
    """
    dh = as_array("rnn_backward", "dh", dh)
    require_shape("rnn_backward", "dh", dh, ("N", "T", "H"))
    ### BEGIN SOLUTION
    x, h0, Wx, Wh, h = cache
    N, T, H = h.shape
    da = np.empty_like(h)                  # gradient of each step's pre-activation a_t
    dprev = np.zeros_like(h0)              # gradient reaching h_t from step t + 1
    for t in reversed(range(T)):
        da[:, t] = (dh[:, t] + dprev) * (1.0 - h[:, t] ** 2)
        dprev = da[:, t] @ Wh.T
    dh0 = dprev
    # The weights are shared by all steps: their gradients sum over steps, which is one matmul
    # over the (N T) rows. The hidden state feeding step t is h_{t-1}, i.e. h0, h_1 ... h_{T-1}.
    da2 = da.reshape(N * T, H)
    h_prev = np.concatenate([h0[:, None, :], h[:, :-1]], axis=1).reshape(N * T, H)
    dx = da @ Wx.T
    dWx = x.reshape(N * T, -1).T @ da2
    dWh = h_prev.T @ da2
    db = da2.sum(axis=0)
    ### END SOLUTION
    return dx, dh0, dWx, dWh, db


def clip_grad_norm(grads, max_norm):
    """Rescale a list of gradients so that their joint L2 norm is at most ``max_norm``.

    The norm is taken over all entries of all arrays together, as if they were one vector:
    ``total_norm = sqrt(sum_k ||grads[k]||^2)``. If ``total_norm > max_norm`` every gradient is
    multiplied by ``max_norm / total_norm`` (the direction is kept, only the step shrinks);
    otherwise they come back unchanged. This is ``torch.nn.utils.clip_grad_norm_`` with the L2
    norm, except that PyTorch divides by ``total_norm + 1e-6`` and scales in place; here the
    factor is exact and the inputs are not modified.

    Parameters
    ----------
    grads : list of arrays of any shapes (S_k...)
    max_norm : positive float

    Returns
    -------
    clipped : list of arrays of shapes (S_k...), new arrays (copies even when not clipped)
    total_norm : float, the joint norm before clipping
    """
    if not isinstance(grads, (list, tuple)):
        raise ValueError(f"clip_grad_norm: grads must be a list of arrays; got {type(grads).__name__}")
    grads = [as_array("clip_grad_norm", f"grads[{k}]", g) for k, g in enumerate(grads)]
    if not np.isscalar(max_norm) or not max_norm > 0:
        raise ValueError(f"clip_grad_norm: max_norm must be a positive number; got {max_norm!r}")
    ### BEGIN SOLUTION
    total_norm = float(np.sqrt(sum(np.sum(g * g) for g in grads)))
    scale = max_norm / total_norm if total_norm > max_norm else 1.0
    clipped = [g * scale for g in grads]
    ### END SOLUTION
    return clipped, total_norm
