"""Update rules and learning-rate schedules (assignment 04).

Every update rule has the signature ``rule(w, dw, config=None) -> (next_w, config)``:

* ``w`` is a parameter array of any shape (S...) and ``dw`` the gradient of the loss with
  respect to it, of the same shape;
* ``config`` is a dict holding the hyperparameters (``learning_rate``, ``momentum``, ...) and
  the optimizer's state (``velocity``, ``cache``, ``m``, ``v``, ``t``). The rule fills in the
  defaults it needs with ``setdefault`` and creates missing state as zeros of w's shape, so
  the first call may pass ``config=None`` and every later call passes back the dict it got.
* ``next_w`` is a new array: ``w`` itself is never modified. The state arrays in ``config``
  *are* updated in place (see ``adam``), so a state array handed in is changed.

Default learning rates: 1e-2 for sgd, sgd_momentum, nesterov_momentum and rmsprop (torch's
RMSprop default too), 1e-3 for adam and adamw (the Adam paper's and torch's default).

The schedules at the end are plain functions of the step (or epoch) counter ``t`` that
return a learning rate; a training loop sets ``config["learning_rate"] = schedule(...)``
before each update.
"""
from __future__ import annotations

import numpy as np

from dlhw.validation import as_array, as_array_like, as_config, require_numbers, state_array

__all__ = ["sgd", "sgd_momentum", "nesterov_momentum", "rmsprop", "adam", "adamw",
           "step_decay", "inverse_time_decay", "warmup_schedule", "linear_warmup"]


def sgd(w, dw, config=None):
    """Vanilla stochastic gradient descent: w <- w - learning_rate * dw.

    Parameters
    ----------
    w : array of shape (S...), the parameters
    dw : array of shape (S...), the gradient of the loss with respect to w
    config : dict or None, with key
        learning_rate : float (default 1e-2)

    Returns
    -------
    next_w : new array of shape (S...)
    config : the same dict, defaults filled in
    """
    w = as_array("sgd", "w", w)
    dw = as_array_like("sgd", "dw", dw, w, "w")
    config = as_config("sgd", "config", config)
    config.setdefault("learning_rate", 1e-2)
    ### BEGIN SOLUTION
    next_w = w - config["learning_rate"] * dw
    ### END SOLUTION
    return next_w, config


def sgd_momentum(w, dw, config=None):
    """SGD with momentum: v <- momentum * v - learning_rate * dw; w <- w + v.

    The velocity v is an exponentially decaying sum of past steps, so it grows along a
    direction the gradients keep agreeing on (the floor of a ravine) and the oscillations
    across the ravine cancel.

    PyTorch's ``SGD(momentum=mu)`` stores ``b = mu * b + dw`` and steps ``w - lr * b``: the
    same trajectory for a constant learning rate, with v = -lr * b.

    Parameters
    ----------
    w : array of shape (S...), the parameters
    dw : array of shape (S...), the gradient of the loss with respect to w
    config : dict or None, with keys
        learning_rate : float (default 1e-2)
        momentum : float in [0, 1) (default 0.9); 0 gives plain sgd
        velocity : array of shape (S...) (default zeros), updated in place

    Returns
    -------
    next_w : new array of shape (S...)
    config : the same dict, velocity updated
    """
    w = as_array("sgd_momentum", "w", w)
    dw = as_array_like("sgd_momentum", "dw", dw, w, "w")
    config = as_config("sgd_momentum", "config", config)
    config.setdefault("learning_rate", 1e-2)
    config.setdefault("momentum", 0.9)
    state_array("sgd_momentum", config, "velocity", w)
    ### BEGIN SOLUTION
    v = config["velocity"]
    v *= config["momentum"]                      # in place: the state lives in config
    v -= config["learning_rate"] * dw
    next_w = w + v
    ### END SOLUTION
    return next_w, config


