"""Plots the notebooks share: training histories, confusion matrices, filters, images.

Every function draws with matplotlib (imported when called), labels its axes, titles its
panels and returns the Figure, so a notebook can save or adjust it.
"""
from __future__ import annotations

import numpy as np

__all__ = ["plot_history", "confusion_matrix", "plot_confusion_matrix", "show_filters", "show_images"]


def _moving_average(x: np.ndarray, window: int) -> np.ndarray:
    """Mean of the last ``window`` values at every point (shorter at the start)."""
    c = np.cumsum(np.insert(x, 0, 0.0))
    idx = np.arange(1, len(x) + 1)
    lo = np.maximum(idx - window, 0)
    return (c[idx] - c[lo]) / (idx - lo)


def plot_history(history: dict, title: str | None = None, smooth: int | None = None, log_loss: bool = False):
    """Loss per iteration, accuracy per epoch and (if it changes) the learning rate.

    Parameters
    ----------
    history : dict with 'loss' (one value per iteration) and optionally 'train_acc',
        'val_acc', 'epoch' (one value per accuracy check) and 'lr' (per iteration), as
        ``dlhw.train.Trainer.train`` returns it
    title : title of the figure
    smooth : window of the moving average drawn over the raw loss (default: about 1/20 of
        the iterations; 1 disables it)
    log_loss : logarithmic loss axis

    Returns
    -------
    matplotlib Figure
    """
    import matplotlib.pyplot as plt

    loss = np.asarray(history.get("loss", []), dtype=float)
    lr = np.asarray(history.get("lr", []), dtype=float)
    show_lr = lr.size > 1 and np.nanmax(lr) != np.nanmin(lr)
    has_acc = len(history.get("train_acc", [])) > 0 or len(history.get("val_acc", [])) > 0
    panels = 1 + has_acc + show_lr
    fig, axes = plt.subplots(1, panels, figsize=(4.5 * panels, 3.4), squeeze=False)
    axes = list(axes[0])

    ax = axes.pop(0)
    it = np.arange(1, len(loss) + 1)
    window = smooth or max(len(loss) // 20, 1)
    ax.plot(it, loss, lw=0.8, alpha=0.4 if window > 1 else 1.0, label="per iteration")
    if window > 1:
        ax.plot(it, _moving_average(loss, window), lw=1.8, label=f"mean of {window}")
        ax.legend()
    ax.set(title="Training loss", xlabel="iteration", ylabel="loss")
    if log_loss:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)

    if has_acc:
        ax = axes.pop(0)
        n = max(len(history.get("train_acc", [])), len(history.get("val_acc", [])))
        epochs = history.get("epoch") or list(range(1, n + 1))
        for key, label in (("train_acc", "train"), ("val_acc", "validation")):
            values = history.get(key, [])
            if len(values):
                ax.plot(epochs[:len(values)], values, marker="o", ms=3, label=label)
        ax.set(title="Accuracy", xlabel="epoch", ylabel="accuracy")
        ax.legend()
        ax.grid(alpha=0.3)

    if show_lr:
        ax = axes.pop(0)
        ax.plot(np.arange(1, len(lr) + 1), lr)
        ax.set(title="Learning rate", xlabel="iteration", ylabel="learning rate")
        ax.grid(alpha=0.3)

    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def confusion_matrix(y_true, y_pred, num_classes: int | None = None) -> np.ndarray:
    """Counts of (true class, predicted class) pairs.

    Parameters
    ----------
    y_true, y_pred : int arrays of shape (N,)
    num_classes : K (default: 1 + the largest class seen)

    Returns
    -------
    cm : int array of shape (K, K), cm[i, j] = number of samples of class i predicted as j
    """
    y_true = np.asarray(y_true, dtype=np.int64).ravel()
    y_pred = np.asarray(y_pred, dtype=np.int64).ravel()
    if y_true.shape != y_pred.shape:
        raise ValueError(f"confusion_matrix: y_true and y_pred must have the same length; "
                         f"got {y_true.shape} and {y_pred.shape}")
    K = num_classes or int(max(y_true.max(initial=-1), y_pred.max(initial=-1)) + 1)
    cm = np.zeros((K, K), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    return cm


def plot_confusion_matrix(y_true, y_pred, class_names=None, normalize: bool = False,
                          title: str = "Confusion matrix", ax=None):
    """Confusion matrix as an annotated heat map.

    Parameters
    ----------
    y_true, y_pred : int arrays of shape (N,)
    class_names : K labels of the classes (default 0 .. K-1)
    normalize : show each row as fractions of its true class instead of counts
    title : title of the axes
    ax : matplotlib Axes to draw into (default: a new figure)

    Returns
    -------
    matplotlib Figure
    """
    import matplotlib.pyplot as plt

    K = len(class_names) if class_names is not None else None
    cm = confusion_matrix(y_true, y_pred, K)
    K = cm.shape[0]
    names = [str(c) for c in (class_names if class_names is not None else range(K))]
    values = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1) if normalize else cm
    if ax is None:
        fig, ax = plt.subplots(figsize=(0.45 * K + 2.5, 0.45 * K + 2))
    else:
        fig = ax.figure
    im = ax.imshow(values, cmap="Blues", vmin=0)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    ax.set(xticks=range(K), yticks=range(K), xticklabels=names, yticklabels=names,
           xlabel="predicted class", ylabel="true class", title=title)
    if K <= 20:
        high = values.max() / 2 if values.size else 0
        for i in range(K):
            for j in range(K):
                text = f"{values[i, j]:.2f}" if normalize else str(cm[i, j])
                ax.text(j, i, text, ha="center", va="center", fontsize=8,
                        color="white" if values[i, j] > high else "black")
    fig.tight_layout()
    return fig


