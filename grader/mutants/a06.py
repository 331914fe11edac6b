"""Assignment 06: slips students make in convolution, pooling and spatial batchnorm, and
correct variants written differently.

A cache crosses from each forward cell to its backward cell, and what it holds is the
reference's own business (it changes when the reference is optimized). So a whole-cell variant
never feeds its own cache to the reference: it goes into the BACKWARD cell and defines both
functions there (that cell runs after the forward cell, so both definitions win). One-line
slips are snippet replacements of the reference, like a real student's edit.
"""
from grader.mutants import Mutant

# ---------------------------------------------------------------- self-contained pairs
# A correct naive pair: all positions at once in the forward, scalar-style loops backward.
NAIVE_PAIR = '''
def conv_forward(x, w, b, conv_param):
    S, P = conv_param["stride"], conv_param["pad"]
    F, C, HH, WW = w.shape
    x_pad = np.pad(x, ((0, 0), (0, 0), (P, P), (P, P)))
    win = np.lib.stride_tricks.sliding_window_view(x_pad, (HH, WW), axis=(2, 3))[:, :, ::S, ::S]
    out = np.einsum("ncijpq,fcpq->nfij", win, w) + b[None, :, None, None]
    return out, (x, w, conv_param)


def conv_backward(dout, cache):
    x, w, conv_param = cache
    S, P = conv_param["stride"], conv_param["pad"]
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    x_pad = np.pad(x, ((0, 0), (0, 0), (P, P), (P, P)))
    dx_pad, dw, db = np.zeros_like(x_pad), np.zeros_like(w), np.zeros(F)
    for n in range(N):
        for f in range(F):
            for i in range(dout.shape[2]):
                for j in range(dout.shape[3]):
                    g = dout[n, f, i, j]
                    db[f] += g
                    dw[f] += g * x_pad[n, :, i * S:i * S + HH, j * S:j * S + WW]
                    dx_pad[n, :, i * S:i * S + HH, j * S:j * S + WW] += g * w[f]
    return dx_pad[:, :, P:P + H, P:P + W], dw, db
'''

# The classic (N * H' * W', C * HH * WW) im2col layout: one patch per ROW.
FAST_PAIR_ROWS = '''
def conv_forward_fast(x, w, b, conv_param):
    S, P = conv_param["stride"], conv_param["pad"]
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    Ho, Wo = 1 + (H + 2 * P - HH) // S, 1 + (W + 2 * P - WW) // S
    x_pad = np.pad(x, ((0, 0), (0, 0), (P, P), (P, P)))
    win = np.lib.stride_tricks.sliding_window_view(x_pad, (HH, WW), axis=(2, 3))[:, :, ::S, ::S]
    rows = win.transpose(0, 2, 3, 1, 4, 5).reshape(N * Ho * Wo, C * HH * WW)
    out = rows @ w.reshape(F, -1).T + b
    return out.reshape(N, Ho, Wo, F).transpose(0, 3, 1, 2), (rows, w, x.shape, conv_param)


def conv_backward_fast(dout, cache):
    rows, w, (N, C, H, W), conv_param = cache
    S, P = conv_param["stride"], conv_param["pad"]
    F, _, HH, WW = w.shape
    Ho, Wo = dout.shape[2], dout.shape[3]
    G = dout.transpose(0, 2, 3, 1).reshape(-1, F)                  # (N * Ho * Wo, F)
    dw = (G.T @ rows).reshape(w.shape)
    db = G.sum(axis=0)
    drows = (G @ w.reshape(F, -1)).reshape(N, Ho, Wo, C, HH, WW)
    dx_pad = np.zeros((N, C, H + 2 * P, W + 2 * P))
    for p in range(HH):
        for q in range(WW):
            dx_pad[:, :, p:p + S * Ho:S, q:q + S * Wo:S] += drows[..., p, q].transpose(0, 3, 1, 2)
    return dx_pad[:, :, P:P + H, P:P + W], dw, db
'''

