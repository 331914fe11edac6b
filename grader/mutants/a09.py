"""Assignment 09: slips made when porting numpy layers to torch and writing a training loop,
and correct variants written differently."""
from grader.mutants import Mutant

_SM = ["test_softmax_loss_torch", "test_softmax_loss_torch_dscores"]
_BN_TRAIN = ["test_batchnorm_torch", "test_batchnorm_torch_grads", "test_batchnorm_torch_running"]
_CONV = ["test_conv2d_torch", "test_conv2d_torch_grads"]
_LSTM = ["test_lstm_step_torch", "test_lstm_step_torch_grads"]
_ATT = ["test_attention_torch", "test_attention_torch_grads"]

_NO_GRAD_UPDATE = "        with torch.no_grad():                     # the averages are state, not part of the graph\n"

WRONG = [
    # ------------------------------------------------------------------ softmax loss
    Mutant("softmax_loss_torch", "no max subtraction and exp/sum/log by hand: overflows for scores of 1e3",
           replace=[("    shifted = scores - scores.max(dim=1, keepdim=True).values.detach()\n", "    shifted = scores\n"),
                    ("torch.logsumexp(shifted, dim=1, keepdim=True)", "shifted.exp().sum(dim=1, keepdim=True).log()")],
           fails=["test_softmax_loss_torch"]),
    Mutant("softmax_loss_torch", "sums over the batch instead of averaging",
           replace=[("y].mean()", "y].sum()")], fails=_SM),
    Mutant("softmax_loss_torch", "returns loss.item(), a float: autograd cannot go through it",
           replace=[("y].mean()", "y].mean().item()")], fails=_SM),
    # ------------------------------------------------------------------ batch normalization
    Mutant("batchnorm_torch", "torch's default unbiased variance (divide by N - 1) for normalizing",
           replace=[("var = x.var(dim=0, correction=0)", "var = x.var(dim=0)")], fails=_BN_TRAIN),
    Mutant("batchnorm_torch", "momentum on the wrong side (PyTorch's convention: weight of the new batch)",
           replace=[("running_mean.mul_(momentum).add_((1 - momentum) * mean)",
                     "running_mean.mul_(1 - momentum).add_(momentum * mean)"),
                    ("running_var.mul_(momentum).add_((1 - momentum) * var)",
                     "running_var.mul_(1 - momentum).add_(momentum * var)")],
           fails=["test_batchnorm_torch_running"]),
    Mutant("batchnorm_torch", "keeps the unbiased variance in running_var, as nn.BatchNorm1d does",
           replace=[("running_var.mul_(momentum).add_((1 - momentum) * var)",
                     "running_var.mul_(momentum).add_((1 - momentum) * x.var(dim=0))")],
           fails=["test_batchnorm_torch_running"]),
    Mutant("batchnorm_torch", "test mode normalizes with the batch statistics",
           replace=[("        mean, var = running_mean, running_var",
                     "        mean, var = x.mean(dim=0), x.var(dim=0, correction=0)")],
           fails=["test_batchnorm_torch_test"]),
    Mutant("batchnorm_torch", "updates the running averages inside the autograd graph (no torch.no_grad)",
           replace=[(_NO_GRAD_UPDATE, "        if True:\n")], fails=["test_batchnorm_torch_running"]),
    Mutant("batchnorm_torch", "eps outside the square root",
           replace=[("torch.sqrt(var + eps)", "(torch.sqrt(var) + eps)")],
           fails=["test_batchnorm_torch", "test_batchnorm_torch_grads"]),
    # ------------------------------------------------------------------ convolution
    Mutant("conv2d_torch", "forgets the bias",
           replace=[(" + b.reshape(1, Fn, 1)", "")], fails=_CONV),
    Mutant("conv2d_torch", "flips the kernel (true convolution, not PyTorch's cross-correlation)",
           replace=[("out = w.reshape(Fn, -1) @ cols", "out = w.flip(2, 3).reshape(Fn, -1) @ cols")], fails=_CONV),
    Mutant("conv2d_torch", "unfold without the stride (every position, then the wrong reshape)",
           replace=[("padding=pad, stride=stride)", "padding=pad)"),
                    ("out = out.reshape(N, Fn, H_out, W_out)", "out = out[:, :, :H_out * W_out].reshape(N, Fn, H_out, W_out)")],
           fails=_CONV),
    Mutant("conv2d_torch", "reshapes the columns as (W_out, H_out) and transposes",
           replace=[("out = out.reshape(N, Fn, H_out, W_out)", "out = out.reshape(N, Fn, W_out, H_out).transpose(2, 3)")],
           fails=_CONV),
    # ------------------------------------------------------------------ LSTM step
    Mutant("lstm_step_torch", "PyTorch's gate order i, f, g, o instead of the API's i, f, o, g",
           replace=[("a_i, a_f, a_o, a_g = gates.chunk(4, dim=1)", "a_i, a_f, a_g, a_o = gates.chunk(4, dim=1)")], fails=_LSTM),
    Mutant("lstm_step_torch", "next_h = o * next_c (forgets the tanh)",
           replace=[("next_h = o * torch.tanh(next_c)", "next_h = o * next_c")], fails=_LSTM),
    Mutant("lstm_step_torch", "detaches the pre-activations: values right, no gradient reaches the inputs",
           replace=[("gates = x @ Wx + prev_h @ Wh + b", "gates = (x @ Wx + prev_h @ Wh + b).detach()")],
           fails=["test_lstm_step_torch_grads"]),
    Mutant("lstm_step_torch", "goes through numpy for the sigmoid: the graph is cut there",
           replace=[("i, f, o, g = torch.sigmoid(a_i), torch.sigmoid(a_f), torch.sigmoid(a_o), torch.tanh(a_g)",
                     "sig = lambda t: torch.from_numpy(1 / (1 + np.exp(-t.detach().numpy())))\n"
                     "    i, f, o, g = sig(a_i), sig(a_f), sig(a_o), torch.tanh(a_g)")],
           fails=["test_lstm_step_torch_grads"]),
    # ------------------------------------------------------------------ attention
    Mutant("attention_torch", "forgets the 1/sqrt(D) scaling",
           replace=[(' / math.sqrt(sizes["D"])', "")], fails=_ATT),
    Mutant("attention_torch", "mask inverted (True taken as 'blocked', as nn.MultiheadAttention's key_padding_mask)",
           replace=[("scores.masked_fill(~mask,", "scores.masked_fill(mask,")], fails=_ATT),
    Mutant("attention_torch", "softmax over the queries (dim=-2) instead of the keys",
           replace=[("torch.softmax(scores, dim=-1)", "torch.softmax(scores, dim=-2)")], fails=_ATT),
    Mutant("attention_torch", "scales by the value size Dv instead of the key size D",
           replace=[('math.sqrt(sizes["D"])', "math.sqrt(v.shape[-1])")], fails=_ATT),
    # ------------------------------------------------------------------ device and loop
    Mutant("get_device", "returns the string 'cuda'/'cpu' instead of a torch.device",
           replace=[('return torch.device("cuda" if torch.cuda.is_available() else "cpu")',
                     'return "cuda" if torch.cuda.is_available() else "cpu"')], fails=["test_get_device"]),
    Mutant("get_device", "always the GPU",
           replace=[('return torch.device("cuda" if torch.cuda.is_available() else "cpu")',
                     'return torch.device("cuda")')], fails=["test_get_device"]),
    Mutant("train_one_epoch", "forgets optimizer.zero_grad(): gradients pile up across batches",
           replace=[("        optimizer.zero_grad()\n", "")], fails=["test_train_one_epoch_params"]),
    Mutant("train_one_epoch", "forgets model.train(): batch norm stays on its running statistics",
           replace=[("    model.train()\n", "")], fails=["test_train_one_epoch_params"]),
    Mutant("train_one_epoch", "steps before backpropagating (each step uses the previous batch's gradient)",
           replace=[("        loss.backward()\n        optimizer.step()", "        optimizer.step()\n        loss.backward()")],
           fails=["test_train_one_epoch_params"]),
    Mutant("train_one_epoch", "returns the mean of the batch means (the short last batch weighs too much)",
           replace=[("total += loss.item() * len(xb)", "total += loss.item()"), ("count += len(xb)", "count += 1")],
           fails=["test_train_one_epoch_loss"]),
    Mutant("evaluate", "forgets model.eval(): batch statistics, and the running ones get updated",
           replace=[("    model.eval()\n", "")], fails=["test_evaluate"]),
    Mutant("evaluate", "forgets torch.no_grad(): a graph is built for every batch",
           replace=[("    with torch.no_grad():\n", "    if True:\n")], fails=["test_evaluate"]),
    Mutant("evaluate", "averages the batch losses without weighting by batch size",
           replace=[("total += loss_fn(scores, yb).item() * len(xb)", "total += loss_fn(scores, yb).item()"),
                    ("            count += len(xb)", "            count += 1")],
           fails=["test_evaluate"]),
]

