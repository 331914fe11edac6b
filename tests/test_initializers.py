"""dlhw.initializers: shapes, sample statistics and torch.nn.init's formulas."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dlhw.initializers import (kaiming_normal, kaiming_normal_conv, kaiming_uniform,
                               kaiming_uniform_conv, xavier_normal, xavier_normal_conv,
                               xavier_uniform, xavier_uniform_conv)

FAN_IN, FAN_OUT = 600, 400          # 240,000 weights: the sample std is good to ~0.2 %
CONV = (64, 32, 5, 5)               # F, C, HH, WW: 51,200 weights, fan_in 800, fan_out 1600
GAIN_RELU = torch.nn.init.calculate_gain("relu")

# (ours, torch's initializer with its arguments, expected std, uniform?)
FC = [
    (xavier_uniform, lambda t: torch.nn.init.xavier_uniform_(t), math.sqrt(2 / (FAN_IN + FAN_OUT)), True),
    (xavier_normal, lambda t: torch.nn.init.xavier_normal_(t), math.sqrt(2 / (FAN_IN + FAN_OUT)), False),
    (kaiming_uniform, lambda t: torch.nn.init.kaiming_uniform_(t, mode="fan_in", nonlinearity="relu"),
     GAIN_RELU / math.sqrt(FAN_IN), True),
    (kaiming_normal, lambda t: torch.nn.init.kaiming_normal_(t, mode="fan_in", nonlinearity="relu"),
     GAIN_RELU / math.sqrt(FAN_IN), False),
]
F, C, HH, WW = CONV
CONV_CASES = [
    (xavier_uniform_conv, FC[0][1], math.sqrt(2 / (C * HH * WW + F * HH * WW)), True),
    (xavier_normal_conv, FC[1][1], math.sqrt(2 / (C * HH * WW + F * HH * WW)), False),
    (kaiming_uniform_conv, FC[2][1], GAIN_RELU / math.sqrt(C * HH * WW), True),
    (kaiming_normal_conv, FC[3][1], GAIN_RELU / math.sqrt(C * HH * WW), False),
]


def check_sample(w, std, uniform):
    n = w.size
    assert w.dtype == np.float64
    assert abs(w.std() / std - 1) < 0.02
    assert abs(w.mean()) < 5 * std / math.sqrt(n)
    if uniform:
        bound = math.sqrt(3) * std
        assert np.abs(w).max() <= bound
        assert np.abs(w).max() > 0.999 * bound              # the whole interval is used
        assert abs(np.mean(np.abs(w) < bound / 2) - 0.5) < 0.01
    else:
        # A normal has about 68.3 % of its mass within one std.
        assert abs(np.mean(np.abs(w) < std) - 0.6827) < 0.01


@pytest.mark.parametrize("init, torch_init, std, uniform", FC, ids=lambda c: getattr(c, "__name__", ""))
def test_fully_connected(init, torch_init, std, uniform):
    w = init(FAN_IN, FAN_OUT, np.random.default_rng(0))
    assert w.shape == (FAN_IN, FAN_OUT)
    check_sample(w, std, uniform)
    # torch's nn.Linear weight is (out, in): the same fans, the same distribution.
    torch.manual_seed(0)
    t = torch_init(torch.empty(FAN_OUT, FAN_IN, dtype=torch.float64)).numpy()
    check_sample(t, std, uniform)
    assert abs(w.std() / t.std() - 1) < 0.02


@pytest.mark.parametrize("init, torch_init, std, uniform", CONV_CASES, ids=lambda c: getattr(c, "__name__", ""))
def test_conv(init, torch_init, std, uniform):
    w = init(CONV, np.random.default_rng(1))
    assert w.shape == CONV
    check_sample(w, std, uniform)
    torch.manual_seed(1)
    t = torch_init(torch.empty(*CONV, dtype=torch.float64)).numpy()
    check_sample(t, std, uniform)
    assert abs(w.std() / t.std() - 1) < 0.02


def test_xavier_equals_notes_one_over_n_for_square_layers():
    # The notes' Var(w) = 1/n and Glorot's 2/(n_in + n_out) agree when n_in == n_out.
    w = xavier_normal(500, 500, np.random.default_rng(2))
    assert abs(w.var() * 500 - 1) < 0.02


@pytest.mark.parametrize("init", [xavier_uniform, xavier_normal, kaiming_uniform, kaiming_normal])
def test_reproducible(init):
    a = init(7, 3, np.random.default_rng(5))
    np.testing.assert_array_equal(a, init(7, 3, np.random.default_rng(5)))
    assert not np.array_equal(a, init(7, 3, np.random.default_rng(6)))


def test_kaiming_keeps_relu_activations_alive_where_small_init_vanishes():
    # Ten ReLU layers of width 256: He init keeps the mean square of the activations of the
    # same order, a std of 0.01 divides it by ~(256 * 1e-4 / 2)^10.
    rng = np.random.default_rng(3)
    x0 = rng.standard_normal((500, 256))
    x_he, x_small = x0, x0
    for _ in range(10):
        x_he = np.maximum(0, x_he @ kaiming_normal(256, 256, rng))
        x_small = np.maximum(0, x_small @ (0.01 * rng.standard_normal((256, 256))))
    ratio = np.mean(x_he ** 2) / np.mean(x0 ** 2)
    assert 0.3 < ratio < 3
    assert np.mean(x_small ** 2) < 1e-10


@pytest.mark.parametrize("init", [xavier_uniform, xavier_normal, kaiming_uniform, kaiming_normal])
def test_fc_errors(init):
    name = init.__name__
    with pytest.raises(ValueError, match=f"{name}: rng must be a numpy.random.Generator"):
        init(3, 4, 0)
    with pytest.raises(ValueError, match=f"{name}: rng must be a numpy.random.Generator"):
        init(3, 4, np.random.RandomState(0))
    with pytest.raises(ValueError, match=f"{name}: fan_in and fan_out must be integers >= 1"):
        init(0, 4, np.random.default_rng(0))
    with pytest.raises(ValueError, match=f"{name}: fan_in and fan_out must be integers >= 1"):
        init(3, 2.5, np.random.default_rng(0))


@pytest.mark.parametrize("init", [xavier_uniform_conv, xavier_normal_conv, kaiming_uniform_conv,
                                  kaiming_normal_conv])
def test_conv_errors(init):
    name = init.__name__
    with pytest.raises(ValueError, match=rf"{name}: shape must be \(F, C, HH, WW\)"):
        init((8, 3, 3), np.random.default_rng(0))
    with pytest.raises(ValueError, match=rf"{name}: shape must be \(F, C, HH, WW\)"):
        init((8, 0, 3, 3), np.random.default_rng(0))
    with pytest.raises(ValueError, match=f"{name}: rng must be a numpy.random.Generator"):
        init((8, 3, 3, 3), None)