# Columns filled by a loop over the kernel offsets; col2im with fancy indices and np.add.at.
FAST_PAIR_ADD_AT = '''
def conv_forward_fast(x, w, b, conv_param):
    S, P = conv_param["stride"], conv_param["pad"]
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    Ho, Wo = 1 + (H + 2 * P - HH) // S, 1 + (W + 2 * P - WW) // S
    x_pad = np.pad(x, ((0, 0), (0, 0), (P, P), (P, P)))
    cols = np.empty((N, C, HH, WW, Ho, Wo))
    for p in range(HH):
        for q in range(WW):
            cols[:, :, p, q] = x_pad[:, :, p:p + S * Ho:S, q:q + S * Wo:S]
    cols = cols.reshape(N, C * HH * WW, Ho * Wo)
    out = np.einsum("fk,nkl->nfl", w.reshape(F, -1), cols).reshape(N, F, Ho, Wo) + b[:, None, None]
    return out, (cols, w, x.shape, conv_param)


def conv_backward_fast(dout, cache):
    cols, w, (N, C, H, W), conv_param = cache
    S, P = conv_param["stride"], conv_param["pad"]
    F, _, HH, WW = w.shape
    Ho, Wo = dout.shape[2], dout.shape[3]
    G = dout.reshape(N, F, Ho * Wo)
    db = G.sum(axis=(0, 2))
    dw = np.einsum("nfl,nkl->fk", G, cols).reshape(w.shape)
    dcols = np.einsum("fk,nfl->nkl", w.reshape(F, -1), G)          # (N, C*HH*WW, Ho*Wo)
    c, p, q = np.unravel_index(np.arange(C * HH * WW), (C, HH, WW))
    i, j = np.unravel_index(np.arange(Ho * Wo), (Ho, Wo))
    r_idx = p[:, None] + S * i[None, :]
    c_idx = q[:, None] + S * j[None, :]
    ch = np.broadcast_to(c[:, None], r_idx.shape)
    dx_pad = np.zeros((N, C, H + 2 * P, W + 2 * P))
    for n in range(N):
        np.add.at(dx_pad[n], (ch, r_idx, c_idx), dcols[n])
    return dx_pad[:, :, P:P + H, P:P + W], dw, db
'''

POOL_PAIR = '''
def max_pool_forward(x, pool_param):
    PH, PW, S = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    N, C, H, W = x.shape
    Ho, Wo = 1 + (H - PH) // S, 1 + (W - PW) // S
    out = np.empty((N, C, Ho, Wo))
    for i in range(Ho):
        for j in range(Wo):
            out[:, :, i, j] = x[:, :, i * S:i * S + PH, j * S:j * S + PW].max(axis=(2, 3))
    return out, (x, pool_param)


def max_pool_backward(dout, cache):
    x, pool_param = cache
    PH, PW, S = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    N, C = x.shape[:2]
    dx = np.zeros_like(x)
    for n in range(N):
        for c in range(C):
            for i in range(dout.shape[2]):
                for j in range(dout.shape[3]):
                    win = x[n, c, i * S:i * S + PH, j * S:j * S + PW]
                    p, q = np.unravel_index(np.argmax(win), win.shape)   # the first maximum
                    dx[n, c, i * S + p, j * S + q] += dout[n, c, i, j]
    return dx
'''

