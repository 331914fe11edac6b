"""Assignment 05: slips in initializers, normalization layers and dropout, and correct variants.

The batchnorm mutants written as whole answer cells (``code=``) follow the cache of the reference
forward, ``(mode, centered, gamma, inv_std)`` with ``x_hat = centered * inv_std``: a backward cell
only ever receives the reference forward's cache, and a forward cell's cache goes to the reference
backward. If the reference changes its cache, these must follow (the RIGHT ones then lose points,
which the mutant tests report).
"""
from grader.mutants import Mutant

# --------------------------------------------------------------------------- whole answer cells
_BN_BACKWARD_HEAD = '''
def batchnorm_backward(dout, cache):
    mode, centered, gamma, inv_std = cache
    x_hat = centered * inv_std
    dout = np.asarray(dout, dtype=np.float64)
    N = dout.shape[0]
    dbeta = dout.sum(axis=0)
    dgamma = (dout * x_hat).sum(axis=0)
    g = dout * gamma
'''

BN_BACKWARD_NO_VAR_TERM = _BN_BACKWARD_HEAD + '''
    if mode == "train":
        dx = inv_std * (g - g.mean(axis=0))          # forgets the path through the variance
    else:
        dx = inv_std * g
    return dx, dgamma, dbeta
'''

BN_BACKWARD_AS_IF_CONSTANT = _BN_BACKWARD_HEAD + '''
    dx = inv_std * g                                 # treats the batch mean and variance as constants
    return dx, dgamma, dbeta
'''

BN_BACKWARD_NO_GAMMA = _BN_BACKWARD_HEAD + '''
    g = dout                                         # forgets that out = gamma * x_hat + beta
    if mode == "train":
        dx = inv_std * (g - g.mean(axis=0) - x_hat * (g * x_hat).mean(axis=0))
    else:
        dx = inv_std * g
    return dx, dgamma, dbeta
'''

BN_BACKWARD_DGAMMA_NO_XHAT = _BN_BACKWARD_HEAD + '''
    dgamma = dout.sum(axis=0)                        # the x_hat factor is missing
    if mode == "train":
        dx = inv_std * (g - g.mean(axis=0) - x_hat * (g * x_hat).mean(axis=0))
    else:
        dx = inv_std * g
    return dx, dgamma, dbeta
'''

BN_BACKWARD_STAGED = '''
def batchnorm_backward(dout, cache):
    """Backprop through the computational graph, one node at a time."""
    mode, xmu, gamma, inv_std = cache               # xmu = x - mean
    x_hat = xmu * inv_std
    dout = np.asarray(dout, dtype=np.float64)
    N = dout.shape[0]
    dbeta = np.sum(dout, axis=0)
    dgamma = np.sum(dout * x_hat, axis=0)
    dxhat = dout * gamma
    if mode != "train":
        return dxhat * inv_std, dgamma, dbeta
    divar = np.sum(dxhat * xmu, axis=0)              # x_hat = xmu * ivar
    dxmu1 = dxhat * inv_std
    dsqrtvar = -inv_std ** 2 * divar                 # ivar = 1 / sqrtvar
    dvar = 0.5 * inv_std * dsqrtvar                  # sqrtvar = sqrt(var + eps)
    dsq = np.ones_like(dout) * dvar / N              # var = mean(xmu ** 2)
    dxmu2 = 2 * xmu * dsq
    dx1 = dxmu1 + dxmu2
    dmu = -np.sum(dx1, axis=0)                       # xmu = x - mu
    dx = dx1 + dmu / N                               # mu = mean(x)
    return dx, dgamma, dbeta
'''

