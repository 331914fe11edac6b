"""A two-layer network (affine - ReLU - affine - softmax) written with the layer functions.

Assignment 02 grades it: the point is to see backpropagation as the layers' backward passes
called in the reverse order of their forwards, with the regularization's gradient added.
"""
import numpy as np

from dlhw.nn.layers import affine_backward, affine_forward, relu_backward, relu_forward
from dlhw.nn.losses import softmax_loss
from dlhw.validation import require_keys

__all__ = ["two_layer_net"]


def two_layer_net(X, params, y=None, reg=0.0):
    """Scores, or loss and gradients, of a two-layer net: affine - relu - affine - softmax.

    Parameters
    ----------
    X : array of shape (N, D), a minibatch of inputs
    params : dict with W1 (D, H), b1 (H,), W2 (H, C), b2 (C,)
    y : int array of shape (N,) with labels in [0, C), or None
    reg : L2 strength; the loss gets 0.5 * reg * (sum(W1**2) + sum(W2**2)), biases unpenalized

    Returns
    -------
    scores : array of shape (N, C) when y is None; otherwise
    (loss, grads) : a float and a dict with the keys of params, each gradient of its shape
    """
    require_keys("two_layer_net", "params", params, ("W1", "b1", "W2", "b2"))
    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    ### BEGIN SOLUTION
    hidden, cache1 = affine_forward(X, W1, b1)
    act, cache_relu = relu_forward(hidden)
    scores, cache2 = affine_forward(act, W2, b2)
    if y is None:
        return scores

    data_loss, dscores = softmax_loss(scores, y)
    loss = data_loss + 0.5 * reg * (np.sum(W1 * W1) + np.sum(W2 * W2))

    # backward: the layers in reverse order, then the regularization's own gradient
    dact, dW2, db2 = affine_backward(dscores, cache2)
    dhidden = relu_backward(dact, cache_relu)
    _, dW1, db1 = affine_backward(dhidden, cache1)
    grads = {"W1": dW1 + reg * W1, "b1": db1, "W2": dW2 + reg * W2, "b2": db2}
    ### END SOLUTION
    return loss, grads
