"""Assignment 02: slips students make in layers and losses, and correct variants."""
from grader.mutants import Mutant

WRONG = [
    # the net's tests use the judge's reference affine (dlhw/checks/deps.py): only affine's own fail
    Mutant("affine_forward", "forgets the bias", replace=[("@ w + b", "@ w")],
           fails=["test_affine_forward"]),
    Mutant("affine_backward", "dw transposed (dout^T x)",
           replace=[("x.reshape(x.shape[0], -1).T @ dout", "dout.T @ x.reshape(x.shape[0], -1)")],
           fails=["test_affine_backward_dw"]),
    Mutant("affine_backward", "db summed over the wrong axis", replace=[("dout.sum(axis=0)", "dout.sum(axis=1)")],
           fails=["test_affine_backward_db"]),
    Mutant("affine_backward", "dx not reshaped to x's shape (the visible (N, d1, d2) case catches it)",
           replace=[(".reshape(x.shape)", "")], fails=["test_affine_backward_dx"]),
    Mutant("affine_forward", "x @ w + b without flattening x (the visible (N, d1, d2) case catches it)",
           replace=[("x.reshape(x.shape[0], -1) @ w + b", "x @ w + b")],
           fails=["test_affine_forward", "test_affine_backward_dx", "test_affine_backward_dw"]),
    Mutant("sigmoid_forward", "the naive 1 / (1 + exp(-x)), which overflows for x = -800 (the notebook's trap)",
           replace=[("np.where(x >= 0, 1.0 / (1.0 + z), z / (1.0 + z))", "1.0 / (1.0 + np.exp(-x))")],
           fails=["test_sigmoid_forward", "test_sigmoid_backward_dx"]),
    Mutant("relu_backward", "masks with dout > 0 instead of x > 0", replace=[("dout * (x > 0)", "dout * (dout > 0)")],
           fails=["test_relu_backward_dx"]),
    Mutant("sigmoid_backward", "uses (1 - s)^2", replace=[("dout * out * (1.0 - out)", "dout * (1.0 - out) ** 2")],
           fails=["test_sigmoid_backward_dx"]),
    Mutant("tanh_backward", "(1 - tanh)^2 instead of 1 - tanh^2",
           replace=[("((1.0 - out) * (1.0 + out))", "((1.0 - out) ** 2)")], fails=["test_tanh_backward_dx"]),
    Mutant("softmax_loss", "unstable softmax: no max subtraction (logits of 1e3 overflow)",
           replace=[("shifted = x - x.max(axis=1, keepdims=True)", "shifted = x")],
           fails=["test_softmax_loss_loss"]),
    Mutant("softmax_loss", "gradient not averaged over the batch", replace=[("dx /= N", "dx /= 1")],
           fails=["test_softmax_loss_dx"]),
    Mutant("mse_loss", "forgets the factor 2 in the gradient", replace=[("(2.0 / x.size)", "(1.0 / x.size)")],
           fails=["test_mse_loss_dx"]),
    Mutant("mse_loss", "averages over the batch only", replace=[("np.mean(diff ** 2)", "np.sum(diff ** 2) / len(x)")],
           fails=["test_mse_loss_loss"]),
    Mutant("two_layer_net", "forgets the regularization's gradient",
           replace=[('"W1": dW1 + reg * W1', '"W1": dW1'), ('"W2": dW2 + reg * W2', '"W2": dW2')],
           fails=["test_two_layer_net_grads"]),
    Mutant("two_layer_net", "penalty reg * ||W||^2 without the 1/2", replace=[("0.5 * reg *", "reg *")],
           fails=["test_two_layer_net_loss"]),
    # ----------------------------------------------------------------- hints that name the real cause
    Mutant("softmax_loss", "subtracts the max, then takes the log of the probabilities (log(0) for logits of 1e3)",
           replace=[("log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))",
                     "probs = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)\n"
                     "    log_probs = np.log(probs)")],
           fails=["test_softmax_loss_loss"], hint="use log-sum-exp, never the log of a probability"),
    Mutant("affine_forward", "NumPy 1 code: reshape(newshape=...)",
           replace=[("x.reshape(x.shape[0], -1) @ w + b", "x.reshape(newshape=(x.shape[0], -1)) @ w + b")],
           fails=["test_affine_forward"], hint="this is NumPy 1 code"),
]

RIGHT = [
    Mutant("affine_forward", "einsum", replace=[("x.reshape(x.shape[0], -1) @ w + b",
                                                 "np.einsum('nd,dm->nm', x.reshape(len(x), -1), w) + b")]),
    Mutant("affine_backward", "db with an explicit loop over the outputs",
           replace=[("dout.sum(axis=0)", "np.array([sum(dout[n, j] for n in range(dout.shape[0])) "
                                         "for j in range(dout.shape[1])])")]),
    Mutant("relu_forward", "x * (x > 0)", replace=[("np.maximum(x, 0.0)", "x * (x > 0)")]),
    Mutant("sigmoid_forward", "sigmoid through tanh (stable everywhere)",
           replace=[("np.where(x >= 0, 1.0 / (1.0 + z), z / (1.0 + z))", "0.5 * (1.0 + np.tanh(0.5 * x))")]),
    Mutant("tanh_backward", "1 - tanh^2 written directly", replace=[("((1.0 - out) * (1.0 + out))", "(1.0 - out ** 2)")]),
    Mutant("softmax_loss", "a loop over the rows with logsumexp", code='''
def softmax_loss(x, y):
    N = x.shape[0]
    loss, dx = 0.0, np.zeros_like(x)
    for n in range(N):
        m = x[n].max()
        lse = m + np.log(np.sum(np.exp(x[n] - m)))
        loss += lse - x[n, y[n]]
        dx[n] = np.exp(x[n] - lse)
        dx[n, y[n]] -= 1.0
    return loss / N, dx / N
'''),
    Mutant("two_layer_net", "written inline, without the layer functions", code='''
def two_layer_net(X, params, y=None, reg=0.0):
    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    z = X @ W1 + b1
    a = np.maximum(z, 0)
    s = a @ W2 + b2
    if y is None:
        return s
    s = s - s.max(axis=1, keepdims=True)
    p = np.exp(s) / np.exp(s).sum(axis=1, keepdims=True)
    N = X.shape[0]
    loss = -np.log(p[np.arange(N), y]).mean() + 0.5 * reg * ((W1 ** 2).sum() + (W2 ** 2).sum())
    ds = p.copy(); ds[np.arange(N), y] -= 1; ds /= N
    da = ds @ W2.T
    dz = da * (z > 0)
    return loss, {"W1": X.T @ dz + reg * W1, "b1": dz.sum(0), "W2": a.T @ ds + reg * W2, "b2": ds.sum(0)}
'''),
]