def nesterov_momentum(w, dw, config=None):
    """Nesterov momentum in the "look-ahead re-expressed" form.

    The notes' Nesterov step evaluates the gradient at the look-ahead point
    theta + momentum * v:

        v_new = momentum * v - learning_rate * grad(theta + momentum * v)
        theta_new = theta + v_new

    Storing the look-ahead point w = theta + momentum * v instead of theta makes the gradient
    the one at the stored parameters, as every other rule has it (dw = grad(w)), and the step
    becomes

        v_prev = v
        v = momentum * v - learning_rate * dw
        w <- w - momentum * v_prev + (1 + momentum) * v

    (substitute w = theta + momentum * v on both sides to get back the form above). This is
    also exactly what PyTorch's ``SGD(momentum=mu, nesterov=True)`` computes, with its buffer
    b = -v / learning_rate.

    Parameters
    ----------
    w : array of shape (S...), the (look-ahead) parameters
    dw : array of shape (S...), the gradient of the loss at w
    config : dict or None, with keys
        learning_rate : float (default 1e-2)
        momentum : float in [0, 1) (default 0.9)
        velocity : array of shape (S...) (default zeros), updated in place

    Returns
    -------
    next_w : new array of shape (S...)
    config : the same dict, velocity updated
    """
    w = as_array("nesterov_momentum", "w", w)
    dw = as_array_like("nesterov_momentum", "dw", dw, w, "w")
    config = as_config("nesterov_momentum", "config", config)
    config.setdefault("learning_rate", 1e-2)
    config.setdefault("momentum", 0.9)
    state_array("nesterov_momentum", config, "velocity", w)
    ### BEGIN SOLUTION
    mu, v = config["momentum"], config["velocity"]
    v_prev = v.copy()                            # v is about to change in place
    v *= mu
    v -= config["learning_rate"] * dw
    next_w = w - mu * v_prev + (1 + mu) * v
    ### END SOLUTION
    return next_w, config


def rmsprop(w, dw, config=None):
    """RMSProp: divide each coordinate's step by a running root mean square of its gradients.

        cache <- decay_rate * cache + (1 - decay_rate) * dw**2
        w <- w - learning_rate * dw / (sqrt(cache) + epsilon)

    Coordinates with large, oscillating gradients take small steps and flat coordinates take
    large ones. Same as PyTorch's ``RMSprop(alpha=decay_rate, eps=epsilon)``.

    Parameters
    ----------
    w : array of shape (S...), the parameters
    dw : array of shape (S...), the gradient of the loss with respect to w
    config : dict or None, with keys
        learning_rate : float (default 1e-2)
        decay_rate : float in [0, 1) (default 0.99)
        epsilon : float (default 1e-8), keeps the division finite where cache is 0
        cache : array of shape (S...) (default zeros), updated in place

    Returns
    -------
    next_w : new array of shape (S...)
    config : the same dict, cache updated
    """
    w = as_array("rmsprop", "w", w)
    dw = as_array_like("rmsprop", "dw", dw, w, "w")
    config = as_config("rmsprop", "config", config)
    config.setdefault("learning_rate", 1e-2)
    config.setdefault("decay_rate", 0.99)
    config.setdefault("epsilon", 1e-8)
    state_array("rmsprop", config, "cache", w)
    ### BEGIN SOLUTION
    rho, cache = config["decay_rate"], config["cache"]
    cache *= rho
    cache += (1 - rho) * dw * dw
    next_w = w - config["learning_rate"] * dw / (np.sqrt(cache) + config["epsilon"])
    ### END SOLUTION
    return next_w, config


