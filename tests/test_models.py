"""dlhw.models: every model's gradients against numerical gradients, ops injection, contracts."""
from types import SimpleNamespace

import numpy as np
import pytest

import dlhw.nn as nn
from dlhw.gradcheck import numerical_gradient
from dlhw.models import (ConvNet, FullyConnectedNet, RecurrentNet, TinyTransformer, TwoLayerNet,
                         init_weight, resolve_ops)


def grad_error(a, b):
    """Relative error of whole arrays (robust to entries that are ~0 in both)."""
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), 1e-12))


def check_grads(model, X, y, tol=1e-7):
    loss, grads = model.loss(X, y)
    assert np.isfinite(loss)
    assert set(grads) == set(model.params)
    for k, p in model.params.items():
        assert grads[k].shape == p.shape, k
        num = numerical_gradient(lambda _: model.loss(X, y)[0], p)
        err = grad_error(num, grads[k])
        # a gradient that is exactly 0 (a bias before batchnorm) leaves only round-off noise
        assert err < tol or np.abs(num - grads[k]).max() < 1e-9, f"{k}: relative error {err:.2e}"
    return loss


rng = np.random.default_rng(0)


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "tanh", "sigmoid"])
def test_two_layer_net_gradients(activation):
    X, y = rng.standard_normal((5, 6)), rng.integers(0, 3, 5)
    model = TwoLayerNet(6, 7, 3, weight_scale=0.5, reg=0.1, activation=activation, seed=1, ops=nn)
    check_grads(model, X, y)


def test_two_layer_net_matches_graded_two_layer_net():
    """The model and the graded function of assignment 02 compute the same thing."""
    from dlhw.nn.mlp import two_layer_net
    X, y = rng.standard_normal((6, 5)), rng.integers(0, 4, 6)
    model = TwoLayerNet(5, 8, 4, weight_scale=0.3, reg=0.2, seed=0, ops=nn)
    loss, grads = model.loss(X, y)
    loss2, grads2 = two_layer_net(X, model.params, y, reg=0.2)
    assert abs(loss - loss2) < 1e-12
    for k in grads:
        assert np.allclose(grads[k], grads2[k], rtol=1e-12, atol=1e-14)


def test_two_layer_net_initial_loss_is_log_classes():
    X, y = rng.standard_normal((200, 10)), rng.integers(0, 10, 200)
    model = TwoLayerNet(10, 20, 10, weight_scale=1e-4, seed=0, ops=nn)
    assert abs(model.loss(X, y)[0] - np.log(10)) < 1e-3
    assert model.loss(X).shape == (200, 10)
    assert model.predict(X).shape == (200,)


@pytest.mark.parametrize("normalization", [None, "batchnorm", "layernorm"])
@pytest.mark.parametrize("keep", [1.0, 0.7])
def test_fully_connected_net_gradients(normalization, keep):
    X, y = rng.standard_normal((6, 5)), rng.integers(0, 3, 6)
    model = FullyConnectedNet([7, 6], input_dim=5, num_classes=3, normalization=normalization,
                              dropout_keep_ratio=keep, dropout_seed=3, reg=0.05,
                              weight_scale="kaiming", seed=2, ops=nn)
    check_grads(model, X, y)
    assert len(model.activations) == 2 and model.activations[0].shape == (6, 7)


def test_fully_connected_net_tanh_deep_and_initializers():
    from dlhw.initializers import kaiming_normal, xavier_normal
    X, y = rng.standard_normal((4, 5)), rng.integers(0, 4, 4)
    check_grads(FullyConnectedNet([6, 6, 6], input_dim=5, num_classes=4, activation="tanh",
                                  weight_scale=xavier_normal, seed=0, ops=nn), X, y)
    check_grads(FullyConnectedNet([], input_dim=5, num_classes=4, seed=0, ops=nn), X, y)   # softmax regression
    W = init_weight((300, 200), 300, kaiming_normal, np.random.default_rng(0))
    assert W.shape == (300, 200) and abs(W.std() - np.sqrt(2 / 300)) < 0.005
    W = init_weight((300, 200), 300, "xavier", np.random.default_rng(0))
    assert abs(W.std() - np.sqrt(1 / 300)) < 0.003
    with pytest.raises(ValueError, match="weight_scale"):
        init_weight((3, 3), 3, "glorious", np.random.default_rng(0))
    with pytest.raises(ValueError, match="expected"):
        init_weight((3, 3), 3, lambda shape, rng: np.zeros(2), np.random.default_rng(0))