RIGHT = [
    Mutant("softmax_loss_torch", "the built-in F.cross_entropy", code='''
def softmax_loss_torch(scores, y):
    return F.cross_entropy(scores, y)
'''),
    Mutant("softmax_loss_torch", "log_softmax and gather", code='''
def softmax_loss_torch(scores, y):
    log_p = torch.log_softmax(scores, dim=1)
    return -log_p.gather(1, y[:, None]).squeeze(1).mean()
'''),
    Mutant("batchnorm_torch", "explicit formulas, running averages replaced in the dict from detached statistics", code='''
def batchnorm_torch(x, gamma, beta, bn_param):
    mode, eps, m = bn_param["mode"], bn_param.get("eps", 1e-5), bn_param.get("momentum", 0.9)
    D = x.shape[1]
    rm = bn_param.get("running_mean", torch.zeros(D, dtype=x.dtype, device=x.device))
    rv = bn_param.get("running_var", torch.ones(D, dtype=x.dtype, device=x.device))
    if mode == "train":
        mu = x.sum(dim=0) / x.shape[0]
        var = ((x - mu) ** 2).sum(dim=0) / x.shape[0]
        bn_param["running_mean"] = m * rm + (1 - m) * mu.detach()
        bn_param["running_var"] = m * rv + (1 - m) * var.detach()
    else:
        mu, var = rm, rv
        bn_param.setdefault("running_mean", rm)
        bn_param.setdefault("running_var", rv)
    return (x - mu) * torch.rsqrt(var + eps) * gamma + beta
'''),
    Mutant("conv2d_torch", "a loop over the kernel offsets with strided slices of the padded input", code='''
def conv2d_torch(x, w, b, conv_param):
    s, p = conv_param["stride"], conv_param["pad"]
    N, C, H, W = x.shape
    Fn, _, HH, WW = w.shape
    Ho, Wo = (H + 2 * p - HH) // s + 1, (W + 2 * p - WW) // s + 1
    xp = F.pad(x, (p, p, p, p))
    out = b.reshape(1, Fn, 1, 1).expand(N, Fn, Ho, Wo)
    for di in range(HH):
        for dj in range(WW):
            patch = xp[:, :, di:di + s * (Ho - 1) + 1:s, dj:dj + s * (Wo - 1) + 1:s]   # (N, C, Ho, Wo)
            out = out + torch.einsum("nchw,fc->nfhw", patch, w[:, :, di, dj])
    return out
'''),
    Mutant("lstm_step_torch", "one weight slice per gate", code='''
def lstm_step_torch(x, prev_h, prev_c, Wx, Wh, b):
    H = prev_h.shape[1]
    gate = lambda k: x @ Wx[:, k * H:(k + 1) * H] + prev_h @ Wh[:, k * H:(k + 1) * H] + b[k * H:(k + 1) * H]
    i, f, o = torch.sigmoid(gate(0)), torch.sigmoid(gate(1)), torch.sigmoid(gate(2))
    c = f * prev_c + i * torch.tanh(gate(3))
    return o * torch.tanh(c), c
'''),
    Mutant("attention_torch", "the built-in scaled_dot_product_attention", code='''
def attention_torch(q, k, v, mask=None):
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
'''),
    Mutant("train_one_epoch", "zero_grad after the step, the loss summed as a detached tensor", code='''
def train_one_epoch(model, loader, loss_fn, optimizer, device):
    model.train()
    optimizer.zero_grad(set_to_none=True)
    total, count = torch.zeros((), dtype=torch.float64), 0
    for inputs, targets in loader:
        inputs, targets = inputs.to(device), targets.to(device)
        loss = loss_fn(model(inputs), targets)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        total += loss.detach().cpu().double() * inputs.shape[0]
        count += inputs.shape[0]
    return float(total) / count
'''),
    Mutant("evaluate", "inference_mode, the scores of all batches concatenated first", code='''
def evaluate(model, loader, loss_fn, device):
    model.eval()
    scores, targets = [], []
    with torch.inference_mode():
        for xb, yb in loader:
            scores.append(model(xb.to(device)))
            targets.append(yb.to(device))
        s, t = torch.cat(scores), torch.cat(targets)
        loss = sum(loss_fn(a, c).item() * len(a) for a, c in zip(scores, targets)) / len(s)
        return loss, (s.argmax(dim=1) == t).double().mean().item()
'''),
]
