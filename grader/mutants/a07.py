"""Assignment 07: slips students make in RNNs, LSTMs, BPTT and clipping, and correct variants.

Among the wrong ones are the lecture notes' own ``lstm_step_backward`` slips: the tanh
derivative written (1 - tanh(a_g))^2, the caller's dnext_c changed in place, and
``da.dot(Wh.T, da.T)``, which numpy rejects.
"""
from grader.mutants import Mutant

_STEP_BWD = ["test_lstm_step_backward_dx", "test_lstm_step_backward_dprev_h", "test_lstm_step_backward_dWx",
             "test_lstm_step_backward_dWh", "test_lstm_step_backward_db"]

# The notes' lstm_step_backward, line for line, reading the reference forward's cache (the
# notes' cache holds ag and next_c; here g = tanh(ag) and tanh_c = tanh(next_c) are cached, so
# np.tanh(ag) is g and np.tanh(next_c) is tanh_c).
_NOTES_BACKWARD = '''
def lstm_step_backward(dnext_h, dnext_c, cache):
    x, prev_h, prev_c, Wx, Wh, gates, tanh_c = cache
    H = prev_h.shape[1]
    i, f, o, g = gates[:, :H], gates[:, H:2 * H], gates[:, 2 * H:3 * H], gates[:, 3 * H:]

    # backprop into step 5
    do = tanh_c * dnext_h
    dnext_c += o * (1 - tanh_c ** 2) * dnext_h

    # backprop into 4
    df = prev_c * dnext_c
    dprev_c = f * dnext_c
    di = g * dnext_c
    dg = i * dnext_c

    # backprop into 3
    dai = i * (1 - i) * di
    daf = f * (1 - f) * df
    dao = o * (1 - o) * do
    dag = (1 - g) ** 2 * dg

    # backprop into 2
    da = np.hstack((dai, daf, dao, dag))

    # backprop into 1
    db = np.sum(da, axis=0)
    dprev_h = DPREV_H
    dWh = np.dot(prev_h.T, da)
    dx = np.dot(da, Wx.T)
    dWx = np.dot(x.T, da)
    return dx, dprev_h, dprev_c, dWx, dWh, db
'''

