"""A training loop for the models of ``dlhw.models`` (or any model with the same contract).

``Trainer`` runs minibatch gradient descent with an update rule of the graded API
(``rule(w, dw, config) -> (next_w, config)``), shows a progress bar, records a history for
``dlhw.plots.plot_history`` and keeps the parameters that did best on the validation set::

    data = load_digits_split()
    model = FullyConnectedNet([100, 100], seed=0, ops=dlhw.nn)          # or your own layers
    trainer = Trainer(model, data, update_rule=dlhw.optim.adam, optim_config={"learning_rate": 1e-3},
                      num_epochs=10, batch_size=64)
    history = trainer.train()
    trainer.check_accuracy(data["X_test"], data["y_test"])

The update rule is a function, never a name to look up: a notebook trains with the student's
own ``adam``, and the student kit (which ships this module but no reference update rules)
never imports ``dlhw.optim``.
"""
from __future__ import annotations

import copy
import time
import warnings

import numpy as np

from dlhw.data import iterate_minibatches

__all__ = ["Trainer", "accuracy"]

STATE_ATTRIBUTES = ("bn_params", "norm_params")
"""Model attributes that hold state besides ``params`` (batchnorm's running statistics)."""


def accuracy(scores_or_preds: np.ndarray, y: np.ndarray) -> float:
    """Fraction of correct predictions, counted where ``y >= 0``.

    Parameters
    ----------
    scores_or_preds : scores of shape (S..., C) or predicted classes of shape (S...)
    y : int array of shape (S...), class indices; negative entries (IGNORE) are not counted

    Returns
    -------
    float in [0, 1] (nan when no entry of y is counted)
    """
    y = np.asarray(y)
    p = np.asarray(scores_or_preds)
    if p.shape != y.shape:
        p = p.argmax(axis=-1)
    keep = y >= 0
    return float(np.mean(p[keep] == y[keep])) if keep.any() else float("nan")