def test_batchnorm_test_mode_uses_running_statistics():
    X, y = 3 + 2 * rng.standard_normal((50, 5)), rng.integers(0, 3, 50)
    model = FullyConnectedNet([8], input_dim=5, num_classes=3, normalization="batchnorm", seed=0, ops=nn)
    model.loss(X, y)
    rm = model.norm_params[0]["running_mean"]
    assert not np.allclose(rm, 0)          # updated by the training pass
    s1 = model.loss(X)
    assert np.array_equal(model.norm_params[0]["running_mean"], rm)   # test mode keeps them
    assert np.allclose(s1, model.loss(X))


def test_dropout_masks_change_between_calls_unless_seeded():
    X, y = rng.standard_normal((8, 5)), rng.integers(0, 3, 8)
    model = FullyConnectedNet([20], input_dim=5, num_classes=3, dropout_keep_ratio=0.5, seed=0, ops=nn)
    assert model.loss(X, y)[0] != model.loss(X, y)[0]
    assert np.array_equal(model.loss(X), model.loss(X))     # test mode: no dropout
    model.dropout_seed = 4
    assert model.loss(X, y)[0] == model.loss(X, y)[0]


@pytest.mark.parametrize("batchnorm,hidden,filters", [(False, (), (3,)), (True, (5,), (3, 4)),
                                                      (False, (6,), (2, 3))])
def test_convnet_gradients(batchnorm, hidden, filters):
    X, y = rng.standard_normal((3, 2, 4, 4)), rng.integers(0, 3, 3)
    model = ConvNet(input_dim=(2, 4, 4), num_filters=filters, filter_size=3, hidden_dims=hidden,
                    num_classes=3, batchnorm=batchnorm, reg=0.01, seed=5, ops=nn)
    check_grads(model, X, y)
    assert model.loss(X).shape == (3, 3)


def test_convnet_shapes_and_errors():
    model = ConvNet(seed=0, ops=nn)
    assert model.params["W1"].shape == (16, 1, 3, 3) and model.params["W3"].shape == (32 * 2 * 2, 10)
    with pytest.raises(ValueError, match="filter_size"):
        ConvNet(filter_size=4, ops=nn)
    with pytest.raises(ValueError, match="pools"):
        ConvNet(input_dim=(1, 8, 8), num_filters=(4, 4, 4, 4), ops=nn)


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
@pytest.mark.parametrize("per_step", [False, True])
def test_recurrent_net_gradients(cell, per_step):
    X = rng.integers(0, 5, (3, 4))
    y = rng.integers(0, 3, (3, 4)) if per_step else rng.integers(0, 3, 3)
    if per_step:
        y[:, :2] = -1                                # no answer due on the first two steps
    model = RecurrentNet(5, 3, hidden_dim=4, cell=cell, per_step=per_step, reg=0.01, seed=0, ops=nn)
    check_grads(model, X, y)
    scores = model.loss(X)
    assert scores.shape == ((3, 4, 3) if per_step else (3, 3))
    assert model.input_grad_norms.shape == (4,)


def test_recurrent_net_ignores_masked_positions():
    X = rng.integers(0, 5, (3, 4))
    y = rng.integers(0, 3, (3, 4))
    y[:, :2] = -1
    model = RecurrentNet(5, 3, hidden_dim=4, per_step=True, seed=0, ops=nn)
    y2 = y.copy()
    y2[:, :2] = -5                                   # any negative value means "no target"
    assert model.loss(X, y)[0] == model.loss(X, y2)[0]
    with pytest.raises(ValueError, match="no position"):
        model.loss(X, np.full((3, 4), -1))
    with pytest.raises(ValueError, match="tokens"):
        model.loss(np.full((3, 4), 7), y)
    with pytest.raises(ValueError, match="cell"):
        RecurrentNet(5, 3, cell="gru", ops=nn)


@pytest.mark.parametrize("causal,per_step", [(False, True), (True, True), (False, False)])
def test_tiny_transformer_gradients(causal, per_step):
    X = rng.integers(0, 5, (2, 4))
    y = rng.integers(0, 3, (2, 4)) if per_step else rng.integers(0, 3, 2)
    if per_step:
        y[:, 0] = -1
    model = TinyTransformer(5, 3, d_model=4, num_heads=2, num_layers=2, d_ff=6, causal=causal,
                            per_step=per_step, reg=0.01, seed=0, ops=nn)
    check_grads(model, X, y, tol=1e-6)