WRONG = [
    # ------------------------------------------------------------------ RNN
    Mutant("rnn_step_forward", "forgets the bias", replace=[("np.tanh(x @ Wx + prev_h @ Wh + b)",
                                                           "np.tanh(x @ Wx + prev_h @ Wh)")],
           fails=["test_rnn_step_forward"]),
    Mutant("rnn_step_backward", "tanh derivative (1 - h)^2 instead of 1 - h^2",
           replace=[("dnext_h * (1.0 - next_h ** 2)", "dnext_h * (1.0 - next_h) ** 2")],
           fails=["test_rnn_step_backward_dx", "test_rnn_step_backward_dprev_h", "test_rnn_step_backward_dWx",
                  "test_rnn_step_backward_dWh", "test_rnn_step_backward_db"]),
    Mutant("rnn_step_backward", "dWh from next_h instead of prev_h",
           replace=[("dWh = prev_h.T @ da", "dWh = next_h.T @ da")], fails=["test_rnn_step_backward_dWh"]),
    Mutant("rnn_step_backward", "db squeezed to a scalar: wrong shape when H = 1 (the fixed H = 1 case, visible too)",
           replace=[("db = da.sum(axis=0)", "db = np.squeeze(da.sum(axis=0))")], fails=["test_rnn_step_backward_db"]),
    Mutant("rnn_forward", "the notes' column convention W h copied into the row convention (Wh transposed)",
           replace=[("prev_h = np.tanh(xw[:, t] + prev_h @ Wh)", "prev_h = np.tanh(xw[:, t] + prev_h @ Wh.T)")],
           fails=["test_rnn_forward"]),
    Mutant("rnn_forward", "no recurrence: every step reads h0",
           replace=[("prev_h = np.tanh(xw[:, t] + prev_h @ Wh)", "prev_h = np.tanh(xw[:, t] + h0 @ Wh)")],
           fails=["test_rnn_forward"]),
    Mutant("rnn_backward", "dh not accumulated across time: each step sees only its own dh[:, t]",
           replace=[("da[:, t] = (dh[:, t] + dprev) * (1.0 - h[:, t] ** 2)",
                     "da[:, t] = dh[:, t] * (1.0 - h[:, t] ** 2)")],
           fails=["test_rnn_backward_dx", "test_rnn_backward_dh0", "test_rnn_backward_dparams"]),
    Mutant("rnn_backward", "h0 gradient missing", replace=[("dh0 = dprev", "dh0 = np.zeros_like(h0)")],
           fails=["test_rnn_backward_dh0"]),
    Mutant("rnn_backward", "dWh pairs step t with h_t instead of h_{t-1}",
           replace=[("h_prev = np.concatenate([h0[:, None, :], h[:, :-1]], axis=1).reshape(N * T, H)",
                     "h_prev = h.reshape(N * T, H)")],
           fails=["test_rnn_backward_dparams"]),
    # ------------------------------------------------------------------ clipping
    Mutant("clip_grad_norm", "clips by value instead of by norm",
           replace=[("clipped = [g * scale for g in grads]",
                     "clipped = [np.clip(g, -max_norm, max_norm) for g in grads]")],
           fails=["test_clip_grad_norm_above"]),
    Mutant("clip_grad_norm", "rescales every time, also below max_norm",
           replace=[("scale = max_norm / total_norm if total_norm > max_norm else 1.0",
                     "scale = max_norm / total_norm")],
           fails=["test_clip_grad_norm_below"]),
    Mutant("clip_grad_norm", "min(1, max_norm / total_norm) divides by zero for all-zero gradients (the all-zero case, visible too)",
           replace=[("scale = max_norm / total_norm if total_norm > max_norm else 1.0",
                     "scale = min(1.0, max_norm / total_norm)")],
           fails=["test_clip_grad_norm_below"]),
    Mutant("clip_grad_norm", "clips each array by its own norm", code='''
def clip_grad_norm(grads, max_norm):
    clipped = []
    for g in grads:
        n = np.linalg.norm(g)
        clipped.append(g * (max_norm / n) if n > max_norm else g.copy())
    total_norm = float(np.sqrt(sum(np.sum(g * g) for g in grads)))
    return clipped, total_norm
''', fails=["test_clip_grad_norm_above"]),
    Mutant("clip_grad_norm", "returns the norm after clipping",
           replace=[("return clipped, total_norm", "return clipped, min(total_norm, max_norm)")],
           fails=["test_clip_grad_norm_above"]),
    # ------------------------------------------------------------------ LSTM, one step
    Mutant("lstm_step_forward", "gate blocks read in PyTorch's order i, f, g, o",
           replace=[("i, f, o, g = gates[:, :H], gates[:, H:2 * H], gates[:, 2 * H:3 * H], gates[:, 3 * H:]",
                     "i, f, g, o = gates[:, :H], gates[:, H:2 * H], gates[:, 2 * H:3 * H], gates[:, 3 * H:]")],
           fails=["test_lstm_step_forward_next_h", "test_lstm_step_forward_next_c"]),
    Mutant("lstm_step_forward", "next_h = o * next_c (the tanh of the cell forgotten)",
           replace=[("next_h = o * tanh_c", "next_h = o * next_c")], fails=["test_lstm_step_forward_next_h"]),
    Mutant("lstm_step_backward", "the notes' tanh slip: (1 - g)^2 for 1 - g^2",
           replace=[("dgates[:, 3 * H:] *= 1.0 - g ** 2", "dgates[:, 3 * H:] *= (1.0 - g) ** 2")],
           fails=_STEP_BWD),
    Mutant("lstm_step_backward", "dprev_c misses the forget gate", replace=[("dprev_c = dc * f", "dprev_c = dc")],
           fails=["test_lstm_step_backward_dprev_c"]),
    Mutant("lstm_step_backward", "forgets that next_c also reaches the loss through next_h",
           replace=[("dc = dnext_c + dnext_h * o * (1.0 - tanh_c ** 2)", "dc = dnext_c")],
           fails=_STEP_BWD + ["test_lstm_step_backward_dprev_c"]),
    Mutant("lstm_step_backward", "the notes' in-place dnext_c += ... (correct numbers, caller's array changed)",
           replace=[("dc = dnext_c + dnext_h * o * (1.0 - tanh_c ** 2)",
                     "dnext_c += dnext_h * o * (1.0 - tanh_c ** 2)\n    dc = dnext_c")],
           fails=["test_lstm_step_backward_side_effects"]),
    Mutant("lstm_step_backward", "the notes' lstm_step_backward as printed (da.dot(Wh.T, da.T) crashes)",
           code=_NOTES_BACKWARD.replace("DPREV_H", "da.dot(Wh.T, da.T)"),
           fails=_STEP_BWD + ["test_lstm_step_backward_dprev_c", "test_lstm_step_backward_side_effects"]),
    Mutant("lstm_step_backward", "the notes' lstm_step_backward with its crash fixed (tanh slip, in place)",
           code=_NOTES_BACKWARD.replace("DPREV_H", "da @ Wh.T"),
           fails=_STEP_BWD + ["test_lstm_step_backward_side_effects"]),
    # ------------------------------------------------------------------ LSTM, a sequence
    Mutant("lstm_forward", "starts the cell from h0 instead of zeros",
           replace=[("np.multiply(f, c[t - 1] if t else 0.0, out=prev_c)",
                     "np.multiply(f, c[t - 1] if t else h0, out=prev_c)")],
           fails=["test_lstm_forward"]),
    Mutant("lstm_forward", "gate blocks read in PyTorch's order i, f, g, o",
           replace=[("i, f, o, g = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]",
                     "i, f, g, o = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]")],
           fails=["test_lstm_forward"]),
    Mutant("lstm_backward", "the cell gradient skips the forget gate on its way back (dc not times f)",
           replace=[("dc *= f  ", "dc *= 1.0")],
           fails=["test_lstm_backward_dx", "test_lstm_backward_dh0", "test_lstm_backward_dparams"]),
    Mutant("lstm_backward", "the cell gradient is not carried across time (dc reset every step)",
           replace=[("dc += dnext_h * o * (1.0 - tanh_c[t] ** 2)", "dc = dnext_h * o * (1.0 - tanh_c[t] ** 2)")],
           fails=["test_lstm_backward_dx", "test_lstm_backward_dh0", "test_lstm_backward_dparams"]),
    Mutant("lstm_backward", "dh not accumulated: dnext_h overwritten by dh[:, t]",
           replace=[("dnext_h += dh[:, t]", "dnext_h = dh[:, t].copy()")],
           fails=["test_lstm_backward_dx", "test_lstm_backward_dh0", "test_lstm_backward_dparams"]),
    Mutant("lstm_backward", "h0 gradient missing", replace=[("dh0 = dnext_h", "dh0 = np.zeros((N, H))")],
           fails=["test_lstm_backward_dh0"]),
    Mutant("lstm_backward", "tanh derivative slip in the g block",
           replace=[("da[:, 3 * H:] *= 1.0 - g ** 2", "da[:, 3 * H:] *= (1.0 - g) ** 2")],
           fails=["test_lstm_backward_dx", "test_lstm_backward_dh0", "test_lstm_backward_dparams"]),
]

