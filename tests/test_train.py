"""dlhw.train.Trainer on tiny runs, and the plots of dlhw.plots."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import dlhw.nn as nn  # noqa: E402
import dlhw.optim as optim  # noqa: E402
from dlhw.data import load_digits_split, make_reverse_task  # noqa: E402
from dlhw.models import FullyConnectedNet, RecurrentNet, TwoLayerNet  # noqa: E402
from dlhw.plots import (confusion_matrix, plot_confusion_matrix, plot_history, show_filters,  # noqa: E402
                        show_images)
from dlhw.train import Trainer, accuracy  # noqa: E402


@pytest.fixture(scope="module")
def small_digits():
    d = load_digits_split(seed=0)
    return {"X_train": d["X_train"][:300], "y_train": d["y_train"][:300],
            "X_val": d["X_val"][:100], "y_val": d["y_val"][:100]}


def test_tiny_run_reduces_loss_and_fills_history(small_digits):
    model = TwoLayerNet(64, 32, 10, weight_scale=1e-2, seed=0, ops=nn)
    trainer = Trainer(model, small_digits, update_rule=optim.adam, optim_config={"learning_rate": 1e-2},
                      batch_size=50, num_epochs=4, seed=0, verbose=True)
    h = trainer.train()
    assert len(h["loss"]) == len(h["lr"]) == len(h["grad_norm"]) == 4 * 6
    assert h["epoch"] == [1, 2, 3, 4] and len(h["train_acc"]) == len(h["val_acc"]) == 4
    assert np.mean(h["loss"][-6:]) < 0.5 * h["loss"][0]
    assert h["val_acc"][-1] > 0.8 and h["time"] > 0
    # the best parameters are put back: the validation accuracy is the best one seen
    assert trainer.best_val_acc == max(h["val_acc"])
    assert trainer.check_accuracy(small_digits["X_val"], small_digits["y_val"]) == trainer.best_val_acc
    assert trainer.loss_history is h["loss"]


def test_val_every_lr_decay_and_schedule(small_digits):
    model = TwoLayerNet(64, 16, 10, weight_scale=1e-2, seed=0, ops=nn)
    trainer = Trainer(model, small_digits, update_rule=optim.sgd_momentum,
                      optim_config={"learning_rate": 0.1}, lr_decay=0.5, batch_size=100,
                      num_epochs=5, val_every=2, verbose=False)
    h = trainer.train()
    assert h["epoch"] == [2, 4, 5]
    assert np.allclose(h["lr"], np.repeat(0.1 * 0.5 ** np.arange(5), 3))
    trainer = Trainer(TwoLayerNet(64, 16, 10, seed=0, ops=nn), small_digits, update_rule=optim.sgd,
                      optim_config={"learning_rate": 0.1}, lr_schedule=lambda t: 0.01 * (t + 1),
                      lr_decay=0.5, batch_size=100, num_epochs=2, verbose=False)
    assert np.allclose(trainer.train()["lr"], 0.01 * np.arange(1, 7))


def test_custom_update_rule_grad_clip_and_continuation(small_digits):
    calls = []

    def my_sgd(w, dw, config=None):
        config = {} if config is None else config
        config.setdefault("learning_rate", 1.0)
        calls.append(np.linalg.norm(dw))
        return w - config["learning_rate"] * dw, config

    model = TwoLayerNet(64, 16, 10, weight_scale=0.1, seed=0, ops=nn)
    trainer = Trainer(model, small_digits, update_rule=my_sgd, grad_clip=1e-3, batch_size=100,
                      num_epochs=1, verbose=False, restore_best=False)
    before = {k: v.copy() for k, v in model.params.items()}
    trainer.train()
    assert len(calls) == 3 * 4 and max(calls) <= 1e-3 + 1e-12
    moved = np.sqrt(sum(np.sum((model.params[k] - before[k]) ** 2) for k in before))
    assert moved <= 3 * 1e-3 + 1e-12                     # three clipped steps at lr 1
    assert max(trainer.history["grad_norm"]) > 1e-3       # the norms before clipping
    trainer.train()                                       # a second call continues
    assert trainer.epoch == 2 and len(trainer.history["loss"]) == 6


def test_divergence_stops_training(small_digits):
    def blow_up(w, dw, config=None):
        config = {"t": 0} if config is None or "t" not in config else config
        config["t"] += 1
        return (w * np.inf if config["t"] > 3 else w - 0.01 * dw), config

    model = TwoLayerNet(64, 16, 10, weight_scale=1.0, seed=0, ops=nn)
    trainer = Trainer(model, small_digits, update_rule=blow_up, batch_size=50, num_epochs=3,
                      verbose=False)
    with pytest.warns(RuntimeWarning, match="loss became"):
        trainer.train()
    assert trainer.diverged and len(trainer.history["loss"]) == 5
    assert all(np.all(np.isfinite(v)) for v in model.params.values())   # best params put back


def test_trainer_errors(small_digits):
    model = TwoLayerNet(seed=0, ops=nn)
    with pytest.raises(ValueError, match="X_train"):
        Trainer(model, {"y_train": small_digits["y_train"]})
    with pytest.raises(ValueError, match=r"update_rule must be a function .*got 'adam'"):
        Trainer(model, small_digits, update_rule="adam", verbose=False)    # names are not looked up
    with pytest.raises(ValueError, match="update_rule must be a function"):
        Trainer(model, small_digits, verbose=False)
    with pytest.raises(ValueError, match="both X_val and y_val"):
        Trainer(model, {"X_train": 1, "y_train": 1, "X_val": 1})


def test_sequence_model_trains_and_accuracy_ignores_masked_positions():
    X, y = make_reverse_task(400, 3, vocab_size=3, seed=0)
    data = {"X_train": X[:300], "y_train": y[:300], "X_val": X[300:], "y_val": y[300:]}
    model = RecurrentNet(4, 3, hidden_dim=16, cell="lstm", per_step=True, seed=0, ops=nn)
    trainer = Trainer(model, data, optim_config={"learning_rate": 2e-2}, batch_size=50, num_epochs=8,
                      verbose=False, update_rule=optim.adam)
    h = trainer.train()
    assert np.mean(h["loss"][-6:]) < 0.6 * h["loss"][0]
    assert h["val_acc"][-1] > 0.6                          # chance is 1/3
    assert accuracy(np.array([[0, 1], [2, 2]]), np.array([[-1, 1], [2, 0]])) == 2 / 3
    assert accuracy(np.eye(3)[[0, 1, 1]], np.array([0, 1, 2])) == 2 / 3


# ---------------------------------------------------------------------------------------------
# plots


def test_plot_history_panels(small_digits):
    h = {"loss": list(np.linspace(2, 0.1, 40)), "lr": list(np.linspace(1e-3, 1e-4, 40)),
         "epoch": [1, 2], "train_acc": [0.5, 0.8], "val_acc": [0.4, 0.7]}
    fig = plot_history(h, title="run")
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["Training loss", "Accuracy", "Learning rate"]
    assert fig.axes[0].get_xlabel() == "iteration" and fig.axes[1].get_ylabel() == "accuracy"
    fig2 = plot_history({"loss": [1.0, 0.5], "lr": [0.1, 0.1]})
    assert len(fig2.axes) == 1
    plt.close("all")


def test_confusion_matrix_and_plot():
    y, p = np.array([0, 0, 1, 2, 2, 2]), np.array([0, 1, 1, 2, 0, 2])
    cm = confusion_matrix(y, p)
    assert np.array_equal(cm, [[1, 1, 0], [0, 1, 0], [1, 0, 2]])
    assert confusion_matrix(y, p, num_classes=5).shape == (5, 5)
    fig = plot_confusion_matrix(y, p, class_names=["a", "b", "c"], normalize=True)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "predicted class" and ax.get_title() == "Confusion matrix"
    assert "0.67" in [t.get_text() for t in ax.texts]
    plt.close("all")


def test_show_filters_and_images():
    rng = np.random.default_rng(0)
    assert len(show_filters(rng.standard_normal((6, 1, 3, 3))).axes) == 6
    assert len(show_filters(rng.standard_normal((4, 3, 5, 5)), ncols=2).axes) == 4
    assert len(show_filters(rng.standard_normal((3, 2, 3, 3))).axes) == 6
    fig = show_filters(rng.standard_normal((64, 10)), image_shape=(8, 8), ncols=5)
    assert len(fig.axes) == 10
    with pytest.raises(ValueError, match="image_shape"):
        show_filters(rng.standard_normal((64, 10)))
    fig = show_images(rng.standard_normal((5, 64)), labels=[1, 2, 3, 4, 5], preds=[1, 2, 0, 4, 5])
    assert [ax.get_title() for ax in fig.axes][:3] == ["1 -> 1", "2 -> 2", "3 -> 0 x"]
    plt.close("all")


def test_model_history_through_fully_connected_net_with_batchnorm(small_digits):
    model = FullyConnectedNet([32, 32], normalization="batchnorm", dropout_keep_ratio=0.9,
                              weight_scale="kaiming", seed=0, ops=nn)
    trainer = Trainer(model, small_digits, optim_config={"learning_rate": 1e-2}, batch_size=50,
                      num_epochs=6, verbose=False, update_rule=optim.adam)
    h = trainer.train()
    assert h["val_acc"][-1] > 0.7
    # restoring the best epoch restores its batchnorm running statistics with its parameters
    assert trainer.check_accuracy(small_digits["X_val"], small_digits["y_val"]) == trainer.best_val_acc
    assert np.array_equal(model.norm_params[0]["running_mean"],
                          trainer.best_state["norm_params"][0]["running_mean"])
