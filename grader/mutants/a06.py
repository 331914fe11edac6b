"""Assignment 06: slips students make in convolution, pooling and spatial batchnorm, and
correct variants written differently."""
from grader.mutants import Mutant

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
    Mutant("conv_backward", "dw reset inside the loop over the batch (only the last image counts)", code='''
def conv_backward(dout, cache):
    x, w, b, conv_param = cache
    stride, pad = conv_param["stride"], conv_param["pad"]
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    H_out, W_out = dout.shape[2], dout.shape[3]
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dx_pad = np.zeros_like(x_pad)
    dw = np.zeros_like(w)
    db = dout.sum(axis=(0, 2, 3))
    for n in range(N):
        dw = np.zeros_like(w)          # reset inside the batch loop: only the last image counts
        for f in range(F):
            for i in range(H_out):
                for j in range(W_out):
                    t, l = i * stride, j * stride
                    dw[f] += dout[n, f, i, j] * x_pad[n, :, t:t + HH, l:l + WW]
                    dx_pad[n, :, t:t + HH, l:l + WW] += dout[n, f, i, j] * w[f]
    return dx_pad[:, :, pad:pad + H, pad:pad + W], dw, db
''', fails=["test_conv_backward_dw"]),
    Mutant("conv_backward", "db averaged over the positions instead of summed",
           replace=[("db = dout.sum(axis=(0, 2, 3))", "db = dout.sum(axis=0).mean(axis=(1, 2))")],
           fails=["test_conv_backward_db"]),
    # ------------------------------------------------------------------ fast convolution
    Mutant("conv_forward_fast", "im2col rows in (HH, WW, C) order, the weights in (C, HH, WW) order",
           replace=[("windows.transpose(0, 1, 4, 5, 2, 3)", "windows.transpose(0, 4, 5, 1, 2, 3)")],
           fails=["test_conv_forward_fast"]),
    Mutant("conv_forward_fast", "padding forgotten in im2col (valid convolution whatever pad says)",
           replace=[("x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))", "x_pad = x"),
                    ("H_out = 1 + (H + 2 * pad - HH) // stride", "H_out = 1 + (H - HH) // stride"),
                    ("W_out = 1 + (W + 2 * pad - WW) // stride", "W_out = 1 + (W - WW) // stride")],
           fails=["test_conv_forward_fast"]),
    Mutant("conv_backward_fast", "col2im overwrites where patches overlap (= not +=)",
           replace=[("stride:stride] += dcols[:, :, di, dj]", "stride:stride] = dcols[:, :, di, dj]")],
           fails=["test_conv_backward_fast_dx"]),
    Mutant("conv_backward_fast", "col2im ignores the stride",
           replace=[("dx_pad[:, :, di:di + stride * H_out:stride, dj:dj + stride * W_out:stride]",
                     "dx_pad[:, :, di:di + H_out, dj:dj + W_out]")],
           fails=["test_conv_backward_fast_dx"]),
    Mutant("conv_backward_fast", "dw from the first image of the batch only",
           replace=[("(dout_rows @ cols.transpose(0, 2, 1)).sum(axis=0)", "(dout_rows @ cols.transpose(0, 2, 1))[0]")],
           fails=["test_conv_backward_fast_dw"]),
    Mutant("conv_backward_fast", "db summed over the positions only, the first image",
           replace=[("db = dout_rows.sum(axis=(0, 2))", "db = dout_rows[0].sum(axis=1)")],
           fails=["test_conv_backward_fast_db"]),
    # ------------------------------------------------------------------ max pooling
    Mutant("max_pool_forward", "steps by the window size instead of the stride",
           replace=[("windows[:, :, ::stride, ::stride]", "windows[:, :, ::PH, ::PW]")],
           fails=["test_max_pool_forward"]),
    Mutant("max_pool_backward", "routes the gradient to every entry of the window",
           replace=[("routed = np.where(argmax == p * PW + q, dout, 0.0)", "routed = dout")],
           fails=["test_max_pool_backward_dx"]),
    Mutant("max_pool_backward", "gives the gradient to every tied maximum (x == max)", code='''
def max_pool_backward(dout, cache):
    x, pool_param, argmax = cache
    PH, PW, S = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    dx = np.zeros_like(x)
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            window = x[:, :, i * S:i * S + PH, j * S:j * S + PW]
            mask = window == window.max(axis=(2, 3), keepdims=True)
            dx[:, :, i * S:i * S + PH, j * S:j * S + PW] += mask * dout[:, :, i, j][:, :, None, None]
    return dx
''', fails=["test_max_pool_backward_dx"]),
    Mutant("max_pool_backward", "overlapping windows overwrite each other's gradient (= not +=)",
           replace=[("q:q + stride * W_out:stride] += routed", "q:q + stride * W_out:stride] = routed")],
           fails=["test_max_pool_backward_dx"]),
    # ------------------------------------------------------------------ spatial batchnorm
    Mutant("spatial_batchnorm_forward", "reshapes (N, C, H, W) straight to (-1, C): channels and positions mixed",
           replace=[("rows = x.transpose(0, 2, 3, 1).reshape(-1, C)", "rows = x.reshape(-1, C)"),
                    ("out = out.reshape(N, H, W, C).transpose(0, 3, 1, 2)", "out = out.reshape(N, C, H, W)")],
           fails=["test_spatial_batchnorm_forward", "test_spatial_batchnorm_forward_test_mode",
                  "test_spatial_batchnorm_forward_running_stats"]),
    Mutant("spatial_batchnorm_forward", "normalizes each image on its own (axes 2, 3: instance norm), not over the batch",
           code='''
def spatial_batchnorm_forward(x, gamma, beta, bn_param):
    N, C, H, W = x.shape
    mean = x.mean(axis=(2, 3), keepdims=True)
    var = x.var(axis=(2, 3), keepdims=True)
    inv_std = 1.0 / np.sqrt(var + bn_param.get("eps", 1e-5))
    x_hat = (x - mean) * inv_std
    out = gamma.reshape(1, C, 1, 1) * x_hat + beta.reshape(1, C, 1, 1)
    rows = x_hat.transpose(0, 2, 3, 1).reshape(-1, C)
    return out, (x.shape, (bn_param["mode"], rows, gamma, inv_std.mean(axis=(0, 2, 3)).ravel()))
''', fails=["test_spatial_batchnorm_forward", "test_spatial_batchnorm_forward_test_mode"]),
    Mutant("spatial_batchnorm_forward", "test mode still normalizes with the batch statistics",
           replace=[("out, bn_cache = batchnorm_forward(rows, gamma, beta, bn_param)",
                     "bn_param['mode'] = 'train'\n    out, bn_cache = batchnorm_forward(rows, gamma, beta, bn_param)")],
           fails=["test_spatial_batchnorm_forward_test_mode"]),
    Mutant("spatial_batchnorm_forward", "running variance with the unbiased (N*H*W - 1) batch variance",
           code='''
def spatial_batchnorm_forward(x, gamma, beta, bn_param):
    N, C, H, W = x.shape
    mode, eps = bn_param["mode"], bn_param.get("eps", 1e-5)
    momentum = bn_param.get("momentum", 0.9)
    rm = bn_param.get("running_mean", np.zeros(C))
    rv = bn_param.get("running_var", np.ones(C))
    if mode == "train":
        mean, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
        M = N * H * W
        bn_param["running_mean"] = momentum * rm + (1 - momentum) * mean
        bn_param["running_var"] = momentum * rv + (1 - momentum) * var * M / (M - 1)
    else:
        mean, var = rm, rv
    inv_std = 1.0 / np.sqrt(var + eps)
    x_hat = (x - mean.reshape(1, C, 1, 1)) * inv_std.reshape(1, C, 1, 1)
    out = gamma.reshape(1, C, 1, 1) * x_hat + beta.reshape(1, C, 1, 1)
    return out, (x.shape, (mode, x_hat.transpose(0, 2, 3, 1).reshape(-1, C), gamma, inv_std))
''', fails=["test_spatial_batchnorm_forward_running_stats"]),
    Mutant("spatial_batchnorm_backward", "reshapes dout straight to (-1, C) in the backward pass",
           replace=[("rows = dout.transpose(0, 2, 3, 1).reshape(-1, C)", "rows = dout.reshape(-1, C)"),
                    ("dx = dx.reshape(N, H, W, C).transpose(0, 3, 1, 2)", "dx = dx.reshape(N, C, H, W)")],
           fails=["test_spatial_batchnorm_backward_dx", "test_spatial_batchnorm_backward_dgamma",
                  "test_spatial_batchnorm_backward_dbeta"]),
    Mutant("spatial_batchnorm_backward", "forgets the mean and variance terms (dx = gamma * dout / std)",
           code='''
def spatial_batchnorm_backward(dout, cache):
    x_shape, (mode, x_hat, gamma, inv_std) = cache
    N, C, H, W = x_shape
    x_hat = x_hat.reshape(N, H, W, C).transpose(0, 3, 1, 2)
    dx = dout * (gamma * inv_std).reshape(1, C, 1, 1)
    return dx, (dout * x_hat).sum(axis=(0, 2, 3)), dout.sum(axis=(0, 2, 3))
''', fails=["test_spatial_batchnorm_backward_dx"]),
]

