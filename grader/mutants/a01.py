"""Assignment 01: slips students make in gradients and linear models, and correct variants."""
from grader.mutants import Mutant

WRONG = [
    # ---- numerical_gradient
    Mutant("numerical_gradient", "one-sided quotient (f(x + h) - f(x)) / h",
           replace=[("flat_x[i] = old - h\n", "flat_x[i] = old\n"), ("(2 * h)", "h")],
           fails=["test_numerical_gradient", "test_numerical_gradient_step"]),
    Mutant("numerical_gradient", "divides the centred difference by h instead of 2h",
           replace=[("(2 * h)", "h")], fails=["test_numerical_gradient", "test_numerical_gradient_step"]),
    Mutant("numerical_gradient", "never puts the entry back (x is left at x - h, entry after entry)",
           replace=[("        flat_x[i] = old                                # restore before the next coordinate\n", "")],
           fails=["test_numerical_gradient", "test_numerical_gradient_restores_x"]),
    Mutant("numerical_gradient", "ignores the step argument h (always 1e-5)",
           replace=[("old + h", "old + 1e-5"), ("old - h", "old - 1e-5"), ("(2 * h)", "(2 * 1e-5)")],
           fails=["test_numerical_gradient_step"]),
    Mutant("numerical_gradient", "perturbs every entry at once (a directional derivative in every slot)",
           code='''
def numerical_gradient(f, x, h=1e-5):
    grad = np.zeros_like(x)
    for i in range(x.size):
        grad.flat[i] = (f(x + h) - f(x - h)) / (2 * h)
    return grad
''', fails=["test_numerical_gradient", "test_numerical_gradient_step"]),
    # ---- rel_error
    Mutant("rel_error", "no floor: 0 / 0 = nan where both arrays are 0",
           replace=[("np.maximum(np.abs(a) + np.abs(b), floor)", "(np.abs(a) + np.abs(b))")],
           fails=["test_rel_error"]),
    Mutant("rel_error", "the mean relative error instead of the largest", replace=[("np.max(", "np.mean(")],
           fails=["test_rel_error"]),
    # ---- least squares
    Mutant("least_squares_fit", "puts l2 / 2 on the diagonal (from the 1/2 of the penalty)",
           replace=[("l2 * np.eye", "0.5 * l2 * np.eye")], fails=["test_least_squares_fit_ridge"]),
    Mutant("least_squares_fit", "forgets the penalty in the normal equations",
           replace=[("A = X.T @ X + l2 * np.eye(X.shape[1])", "A = X.T @ X")], fails=["test_least_squares_fit_ridge"]),
    # ---- logistic regression
    Mutant("logistic_loss", "log of a clipped sigmoid (caps a confidently wrong example's loss at ~35)",
           replace=[("loss = np.mean(np.logaddexp(0.0, z) - t * z) + 0.5 * l2 * (w @ w)",
                     "h_ = np.clip(1.0 / (1.0 + np.exp(-z)), 1e-15, 1 - 1e-15)\n"
                     "    loss = -np.mean(t * np.log(h_) + (1 - t) * np.log(1 - h_)) + 0.5 * l2 * (w @ w)")],
           fails=["test_logistic_loss_loss"]),
    Mutant("logistic_loss", "log(sigmoid) computed naively (log(0) for logits of 1e3)",
           replace=[("loss = np.mean(np.logaddexp(0.0, z) - t * z) + 0.5 * l2 * (w @ w)",
                     "h_ = 1.0 / (1.0 + np.exp(-z))\n"
                     "    loss = -np.mean(t * np.log(h_) + (1 - t) * np.log(1 - h_)) + 0.5 * l2 * (w @ w)")],
           fails=["test_logistic_loss_loss"]),
    Mutant("logistic_loss", "gradient summed, not averaged, over the examples",
           replace=[("grad = X.T @ (h - t) / N + l2 * w", "grad = X.T @ (h - t) + l2 * w")],
           fails=["test_logistic_loss_grad"]),
    Mutant("logistic_loss", "gradient with (t - h): the wrong sign of the data term",
           replace=[("grad = X.T @ (h - t) / N + l2 * w", "grad = X.T @ (t - h) / N + l2 * w")],
           fails=["test_logistic_loss_grad"]),
    Mutant("logistic_loss", "forgets the penalty's gradient l2 * w",
           replace=[("grad = X.T @ (h - t) / N + l2 * w", "grad = X.T @ (h - t) / N")],
           fails=["test_logistic_loss_grad"]),
    # ---- softmax regression
    Mutant("softmax_regression_loss", "no max shift: exp of scores of 1e3 overflows",
           replace=[("shifted = scores - scores.max(axis=1, keepdims=True)", "shifted = scores")],
           fails=["test_softmax_regression_loss_loss", "test_softmax_regression_loss_grad"]),
    Mutant("softmax_regression_loss", "max over the wrong axis (the column max: not constant within a row)",
           replace=[("scores.max(axis=1, keepdims=True)", "scores.max(axis=0, keepdims=True)")],
           fails=["test_softmax_regression_loss_loss", "test_softmax_regression_loss_grad"]),
    Mutant("softmax_regression_loss", "gradient not divided by N",
           replace=[("dW = X.T @ dscores / N + l2 * W", "dW = X.T @ dscores + l2 * W")],
           fails=["test_softmax_regression_loss_grad"]),
    Mutant("softmax_regression_loss", "forgets to subtract the one-hot labels (dW from P alone)",
           replace=[("    dscores[rows, y] -= 1.0                      # P - Y\n", "")],
           fails=["test_softmax_regression_loss_grad"]),
    Mutant("softmax_regression_loss", "penalty l2 ||W||^2 without the 1/2",
           replace=[("0.5 * l2 * np.sum(W * W)", "l2 * np.sum(W * W)")], fails=["test_softmax_regression_loss_loss"]),
    # ---- minibatch SGD
    Mutant("minibatch_sgd", "never shuffles: the same fixed order every epoch",
           replace=[("order = rng.permutation(N)", "order = np.arange(N)")], fails=["test_minibatch_sgd_batches"]),
    Mutant("minibatch_sgd", "shuffles once, before the epochs, instead of every epoch",
           replace=[("    for _ in range(epochs):\n        order = rng.permutation(N)\n",
                     "    order = rng.permutation(N)\n    for _ in range(epochs):\n")],
           fails=["test_minibatch_sgd_batches"]),
    Mutant("minibatch_sgd", "shuffles with np.random instead of the rng argument",
           replace=[("order = rng.permutation(N)", "order = np.random.permutation(N)")],
           fails=["test_minibatch_sgd_batches"]),
    Mutant("minibatch_sgd", "drops the last, smaller batch",
           replace=[("range(0, N, batch_size)", "range(0, N - batch_size + 1, batch_size)")],
           fails=["test_minibatch_sgd_batches"]),
    Mutant("minibatch_sgd", "shuffles X but takes y in the original order",
           replace=[("y[batch]", "y[start:start + batch_size]")],
           fails=["test_minibatch_sgd_batches", "test_minibatch_sgd_full_batch"]),
    Mutant("minibatch_sgd", "steps up the gradient (w + lr * grad)",
           replace=[("w = w - learning_rate * grad", "w = w + learning_rate * grad")],
           fails=["test_minibatch_sgd_full_batch", "test_minibatch_sgd_trajectory"]),
    Mutant("minibatch_sgd", "updates the caller's w0 in place",
           replace=[("w = w0.copy()", "w = w0"), ("w = w - learning_rate * grad", "w -= learning_rate * grad")],
           fails=["test_minibatch_sgd_trajectory"]),
    Mutant("minibatch_sgd", "history holds one mean loss per epoch instead of one loss per step",
           replace=[("    for _ in range(epochs):\n", "    for _ in range(epochs):\n        epoch_losses = []\n"),
                    ("            history.append(loss)\n",
                     "            epoch_losses.append(loss)\n        history.append(np.mean(epoch_losses))\n")],
           fails=["test_minibatch_sgd_trajectory"]),
    # ----------------------------------------------------------------- hints that name the real cause
    Mutant("softmax_regression_loss", "NumPy 1 code: np.int",
           replace=[("rows = np.arange(N)", "rows = np.arange(N, dtype=np.int)")],
           fails=["test_softmax_regression_loss_loss", "test_softmax_regression_loss_grad"],
           hint="this is NumPy 1 code: np.int was removed in NumPy 1.24; use int"),
    Mutant("softmax_regression_loss", "subtracts the max, then takes the log of the probabilities",
           replace=[("log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))",
                     "probs = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)\n"
                     "    log_probs = np.log(probs)")],
           fails=["test_softmax_regression_loss_loss"], hint="use log-sum-exp, never the log of a probability"),
    # ----------------------------------------------------------------- caught by a fixed visible case
    Mutant("numerical_gradient", "assumes a 2-D x (rows, cols = x.shape): the visible 1-D and 3-D cases catch it",
           replace=[("flat_x, flat_g = x.reshape(-1), grad.reshape(-1)",
                     "rows, cols = x.shape\n    flat_x, flat_g = x.reshape(-1), grad.reshape(-1)")],
           fails=["test_numerical_gradient"]),
    Mutant("minibatch_sgd", "drops the last, smaller batch of an epoch (once a coin flip of the hidden sizes)",
           replace=[("for start in range(0, N, batch_size):", "for start in range(0, N - batch_size + 1, batch_size):")],
           fails=["test_minibatch_sgd_batches", "test_minibatch_sgd_full_batch"]),
]