RIGHT = [
    Mutant("rnn_step_forward", "pre-activation with einsum",
           replace=[("np.tanh(x @ Wx + prev_h @ Wh + b)",
                     "np.tanh(np.einsum('nd,dh->nh', x, Wx) + np.einsum('nk,kh->nh', prev_h, Wh) + b)")]),
    Mutant("rnn_step_backward", "tanh' as (1 - h)(1 + h), gradients with einsum",
           replace=[("da = dnext_h * (1.0 - next_h ** 2)", "da = dnext_h * (1.0 - next_h) * (1.0 + next_h)"),
                    ("dWx = x.T @ da", "dWx = np.einsum('nd,nh->dh', x, da)")]),
    Mutant("rnn_forward", "a plain loop over the steps, nothing precomputed", code='''
def rnn_forward(x, h0, Wx, Wh, b):
    N, T, D = x.shape
    hs = []
    prev = h0
    for t in range(T):
        prev = np.tanh(x[:, t, :] @ Wx + prev @ Wh + b)
        hs.append(prev)
    h = np.stack(hs, axis=1)
    return h, (x, h0, Wx, Wh, h)
'''),
    Mutant("rnn_backward", "BPTT with the parameter gradients summed inside the loop", code='''
def rnn_backward(dh, cache):
    x, h0, Wx, Wh, h = cache
    N, T, H = h.shape
    dx = np.zeros_like(x)
    dWx, dWh, db = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros(H)
    dnext = np.zeros((N, H))
    for t in range(T - 1, -1, -1):
        da = (dh[:, t] + dnext) * (1 - h[:, t] ** 2)
        prev = h[:, t - 1] if t > 0 else h0
        dx[:, t] = da @ Wx.T
        dWx += x[:, t].T @ da
        dWh += prev.T @ da
        db += da.sum(axis=0)
        dnext = da @ Wh.T
    return dx, dnext, dWx, dWh, db
'''),
    Mutant("clip_grad_norm", "PyTorch's convention: norm of the concatenation, factor max_norm / (norm + 1e-6)",
           code='''
def clip_grad_norm(grads, max_norm):
    total_norm = float(np.linalg.norm(np.concatenate([np.ravel(g) for g in grads])))
    coef = min(1.0, max_norm / (total_norm + 1e-6))
    return [np.asarray(g) * coef for g in grads], total_norm
'''),
    Mutant("lstm_step_forward", "one weight slice per gate, sigmoid written with tanh", code='''
def lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b):
    H = prev_h.shape[1]
    sig = lambda z: 0.5 * (1.0 + np.tanh(0.5 * z))
    blk = lambda k: x @ Wx[:, k * H:(k + 1) * H] + prev_h @ Wh[:, k * H:(k + 1) * H] + b[k * H:(k + 1) * H]
    i, f, o, g = sig(blk(0)), sig(blk(1)), sig(blk(2)), np.tanh(blk(3))
    next_c = f * prev_c + i * g
    tanh_c = np.tanh(next_c)
    next_h = o * tanh_c
    return next_h, next_c, (x, prev_h, prev_c, Wx, Wh, np.concatenate([i, f, o, g], axis=1), tanh_c)
'''),
    Mutant("lstm_step_backward", "gate gradients concatenated, no in-place writes", code='''
def lstm_step_backward(dnext_h, dnext_c, cache):
    x, prev_h, prev_c, Wx, Wh, gates, tanh_c = cache
    H = prev_h.shape[1]
    i, f, o, g = np.split(gates, 4, axis=1)
    dc = dnext_c + dnext_h * o * (1 - tanh_c * tanh_c)
    da = np.concatenate([dc * g * i * (1 - i), dc * prev_c * f * (1 - f),
                         dnext_h * tanh_c * o * (1 - o), dc * i * (1 - g * g)], axis=1)
    return da @ Wx.T, da @ Wh.T, dc * f, x.T @ da, prev_h.T @ da, da.sum(0)
'''),
    Mutant("lstm_backward", "a clear loop with the parameter gradients summed per step", code='''
def lstm_backward(dh, cache):
    x, h0, Wx, Wh, gates, c, tanh_c, h = cache          # time-major: gates (T, N, 4H), c, h (T, N, H)
    T, N, H = h.shape
    dx = np.zeros(x.shape)
    dWx, dWh, db = np.zeros(Wx.shape), np.zeros(Wh.shape), np.zeros(4 * H)
    dh_next, dc_next = np.zeros((N, H)), np.zeros((N, H))
    for t in reversed(range(T)):
        i, f, o, g = np.split(gates[t], 4, axis=1)
        dht = dh[:, t] + dh_next
        dct = dc_next + dht * o * (1 - tanh_c[t] ** 2)
        c_prev = c[t - 1] if t > 0 else np.zeros((N, H))
        h_prev = h[t - 1] if t > 0 else h0
        da = np.hstack([dct * g * i * (1 - i), dct * c_prev * f * (1 - f),
                        dht * tanh_c[t] * o * (1 - o), dct * i * (1 - g ** 2)])
        dx[:, t] = da @ Wx.T
        dWx += x[:, t].T @ da
        dWh += h_prev.T @ da
        db += da.sum(axis=0)
        dh_next, dc_next = da @ Wh.T, dct * f
    return dx, dh_next, dWx, dWh, db
'''),
]
