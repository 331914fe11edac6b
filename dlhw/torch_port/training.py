"""Assignment 09: a device-agnostic training loop in PyTorch.

The same three functions train any model on any device: ``get_device`` picks the GPU when
there is one, ``train_one_epoch`` and ``evaluate`` move each batch to the model's device, so
the one notebook runs on a laptop's CPU and on a GPU machine without a change.

Scores follow PyTorch's layout for ``CrossEntropyLoss``: (N, C) for one label per example,
(N, C, T) for one label per position (sequence tasks); accuracy counts every label.
"""
from __future__ import annotations

import torch

__all__ = ["get_device", "train_one_epoch", "evaluate"]


def get_device():
    """The device to train on: ``torch.device('cuda')`` when a GPU is available, else the CPU.

    Returns
    -------
    device : torch.device (not a string)
    """
    ### BEGIN SOLUTION
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    ### END SOLUTION


def train_one_epoch(model, loader, loss_fn, optimizer, device):
    """One pass over ``loader``, one optimizer step per batch, on ``device``.

    Puts the model in training mode (dropout active, batch normalization on batch statistics),
    and for every batch: moves it to ``device``, clears the gradients, computes the loss,
    backpropagates and steps.

    Parameters
    ----------
    model : torch.nn.Module, already on ``device``; maps inputs (B, ...) to scores (B, C, ...)
    loader : iterable of (inputs, targets) tensor pairs, e.g. a DataLoader (on any device)
    loss_fn : callable (scores, targets) -> the batch's mean loss (0-d tensor)
    optimizer : torch.optim.Optimizer over model's parameters
    device : torch.device or str

    Returns
    -------
    mean_loss : float, the loss averaged over the epoch's EXAMPLES (each batch's mean weighted
        by its size, so a short last batch counts for what it holds)
    """
    fn = "train_one_epoch"
    total, count = 0.0, 0
    ### BEGIN SOLUTION
    model.train()
    for xb, yb in loader:
        xb, yb = xb.to(device), yb.to(device)
        optimizer.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(xb)        # .item(): a float, not a graph kept alive
        count += len(xb)
    ### END SOLUTION
    if count == 0:
        raise ValueError(f"{fn}: the loader yielded no batch")
    return total / count


def evaluate(model, loader, loss_fn, device):
    """Mean loss and accuracy of ``model`` over ``loader``, changing nothing in the model.

    Puts the model in evaluation mode (no dropout, batch normalization on its running
    statistics) and computes without building an autograd graph.

    Parameters
    ----------
    model, loader, loss_fn, device : as in ``train_one_epoch``

    Returns
    -------
    mean_loss : float, averaged over the examples (as ``train_one_epoch``)
    accuracy : float in [0, 1], the fraction of targets whose class has the largest score
        (the class axis is axis 1 of the scores, PyTorch's layout)
    """
    fn = "evaluate"
    total, correct, labels, count = 0.0, 0, 0, 0
    ### BEGIN SOLUTION
    model.eval()
    with torch.no_grad():
        for xb, yb in loader:
            xb, yb = xb.to(device), yb.to(device)
            scores = model(xb)
            total += loss_fn(scores, yb).item() * len(xb)
            correct += int((scores.argmax(dim=1) == yb).sum())
            labels += yb.numel()
            count += len(xb)
    ### END SOLUTION
    if count == 0:
        raise ValueError(f"{fn}: the loader yielded no batch")
    return total / count, correct / labels