BN_BACKWARD_JACOBIAN = '''
def batchnorm_backward(dout, cache):
    """The full N x N Jacobian of each feature, one feature at a time."""
    mode, centered, gamma, inv_std = cache
    x_hat = centered * inv_std
    dout = np.asarray(dout, dtype=np.float64)
    N, D = dout.shape
    dbeta = np.array([dout[:, j].sum() for j in range(D)])
    dgamma = np.array([dout[:, j] @ x_hat[:, j] for j in range(D)])
    dx = np.empty_like(dout)
    for j in range(D):
        if mode == "train":
            J = (np.eye(N) - 1.0 / N - np.outer(x_hat[:, j], x_hat[:, j]) / N) * inv_std[j]
        else:
            J = np.eye(N) * inv_std[j]
        dx[:, j] = J.T @ (gamma[j] * dout[:, j])
    return dx, dgamma, dbeta
'''

BN_FORWARD_ONE_PASS = '''
def batchnorm_forward(x, gamma, beta, bn_param):
    """Variance as E[x^2] - E[x]^2; test mode folded into one affine map."""
    x = np.asarray(x, dtype=np.float64)
    mode = bn_param["mode"]
    eps = bn_param.get("eps", 1e-5)
    momentum = bn_param.get("momentum", 0.9)
    D = x.shape[1]
    running_mean = bn_param.get("running_mean", np.zeros(D))
    running_var = bn_param.get("running_var", np.ones(D))
    if mode == "train":
        mean = np.mean(x, axis=0)
        var = np.maximum(np.mean(x ** 2, axis=0) - mean ** 2, 0.0)
        inv_std = 1.0 / np.sqrt(var + eps)
        x_hat = (x - mean) * inv_std
        out = gamma * x_hat + beta
        running_mean = momentum * running_mean + (1 - momentum) * mean
        running_var = momentum * running_var + (1 - momentum) * var
        centered = x - mean
    else:
        inv_std = 1.0 / np.sqrt(running_var + eps)
        scale = gamma * inv_std
        out = x * scale + (beta - running_mean * scale)
        centered = x - running_mean
    bn_param["running_mean"] = running_mean
    bn_param["running_var"] = running_var
    return out, (mode, centered, gamma, inv_std)
'''

BN_FORWARD_UPDATES_IN_TEST = '''
def batchnorm_forward(x, gamma, beta, bn_param):
    x = np.asarray(x, dtype=np.float64)
    mode = bn_param["mode"]
    eps = bn_param.get("eps", 1e-5)
    momentum = bn_param.get("momentum", 0.9)
    D = x.shape[1]
    running_mean = bn_param.get("running_mean", np.zeros(D))
    running_var = bn_param.get("running_var", np.ones(D))
    mean, var = x.mean(axis=0), x.var(axis=0)
    # the running averages are updated on every call, test mode included
    running_mean = momentum * running_mean + (1 - momentum) * mean
    running_var = momentum * running_var + (1 - momentum) * var
    if mode == "train":
        inv_std = 1.0 / np.sqrt(var + eps)
        centered = x - mean
    else:
        inv_std = 1.0 / np.sqrt(running_var + eps)
        centered = x - running_mean
    bn_param["running_mean"] = running_mean
    bn_param["running_var"] = running_var
    return gamma * centered * inv_std + beta, (mode, centered, gamma, inv_std)
'''

LN_FORWARD_EINSUM = '''
def layernorm_forward(x, gamma, beta, ln_param):
    """Flattened to one row per position, statistics with einsum."""
    x = np.asarray(x, dtype=np.float64)
    eps = ln_param.get("eps", 1e-5)
    D = x.shape[-1]
    rows = x.reshape(-1, D)
    mean = np.einsum("nd->n", rows) / D
    centered = rows - mean[:, None]
    var = np.einsum("nd,nd->n", centered, centered) / D
    inv_std = 1.0 / np.sqrt(var + eps)
    x_hat = centered * inv_std[:, None]
    out = (x_hat * gamma + beta).reshape(x.shape)
    return out, (x_hat.reshape(x.shape), gamma, inv_std.reshape(x.shape[:-1] + (1,)))
'''