RIGHT = [
    Mutant("numerical_gradient", "np.nditer with multi_index (the classic course loop)", code='''
def numerical_gradient(f, x, h=1e-5):
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"], op_flags=["readwrite"])
    while not it.finished:
        ix = it.multi_index
        old = x[ix]
        x[ix] = old + h
        fp = f(x)
        x[ix] = old - h
        fm = f(x)
        x[ix] = old
        grad[ix] = (fp - fm) / (2 * h)
        it.iternext()
    return grad
'''),
    Mutant("numerical_gradient", "never touches x: evaluates f at x + h e_i and x - h e_i built as new arrays",
           code='''
def numerical_gradient(f, x, h=1e-5):
    grad = np.zeros(x.shape)
    for i in np.ndindex(*x.shape):
        e = np.zeros(x.shape)
        e[i] = h
        grad[i] = (f(x + e) - f(x - e)) / (2 * h)
    return grad
'''),
    Mutant("rel_error", "np.where instead of a floor inside np.maximum", code='''
def rel_error(a, b, floor=1e-12):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.size == 0:
        return 0.0
    den = np.abs(a) + np.abs(b)
    r = np.abs(a - b) / np.where(den > floor, den, floor)
    return float(r.max())
'''),
    Mutant("least_squares_fit", "np.linalg.inv of the normal matrix (works, though solve is better)",
           replace=[("w = np.linalg.solve(A, X.T @ y)", "w = np.linalg.inv(A) @ (X.T @ y)")]),
    Mutant("least_squares_fit", "lstsq of the augmented system [X; sqrt(l2) I] w = [y; 0]",
           replace=[("A = X.T @ X + l2 * np.eye(X.shape[1])\n    w = np.linalg.solve(A, X.T @ y)",
                     "D = X.shape[1]\n    A = np.vstack([X, np.sqrt(l2) * np.eye(D)])\n"
                     "    b = np.concatenate([y, np.zeros((D,) + y.shape[1:])])\n"
                     "    w = np.linalg.lstsq(A, b, rcond=None)[0]")]),
    Mutant("logistic_loss", "softplus by hand, sigmoid split by sign", code='''
def logistic_loss(w, X, t, l2=0.0):
    N = X.shape[0]
    z = X @ w
    softplus = np.maximum(z, 0.0) + np.log1p(np.exp(-np.abs(z)))      # log(1 + e^z)
    loss = np.sum(softplus - t * z) / N + 0.5 * l2 * np.sum(w ** 2)
    e = np.exp(-np.abs(z))
    h = np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    grad = X.T @ (h - t) / N + l2 * w
    return float(loss), grad
'''),
    Mutant("softmax_regression_loss", "a loop over the examples with one-hot vectors", code='''
def softmax_regression_loss(W, X, y, l2=0.0):
    N, C = X.shape[0], W.shape[1]
    loss, dW = 0.0, np.zeros_like(W)
    for n in range(N):
        s = X[n] @ W
        s = s - s.max()
        p = np.exp(s) / np.exp(s).sum()
        loss -= s[y[n]] - np.log(np.exp(s).sum())
        onehot = np.zeros(C)
        onehot[y[n]] = 1.0
        dW += np.outer(X[n], p - onehot)
    return loss / N + 0.5 * l2 * np.sum(W ** 2), dW / N + l2 * W
'''),
    Mutant("minibatch_sgd", "rng.shuffle of an index array and np.array_split at multiples of batch_size",
           code='''
def minibatch_sgd(loss_fn, w0, X, y, learning_rate, batch_size, epochs, rng):
    N = len(X)
    w = np.array(w0, dtype=float)
    history = np.zeros(0)
    for epoch in range(epochs):
        idx = np.arange(N)
        rng.shuffle(idx)
        for batch in np.array_split(idx, np.arange(batch_size, N, batch_size)):
            loss, grad = loss_fn(w, X[batch], y[batch])
            w -= learning_rate * grad
            history = np.append(history, loss)
    return w, history
'''),
]