# Spatial batchnorm written out over the axes (0, 2, 3), without the blocks.
SBN_PAIR = '''
def spatial_batchnorm_forward(x, gamma, beta, bn_param):
    N, C, H, W = x.shape
    mode, eps = bn_param["mode"], bn_param.get("eps", 1e-5)
    momentum = bn_param.get("momentum", 0.9)
    rm = bn_param.get("running_mean", np.zeros(C))
    rv = bn_param.get("running_var", np.ones(C))
    if mode == "train":
        mean = x.mean(axis=(0, 2, 3))
        var = ((x - mean[None, :, None, None]) ** 2).mean(axis=(0, 2, 3))
        bn_param["running_mean"] = momentum * rm + (1 - momentum) * mean
        bn_param["running_var"] = momentum * rv + (1 - momentum) * var
    else:
        mean, var = rm, rv
    inv_std = 1.0 / np.sqrt(var + eps)
    x_hat = (x - mean[None, :, None, None]) * inv_std[None, :, None, None]
    out = gamma[None, :, None, None] * x_hat + beta[None, :, None, None]
    return out, (mode, x_hat, gamma, inv_std)


def spatial_batchnorm_backward(dout, cache):
    mode, x_hat, gamma, inv_std = cache
    dbeta = dout.sum(axis=(0, 2, 3))
    dgamma = (dout * x_hat).sum(axis=(0, 2, 3))
    g = dout * gamma[None, :, None, None]
    if mode == "train":
        dx = (g - g.mean(axis=(0, 2, 3), keepdims=True)
              - x_hat * (g * x_hat).mean(axis=(0, 2, 3), keepdims=True)) * inv_std[None, :, None, None]
    else:
        dx = g * inv_std[None, :, None, None]
    return dx, dgamma, dbeta
'''


def _slip(template: str, old: str, new: str) -> str:
    """The template with one slip; fails loudly if the snippet is missing (a typo here)."""
    if template.count(old) != 1:
        raise ValueError(f"mutants a06: {old!r} occurs {template.count(old)} times in the template")
    return template.replace(old, new)