LN_BACKWARD_LOOP = '''
def layernorm_backward(dout, cache):
    """One example at a time, with its D x D Jacobian."""
    x_hat, gamma, inv_std = cache
    dout = np.asarray(dout, dtype=np.float64)
    D = x_hat.shape[-1]
    xh, go, s = x_hat.reshape(-1, D), dout.reshape(-1, D), inv_std.reshape(-1)
    dx = np.empty_like(go)
    for n in range(len(xh)):
        J = (np.eye(D) - 1.0 / D - np.outer(xh[n], xh[n]) / D) * s[n]
        dx[n] = J.T @ (go[n] * gamma)
    return dx.reshape(dout.shape), np.sum(go * xh, axis=0), np.sum(go, axis=0)
'''

DROPOUT_BACKWARD_NEW_MASK = '''
def dropout_backward(dout, cache):
    mode, mask = cache
    dout = np.asarray(dout, dtype=np.float64)
    if mode == "train":
        p = 1.0 / mask.max() if mask.max() > 0 else 1.0
        return dout * (np.random.random(dout.shape) < p) / p     # a fresh mask, not the forward's
    return dout.copy()
'''

WRONG = [
    # ----------------------------------------------------------------- initializers
    Mutant("xavier_uniform", "the standard deviation used as the bound (no sqrt(3))",
           replace=[("bound = np.sqrt(6.0 / (fan_in + fan_out))", "bound = np.sqrt(2.0 / (fan_in + fan_out))")],
           fails=["test_xavier_uniform"]),
    Mutant("xavier_uniform", "a product of the fans where Glorot has a sum",
           replace=[("np.sqrt(6.0 / (fan_in + fan_out))", "np.sqrt(6.0 / (fan_in * fan_out))")],
           fails=["test_xavier_uniform"]),
    Mutant("xavier_normal", "the notes' fan-in-only variance 1/n instead of 2/(fan_in + fan_out)",
           replace=[("std = np.sqrt(2.0 / (fan_in + fan_out))", "std = np.sqrt(1.0 / fan_in)")],
           fails=["test_xavier_normal"]),
    Mutant("xavier_normal", "draws from np.random instead of the rng argument",
           replace=[("rng.normal(0.0, std, size=(fan_in, fan_out))", "np.random.normal(0.0, std, size=(fan_in, fan_out))")],
           fails=["test_xavier_normal"]),
    Mutant("kaiming_uniform", "ReLU's gain forgotten: bound sqrt(3 / fan_in)",
           replace=[("np.sqrt(6.0 / fan_in)", "np.sqrt(3.0 / fan_in)")], fails=["test_kaiming_uniform"]),
    Mutant("kaiming_uniform", "a normal distribution with the right standard deviation instead of a uniform",
           replace=[("w = rng.uniform(-bound, bound, size=(fan_in, fan_out))",
                     "w = rng.normal(0.0, bound / np.sqrt(3.0), size=(fan_in, fan_out))")],
           fails=["test_kaiming_uniform"]),
    Mutant("kaiming_normal", "fan_out where fan_in belongs",
           replace=[("std = np.sqrt(2.0) / np.sqrt(fan_in)", "std = np.sqrt(2.0) / np.sqrt(fan_out)")], fails=["test_kaiming_normal"]),
    Mutant("kaiming_normal", "PyTorch's (out, in) orientation: shape (fan_out, fan_in)",
           replace=[("size=(fan_in, fan_out)", "size=(fan_out, fan_in)")], fails=["test_kaiming_normal"]),
    # ----------------------------------------------------------------- batchnorm forward
    Mutant("batchnorm_forward", "test mode normalizes with the batch statistics",
           replace=[("centered = x - running_mean", "centered = x - x.mean(axis=0)"),
                    ("var = running_var\n", "var = x.var(axis=0)\n")],
           fails=["test_batchnorm_forward_test"]),
    Mutant("batchnorm_forward", "normalizes with the unbiased variance (divide by N - 1)",
           replace=[("centered) / x.shape[0]", "centered) / (x.shape[0] - 1)")],
           fails=["test_batchnorm_forward", "test_batchnorm_forward_running"]),
    Mutant("batchnorm_forward", "running_var from the unbiased variance (PyTorch's convention), normalizes with the biased",
           replace=[("running_var = momentum * running_var + (1 - momentum) * var",
                     "running_var = momentum * running_var + (1 - momentum) * var * x.shape[0] / (x.shape[0] - 1)")],
           fails=["test_batchnorm_forward_running"]),
    Mutant("batchnorm_forward", "eps outside the square root",
           replace=[("inv_std = 1.0 / np.sqrt(var + eps)", "inv_std = 1.0 / (np.sqrt(var) + eps)")],
           fails=["test_batchnorm_forward"]),
    Mutant("batchnorm_forward", "momentum weights the new batch (PyTorch's convention)",
           replace=[("running_mean = momentum * running_mean + (1 - momentum) * mean",
                     "running_mean = (1 - momentum) * running_mean + momentum * mean"),
                    ("running_var = momentum * running_var + (1 - momentum) * var",
                     "running_var = (1 - momentum) * running_var + momentum * var")],
           fails=["test_batchnorm_forward_running"]),
    Mutant("batchnorm_forward", "updates the running averages in test mode too", code=BN_FORWARD_UPDATES_IN_TEST,
           fails=["test_batchnorm_forward_test"]),
    # ----------------------------------------------------------------- batchnorm backward
    Mutant("batchnorm_backward", "dx misses the path through the variance", code=BN_BACKWARD_NO_VAR_TERM,
           fails=["test_batchnorm_backward_dx"]),
    Mutant("batchnorm_backward", "dx treats the batch mean and variance as constants", code=BN_BACKWARD_AS_IF_CONSTANT,
           fails=["test_batchnorm_backward_dx"]),
    Mutant("batchnorm_backward", "dx forgets gamma", code=BN_BACKWARD_NO_GAMMA, fails=["test_batchnorm_backward_dx"]),
    Mutant("batchnorm_backward", "dgamma without the x_hat factor", code=BN_BACKWARD_DGAMMA_NO_XHAT,
           fails=["test_batchnorm_backward_dgamma"]),
    # ----------------------------------------------------------------- layernorm
    Mutant("layernorm_forward", "statistics over the batch axis (batch norm) instead of the features",
           replace=[("x.mean(axis=-1, keepdims=True)", "x.mean(axis=0, keepdims=True)"),
                    ("np.mean(x_hat ** 2, axis=-1, keepdims=True)", "np.mean(x_hat ** 2, axis=0, keepdims=True)")],
           fails=["test_layernorm_forward"]),
    Mutant("layernorm_backward", "dx misses the path through the mean",
           replace=[("g - g.mean(axis=-1, keepdims=True)", "g")], fails=["test_layernorm_backward_dx"]),
    Mutant("layernorm_backward", "dgamma summed over the first axis only (wrong for (N, T, D) inputs)",
           replace=[("dgamma = (dout * x_hat).reshape(-1, D).sum(axis=0)", "dgamma = (dout * x_hat).sum(axis=0)")],
           fails=["test_layernorm_backward_dgamma"]),
    # ----------------------------------------------------------------- dropout
    Mutant("dropout_forward", "kept units not divided by p",
           replace=[("(rng.random(x.shape) < p) / p", "(rng.random(x.shape) < p) * 1.0")],
           fails=["test_dropout_forward"]),
    Mutant("dropout_forward", "p taken as the drop probability (PyTorch's convention)",
           replace=[("(rng.random(x.shape) < p) / p", "(rng.random(x.shape) > p) / (1 - p)")],
           fails=["test_dropout_forward"]),
    Mutant("dropout_forward", "one mask shared by every example of the batch",
           replace=[("rng.random(x.shape)", "rng.random(x.shape[1:])")], fails=["test_dropout_forward"]),
    Mutant("dropout_forward", "the seed is ignored",
           replace=[("rng = np.random if seed is None else np.random.default_rng(seed)", "rng = np.random")],
           fails=["test_dropout_forward"]),
    Mutant("dropout_forward", "scales by p at test time (the non-inverted rule on top of inverted dropout)",
           replace=[("out = x.copy()", "out = x * p")], fails=["test_dropout_forward_test"]),
    Mutant("dropout_backward", "draws a new mask in the backward pass", code=DROPOUT_BACKWARD_NEW_MASK,
           fails=["test_dropout_backward_dx"]),
    Mutant("dropout_backward", "forgets the 1/p of the kept units",
           replace=[("dx = dout * mask", "dx = dout * (mask > 0)")], fails=["test_dropout_backward_dx"]),
    # ----------------------------------------------------------------- hints that name the real cause
    Mutant("batchnorm_forward", "running_var created as zeros when absent (CS231n's start)",
           replace=[('bn_param.get("running_var", np.ones(x.shape[1]))',
                     'bn_param.get("running_var", np.zeros(x.shape[1]))')],
           fails=["test_batchnorm_forward_running"], hint="created as ones when absent"),
    Mutant("batchnorm_forward", "the batch mean taken with keepdims=True: running_mean of shape (1, D)",
           replace=[("mean = x.mean(axis=0)\n", "mean = x.mean(axis=0, keepdims=True)\n")],
           fails=["test_batchnorm_forward_running"], hint="a batch statistic taken with keepdims=True"),
    # ----------------------------------------------------------------- caught by a fixed visible case
    Mutant("batchnorm_forward", "bn_param's eps ignored (always 1e-5): the visible 'eps given' case catches it",
           replace=[('eps = bn_param.get("eps", 1e-5)', "eps = 1e-5")], fails=["test_batchnorm_forward"]),
    Mutant("batchnorm_forward", "bn_param's momentum ignored (always 0.9)",
           replace=[('momentum = bn_param.get("momentum", 0.9)', "momentum = 0.9")],
           fails=["test_batchnorm_forward_running"]),
    Mutant("batchnorm_backward", "the train-mode formula after a test-mode forward too",
           replace=[('if mode == "train":', "if True:")], fails=["test_batchnorm_backward_dx"]),
    Mutant("layernorm_forward", "statistics over axis 1, right for (N, D) only",
           replace=[("x.mean(axis=-1, keepdims=True)", "x.mean(axis=1, keepdims=True)"),
                    ("np.mean(x_hat ** 2, axis=-1, keepdims=True)", "np.mean(x_hat ** 2, axis=1, keepdims=True)")],
           fails=["test_layernorm_forward"]),
]

