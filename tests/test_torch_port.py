"""dlhw.torch_port: the torch ports against PyTorch's built-ins (values) and against centred
differences (torch.autograd.gradcheck, float64), the training loop, the models, the comparisons."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st

from dlhw.torch_port.compare import compare_layers, median_time, tf32
from dlhw.torch_port.layers import attention_torch, batchnorm_torch, conv2d_torch, lstm_step_torch, softmax_loss_torch
from dlhw.torch_port.models import ConvNet, TinyTransformer, count_parameters
from dlhw.torch_port.training import evaluate, get_device, train_one_epoch

D64 = torch.float64


def _leaf(*shape, scale=1.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (scale * torch.randn(*shape, generator=g, dtype=D64)).requires_grad_(True)


def _close(a, b, tol=1e-12):
    a, b = a.detach(), b.detach()
    return float((a - b).abs().max()) <= tol * max(float(b.abs().max()), 1.0)


# ----------------------------------------------------------------------------- softmax loss
@pytest.mark.parametrize("scale", [1.0, 1e3])
def test_softmax_loss_matches_cross_entropy_and_is_stable(scale):
    s = _leaf(7, 5, scale=scale)
    y = torch.tensor([0, 4, 2, 2, 1, 3, 0])
    loss = softmax_loss_torch(s, y)
    assert torch.isfinite(loss) and _close(loss, F.cross_entropy(s, y))
    (g,) = torch.autograd.grad(loss, s)
    (g_ref,) = torch.autograd.grad(F.cross_entropy(s, y), s)
    assert _close(g, g_ref)


def test_softmax_loss_gradcheck():
    s = _leaf(4, 3)
    assert torch.autograd.gradcheck(lambda t: softmax_loss_torch(t, torch.tensor([0, 1, 2, 1])), (s,))


def test_softmax_loss_errors_name_the_argument():
    with pytest.raises(ValueError, match=r"scores must be a torch.Tensor.*torch.as_tensor"):
        softmax_loss_torch(np.zeros((2, 3)), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"y must have shape \(N=2,\)"):
        softmax_loss_torch(torch.zeros(2, 3, dtype=D64), torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match=r"class indices in \[0, C\) = \[0, 3\)"):
        softmax_loss_torch(torch.zeros(2, 3, dtype=D64), torch.tensor([0, 3]))


# ----------------------------------------------------------------------------- batch norm
def test_batchnorm_train_matches_f_batch_norm_and_running_conventions():
    x, g, b = _leaf(9, 4, scale=2.0), _leaf(4, seed=1), _leaf(4, seed=2)
    param = {"mode": "train", "momentum": 0.8}
    out = batchnorm_torch(x, g, b, param)
    assert _close(out, F.batch_norm(x, None, None, g, b, training=True, eps=1e-5))
    xd = x.detach()
    assert _close(param["running_mean"], 0.2 * xd.mean(0))
    assert _close(param["running_var"], 0.8 + 0.2 * xd.var(0, correction=0))      # biased, ours
    assert not param["running_mean"].requires_grad and not param["running_var"].requires_grad


def test_batchnorm_test_mode_uses_running_stats_and_changes_nothing():
    x, g, b = _leaf(5, 3), _leaf(3, seed=1), _leaf(3, seed=2)
    rm, rv = torch.tensor([0.5, -1.0, 2.0], dtype=D64), torch.tensor([1e-7, 2.0, 0.5], dtype=D64)
    param = {"mode": "test", "running_mean": rm.clone(), "running_var": rv.clone()}
    out = batchnorm_torch(x, g, b, param)
    assert _close(out, F.batch_norm(x, rm, rv, g, b, training=False, eps=1e-5))
    assert torch.equal(param["running_mean"], rm) and torch.equal(param["running_var"], rv)


def test_batchnorm_gradcheck_with_a_tiny_variance_feature():
    x = _leaf(6, 3)
    with torch.no_grad():
        x[:, 0] = 1.0 + 1e-3 * x[:, 0]
    g, b = _leaf(3, seed=1), _leaf(3, seed=2)
    assert torch.autograd.gradcheck(lambda *t: batchnorm_torch(*t, {"mode": "train"}), (x, g, b))


def test_batchnorm_errors():
    x, g = torch.zeros(4, 3, dtype=D64), torch.ones(3, dtype=D64)
    with pytest.raises(ValueError, match=r"gamma must have shape \(D=3,\)"):
        batchnorm_torch(x, torch.ones(2, dtype=D64), g, {"mode": "train"})
    with pytest.raises(ValueError, match=r"bn_param is missing the key\(s\) \['mode'\]"):
        batchnorm_torch(x, g, g, {})
    with pytest.raises(ValueError, match=r"mode'\] must be one of \['train', 'test'\]"):
        batchnorm_torch(x, g, g, {"mode": "eval"})
    with pytest.raises(ValueError, match="at least 2 examples"):
        batchnorm_torch(x[:1], g, g, {"mode": "train"})


# ----------------------------------------------------------------------------- convolution
@settings(max_examples=25, deadline=None)
@given(N=st.integers(1, 3), C=st.integers(1, 3), F_=st.integers(1, 3), H=st.integers(3, 9), W=st.integers(3, 9),
       HH=st.integers(1, 3), WW=st.integers(1, 3), stride=st.integers(1, 3), pad=st.integers(0, 2))
def test_conv2d_matches_f_conv2d(N, C, F_, H, W, HH, WW, stride, pad):
    x, w, b = _leaf(N, C, H, W), _leaf(F_, C, HH, WW, seed=1), _leaf(F_, seed=2)
    out = conv2d_torch(x, w, b, {"stride": stride, "pad": pad})
    ref = F.conv2d(x, w, b, stride=stride, padding=pad)
    assert out.shape == ref.shape and _close(out, ref)
    dout = torch.randn(ref.shape, dtype=D64)
    for g, g_ref in zip(torch.autograd.grad(out, (x, w, b), dout), torch.autograd.grad(ref, (x, w, b), dout)):
        assert _close(g, g_ref)


def test_conv2d_gradcheck_stride_2():
    x, w, b = _leaf(2, 2, 5, 6), _leaf(3, 2, 3, 2, seed=1), _leaf(3, seed=2)
    assert torch.autograd.gradcheck(lambda *t: conv2d_torch(*t, {"stride": 2, "pad": 1}), (x, w, b))


def test_conv2d_errors():
    x = torch.zeros(1, 3, 4, 4, dtype=D64)
    with pytest.raises(ValueError, match=r"w must have shape \(F=2, C=3, HH, WW\) \(as many input channels as x\); got \(2, 2, 3, 3\)"):
        conv2d_torch(x, torch.zeros(2, 2, 3, 3, dtype=D64), torch.zeros(2, dtype=D64), {"stride": 1, "pad": 0})
    with pytest.raises(ValueError, match="does not fit"):
        conv2d_torch(x, torch.zeros(2, 3, 5, 5, dtype=D64), torch.zeros(2, dtype=D64), {"stride": 1, "pad": 0})
    with pytest.raises(ValueError, match=r"missing the key\(s\) \['pad'\]"):
        conv2d_torch(x, torch.zeros(2, 3, 3, 3, dtype=D64), torch.zeros(2, dtype=D64), {"stride": 1})


# ----------------------------------------------------------------------------- LSTM step
def test_lstm_step_matches_lstm_cell_with_permuted_gates():
    N, D, H = 3, 4, 5
    x, h, c = _leaf(N, D), _leaf(N, H, seed=1), _leaf(N, H, seed=2)
    Wx, Wh, b = _leaf(D, 4 * H, seed=3), _leaf(H, 4 * H, seed=4), _leaf(4 * H, seed=5)
    next_h, next_c = lstm_step_torch(x, h, c, Wx, Wh, b)
    perm = torch.cat([torch.arange(0, 2 * H), torch.arange(3 * H, 4 * H), torch.arange(2 * H, 3 * H)])
    cell = torch.nn.LSTMCell(D, H).double()
    with torch.no_grad():
        cell.weight_ih.copy_(Wx[:, perm].T)
        cell.weight_hh.copy_(Wh[:, perm].T)
        cell.bias_ih.copy_(b[perm])
        cell.bias_hh.zero_()
    ref_h, ref_c = cell(x, (h, c))
    assert _close(next_h, ref_h) and _close(next_c, ref_c)


def test_lstm_step_gradcheck_and_errors():
    N, D, H = 2, 3, 2
    args = (_leaf(N, D), _leaf(N, H, seed=1), _leaf(N, H, seed=2), _leaf(D, 4 * H, seed=3),
            _leaf(H, 4 * H, seed=4), _leaf(4 * H, seed=5))
    assert torch.autograd.gradcheck(lambda *t: lstm_step_torch(*t), args)
    with pytest.raises(ValueError, match=r"Wh must have shape \(H=2, 8\)"):
        lstm_step_torch(*args[:4], torch.zeros(2, 6, dtype=D64), args[5])


# ----------------------------------------------------------------------------- attention
@settings(max_examples=25, deadline=None)
@given(lead=st.lists(st.integers(1, 3), min_size=0, max_size=2), Tq=st.integers(1, 6), Tk=st.integers(1, 6),
       D=st.integers(1, 5), Dv=st.integers(1, 5), masked=st.booleans(), seed=st.integers(0, 1000))
def test_attention_matches_sdpa(lead, Tq, Tk, D, Dv, masked, seed):
    q, k, v = _leaf(*lead, Tq, D, seed=seed), _leaf(*lead, Tk, D, seed=seed + 1), _leaf(*lead, Tk, Dv, seed=seed + 2)
    mask = None
    if masked:
        mask = torch.rand(Tq, Tk, generator=torch.Generator().manual_seed(seed)) < 0.5
        mask[torch.arange(Tq), torch.randint(0, Tk, (Tq,))] = True          # every query keeps a key
    out = attention_torch(q, k, v, mask)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert _close(out, ref)
    dout = torch.randn(ref.shape, dtype=D64)
    for g, g_ref in zip(torch.autograd.grad(out, (q, k, v), dout), torch.autograd.grad(ref, (q, k, v), dout)):
        assert _close(g, g_ref, 1e-11)


def test_attention_errors():
    q = torch.zeros(2, 3, 4, dtype=D64)
    with pytest.raises(ValueError, match="mask must be a boolean tensor"):
        attention_torch(q, q, q, torch.ones(3, 3))
    with pytest.raises(ValueError, match=r"broadcastable to \(..., Tq, Tk\) = \(2, 3, 3\)"):
        attention_torch(q, q, q, torch.ones(4, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="no key to attend to"):
        attention_torch(q, q, q, torch.zeros(3, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"k must have q's leading axes \(2,\)"):
        attention_torch(q, torch.zeros(1, 3, 4, dtype=D64), q)


# ----------------------------------------------------------------------------- loop and models
def test_get_device_follows_cuda_availability():
    d = get_device()
    assert isinstance(d, torch.device) and d.type == ("cuda" if torch.cuda.is_available() else "cpu")


def _toy_loader(n=40, bs=16, seed=0):
    from torch.utils.data import DataLoader, TensorDataset
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 6, generator=g)
    y = (X[:, 0] > 0).long() + (X[:, 1] > 0).long()
    return DataLoader(TensorDataset(X, y), batch_size=bs)


def test_training_loop_learns_and_evaluate_changes_nothing():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.BatchNorm1d(16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    loader, loss_fn = _toy_loader(), torch.nn.CrossEntropyLoss()
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    first = train_one_epoch(model, loader, loss_fn, opt, "cpu")
    for _ in range(30):
        last = train_one_epoch(model, loader, loss_fn, opt, "cpu")
    assert last < 0.5 * first
    before = {k: v.clone() for k, v in model.state_dict().items()}
    loss, acc = evaluate(model, loader, loss_fn, "cpu")
    assert not model.training and 0.8 <= acc <= 1.0 and loss > 0
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_train_one_epoch_weights_the_short_last_batch():
    # a model with no parameters to change: the returned loss is the mean over all 40 examples
    class Fixed(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(()))

        def forward(self, x):
            return x[:, :3] + 0 * self.w
    model, loader, loss_fn = Fixed(), _toy_loader(), torch.nn.CrossEntropyLoss()
    mean = train_one_epoch(model, loader, loss_fn, torch.optim.SGD(model.parameters(), lr=0.0), "cpu")
    X, y = loader.dataset.tensors
    assert mean == pytest.approx(float(loss_fn(X[:, :3], y)), rel=1e-6)


def test_models_shapes_and_devices():
    net = ConvNet()
    assert net(torch.zeros(4, 1, 8, 8)).shape == (4, 10) and count_parameters(net) > 1000
    from dlhw.nn import positional_encoding
    tr = TinyTransformer(7, 5, d_model=8, num_heads=2, num_layers=2, max_len=10, attention=attention_torch, causal=True,
                         positional_encoding=positional_encoding)
    tokens = torch.randint(0, 7, (3, 6))
    out = tr(tokens)
    assert out.shape == (3, 5, 6)
    # causal: position 0's scores do not depend on the later tokens
    changed = tokens.clone()
    changed[:, 1:] = (changed[:, 1:] + 1) % 7
    assert torch.allclose(tr(changed)[:, :, 0], out[:, :, 0], atol=1e-6)
    with pytest.raises(ValueError, match="exceed max_len 10"):
        tr(torch.zeros(1, 11, dtype=torch.long))
    with pytest.raises(ValueError, match="divisible by num_heads"):
        TinyTransformer(5, 5, d_model=10, num_heads=3, positional_encoding=positional_encoding)


def test_transformer_positions_come_from_the_given_positional_encoding():
    from dlhw.nn import positional_encoding
    tr = TinyTransformer(5, 3, d_model=6, max_len=7, positional_encoding=positional_encoding)
    with pytest.raises(ValueError, match="pass positional_encoding="):
        TinyTransformer(5, 3, d_model=6, max_len=7)           # no default: the student kit has none
    assert np.allclose(tr.pe.double().numpy(), positional_encoding(7, 6), atol=1e-6)
    zeros = TinyTransformer(5, 3, d_model=6, max_len=7, positional_encoding=lambda T, D: torch.zeros(T, D))
    assert not zeros.pe.any()
    with pytest.raises(ValueError, match=r"returned shape \(6, 7\); expected \(7, 6\)"):
        TinyTransformer(5, 3, d_model=6, max_len=7, positional_encoding=lambda T, D: np.zeros((D, T)))


def test_compare_layers_reports_float64_roundoff_and_float32_precision():
    import dlhw.nn as nn
    rows = compare_layers({n: getattr(nn, n) for n in nn.__all__})
    assert {r["layer"] for r in rows} >= {"affine", "batchnorm", "conv (3x3, pad 1)", "lstm_step", "attention (causal)"}
    for r in rows:
        assert r["CPU float64 out"] < 1e-13 and r["CPU float64 grad"] < 1e-13, r
        assert 0 <= r["CPU float32 out"] < 1e-4 and r["CPU float32 grad"] < 1e-4, r
    # a broken numpy layer shows up
    wrong = {n: getattr(nn, n) for n in nn.__all__}
    wrong["relu_forward"] = lambda x: (np.maximum(x, 0) * 1.01, x)
    bad = next(r for r in compare_layers(wrong) if r["layer"] == "relu")
    assert bad["CPU float64 out"] > 1e-3


def test_tf32_context_restores_flags_and_median_time_runs():
    before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    with tf32(True):
        assert torch.backends.cuda.matmul.allow_tf32
    assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == before
    assert median_time(lambda: sum(range(100)), repeat=3) >= 0.0