def adam(w, dw, config=None):
    """Adam: momentum on the gradient (m) and RMSProp scaling (v), both bias-corrected.

        t <- t + 1                                    (t counts steps, from 1)
        m <- beta1 * m + (1 - beta1) * dw
        v <- beta2 * v + (1 - beta2) * dw**2
        m_hat = m / (1 - beta1**t),  v_hat = v / (1 - beta2**t)
        w <- w - learning_rate * m_hat / (sqrt(v_hat) + epsilon)

    m and v start at zero, so without the corrections the first steps would be biased
    towards zero; at t = 1, m_hat = dw and v_hat = dw**2 exactly. This is PyTorch's
    ``Adam`` (epsilon outside the square root; one lecture slide writes it inside).

    m and v are updated in place and the whole step runs in one new array (which becomes
    ``next_w``), so that a step on a large layer allocates as little as possible.

    Parameters
    ----------
    w : array of shape (S...), the parameters
    dw : array of shape (S...), the gradient of the loss with respect to w
    config : dict or None, with keys
        learning_rate : float (default 1e-3)
        beta1 : float in [0, 1) (default 0.9), decay rate of m
        beta2 : float in [0, 1) (default 0.999), decay rate of v
        epsilon : float (default 1e-8)
        m, v : arrays of shape (S...) (default zeros), updated in place
        t : int (default 0), the number of steps taken so far

    Returns
    -------
    next_w : new array of shape (S...)
    config : the same dict, m, v and t updated
    """
    w = as_array("adam", "w", w)
    dw = as_array_like("adam", "dw", dw, w, "w")
    config = as_config("adam", "config", config)
    config.setdefault("learning_rate", 1e-3)
    config.setdefault("beta1", 0.9)
    config.setdefault("beta2", 0.999)
    config.setdefault("epsilon", 1e-8)
    config.setdefault("t", 0)
    state_array("adam", config, "m", w)
    state_array("adam", config, "v", w)
    ### BEGIN SOLUTION
    beta1, beta2, m, v = config["beta1"], config["beta2"], config["m"], config["v"]
    config["t"] += 1                             # before use: the first step has t = 1
    t = config["t"]
    # One scratch array does all the elementwise work: on a 4M-parameter layer every new
    # temporary costs as much as an arithmetic pass. It ends up holding next_w.
    scratch = np.empty_like(w)
    np.multiply(dw, 1 - beta1, out=scratch)
    m *= beta1
    m += scratch                                 # m = beta1 m + (1 - beta1) dw
    np.multiply(dw, dw, out=scratch)
    scratch *= 1 - beta2
    v *= beta2
    v += scratch                                 # v = beta2 v + (1 - beta2) dw^2
    np.divide(v, 1 - beta2 ** t, out=scratch)    # v_hat
    np.sqrt(scratch, out=scratch)
    scratch += config["epsilon"]
    np.divide(m, scratch, out=scratch)           # m / (sqrt(v_hat) + eps)
    scratch *= config["learning_rate"] / (1 - beta1 ** t)   # m_hat's correction, a scalar
    next_w = np.subtract(w, scratch, out=scratch)
    ### END SOLUTION
    return next_w, config


def adamw(w, dw, config=None):
    """AdamW: Adam with decoupled weight decay, as PyTorch's ``AdamW``.

        w <- w - learning_rate * weight_decay * w        (shrink the weights)
        then one adam step on the shrunk w with the same gradient dw

    L2 regularization adds weight_decay * w to the gradient, and in Adam that term is then
    divided by sqrt(v_hat): weights with large gradients are barely regularized. Decoupling
    the decay from the gradient shrinks every weight by the same factor.

    Parameters
    ----------
    w : array of shape (S...), the parameters
    dw : array of shape (S...), the gradient of the loss (without any L2 term)
    config : dict or None, with adam's keys and
        learning_rate : float (default 1e-3)
        weight_decay : float (default 1e-2, as PyTorch's AdamW)

    Returns
    -------
    next_w : new array of shape (S...)
    config : the same dict, m, v and t updated
    """
    w = as_array("adamw", "w", w)
    dw = as_array_like("adamw", "dw", dw, w, "w")
    config = as_config("adamw", "config", config)
    config.setdefault("learning_rate", 1e-3)
    config.setdefault("weight_decay", 1e-2)
    ### BEGIN SOLUTION
    decayed = w * (1 - config["learning_rate"] * config["weight_decay"])
    next_w, config = adam(decayed, dw, config)
    ### END SOLUTION
    return next_w, config