class Trainer:
    """Train a model on a data dict with minibatches, an update rule and a history.

    Parameters
    ----------
    model : object with ``params`` (dict of arrays) and ``loss(X, y=None)`` returning scores,
        or ``(loss, grads)`` with grads keyed like params
    data : dict with X_train (N, ...), y_train (N, ...) and optionally X_val, y_val
    update_rule : the function ``rule(w, dw, config) -> (next_w, config)`` (the student's
        ``adam``, or the reference ``dlhw.optim.adam`` where the full package is installed)
    optim_config : hyperparameters given to the rule (e.g. {'learning_rate': 1e-3}); every
        parameter gets its own copy, in which the rule keeps its state
    lr_decay : multiply every learning rate by this after each epoch
    lr_schedule : optional function ``iteration -> learning rate`` (iteration counted from 0);
        when given it sets the learning rate before every step and lr_decay is ignored
    batch_size : B
    num_epochs : passes over the training set (in a new random order each time)
    val_every : measure train / validation accuracy every this many epochs (and after the last)
    num_train_samples : train accuracy is measured on this many random training samples
        (None: all)
    num_val_samples : likewise for the validation set (None: all)
    grad_clip : if given, rescale the gradients so that their joint L2 norm is at most this
    augment : optional data augmentation, a function ``(X_batch, rng) -> X_batch`` applied to
        every training batch (e.g. ``dlhw.data.random_shift``); accuracies use the data as is
    restore_best : after training (or when it diverged), put the parameters with the best
        validation accuracy back into the model
    seed : seed of the shuffling and of the accuracy subsamples
    verbose : show a tqdm progress bar with loss and accuracies

    Attributes
    ----------
    history : dict of lists: 'loss', 'lr', 'grad_norm' (one entry per iteration), 'epoch',
        'train_acc', 'val_acc' (one per accuracy check), 'time' (seconds of the last train())
    best_val_acc, best_params (and best_state: the model's ``bn_params`` / ``norm_params`` at
    that point, restored with them), diverged (True if the loss became inf or nan, which stops training)
    """

    def __init__(self, model, data: dict, update_rule=None, optim_config=None, lr_decay: float = 1.0,
                 lr_schedule=None, batch_size: int = 100, num_epochs: int = 10, val_every: int = 1,
                 num_train_samples=1000, num_val_samples=None, grad_clip=None, augment=None,
                 restore_best: bool = True, seed=0, verbose: bool = True):
        for key in ("X_train", "y_train"):
            if key not in data:
                raise ValueError(f"Trainer: data must hold {key}; it has {sorted(data)}")
        if ("X_val" in data) != ("y_val" in data):
            raise ValueError("Trainer: data must hold both X_val and y_val, or neither")
        if not callable(update_rule):
            raise ValueError("Trainer: update_rule must be a function rule(w, dw, config) -> (next_w, config), "
                             f"e.g. your adam (or dlhw.optim.adam of the full package); got {update_rule!r}")
        if batch_size < 1 or num_epochs < 0 or val_every < 1:
            raise ValueError("Trainer: need batch_size >= 1, num_epochs >= 0, val_every >= 1; got "
                             f"{batch_size}, {num_epochs}, {val_every}")
        self.model, self.data = model, data
        self.update_rule = update_rule
        self.optim_config = dict(optim_config or {})
        self.lr_decay, self.lr_schedule = lr_decay, lr_schedule
        self.batch_size, self.num_epochs, self.val_every = batch_size, num_epochs, val_every
        self.num_train_samples, self.num_val_samples = num_train_samples, num_val_samples
        self.grad_clip, self.restore_best, self.verbose = grad_clip, restore_best, verbose
        self.augment = augment
        self._rng = np.random.default_rng(seed)
        self.reset()

    def reset(self) -> None:
        """Forget the history, the best parameters and the optimizer state."""
        self.epoch = 0
        self.iteration = 0
        self.history = {"loss": [], "lr": [], "grad_norm": [], "epoch": [], "train_acc": [],
                        "val_acc": [], "time": 0.0}
        self.best_val_acc = -1.0
        self.best_params, self.best_state = {}, {}
        self.diverged = False
        self.optim_configs = {k: copy.deepcopy(self.optim_config) for k in self.model.params}

    # CS231n-style names for the history lists
    loss_history = property(lambda self: self.history["loss"])
    train_acc_history = property(lambda self: self.history["train_acc"])
    val_acc_history = property(lambda self: self.history["val_acc"])

    def _step(self, X_batch, y_batch, rule) -> float:
        """One gradient step on one minibatch; returns the loss."""
        loss, grads = self.model.loss(X_batch, y_batch)
        missing = set(self.model.params) - set(grads)
        if missing:
            raise ValueError(f"Trainer: the model's loss returned no gradient for {sorted(missing)}")
        norm = float(np.sqrt(sum(np.sum(g * g) for g in grads.values())))
        scale = self.grad_clip / norm if self.grad_clip is not None and norm > self.grad_clip else 1.0
        if self.lr_schedule is not None:
            lr = float(self.lr_schedule(self.iteration))
            for config in self.optim_configs.values():
                config["learning_rate"] = lr
        for k, w in self.model.params.items():
            next_w, self.optim_configs[k] = rule(w, grads[k] * scale if scale != 1.0 else grads[k],
                                                 self.optim_configs[k])
            self.model.params[k] = next_w
        first = next(iter(self.optim_configs.values()), {})
        self.history["loss"].append(float(loss))
        self.history["grad_norm"].append(norm)
        self.history["lr"].append(first.get("learning_rate", np.nan))
        self.iteration += 1
        return float(loss)

    def check_accuracy(self, X, y, num_samples=None, batch_size: int = 500) -> float:
        """Accuracy of the model's test-time scores on (X, y).

        Parameters
        ----------
        X : array of shape (N, ...)
        y : int array of shape (N,) or (N, T) (negative entries are not counted)
        num_samples : if given and smaller than N, a random subsample of that many
        batch_size : samples per forward pass

        Returns
        -------
        float in [0, 1]
        """
        X, y = np.asarray(X), np.asarray(y)
        if num_samples is not None and num_samples < len(X):
            ids = self._rng.choice(len(X), num_samples, replace=False)
            X, y = X[ids], y[ids]
        if len(X) == 0:
            return float("nan")
        scores = np.concatenate([self.model.loss(X[i:i + batch_size]) for i in range(0, len(X), batch_size)])
        return accuracy(scores, y)

    def _snapshot(self) -> None:
        """Copy the parameters, and the running statistics of batchnorm layers: test-time
        scores depend on both, so the best epoch's parameters need that epoch's statistics."""
        self.best_params = {k: v.copy() for k, v in self.model.params.items()}
        self.best_state = {attr: copy.deepcopy(getattr(self.model, attr)) for attr in STATE_ATTRIBUTES
                           if hasattr(self.model, attr)}

    def _evaluate(self) -> tuple[float, float]:
        d = self.data
        train_acc = self.check_accuracy(d["X_train"], d["y_train"], self.num_train_samples)
        val_acc = (self.check_accuracy(d["X_val"], d["y_val"], self.num_val_samples)
                   if "X_val" in d and len(d["X_val"]) else float("nan"))
        self.history["epoch"].append(self.epoch)
        self.history["train_acc"].append(train_acc)
        self.history["val_acc"].append(val_acc)
        # the training accuracy decides when there is no validation set
        score = train_acc if np.isnan(val_acc) else val_acc
        if score > self.best_val_acc:
            self.best_val_acc = score
            self._snapshot()
        return train_acc, val_acc

    def train(self) -> dict:
        """Run ``num_epochs`` epochs (continuing from where a previous call stopped).

        Returns
        -------
        history : dict (see the class docstring)
        """
        from tqdm.auto import tqdm

        rule = self.update_rule
        X, y = self.data["X_train"], self.data["y_train"]
        per_epoch = -(-len(X) // self.batch_size)
        if not self.best_params:      # something finite to go back to if the first epoch diverges
            self._snapshot()
        start = time.perf_counter()
        bar = tqdm(total=self.num_epochs * per_epoch, disable=not self.verbose, leave=True,
                   unit="it", dynamic_ncols=True)
        postfix = {}
        try:
            for e in range(self.num_epochs):
                bar.set_description(f"epoch {self.epoch + 1}")
                for X_batch, y_batch in iterate_minibatches(X, y, self.batch_size, shuffle=True, seed=self._rng):
                    if self.augment is not None:
                        X_batch = self.augment(X_batch, self._rng)
                    loss = self._step(X_batch, y_batch, rule)
                    if not np.isfinite(loss):
                        self.diverged = True
                        warnings.warn(f"Trainer: the loss became {loss} at iteration {self.iteration}; "
                                      "training stopped (try a smaller learning rate)", RuntimeWarning)
                        break
                    postfix["loss"] = f"{loss:.3f}"
                    bar.set_postfix(postfix, refresh=False)
                    bar.update(1)
                if self.diverged:
                    break
                self.epoch += 1
                if self.lr_schedule is None and self.lr_decay != 1.0:
                    for config in self.optim_configs.values():
                        if "learning_rate" in config:
                            config["learning_rate"] *= self.lr_decay
                if self.epoch % self.val_every == 0 or e == self.num_epochs - 1:
                    train_acc, val_acc = self._evaluate()
                    postfix.update(train_acc=f"{train_acc:.3f}", val_acc=f"{val_acc:.3f}")
                    bar.set_postfix(postfix)
        finally:
            bar.close()
        self.history["time"] = time.perf_counter() - start
        if self.restore_best and self.best_params:
            for k, v in self.best_params.items():
                self.model.params[k] = v.copy()
            for attr, state in self.best_state.items():
                setattr(self.model, attr, copy.deepcopy(state))
        return self.history