RIGHT = [
    Mutant("xavier_uniform", "uniform built from rng.random",
           replace=[("w = rng.uniform(-bound, bound, size=(fan_in, fan_out))",
                     "w = bound * (2.0 * rng.random((fan_in, fan_out)) - 1.0)")]),
    Mutant("kaiming_normal", "scaled standard normal",
           replace=[("rng.normal(0.0, std, size=(fan_in, fan_out))", "std * rng.standard_normal((fan_in, fan_out))")]),
    Mutant("batchnorm_forward", "E[x^2] - E[x]^2 variance, test mode as one folded affine map", code=BN_FORWARD_ONE_PASS),
    Mutant("batchnorm_backward", "staged backprop through the computational graph", code=BN_BACKWARD_STAGED),
    Mutant("batchnorm_backward", "explicit per-feature Jacobians in a loop", code=BN_BACKWARD_JACOBIAN),
    Mutant("layernorm_forward", "flattened rows and einsum", code=LN_FORWARD_EINSUM),
    Mutant("layernorm_backward", "a loop over examples with D x D Jacobians", code=LN_BACKWARD_LOOP),
    Mutant("dropout_forward", "binomial mask",
           replace=[("(rng.random(x.shape) < p) / p", "rng.binomial(1, p, size=x.shape) / p")]),
    Mutant("dropout_backward", "np.where on the mask", replace=[("dx = dout * mask", "dx = np.where(mask != 0, dout * mask, 0.0)")]),
]