def step_decay(lr0, t, step_size, gamma=0.5):
    """Step decay: multiply the learning rate by ``gamma`` every ``step_size`` steps.

        lr(t) = lr0 * gamma ** floor(t / step_size)

    As PyTorch's ``StepLR``; the notes' usual factor is 0.5 (halve it).

    Parameters
    ----------
    lr0 : float, the learning rate at t = 0
    t : int >= 0, the step (or epoch) counter
    step_size : int >= 1, steps between two decays
    gamma : float, the decay factor

    Returns
    -------
    lr : float
    """
    if int(step_size) != step_size or step_size < 1:
        raise ValueError(f"step_decay: step_size must be an integer >= 1; got {step_size!r}")
    require_numbers("step_decay", {"t": t}, low=0)
    ### BEGIN SOLUTION
    lr = lr0 * gamma ** (int(t) // int(step_size))
    ### END SOLUTION
    return float(lr)


def inverse_time_decay(lr0, t, decay_rate=1.0):
    """Inverse-time ("1/t") decay: lr(t) = lr0 / (1 + decay_rate * t).

    This is the notes' a / (b + t) with a = lr0 / decay_rate and b = 1 / decay_rate, written
    so that lr(0) = lr0. With lr0 = 0.1 and decay_rate = 1 it gives 0.1, 0.05, 0.033, 0.025.
    The rates sum to infinity while their squares do not, the Robbins-Monro conditions for
    SGD to converge.

    Parameters
    ----------
    lr0 : float, the learning rate at t = 0
    t : number >= 0, the step (or epoch) counter
    decay_rate : float >= 0 (0 keeps lr0)

    Returns
    -------
    lr : float
    """
    require_numbers("inverse_time_decay", {"t": t}, low=0)
    require_numbers("inverse_time_decay", {"decay_rate": decay_rate}, low=0)
    ### BEGIN SOLUTION
    lr = lr0 / (1 + decay_rate * t)
    ### END SOLUTION
    return float(lr)


def warmup_schedule(t, d_model, warmup_steps=4000):
    """The transformer's learning rate ("Attention is all you need"):

        lr(t) = d_model**-0.5 * min(t**-0.5, t * warmup_steps**-1.5)

    It grows linearly for the first ``warmup_steps`` steps (Adam's v is still a poor
    estimate there, so large steps are risky), peaks at t = warmup_steps with
    (d_model * warmup_steps)**-0.5, then decays as 1/sqrt(t). t counts steps from 1; t = 0
    gives 0 (the limit of the formula).

    Parameters
    ----------
    t : number >= 0, the step counter
    d_model : int >= 1, the model width
    warmup_steps : int >= 1

    Returns
    -------
    lr : float
    """
    require_numbers("warmup_schedule", {"t": t}, low=0)
    require_numbers("warmup_schedule", {"d_model": d_model, "warmup_steps": warmup_steps}, low=1)
    ### BEGIN SOLUTION
    # The two branches of the min meet at t = warmup_steps; writing them as branches avoids
    # 0 ** -0.5 at t = 0.
    if t <= warmup_steps:
        lr = d_model ** -0.5 * t * warmup_steps ** -1.5
    else:
        lr = d_model ** -0.5 * t ** -0.5
    ### END SOLUTION
    return float(lr)


def linear_warmup(lr0, t, warmup_steps, start_factor=0.0):
    """Linear warm-up to ``lr0`` over ``warmup_steps`` steps, then constant.

        lr(t) = lr0 * (start_factor + (1 - start_factor) * min(t, warmup_steps) / warmup_steps)

    As PyTorch's ``LinearLR(start_factor, end_factor=1.0, total_iters=warmup_steps)``. With
    the default start_factor 0 the first step (t = 0) has learning rate 0; combine it with a
    decay schedule by multiplying the two factors.

    Parameters
    ----------
    lr0 : float, the learning rate after warm-up
    t : number >= 0, the step counter
    warmup_steps : int >= 1
    start_factor : float in [0, 1], lr(0) / lr0

    Returns
    -------
    lr : float
    """
    require_numbers("linear_warmup", {"t": t}, low=0)
    require_numbers("linear_warmup", {"warmup_steps": warmup_steps}, low=1)
    require_numbers("linear_warmup", {"start_factor": start_factor}, low=0, high=1)
    ### BEGIN SOLUTION
    progress = min(t, warmup_steps) / warmup_steps
    lr = lr0 * (start_factor + (1 - start_factor) * progress)
    ### END SOLUTION
    return float(lr)