WRONG = [
    # ------------------------------------------------------------------ naive convolution
    Mutant("conv_forward", "flips the kernel (a true convolution, not PyTorch's cross-correlation)",
           replace=[("np.tensordot(patch, w, axes=([1, 2, 3], [1, 2, 3]))",
                     "np.tensordot(patch, w[:, :, ::-1, ::-1], axes=([1, 2, 3], [1, 2, 3]))")],
           fails=["test_conv_forward"]),
    Mutant("conv_forward", "ignores the stride (windows one pixel apart, output cut to size)",
           replace=[("top, left = i * stride, j * stride", "top, left = i, j")],
           fails=["test_conv_forward"]),
    Mutant("conv_backward", "ignores the stride in the backward pass",
           replace=[("top, left = i * stride, j * stride", "top, left = i, j")],
           fails=["test_conv_backward_dx", "test_conv_backward_dw"]),
    Mutant("conv_backward", "returns dx with the padding still on",
           replace=[("dx = dx_pad[:, :, pad:pad + H, pad:pad + W]", "dx = dx_pad")],
           fails=["test_conv_backward_dx"]),
    Mutant("conv_backward", "overwrites dx for overlapping windows instead of adding (= not +=)",
           replace=[("dx_pad[:, :, top:top + HH, left:left + WW] += np.tensordot(g, w, axes=(1, 0))",
                     "dx_pad[:, :, top:top + HH, left:left + WW] = np.tensordot(g, w, axes=(1, 0))")],
           fails=["test_conv_backward_dx"]),
    Mutant("conv_backward", "dw averaged over the batch instead of summed",
           replace=[("dw += np.tensordot(g, patch, axes=(0, 0))", "dw += np.tensordot(g, patch, axes=(0, 0)) / N")],
           fails=["test_conv_backward_dw"]),
    Mutant("conv_backward", "dw reset inside the loop over the batch (only the last image counts)",
           code=_slip(NAIVE_PAIR, "    for n in range(N):\n        for f in range(F):",
                      "    for n in range(N):\n        dw = np.zeros_like(w)\n        for f in range(F):"),
           fails=["test_conv_backward_dw"]),
    Mutant("conv_backward", "db averaged over the positions instead of summed",
           replace=[("db = dout.sum(axis=(0, 2, 3))", "db = dout.sum(axis=0).mean(axis=(1, 2))")],
           fails=["test_conv_backward_db"]),
    # ------------------------------------------------------------------ fast convolution
    Mutant("conv_forward_fast", "im2col rows in (HH, WW, C) order, the weights in (C, HH, WW) order",
           replace=[("windows.transpose(0, 1, 4, 5, 2, 3)", "windows.transpose(0, 4, 5, 1, 2, 3)")],
           fails=["test_conv_forward_fast"]),
    Mutant("conv_forward_fast", "padding forgotten in im2col (a valid convolution whatever pad says)",
           replace=[("x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))", "x_pad = x"),
                    ("H_out = 1 + (H + 2 * pad - HH) // stride", "H_out = 1 + (H - HH) // stride"),
                    ("W_out = 1 + (W + 2 * pad - WW) // stride", "W_out = 1 + (W - WW) // stride")],
           fails=["test_conv_forward_fast"]),
    Mutant("conv_backward_fast", "col2im overwrites where patches overlap (= not +=)",
           code=_slip(FAST_PAIR_ROWS, "dx_pad[:, :, p:p + S * Ho:S, q:q + S * Wo:S] +=",
                      "dx_pad[:, :, p:p + S * Ho:S, q:q + S * Wo:S] ="),
           fails=["test_conv_backward_fast_dx"]),
    Mutant("conv_backward_fast", "col2im ignores the stride",
           code=_slip(FAST_PAIR_ROWS, "dx_pad[:, :, p:p + S * Ho:S, q:q + S * Wo:S]",
                      "dx_pad[:, :, p:p + Ho, q:q + Wo]"),
           fails=["test_conv_backward_fast_dx"]),
    Mutant("conv_backward_fast", "col2im without cutting the padding off",
           code=_slip(FAST_PAIR_ROWS, "return dx_pad[:, :, P:P + H, P:P + W], dw, db", "return dx_pad, dw, db"),
           fails=["test_conv_backward_fast_dx"]),
    Mutant("conv_backward_fast", "dw from the first image of the batch only",
           code=_slip(FAST_PAIR_ADD_AT, 'dw = np.einsum("nfl,nkl->fk", G, cols)', 'dw = np.einsum("fl,kl->fk", G[0], cols[0])'),
           fails=["test_conv_backward_fast_dw"]),
    Mutant("conv_backward_fast", "db averaged over the batch and positions instead of summed",
           code=_slip(FAST_PAIR_ROWS, "db = G.sum(axis=0)", "db = G.mean(axis=0)"),
           fails=["test_conv_backward_fast_db"]),
    # ------------------------------------------------------------------ max pooling
    Mutant("max_pool_forward", "steps by the window size instead of the stride",
           replace=[("windows[:, :, ::stride, ::stride]", "windows[:, :, ::PH, ::PW]")],
           fails=["test_max_pool_forward"]),
    Mutant("max_pool_backward", "routes the gradient to every entry of the window",
           code=_slip(POOL_PAIR, "dx[n, c, i * S + p, j * S + q] += dout[n, c, i, j]",
                      "dx[n, c, i * S:i * S + PH, j * S:j * S + PW] += dout[n, c, i, j]"),
           fails=["test_max_pool_backward_dx"]),
    Mutant("max_pool_backward", "gives the gradient to every tied maximum (x == max)",
           code=_slip(POOL_PAIR, "                    p, q = np.unravel_index(np.argmax(win), win.shape)   # the first maximum\n"
                                 "                    dx[n, c, i * S + p, j * S + q] += dout[n, c, i, j]",
                      "                    dx[n, c, i * S:i * S + PH, j * S:j * S + PW] += (win == win.max()) * dout[n, c, i, j]"),
           fails=["test_max_pool_backward_dx"]),
    Mutant("max_pool_backward", "overlapping windows overwrite each other's gradient (= not +=)",
           code=_slip(POOL_PAIR, "dx[n, c, i * S + p, j * S + q] += dout[n, c, i, j]",
                      "dx[n, c, i * S + p, j * S + q] = dout[n, c, i, j]"),
           fails=["test_max_pool_backward_dx"]),
    # ------------------------------------------------------------------ spatial batchnorm
    Mutant("spatial_batchnorm_forward", "reshapes (N, C, H, W) straight to (-1, C): channels and positions mixed",
           replace=[("rows = x.transpose(0, 2, 3, 1).reshape(-1, C)", "rows = x.reshape(-1, C)"),
                    ("out = out.reshape(N, H, W, C).transpose(0, 3, 1, 2)", "out = out.reshape(N, C, H, W)")],
           fails=["test_spatial_batchnorm_forward", "test_spatial_batchnorm_forward_test_mode",
                  "test_spatial_batchnorm_forward_running_stats"]),
    Mutant("spatial_batchnorm_backward", "normalizes each image on its own (axes 2, 3: instance norm), not over the batch",
           code='''
def spatial_batchnorm_forward(x, gamma, beta, bn_param):
    N, C, H, W = x.shape
    mean = x.mean(axis=(2, 3), keepdims=True)                     # (N, C, 1, 1): per image
    var = x.var(axis=(2, 3), keepdims=True)
    m = bn_param.get("momentum", 0.9)
    bn_param["running_mean"] = m * bn_param.get("running_mean", np.zeros(C)) + (1 - m) * mean.mean(axis=(0, 2, 3))
    bn_param["running_var"] = m * bn_param.get("running_var", np.ones(C)) + (1 - m) * var.mean(axis=(0, 2, 3))
    inv_std = 1.0 / np.sqrt(var + bn_param.get("eps", 1e-5))
    x_hat = (x - mean) * inv_std
    return gamma[None, :, None, None] * x_hat + beta[None, :, None, None], (x_hat, gamma, inv_std)


def spatial_batchnorm_backward(dout, cache):
    x_hat, gamma, inv_std = cache
    g = dout * gamma[None, :, None, None]
    dx = (g - g.mean(axis=(2, 3), keepdims=True)
          - x_hat * (g * x_hat).mean(axis=(2, 3), keepdims=True)) * inv_std
    return dx, (dout * x_hat).sum(axis=(0, 2, 3)), dout.sum(axis=(0, 2, 3))
''', fails=["test_spatial_batchnorm_forward", "test_spatial_batchnorm_forward_test_mode",
           "test_spatial_batchnorm_forward_running_stats", "test_spatial_batchnorm_backward_dx"]),
    Mutant("spatial_batchnorm_forward", "test mode still normalizes with the batch statistics",
           replace=[("out, bn_cache = batchnorm_forward(rows, gamma, beta, bn_param)",
                     "bn_param['mode'] = 'train'\n    out, bn_cache = batchnorm_forward(rows, gamma, beta, bn_param)")],
           fails=["test_spatial_batchnorm_forward_test_mode"]),
    Mutant("spatial_batchnorm_backward", "running variance with the unbiased (N*H*W - 1) batch variance, as PyTorch keeps it",
           code=_slip(SBN_PAIR, "(1 - momentum) * var\n", "(1 - momentum) * var * (N * H * W) / (N * H * W - 1)\n"),
           fails=["test_spatial_batchnorm_forward_running_stats"]),
    Mutant("spatial_batchnorm_backward", "running mean with the momentum on the wrong side",
           code=_slip(SBN_PAIR, "momentum * rm + (1 - momentum) * mean", "(1 - momentum) * rm + momentum * mean"),
           fails=["test_spatial_batchnorm_forward_running_stats"]),
    Mutant("spatial_batchnorm_backward", "reshapes dout straight to (-1, C) in the backward pass",
           replace=[("rows = dout.transpose(0, 2, 3, 1).reshape(-1, C)", "rows = dout.reshape(-1, C)"),
                    ("dx = dx.reshape(N, H, W, C).transpose(0, 3, 1, 2)", "dx = dx.reshape(N, C, H, W)")],
           fails=["test_spatial_batchnorm_backward_dx", "test_spatial_batchnorm_backward_dgamma",
                  "test_spatial_batchnorm_backward_dbeta"]),
    Mutant("spatial_batchnorm_backward", "forgets the mean and variance terms (dx = gamma * dout / std)",
           code=_slip(SBN_PAIR, "    if mode == \"train\":\n        dx = (g", "    if False:\n        dx = (g"),
           fails=["test_spatial_batchnorm_backward_dx"]),
    Mutant("spatial_batchnorm_backward", "dgamma summed over the batch axis only",
           code=_slip(SBN_PAIR, "dgamma = (dout * x_hat).sum(axis=(0, 2, 3))", "dgamma = (dout * x_hat).sum(axis=0).mean(axis=(1, 2))"),
           fails=["test_spatial_batchnorm_backward_dgamma"]),
    # ----------------------------------------------------------------- caught by a fixed visible case
    Mutant("max_pool_backward", "output width computed from pool_height (slips through for odd widths only)",
           code=_slip(POOL_PAIR, "1 + (W - PW) // S", "1 + (W - PH) // S"),
           fails=["test_max_pool_forward"]),
    Mutant("spatial_batchnorm_backward", "running_var created as zeros when absent (CS231n's start)",
           code=_slip(SBN_PAIR, 'rv = bn_param.get("running_var", np.ones(C))',
                      'rv = bn_param.get("running_var", np.zeros(C))'),
           fails=["test_spatial_batchnorm_forward_running_stats"], hint="created as ones when absent"),
    Mutant("spatial_batchnorm_backward", "the train-mode formula after a test-mode forward too",
           code=_slip(SBN_PAIR, '    if mode == "train":\n        dx = (g', '    if True:\n        dx = (g'),
           fails=["test_spatial_batchnorm_backward_dx"]),
    # ----------------------------------------------------------------- hints that name the real cause
    Mutant("conv_forward", "NumPy 1 code: np.lib.pad",
           replace=[("np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))",
                     "np.lib.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))")],
           fails=["test_conv_forward"], hint="this is NumPy 1 code: np.lib.pad was removed"),
]