def _grid(tiles: np.ndarray, ncols: int, titles=None, title=None, cmap="gray", per_tile_scale=True):
    import matplotlib.pyplot as plt

    n = len(tiles)
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.1 * ncols + 0.4, 1.1 * nrows + 0.6), squeeze=False)
    lo, hi = float(np.min(tiles)), float(np.max(tiles))
    for i, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if i >= n:
            continue
        t = tiles[i]
        if t.ndim == 3:           # RGB: every tile scaled to [0, 1] on its own
            t = (t - t.min()) / max(t.max() - t.min(), 1e-12)
            ax.imshow(t)
        elif per_tile_scale:
            ax.imshow(t, cmap=cmap)
        else:
            ax.imshow(t, cmap=cmap, vmin=lo, vmax=hi)
        if titles is not None:
            ax.set_title(titles[i], fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def show_filters(W, image_shape=None, ncols: int = 8, max_filters: int = 64, title: str = "Filters"):
    """Learned weights as a grid of small images.

    Parameters
    ----------
    W : either convolution weights of shape (F, C, HH, WW) (C = 3 drawn in colour, C = 1 in
        grey, other C: one tile per (filter, channel) pair) or fully connected weights of
        shape (D, M) whose M columns are images of ``image_shape`` (e.g. (8, 8) for the digits)
    image_shape : (H, W) of a column, needed for (D, M) weights
    ncols : tiles per row
    max_filters : draw at most this many tiles
    title : title of the figure

    Returns
    -------
    matplotlib Figure
    """
    W = np.asarray(W, dtype=np.float64)
    if W.ndim == 2:
        if image_shape is None or int(np.prod(image_shape)) != W.shape[0]:
            raise ValueError(f"show_filters: fully connected weights (D, M) = {W.shape} need "
                             f"image_shape with D = {W.shape[0]} pixels; got {image_shape}")
        tiles = W.T.reshape((W.shape[1],) + tuple(image_shape))
        titles = [str(i) for i in range(len(tiles))]
    elif W.ndim == 4:
        F, C = W.shape[:2]
        if C == 3:
            tiles, titles = W.transpose(0, 2, 3, 1), [str(f) for f in range(F)]
        elif C == 1:
            tiles, titles = W[:, 0], [str(f) for f in range(F)]
        else:
            tiles = W.reshape(F * C, *W.shape[2:])
            titles = [f"{f}.{c}" for f in range(F) for c in range(C)]
            ncols = C if C <= 16 else ncols
    else:
        raise ValueError(f"show_filters: W must have shape (F, C, HH, WW) or (D, M); got {W.shape}")
    return _grid(tiles[:max_filters], ncols, titles[:max_filters], title)


def show_images(X, labels=None, preds=None, class_names=None, ncols: int = 10, max_images: int = 50,
                title: str | None = None):
    """A grid of images with their labels (and predictions, wrong ones marked).

    Parameters
    ----------
    X : images of shape (N, H, W), (N, 1, H, W), (N, 3, H, W) or flattened square grey images
        (N, H*W)
    labels : int array of shape (N,) or None
    preds : int array of shape (N,) or None
    class_names : names of the classes (default: the numbers)
    ncols, max_images : layout
    title : title of the figure

    Returns
    -------
    matplotlib Figure
    """
    X = np.asarray(X, dtype=np.float64)[:max_images]
    if X.ndim == 2:
        side = int(round(np.sqrt(X.shape[1])))
        if side * side != X.shape[1]:
            raise ValueError(f"show_images: rows of {X.shape[1]} features are not square images")
        X = X.reshape(len(X), side, side)
    elif X.ndim == 4:
        X = X[:, 0] if X.shape[1] == 1 else X.transpose(0, 2, 3, 1)
    name = (lambda c: str(class_names[c])) if class_names is not None else str
    titles = None
    if labels is not None or preds is not None:
        titles = []
        for i in range(len(X)):
            parts = []
            if labels is not None:
                parts.append(name(labels[i]))
            if preds is not None:
                mark = "" if labels is None or preds[i] == labels[i] else " x"
                parts.append(f"-> {name(preds[i])}{mark}")
            titles.append(" ".join(parts))
    return _grid(X, ncols, titles, title, cmap="gray_r")