def test_tiny_transformer_attention_maps_and_causality():
    X = rng.integers(0, 5, (2, 5))
    model = TinyTransformer(5, 3, d_model=8, num_heads=2, num_layers=2, causal=True, seed=0, ops=nn)
    maps = model.attention_maps(X)
    assert len(maps) == 2 and maps[0].shape == (2, 2, 5, 5)
    assert np.allclose(maps[1].sum(axis=-1), 1)
    assert np.all(np.triu(maps[0], k=1) == 0)
    # causal: changing the last token changes no earlier position's scores
    X2 = X.copy()
    X2[:, -1] = (X2[:, -1] + 1) % 5
    s1, s2 = model.loss(X), model.loss(X2)
    assert np.allclose(s1[:, :-1], s2[:, :-1]) and not np.allclose(s1[:, -1], s2[:, -1])
    with pytest.raises(ValueError, match="divide"):
        TinyTransformer(5, 3, d_model=6, num_heads=4, ops=nn)


# ---------------------------------------------------------------------------------------------
# ops injection


def reference_ops(names):
    return {n: getattr(nn, n) for n in names}


def test_ops_injection_uses_the_given_functions():
    calls = []

    def my_affine_forward(x, w, b):
        calls.append("affine_forward")
        return nn.affine_forward(x, w, b)

    ops = reference_ops(TwoLayerNet.required_ops())
    ops["affine_forward"] = my_affine_forward
    X, y = rng.standard_normal((4, 6)), rng.integers(0, 3, 4)
    ref = TwoLayerNet(6, 5, 3, weight_scale=0.1, seed=0, ops=nn)
    mine = TwoLayerNet(6, 5, 3, weight_scale=0.1, seed=0, ops=ops)
    assert mine.loss(X, y)[0] == ref.loss(X, y)[0]
    assert calls == ["affine_forward", "affine_forward"]
    # an object with attributes works as well as a dict
    ns = SimpleNamespace(**ops)
    assert TwoLayerNet(6, 5, 3, weight_scale=0.1, seed=0, ops=ns).loss(X, y)[0] == ref.loss(X, y)[0]


def test_ops_injection_reports_missing_functions():
    ops = reference_ops(TwoLayerNet.required_ops())
    del ops["relu_backward"], ops["softmax_loss"]
    with pytest.raises(ValueError, match=r"TwoLayerNet: ops is missing .*'relu_backward', 'softmax_loss'"):
        TwoLayerNet(ops=ops)
    with pytest.raises(ValueError, match=r"TwoLayerNet: pass ops=, the functions \['affine_forward'"):
        TwoLayerNet()       # no default from the reference: the student kit has none
    with pytest.raises(ValueError, match="conv_forward_fast"):
        ConvNet(ops=SimpleNamespace(affine_forward=nn.affine_forward))
    with pytest.raises(ValueError, match="batchnorm_forward"):
        FullyConnectedNet([4], normalization="batchnorm",
                          ops=reference_ops(FullyConnectedNet.required_ops()))
    with pytest.raises(ValueError, match="must be functions"):
        resolve_ops({"relu_forward": 3}, ["relu_forward"])


def test_each_model_runs_on_exactly_its_required_ops():
    X, y = rng.integers(0, 5, (2, 3)), rng.integers(0, 3, (2, 3))
    for cls, kw, Xy in [
        (FullyConnectedNet, dict(hidden_dims=[4], input_dim=3, num_classes=2, normalization="layernorm",
                                 dropout_keep_ratio=0.5),
         (rng.standard_normal((2, 3)), np.array([0, 1]))),
        (ConvNet, dict(input_dim=(1, 4, 4), num_filters=(2,), num_classes=2, batchnorm=True),
         (rng.standard_normal((2, 1, 4, 4)), np.array([0, 1]))),
        (RecurrentNet, dict(vocab_size=5, num_classes=3, hidden_dim=3, cell="lstm", per_step=True), (X, y)),
        (TinyTransformer, dict(vocab_size=5, num_classes=3, d_model=4), (X, y)),
    ]:
        if cls is FullyConnectedNet:
            names = cls.required_ops("relu", "layernorm", True)
        elif cls is ConvNet:
            names = cls.required_ops(True)
        elif cls is RecurrentNet:
            names = cls.required_ops("lstm")
        else:
            names = cls.required_ops()
        model = cls(**kw, seed=0, ops=reference_ops(names))
        loss, grads = model.loss(*Xy)
        assert np.isfinite(loss) and set(grads) == set(model.params)


def test_models_module_imports_no_reference_at_import_time():
    """The kit ships dlhw.models without the reference layers: importing it must not need them."""
    import subprocess
    import sys
    code = ("import sys, dlhw.models, dlhw.train, dlhw.data, dlhw.plots; "
            "bad = [m for m in sys.modules if m.startswith(('dlhw.nn.', 'dlhw.optim'))]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