RIGHT = [
    Mutant("conv_forward", "all positions at once: sliding_window_view and einsum", code='''
def conv_forward(x, w, b, conv_param):
    S, P = conv_param["stride"], conv_param["pad"]
    F, C, HH, WW = w.shape
    x_pad = np.pad(x, ((0, 0), (0, 0), (P, P), (P, P)))
    win = np.lib.stride_tricks.sliding_window_view(x_pad, (HH, WW), axis=(2, 3))[:, :, ::S, ::S]
    out = np.einsum("ncijpq,fcpq->nfij", win, w) + b[None, :, None, None]
    return out, (x, w, b, conv_param)
'''),
    Mutant("conv_backward", "scalar-style loops over batch, filters and positions", code='''
def conv_backward(dout, cache):
    x, w, b, conv_param = cache
    S, P = conv_param["stride"], conv_param["pad"]
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    x_pad = np.pad(x, ((0, 0), (0, 0), (P, P), (P, P)))
    dx_pad, dw, db = np.zeros_like(x_pad), np.zeros_like(w), np.zeros_like(b)
    for n in range(N):
        for f in range(F):
            for i in range(dout.shape[2]):
                for j in range(dout.shape[3]):
                    g = dout[n, f, i, j]
                    db[f] += g
                    dw[f] += g * x_pad[n, :, i * S:i * S + HH, j * S:j * S + WW]
                    dx_pad[n, :, i * S:i * S + HH, j * S:j * S + WW] += g * w[f]
    return dx_pad[:, :, P:P + H, P:P + W], dw, db
'''),
    Mutant("conv_forward_fast", "im2col filled by a loop over the kernel offsets", code='''
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
'''),
    Mutant("conv_backward_fast", "col2im with fancy indices and np.add.at", code='''
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
    rows = p[:, None] + S * i[None, :]
    colsidx = q[:, None] + S * j[None, :]
    chan = np.broadcast_to(c[:, None], rows.shape)
    dx_pad = np.zeros((N, C, H + 2 * P, W + 2 * P))
    for n in range(N):
        np.add.at(dx_pad[n], (chan, rows, colsidx), dcols[n])
    return dx_pad[:, :, P:P + H, P:P + W], dw, db
'''),
    Mutant("max_pool_forward", "a loop over the output positions", code='''
def max_pool_forward(x, pool_param):
    PH, PW, S = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    N, C, H, W = x.shape
    Ho, Wo = 1 + (H - PH) // S, 1 + (W - PW) // S
    out = np.empty((N, C, Ho, Wo))
    argmax = np.empty((N, C, Ho, Wo), dtype=np.int64)
    for i in range(Ho):
        for j in range(Wo):
            win = x[:, :, i * S:i * S + PH, j * S:j * S + PW].reshape(N, C, -1)
            argmax[:, :, i, j] = win.argmax(axis=2)
            out[:, :, i, j] = win.max(axis=2)
    return out, (x, pool_param, argmax)
'''),
    Mutant("max_pool_backward", "loops over the windows, the first maximum found again from x", code='''
def max_pool_backward(dout, cache):
    x, pool_param, _ = cache
    PH, PW, S = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    N, C = x.shape[:2]
    dx = np.zeros_like(x)
    for n in range(N):
        for c in range(C):
            for i in range(dout.shape[2]):
                for j in range(dout.shape[3]):
                    win = x[n, c, i * S:i * S + PH, j * S:j * S + PW]
                    p, q = np.unravel_index(np.argmax(win), win.shape)
                    dx[n, c, i * S + p, j * S + q] += dout[n, c, i, j]
    return dx
'''),
    Mutant("spatial_batchnorm_forward", "written out over axes (0, 2, 3), without batchnorm_forward", code='''
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
    return out, (x.shape, (mode, x_hat.transpose(0, 2, 3, 1).reshape(-1, C), gamma, inv_std))
'''),
    Mutant("spatial_batchnorm_backward", "written out over axes (0, 2, 3), without batchnorm_backward", code='''
def spatial_batchnorm_backward(dout, cache):
    (N, C, H, W), (mode, rows, gamma, inv_std) = cache
    x_hat = rows.reshape(N, H, W, C).transpose(0, 3, 1, 2)
    dbeta = dout.sum(axis=(0, 2, 3))
    dgamma = (dout * x_hat).sum(axis=(0, 2, 3))
    g = dout * gamma[None, :, None, None]
    if mode == "train":
        dx = (g - g.mean(axis=(0, 2, 3), keepdims=True)
              - x_hat * (g * x_hat).mean(axis=(0, 2, 3), keepdims=True)) * inv_std[None, :, None, None]
    else:
        dx = g * inv_std[None, :, None, None]
    return dx, dgamma, dbeta
'''),
]
