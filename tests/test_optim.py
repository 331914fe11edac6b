"""dlhw.optim against torch.optim (trajectories, float64) and against the notes' formulas."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from dlhw.gradcheck import rel_error
from dlhw.optim import (adam, adamw, inverse_time_decay, linear_warmup, nesterov_momentum,
                        rmsprop, sgd, sgd_momentum, step_decay, warmup_schedule)

RULES = [sgd, sgd_momentum, nesterov_momentum, rmsprop, adam, adamw]

# A smooth non-quadratic objective so that the gradient depends on where it is taken
# (what tells Nesterov's look-ahead from plain momentum).
_rng = np.random.default_rng(0)
_A = _rng.standard_normal((6, 6))
_A = _A @ _A.T / 6 + 0.1 * np.eye(6)
_B = _rng.standard_normal(6)


def grad_fn(w):
    return _A @ w + _B + 0.3 * np.sin(3 * w)


def run_dlhw(rule, config, w0, steps):
    w, path = w0.copy(), [w0.copy()]
    for _ in range(steps):
        w, config = rule(w, grad_fn(w), config)
        path.append(w.copy())
    return np.array(path), config


def run_torch(opt_cls, kwargs, w0, steps):
    p = torch.tensor(w0.copy(), dtype=torch.float64, requires_grad=True)
    opt = opt_cls([p], **kwargs)
    path = [w0.copy()]
    for _ in range(steps):
        p.grad = torch.from_numpy(grad_fn(p.detach().numpy().copy()))
        opt.step()
        path.append(p.detach().numpy().copy())
    return np.array(path)


CASES = [
    (sgd, {"learning_rate": 0.05}, torch.optim.SGD, {"lr": 0.05}),
    (sgd_momentum, {"learning_rate": 0.03, "momentum": 0.8},
     torch.optim.SGD, {"lr": 0.03, "momentum": 0.8}),
    (nesterov_momentum, {"learning_rate": 0.03, "momentum": 0.8},
     torch.optim.SGD, {"lr": 0.03, "momentum": 0.8, "nesterov": True}),
    (rmsprop, {"learning_rate": 0.01, "decay_rate": 0.9, "epsilon": 1e-6},
     torch.optim.RMSprop, {"lr": 0.01, "alpha": 0.9, "eps": 1e-6}),
    (adam, {"learning_rate": 0.02, "beta1": 0.8, "beta2": 0.99, "epsilon": 1e-7},
     torch.optim.Adam, {"lr": 0.02, "betas": (0.8, 0.99), "eps": 1e-7}),
    (adamw, {"learning_rate": 0.02, "weight_decay": 0.3},
     torch.optim.AdamW, {"lr": 0.02, "weight_decay": 0.3}),
]

# The documented defaults, spelled out in torch's terms.
DEFAULTS = [
    (sgd, torch.optim.SGD, {"lr": 1e-2}),
    (sgd_momentum, torch.optim.SGD, {"lr": 1e-2, "momentum": 0.9}),
    (nesterov_momentum, torch.optim.SGD, {"lr": 1e-2, "momentum": 0.9, "nesterov": True}),
    (rmsprop, torch.optim.RMSprop, {"lr": 1e-2, "alpha": 0.99, "eps": 1e-8}),
    (adam, torch.optim.Adam, {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8}),
    (adamw, torch.optim.AdamW, {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8,
                                "weight_decay": 1e-2}),
]


@pytest.mark.parametrize("rule, config, opt_cls, kwargs", CASES, ids=lambda c: getattr(c, "__name__", ""))
def test_trajectory_matches_torch(rule, config, opt_cls, kwargs):
    w0 = np.linspace(-1.5, 2.0, 6)
    ours, _ = run_dlhw(rule, dict(config), w0, 60)
    theirs = run_torch(opt_cls, kwargs, w0, 60)
    assert rel_error(ours, theirs) < 1e-10


@pytest.mark.parametrize("rule, opt_cls, kwargs", DEFAULTS, ids=lambda c: getattr(c, "__name__", ""))
def test_defaults_match_torch(rule, opt_cls, kwargs):
    w0 = np.linspace(-1.0, 1.0, 6)
    w, config = rule(w0, grad_fn(w0))                # config=None: every default filled in
    ours, _ = run_dlhw(rule, config, w, 20)
    theirs = run_torch(opt_cls, kwargs, w0, 21)[1:]
    assert rel_error(ours, theirs) < 1e-10


def test_default_keys():
    w, dw = np.ones(3), np.ones(3)
    assert sgd(w, dw)[1] == {"learning_rate": 1e-2}
    c = sgd_momentum(w, dw)[1]
    assert (c["learning_rate"], c["momentum"]) == (1e-2, 0.9) and c["velocity"].shape == (3,)
    c = nesterov_momentum(w, dw)[1]
    assert (c["learning_rate"], c["momentum"]) == (1e-2, 0.9) and c["velocity"].shape == (3,)
    c = rmsprop(w, dw)[1]
    assert (c["learning_rate"], c["decay_rate"], c["epsilon"]) == (1e-2, 0.99, 1e-8)
    c = adam(w, dw)[1]
    assert (c["learning_rate"], c["beta1"], c["beta2"], c["epsilon"], c["t"]) == (1e-3, 0.9, 0.999, 1e-8, 1)
    c = adamw(w, dw)[1]
    assert (c["learning_rate"], c["weight_decay"], c["t"]) == (1e-3, 1e-2, 1)


def test_given_hyperparameters_are_kept():
    config = {"learning_rate": 0.5, "momentum": 0.1}
    _, out = sgd_momentum(np.ones(2), np.ones(2), config)
    assert out is config and config["learning_rate"] == 0.5 and config["momentum"] == 0.1
    np.testing.assert_allclose(config["velocity"], [-0.5, -0.5])


def test_momentum_formula_by_hand():
    # v = 0.9 * v - lr * dw; w + v, two steps written out.
    w, dw1, dw2 = np.array([1.0, -2.0]), np.array([0.5, 1.0]), np.array([-1.0, 2.0])
    w1, c = sgd_momentum(w, dw1, {"learning_rate": 0.1})
    v1 = -0.1 * dw1
    np.testing.assert_allclose(w1, w + v1, rtol=1e-15)
    w2, c = sgd_momentum(w1, dw2, c)
    v2 = 0.9 * v1 - 0.1 * dw2
    np.testing.assert_allclose(w2, w + v1 + v2, rtol=1e-15)
    np.testing.assert_allclose(c["velocity"], v2, rtol=1e-15)


def test_nesterov_equals_the_notes_look_ahead_form():
    # The notes: look = theta + mu v; v = mu v - lr grad(look); theta = theta + v.
    # nesterov_momentum keeps w = theta + mu v, so its w must track that combination.
    mu, lr = 0.85, 0.04
    theta, v = np.linspace(-1.0, 1.5, 6), np.zeros(6)
    w, config = theta.copy(), {"learning_rate": lr, "momentum": mu}
    for _ in range(50):
        look = theta + mu * v
        v = mu * v - lr * grad_fn(look)
        theta = theta + v
        w, config = nesterov_momentum(w, grad_fn(w), config)
        assert rel_error(w, theta + mu * v) < 1e-10
        assert rel_error(config["velocity"], v) < 1e-10


def test_nesterov_differs_from_momentum():
    w0 = np.linspace(-1.5, 2.0, 6)
    a, _ = run_dlhw(nesterov_momentum, {"learning_rate": 0.03}, w0, 10)
    b, _ = run_dlhw(sgd_momentum, {"learning_rate": 0.03}, w0, 10)
    assert rel_error(a, b) > 1e-3


def test_rmsprop_formula_by_hand():
    w, dw = np.array([1.0, 2.0, -3.0]), np.array([0.1, -4.0, 0.0])
    next_w, c = rmsprop(w, dw, {"learning_rate": 0.01, "decay_rate": 0.9})
    cache = 0.1 * dw ** 2
    np.testing.assert_allclose(c["cache"], cache, rtol=1e-15)
    np.testing.assert_allclose(next_w, w - 0.01 * dw / (np.sqrt(cache) + 1e-8), rtol=1e-15)


def test_adam_formula_by_hand():
    # Written the textbook way, with m_hat and v_hat as arrays.
    rng = np.random.default_rng(1)
    w = rng.standard_normal((3, 4))
    b1, b2, lr, eps = 0.9, 0.999, 1e-2, 1e-8
    m, v, config, ours = np.zeros_like(w), np.zeros_like(w), None, w.copy()
    for t in range(1, 8):
        dw = rng.standard_normal(w.shape)
        m = b1 * m + (1 - b1) * dw
        v = b2 * v + (1 - b2) * dw ** 2
        m_hat, v_hat = m / (1 - b1 ** t), v / (1 - b2 ** t)
        w = w - lr * m_hat / (np.sqrt(v_hat) + eps)
        ours, config = adam(ours, dw, config if config else {"learning_rate": lr})
        assert config["t"] == t
        assert rel_error(ours, w) < 1e-12
        assert rel_error(config["m"], m) < 1e-12 and rel_error(config["v"], v) < 1e-12


def test_adam_first_step_is_lr_times_sign():
    # t is incremented before use: at t = 1, m_hat = dw and v_hat = dw^2 exactly.
    w, dw = np.zeros(4), np.array([3.0, -0.2, 1e-3, -50.0])
    next_w, _ = adam(w, dw, {"learning_rate": 0.1})
    np.testing.assert_allclose(next_w, -0.1 * np.sign(dw), rtol=1e-4)


def test_adam_state_updated_in_place_and_w_untouched():
    w, dw = np.arange(5.0), np.ones(5)
    w_before = w.copy()
    m, v = np.zeros(5), np.zeros(5)
    config = {"m": m, "v": v}
    next_w, out = adam(w, dw, config)
    assert out is config and config["m"] is m and config["v"] is v
    assert next_w is not w and not np.shares_memory(next_w, w)
    np.testing.assert_array_equal(w, w_before)
    np.testing.assert_allclose(m, 0.1 * dw)


def test_adamw_is_decay_then_adam():
    rng = np.random.default_rng(2)
    w, cw, ca = rng.standard_normal(5), {"weight_decay": 0.2}, {}
    wa = w.copy()
    for _ in range(5):
        dw = rng.standard_normal(5)
        w, cw = adamw(w, dw, cw)
        wa, ca = adam(wa * (1 - 1e-3 * 0.2), dw, ca)
    assert rel_error(w, wa) < 1e-14


def test_adamw_without_decay_is_adam():
    rng = np.random.default_rng(3)
    w, dw = rng.standard_normal(7), rng.standard_normal(7)
    np.testing.assert_array_equal(adamw(w, dw, {"weight_decay": 0.0})[0], adam(w, dw)[0])


@settings(max_examples=20, deadline=None)
@given(shape=st.lists(st.integers(1, 4), min_size=0, max_size=3).map(tuple),
       rule_index=st.integers(0, len(RULES) - 1), seed=st.integers(0, 2 ** 16))
def test_shapes_and_no_mutation_of_w(shape, rule_index, seed):
    rule = RULES[rule_index]
    rng = np.random.default_rng(seed)
    w, dw = rng.standard_normal(shape), rng.standard_normal(shape)
    w0, dw0 = w.copy(), dw.copy()
    config = None
    for _ in range(3):
        next_w, config = rule(w, dw, config)
        assert next_w.shape == w.shape and next_w.dtype == np.float64
        np.testing.assert_array_equal(w, w0)
        np.testing.assert_array_equal(dw, dw0)


@settings(max_examples=15, deadline=None)
@given(scale=st.floats(1e-3, 1e3), seed=st.integers(0, 2 ** 16))
def test_adam_and_rmsprop_ignore_gradient_scale(scale, seed):
    # With epsilon = 0 both divide the gradient by its own running RMS.
    rng = np.random.default_rng(seed)
    w, grads = rng.standard_normal(5), rng.standard_normal((4, 5))
    for rule in (adam, rmsprop):
        a, b, ca, cb = w, w, {"epsilon": 0.0}, {"epsilon": 0.0}
        for dw in grads:
            a, ca = rule(a, dw, ca)
            b, cb = rule(b, scale * dw, cb)
        assert rel_error(a, b) < 1e-10


def test_momentum_zero_is_sgd():
    w, dw = np.array([1.0, 2.0]), np.array([0.3, -0.7])
    np.testing.assert_array_equal(sgd_momentum(w, dw, {"momentum": 0.0})[0], sgd(w, dw)[0])


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.__name__)
def test_wrong_gradient_shape(rule):
    with pytest.raises(ValueError, match=rf"{rule.__name__}: dw must have shape \(2, 3\)"):
        rule(np.zeros((2, 3)), np.zeros((3, 2)))


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.__name__)
def test_config_must_be_a_dict(rule):
    with pytest.raises(ValueError, match=f"{rule.__name__}: config must be a dict"):
        rule(np.zeros(2), np.zeros(2), [("learning_rate", 0.1)])


@pytest.mark.parametrize("rule, key", [(sgd_momentum, "velocity"), (nesterov_momentum, "velocity"),
                                       (rmsprop, "cache"), (adam, "m"), (adam, "v")])
def test_state_of_wrong_shape(rule, key):
    with pytest.raises(ValueError, match=rf"{rule.__name__}: config\['{key}'\] must have shape \(3,\)"):
        rule(np.zeros(3), np.zeros(3), {key: np.zeros(4)})


# --- schedules --------------------------------------------------------------------------

def torch_lrs(make_scheduler, lr0, steps):
    p = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([p], lr=lr0)
    sched = make_scheduler(opt)
    lrs = []
    for _ in range(steps):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return np.array(lrs)


@pytest.mark.parametrize("step_size, gamma", [(1, 0.9), (3, 0.5), (7, 0.1)])
def test_step_decay_matches_steplr(step_size, gamma):
    theirs = torch_lrs(lambda o: torch.optim.lr_scheduler.StepLR(o, step_size, gamma), 0.3, 30)
    ours = np.array([step_decay(0.3, t, step_size, gamma) for t in range(30)])
    assert rel_error(ours, theirs) < 1e-12


def test_step_decay_halves():
    assert [step_decay(1.0, t, 2) for t in range(6)] == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]


def test_inverse_time_decay_notes_numbers_and_lambdalr():
    # The notes' example: alpha0 = 0.1, decay rate 1.0 -> 0.1, 0.05, 0.033, 0.025.
    np.testing.assert_allclose([inverse_time_decay(0.1, t, 1.0) for t in range(4)],
                               [0.1, 0.05, 0.1 / 3, 0.025], rtol=1e-15)
    theirs = torch_lrs(lambda o: torch.optim.lr_scheduler.LambdaLR(o, lambda t: 1 / (1 + 0.3 * t)),
                       0.2, 25)
    ours = np.array([inverse_time_decay(0.2, t, 0.3) for t in range(25)])
    assert rel_error(ours, theirs) < 1e-12
    # It is the notes' a / (b + t) with a = lr0 / k, b = 1 / k.
    assert inverse_time_decay(0.2, 17, 0.3) == pytest.approx((0.2 / 0.3) / (1 / 0.3 + 17), rel=1e-14)


def test_warmup_schedule_matches_the_paper_formula():
    d, warm = 512, 40

    def paper(t):
        return 0.0 if t == 0 else d ** -0.5 * min(t ** -0.5, t * warm ** -1.5)

    theirs = torch_lrs(lambda o: torch.optim.lr_scheduler.LambdaLR(o, paper), 1.0, 200)
    ours = np.array([warmup_schedule(t, d, warm) for t in range(200)])
    assert rel_error(ours, theirs) < 1e-12
    assert warmup_schedule(0, d, warm) == 0.0
    # Peak at t = warmup_steps: (d * warmup)^-0.5; 4000 steps at d = 512 give about 7.0e-4.
    assert int(np.argmax(ours)) == warm
    assert warmup_schedule(4000, 512) == pytest.approx((512 * 4000) ** -0.5, rel=1e-14)
    assert warmup_schedule(4000, 512) == pytest.approx(6.988e-4, rel=1e-3)
    # Linear before, 1 / sqrt(t) after.
    assert warmup_schedule(10, d, warm) * 2 == pytest.approx(warmup_schedule(20, d, warm), rel=1e-14)
    assert warmup_schedule(400, d, warm) * 2 == pytest.approx(warmup_schedule(100, d, warm), rel=1e-14)


@pytest.mark.parametrize("start_factor", [0.25, 1.0 / 3, 1.0])
def test_linear_warmup_matches_linearlr(start_factor):
    theirs = torch_lrs(lambda o: torch.optim.lr_scheduler.LinearLR(
        o, start_factor=start_factor, end_factor=1.0, total_iters=10), 0.5, 25)
    ours = np.array([linear_warmup(0.5, t, 10, start_factor) for t in range(25)])
    assert rel_error(ours, theirs) < 1e-12


def test_linear_warmup_from_zero():
    assert [linear_warmup(1.0, t, 4) for t in range(6)] == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]


def test_schedule_arguments_checked():
    with pytest.raises(ValueError, match="step_decay: step_size"):
        step_decay(0.1, 3, 0)
    with pytest.raises(ValueError, match="step_decay: t must be >= 0"):
        step_decay(0.1, -1, 2)
    with pytest.raises(ValueError, match="inverse_time_decay: t must be >= 0"):
        inverse_time_decay(0.1, -2)
    with pytest.raises(ValueError, match="warmup_schedule: d_model and warmup_steps"):
        warmup_schedule(3, 512, 0)
    with pytest.raises(ValueError, match="linear_warmup: warmup_steps"):
        linear_warmup(0.1, 3, 0)
    with pytest.raises(ValueError, match="linear_warmup: start_factor"):
        linear_warmup(0.1, 3, 5, start_factor=1.5)