RIGHT = [
    Mutant("conv_backward", "einsum over sliding windows forward, scalar-style loops backward (both in one cell)",
           code=NAIVE_PAIR),
    Mutant("conv_backward_fast", "one patch per row (N*H'*W', C*HH*WW), col2im by kernel offsets", code=FAST_PAIR_ROWS),
    Mutant("conv_backward_fast", "columns filled by a loop over kernel offsets, col2im with np.add.at",
           code=FAST_PAIR_ADD_AT),
    Mutant("max_pool_backward", "loops over the windows, the first maximum found again from x", code=POOL_PAIR),
    Mutant("spatial_batchnorm_backward", "written out over the axes (0, 2, 3), without the blocks", code=SBN_PAIR),
    # the spatial pair hands batchnorm's cache from one to the other unopened
    Mutant("spatial_batchnorm_forward", "np.moveaxis and an explicit (N*H*W, C) shape", code='''
def spatial_batchnorm_forward(x, gamma, beta, bn_param):
    N, C, H, W = x.shape
    rows = np.moveaxis(x, 1, -1).reshape(N * H * W, C)
    out, bn_cache = batchnorm_forward(rows, gamma, beta, bn_param)
    return np.moveaxis(out.reshape(N, H, W, C), -1, 1), ((N, C, H, W), bn_cache)
'''),
    Mutant("spatial_batchnorm_backward", "np.moveaxis, and dbeta summed by hand with einsum", code='''
def spatial_batchnorm_backward(dout, cache):
    (N, C, H, W), bn_cache = cache
    rows = np.moveaxis(dout, 1, -1).reshape(N * H * W, C)
    dx_rows, dgamma, _ = batchnorm_backward(rows, bn_cache)
    dbeta = np.einsum("nchw->c", dout)          # beta[c] is added at every (n, h, w)
    return np.moveaxis(dx_rows.reshape(N, H, W, C), -1, 1), dgamma, dbeta
'''),
]
