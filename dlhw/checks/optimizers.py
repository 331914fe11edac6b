"""Checks of optimizers (assignment 04): update rules and learning-rate schedules.

Oracles, all independent of dlhw's reference:

* update rules: ``torch.optim`` in float64 (``SGD`` with and without momentum and Nesterov,
  ``RMSprop``, ``Adam``, ``AdamW``) run on the same problem. The probe runs the student's rule
  for several steps on a smooth, separable, strongly convex objective whose gradient depends on
  where it is taken (an ill-conditioned quadratic plus a small sine term), feeding it the
  gradient at its own iterate and passing back the config it returned; the judge runs the torch
  optimizer from the same start and compares the whole trajectory of w and the state kept in
  config after every step. Conventions that differ from torch are converted, never assumed:

  - momentum: our velocity is v = momentum * v - lr * dw, stepped as w + v; torch keeps the
    buffer b = momentum * b + dw and steps w - lr * b, so v = -lr * b (a given initial velocity
    v0 becomes torch's buffer -v0 / lr);
  - Nesterov: w is the look-ahead point; torch's ``SGD(nesterov=True)`` computes the same
    iterates with the same buffer, so again v = -lr * b;
  - RMSprop: cache is torch's ``square_avg``, decay_rate its ``alpha``;
  - Adam / AdamW: m, v, t are torch's ``exp_avg``, ``exp_avg_sq``, ``step``.

  Each rule is run three ways: from a config holding the hyperparameters only, from
  ``config=None`` (the documented defaults, stated here explicitly and given to torch), and
  from a config that already holds state (a velocity, a cache, m, v and t > 0), which checks
  that the rule resumes from the state it is handed. For the adaptive rules a third of the
  coordinates get gradients of size 1e-7 to 1e-4, where sqrt(v) is comparable to epsilon: that
  is where epsilon inside the square root (sqrt(v + eps)) differs from PyTorch's
  sqrt(v) + eps by a factor of 10 or more.

  Tolerance 1e-8, relative to the largest entry of the trajectory: float64 arithmetic done in
  another order differs by about 1e-15 per step, and the objective is contracting, so over at
  most 50 steps the trajectories of two correct implementations stay below 1e-12 apart; every
  slip in a formula (a sign, a missing bias correction, epsilon in the root, a decay rate
  swapped, weight decay through the gradient) moves them 1e-5 or more.

* schedules: ``torch.optim.lr_scheduler.StepLR`` and ``LambdaLR`` (with the notes' formulas
  a / (b + t) and d_model^-0.5 min(t^-0.5, t warmup^-1.5)), stepped t times; tolerance 1e-12.
"""
from __future__ import annotations

import numpy as np

from dlhw.checks.core import Case, Cases, CheckFailed, call, compare, fail, register
from dlhw.checks.helpers import torch as _torch

TOL = 1e-8

# The documented defaults of the graded API (api.md), given to torch explicitly: torch's own
# defaults differ for some (SGD's lr is 1e-3 there).
DEFAULTS = {
    "sgd": {"learning_rate": 1e-2},
    "sgd_momentum": {"learning_rate": 1e-2, "momentum": 0.9},
    "nesterov_momentum": {"learning_rate": 1e-2, "momentum": 0.9},
    "rmsprop": {"learning_rate": 1e-2, "decay_rate": 0.99, "epsilon": 1e-8},
    "adam": {"learning_rate": 1e-3, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8},
    "adamw": {"learning_rate": 1e-3, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8,
              "weight_decay": 1e-2},
}
STATE_KEYS = {"sgd": (), "sgd_momentum": ("velocity",), "nesterov_momentum": ("velocity",),
              "rmsprop": ("cache",), "adam": ("m", "v", "t"), "adamw": ("m", "v", "t")}
ADAPTIVE = ("rmsprop", "adam", "adamw")

HINTS = {
    "sgd": "next_w = w - learning_rate * dw",
    "sgd_momentum": "v = momentum * v - learning_rate * dw, then next_w = w + v, with v kept in "
                    "config['velocity'] for the next call",
    "nesterov_momentum": "v_prev = v (a copy: v changes in place), v = momentum * v - learning_rate * dw, "
                         "next_w = w - momentum * v_prev + (1 + momentum) * v; plain momentum (w + v) "
                         "or v_prev aliasing the updated v gives the wrong iterates",
    "rmsprop": "cache = decay_rate * cache + (1 - decay_rate) * dw**2, then "
               "next_w = w - learning_rate * dw / (sqrt(cache) + epsilon), epsilon outside the root",
    "adam": "t += 1 first; m = beta1 m + (1 - beta1) dw; v = beta2 v + (1 - beta2) dw**2; "
            "m_hat = m / (1 - beta1**t), v_hat = v / (1 - beta2**t); "
            "next_w = w - learning_rate * m_hat / (sqrt(v_hat) + epsilon), epsilon outside the root",
    "adamw": "first shrink the weights, w * (1 - learning_rate * weight_decay), then one adam step "
             "with the unchanged gradient dw (weight_decay * w is NOT added to the gradient: that "
             "is L2 regularization, which Adam then divides by sqrt(v_hat))",
}
STATE_HINTS = {
    "velocity": "config['velocity'] must hold v = momentum * v - learning_rate * dw after every call "
                "(PyTorch's buffer b = momentum * b + dw is -v / learning_rate)",
    "cache": "config['cache'] must hold decay_rate * cache + (1 - decay_rate) * dw**2 after every call",
    "m": "config['m'] = beta1 * m + (1 - beta1) * dw, without bias correction (the corrected m_hat is "
         "only used for the step)",
    "v": "config['v'] = beta2 * v + (1 - beta2) * dw**2, without bias correction",
    "t": "config['t'] counts the steps taken: it grows by 1 on every call, starting from the t in config "
         "(0 by default)",
}


def _fmt(config: dict) -> str:
    return ", ".join(f"{k}={v:.4g}" for k, v in config.items() if not isinstance(v, np.ndarray))


# =========================================================================== the problem
def _grad(prob: dict, w: np.ndarray) -> np.ndarray:
    """Gradient of sum(scale * (curv (w - c)^2 / 2 - 0.15 cos(2 w))) at w (a fresh array)."""
    w = np.asarray(w, dtype=np.float64)
    return prob["scale"] * (prob["curv"] * (w - prob["center"]) + 0.3 * np.sin(2.0 * w))


def _problem(rng, shape, adaptive: bool) -> dict:
    # curvature 0.7 .. 10 (ill-conditioned, and above the sine's 0.6: strongly convex per entry)
    prob = {"w0": 1.5 * rng.standard_normal(shape), "center": rng.standard_normal(shape),
            "curv": 10.0 ** rng.uniform(-0.15, 1.0, shape), "scale": np.ones(shape)}
    if adaptive:
        # a third of the entries (at least one) with gradients of 1e-7 .. 1e-4: sqrt(v) near epsilon
        n = int(np.prod(shape))
        tiny = rng.permutation(n)[:max(1, n // 3)]
        prob["scale"].reshape(-1)[tiny] = 10.0 ** rng.uniform(-7, -4, size=tiny.size)
    return prob


def _hyper(name: str, rng, hidden: bool) -> dict:
    if not hidden:
        return {"sgd": {"learning_rate": 0.05},
                "sgd_momentum": {"learning_rate": 0.03, "momentum": 0.8},
                "nesterov_momentum": {"learning_rate": 0.03, "momentum": 0.8},
                "rmsprop": {"learning_rate": 0.01, "decay_rate": 0.9, "epsilon": 1e-8},
                "adam": {"learning_rate": 0.02, "beta1": 0.8, "beta2": 0.99, "epsilon": 1e-8},
                "adamw": {"learning_rate": 0.02, "weight_decay": 0.3, "beta1": 0.9, "beta2": 0.999,
                          "epsilon": 1e-8}}[name]
    u = lambda a, b: float(rng.uniform(a, b))           # noqa: E731
    if name == "sgd":
        return {"learning_rate": u(0.005, 0.12)}
    if name in ("sgd_momentum", "nesterov_momentum"):
        return {"learning_rate": u(0.003, 0.05), "momentum": u(0.5, 0.95)}
    if name == "rmsprop":
        return {"learning_rate": u(0.001, 0.02), "decay_rate": u(0.8, 0.999),
                "epsilon": float(rng.choice([1e-8, 1e-7, 1e-6]))}
    cfg = {"learning_rate": u(0.002, 0.05), "beta1": u(0.5, 0.95), "beta2": u(0.9, 0.9999),
           "epsilon": float(rng.choice([1e-8, 1e-7, 1e-6]))}
    if name == "adamw":
        cfg["weight_decay"] = u(0.05, 0.5)
    return cfg


def _initial_state(name: str, prob: dict, hyper: dict, rng, hidden: bool) -> dict:
    """A state to resume from, as a rule would have left it after some earlier steps."""
    shape = prob["w0"].shape
    g = prob["scale"] * rng.standard_normal(shape)      # gradient-sized numbers
    if name in ("sgd_momentum", "nesterov_momentum"):
        return {"velocity": hyper["learning_rate"] * g}
    if name == "rmsprop":
        return {"cache": (prob["scale"] * rng.uniform(0.2, 2.0, shape)) ** 2}
    if name in ("adam", "adamw"):
        t0 = int(rng.choice([1, 2, 5, 40, 1000])) if hidden else 3
        return {"m": 0.5 * g, "v": (prob["scale"] * rng.uniform(0.2, 2.0, shape)) ** 2, "t": t0}
    return {}


def _rule_make(name: str, shape, t0=None, fixed=False):
    """One case of an update rule: w of ``shape`` (a tuple of sizes to draw: 0 draws 1 to 5),
    Adam's state resumed at step ``t0``; ``fixed``: the notebook's hyperparameters and 10 steps."""
    def make(rng):
        sizes = tuple(int(rng.integers(2, 6)) if s == 0 else s for s in shape)
        prob = _problem(rng, sizes, name in ADAPTIVE)
        hyper = _hyper(name, rng, not fixed)
        state0 = _initial_state(name, prob, hyper, rng, False)
        if "t" in state0 and t0 is not None:
            state0["t"] = t0
        return {"prob": prob, "hyper": hyper, "state0": state0,
                "steps": 10 if fixed else int(rng.integers(20, 51)),
                "default_steps": 5 if fixed else int(rng.integers(5, 21))}
    return make


def _rule_properties(inp):
    w = inp["prob"]["w0"]
    props = {f"{w.ndim}-D w"}
    t = inp["state0"].get("t")
    if t is not None:
        props.add("resumed at t = 1" if t == 1 else ("resumed at a large t" if t >= 100 else "resumed at a small t"))
    return props


def _rule_inputs(name: str):
    # visible and hidden alike (hidden ones draw other sizes and hyperparameters): w of 1, 2 and
    # 3 axes, and for Adam a state resumed at t = 1, a small t and a large t
    adam = name in ("adam", "adamw")
    t = (lambda label: {label}) if adam else (lambda label: set())
    return Cases([
        Case("(3, 4), the notebook's hyperparameters", {"2-D w"} | t("resumed at a small t"),
             _rule_make(name, (3, 4), t0=3, fixed=True)),
        Case("1-D w", {"1-D w"} | t("resumed at t = 1"), _rule_make(name, (0,), t0=1)),
        Case("3-D w", {"3-D w"} | t("resumed at a large t"), _rule_make(name, (0, 0, 0), t0=1000)),
    ], measure=_rule_properties)


# =========================================================================== probing
def _run_student(fn, name: str, prob: dict, config, steps: int, record_state: bool):
    """Run the rule ``steps`` times; returns the path of w (steps + 1, S...) and the states."""
    keys = STATE_KEYS[name]
    w = np.array(prob["w0"], dtype=np.float64)
    path, states, problem = [w.copy()], {k: [] for k in keys}, ""
    first_config = None
    for step in range(steps):
        dw = _grad(prob, w)
        if config is None:
            result = call(fn, name, w.copy(), dw, returns=2)   # rule(w, dw): config left out
        else:
            result = call(fn, name, w.copy(), dw, config, returns=2)
        next_w, config = result
        if not isinstance(config, dict):
            raise CheckFailed(f"{name} must return (next_w, config) with config a dict (the one to pass to "
                              f"the next call); it returned a {type(config).__name__} as config")
        try:
            next_w = np.array(next_w, dtype=np.float64)
        except (TypeError, ValueError):
            raise CheckFailed(f"{name}'s next_w should be a numpy array of numbers; got "
                              f"{type(next_w).__name__}") from None
        if next_w.shape != w.shape:
            raise CheckFailed(f"{name} returned next_w of shape {next_w.shape}; expected {w.shape}, the shape of w")
        if step == 0:
            first_config = {k: float(v) for k, v in config.items()
                            if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)}
        if record_state and not problem:
            for k in keys:
                if k not in config:
                    problem = (f"after call {step + 1} config has no key {k!r} (it has {sorted(config)}): "
                               f"the rule must keep its state in config")
                    break
                try:
                    value = np.array(config[k], dtype=np.float64)
                except (TypeError, ValueError):
                    problem = f"config[{k!r}] after call {step + 1} is a {type(config[k]).__name__}, not numbers"
                    break
                want = () if k == "t" else w.shape
                if value.shape != want:
                    problem = (f"config[{k!r}] after call {step + 1} has shape {value.shape}; expected "
                               f"{want if want else 'a single number'}")
                    break
                states[k].append(value)
        w = next_w
        path.append(w.copy())
    out = {"path": np.array(path), "first_config": first_config or {}}
    if record_state:
        out["state_problem"] = problem
        if not problem:
            out["states"] = {k: np.array(v) for k, v in states.items()}
    return out


def _rule_probe(name: str, state: bool):
    def probe(fns, inp):
        out = {}
        given = _run_student(fns[0], name, inp["prob"], {k: v for k, v in inp["hyper"].items()},
                             inp["steps"], record_state=state)
        out["given"] = given
        if state:
            config = dict(inp["hyper"])
            config.update({k: np.array(v, dtype=np.float64) if isinstance(v, np.ndarray) else v
                           for k, v in inp["state0"].items()})
            out["resumed"] = _run_student(fns[0], name, inp["prob"], config, inp["steps"], record_state=True)
        else:
            out["default"] = _run_student(fns[0], name, inp["prob"], None, inp["default_steps"],
                                          record_state=False)
        return out
    return probe


# =========================================================================== the torch oracle
def _torch_optimizer(name: str, param, hyper: dict):
    torch = _torch()
    h = dict(DEFAULTS[name], **hyper)
    lr = h["learning_rate"]
    if name == "sgd":
        return torch.optim.SGD([param], lr=lr)
    if name in ("sgd_momentum", "nesterov_momentum"):
        return torch.optim.SGD([param], lr=lr, momentum=h["momentum"], nesterov=name == "nesterov_momentum")
    if name == "rmsprop":
        return torch.optim.RMSprop([param], lr=lr, alpha=h["decay_rate"], eps=h["epsilon"])
    cls = torch.optim.Adam if name == "adam" else torch.optim.AdamW
    kw = {"weight_decay": h["weight_decay"]} if name == "adamw" else {}
    return cls([param], lr=lr, betas=(h["beta1"], h["beta2"]), eps=h["epsilon"], **kw)


def _torch_run(name: str, prob: dict, hyper: dict, state0: dict, steps: int):
    """The torch trajectory (steps + 1, S...) and the state in our convention after each step."""
    torch = _torch()
    h = dict(DEFAULTS[name], **hyper)
    p = torch.tensor(np.array(prob["w0"], dtype=np.float64), requires_grad=True)
    opt = _torch_optimizer(name, p, hyper)
    if state0:
        st = opt.state[p]
        if name in ("sgd_momentum", "nesterov_momentum"):
            st["momentum_buffer"] = torch.tensor(-np.asarray(state0["velocity"]) / h["learning_rate"])
        elif name == "rmsprop":
            st["step"] = torch.tensor(0.0)
            st["square_avg"] = torch.tensor(np.array(state0["cache"], dtype=np.float64))
        else:
            st["step"] = torch.tensor(float(state0["t"]))
            st["exp_avg"] = torch.tensor(np.array(state0["m"], dtype=np.float64))
            st["exp_avg_sq"] = torch.tensor(np.array(state0["v"], dtype=np.float64))
    path = [np.array(prob["w0"], dtype=np.float64)]
    states = {k: [] for k in STATE_KEYS[name]}
    for _ in range(steps):
        p.grad = torch.from_numpy(_grad(prob, p.detach().numpy().copy()))
        opt.step()
        path.append(p.detach().numpy().copy())
        st = opt.state[p]
        if name in ("sgd_momentum", "nesterov_momentum"):
            states["velocity"].append(-h["learning_rate"] * st["momentum_buffer"].numpy())
        elif name == "rmsprop":
            states["cache"].append(st["square_avg"].numpy().copy())
        elif name in ("adam", "adamw"):
            states["m"].append(st["exp_avg"].numpy().copy())
            states["v"].append(st["exp_avg_sq"].numpy().copy())
            states["t"].append(float(st["step"]))
    return np.array(path), {k: np.array(v) for k, v in states.items()}


# =========================================================================== judging
def _compare_path(name: str, run: str, got: np.ndarray, expected: np.ndarray, hint: str) -> float:
    """Compare step by step, so that the message names the first step that goes wrong."""
    got = np.asarray(got, dtype=np.float64)
    if got.shape != expected.shape:
        fail(f"{name}: the trajectory {run} has shape {got.shape}; expected {expected.shape}")
    scale = max(float(np.max(np.abs(expected))), 1e-8)
    for k in range(1, len(expected)):
        compare(f"w after step {k} of {len(expected) - 1} {run}", got[k], expected[k],
                tol=TOL * scale / max(float(np.max(np.abs(expected[k]))), 1e-8), hint=hint, oracle="PyTorch")
    return float(np.max(np.abs(got - expected))) / scale


def _check_defaults(name: str, first_config: dict) -> None:
    for key, value in DEFAULTS[name].items():
        if key not in first_config:
            fail(f"{name}(w, dw) with config=None returned a config without {key!r}: fill in every default "
                 f"(config.setdefault({key!r}, {value:g}))")
        if not np.isclose(first_config[key], value, rtol=1e-12, atol=0):
            fail(f"{name}(w, dw) with config=None set config[{key!r}] = {first_config[key]:.6g}; the documented "
                 f"default is {value:g}")


T_OFF_BY_ONE = ("the first step used t = 2: check t first. t counts the steps taken (0 when config has "
                "none), and grows by 1 before it is used, so the first step has t = 1")


def _path_or_t_slip(name: str, run: str, got, expected, hint: str, prob: dict, hyper: dict, steps: int) -> float:
    """_compare_path; for Adam, a wrong path that is Adam started from t = 1 says so (not its m formula)."""
    try:
        return _compare_path(name, run, got, expected, hint)
    except CheckFailed as exc:
        if name not in ("adam", "adamw"):
            raise
        zeros = np.zeros_like(np.asarray(prob["w0"], dtype=np.float64))
        shifted, _ = _torch_run(name, prob, hyper, {"t": 1, "m": zeros, "v": zeros.copy()}, steps)
        got = np.asarray(got, dtype=np.float64)
        scale = max(float(np.max(np.abs(shifted))), 1e-8)
        if got.shape != shifted.shape or not float(np.max(np.abs(got - shifted))) <= TOL * scale:
            raise
        raise CheckFailed(f"{str(exc).split('. Hint: ')[0]}. Yours is Adam started from t = 1: "
                          f"{T_OFF_BY_ONE}") from None


def _rule_judge(name: str):
    def judge(inp, out):
        prob, hyper = inp["prob"], inp["hyper"]
        hint = HINTS[name]
        exp_given, _ = _torch_run(name, prob, hyper, {}, inp["steps"])
        run = f"from config = {{{_fmt(hyper)}}}"
        err1 = _path_or_t_slip(name, run, out["given"]["path"], exp_given, hint, prob, hyper, inp["steps"])
        _check_defaults(name, out["default"]["first_config"])
        exp_default, _ = _torch_run(name, prob, {}, {}, inp["default_steps"])
        err2 = _path_or_t_slip(name, f"from config=None (the defaults {_fmt(DEFAULTS[name])})",
                               out["default"]["path"], exp_default, hint, prob, {}, inp["default_steps"])
        return (f"{inp['steps']} steps match torch.optim, and {inp['default_steps']} from config=None "
                f"(relative error {max(err1, err2):.1e} <= {TOL:.0e})")
    return judge


def _compare_states(name: str, run: str, got: dict, expected: dict) -> float:
    worst = 0.0
    # t first: a t that is off changes every later m and v, and the message must name t
    for key in sorted(STATE_KEYS[name], key=lambda k: k != "t"):
        g, e = np.asarray(got[key], dtype=np.float64), expected[key]
        if g.shape != e.shape:
            fail(f"{name}: config[{key!r}] over the steps {run} has shape {g.shape}; expected {e.shape}")
        if key == "t":
            bad = np.nonzero(g != e)[0]
            if bad.size:
                k = int(bad[0])
                if k == 0 and e[0] == 1 and g[0] == 2:
                    fail(f"config['t'] after call 1 {run} is 2; expected 1: {T_OFF_BY_ONE}")
                fail(f"config['t'] after call {k + 1} {run} is {g[k]:g}; expected {e[k]:g}. "
                     f"Hint: {STATE_HINTS['t']}")
            continue
        # relative to the largest entry of the state over the whole run, as the module says: a
        # velocity that has decayed near zero by call 37 would otherwise turn 1e-15 of rounding
        # into a relative error above the tolerance (seen on CI for a correct nesterov_momentum)
        scale = max(float(np.max(np.abs(e))), 1e-8)
        for k in range(len(e)):
            worst = max(worst, compare(f"config[{key!r}] after call {k + 1} of {len(e)} {run}", g[k], e[k],
                                       tol=TOL * scale / max(float(np.max(np.abs(e[k]))), 1e-8),
                                       hint=STATE_HINTS[key], oracle="PyTorch"))
    return worst


def _state_judge(name: str):
    def judge(inp, out):
        prob, hyper, state0 = inp["prob"], inp["hyper"], inp["state0"]
        worst = 0.0
        for run_key, start in (("given", {}), ("resumed", state0)):
            res = out[run_key]
            run = (f"from config = {{{_fmt(hyper)}}}" if not start else
                   f"from config = {{{_fmt(hyper)}}} with a state already in it ("
                   + ", ".join(f"{k}={v}" if not isinstance(v, np.ndarray) else k for k, v in start.items())
                   + ")")
            if res["state_problem"]:
                fail(f"{name} {run}: {res['state_problem']}")
            exp_path, exp_states = _torch_run(name, prob, hyper, start, inp["steps"])
            worst = max(worst, _compare_states(name, run, res["states"], exp_states))
            if start:   # resuming: the iterates must continue from the state handed in
                worst = max(worst, _compare_path(
                    name, run, res["path"], exp_path,
                    HINTS[name] + "; use the state found in config (never reset it when it is there)"))
        keys = ", ".join(STATE_KEYS[name])
        return (f"the state ({keys}) matches torch.optim after every step, also when resuming from a given "
                f"state (relative error {worst:.1e} <= {TOL:.0e})")
    return judge


for _name in DEFAULTS:
    register(_name, (_name,), _rule_inputs(_name), _rule_probe(_name, state=False), _rule_judge(_name),
             doc=f"{_name}: trajectories against torch.optim, from given hyperparameters and from config=None")
    if STATE_KEYS[_name] and _name != "adamw":
        register(f"{_name}.state", (_name,), _rule_inputs(_name), _rule_probe(_name, state=True),
                 _state_judge(_name),
                 doc=f"{_name}: the state in config against torch.optim's, and resuming from a given state")


# =========================================================================== schedules
def _torch_lrs(make_scheduler, lr0: float, steps: int) -> np.ndarray:
    torch = _torch()
    p = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([p], lr=lr0)
    sched = make_scheduler(opt)
    lrs = []
    for _ in range(steps):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return np.array(lrs)


def _schedule_probe(fname: str, args_of):
    def probe(fns, inp):
        values = []
        for t in inp["ts"]:
            t = int(t)
            try:
                v = call(fns[0], fname, *args_of(inp, t))
            except ZeroDivisionError:
                raise CheckFailed(f"{fname} raised ZeroDivisionError at t = {t}"
                                  + (" (t = 0 must give 0, the limit of the formula: 0 ** -0.5 divides by zero, "
                                     "so treat the warm-up branch first)" if t == 0 else "")) from None
            try:
                values.append(float(v))
            except (TypeError, ValueError):
                raise CheckFailed(f"{fname} must return a number (the learning rate); got "
                                  f"{type(v).__name__} at t = {t}") from None
        return {"lr": np.array(values)}
    return probe


def _schedule_judge(fname: str, what: str, oracle_of, hint: str):
    def judge(inp, out):
        expected = oracle_of(inp)
        got = np.asarray(out["lr"], dtype=np.float64)
        ts = [int(t) for t in inp["ts"]]
        for i, t in enumerate(ts):
            e = expected[i]
            if not (np.isfinite(got[i]) and abs(got[i] - e) <= 1e-12 * max(abs(e), 1e-300)):
                fail(f"{fname}({what(inp, t)}) is {got[i]:.10g}; PyTorch's scheduler gives {e:.10g}. "
                     f"Hint: {hint}")
        return f"{len(ts)} learning rates match PyTorch's scheduler (relative error <= 1e-12)"
    return judge


# step decay ---------------------------------------------------------------------------------
def _step_make(step_size=None):
    def make(rng):
        k = int(rng.integers(2, 12)) if step_size is None else step_size
        T = int(rng.integers(3 * k, 8 * k + 2))
        return {"lr0": float(10 ** rng.uniform(-3, 0)), "step_size": k,
                "gamma": float(rng.uniform(0.05, 0.95)), "ts": list(range(0, T))}
    return make


# visible and hidden alike: the notes' example, other step sizes, step_size 1
_step_inputs = Cases([
    Case("the notes' example", {"step_size > 1"},
         lambda rng: {"lr0": 0.1, "step_size": 3, "gamma": 0.5, "ts": list(range(0, 20))}),
    Case("another step size", {"step_size > 1"}, _step_make()),
    Case("step_size 1", {"step_size 1"}, _step_make(1)),
], measure=lambda i: {"step_size 1" if i["step_size"] == 1 else "step_size > 1"})


def _step_oracle(inp):
    torch = _torch()
    lrs = _torch_lrs(lambda o: torch.optim.lr_scheduler.StepLR(o, inp["step_size"], inp["gamma"]),
                     inp["lr0"], max(inp["ts"]) + 1)
    return lrs[[int(t) for t in inp["ts"]]]


register("step_decay", ("step_decay",), _step_inputs,
         _schedule_probe("step_decay", lambda i, t: (i["lr0"], t, i["step_size"], i["gamma"])),
         _schedule_judge("step_decay",
                         lambda i, t: f"{i['lr0']:.4g}, t={t}, step_size={i['step_size']}, gamma={i['gamma']:.4g}",
                         _step_oracle,
                         "lr0 * gamma ** (t // step_size): the rate drops at t = step_size, 2 step_size, ... "
                         "(integer division; t = 0 .. step_size - 1 keep lr0)"),
         doc="step_decay against torch's StepLR")


# inverse-time decay -------------------------------------------------------------------------
def _inv_make(zero):
    def make(rng):
        return {"lr0": float(10 ** rng.uniform(-3, 0)), "decay_rate": 0.0 if zero else float(rng.uniform(0.01, 3.0)),
                "ts": list(range(0, int(rng.integers(5, 60))))}
    return make


# visible and hidden alike: the notes' example (0.1, 0.05, 0.033, 0.025, ...), others, no decay
_inv_inputs = Cases([
    Case("the notes' example", {"decay_rate > 0"}, lambda rng: {"lr0": 0.1, "decay_rate": 1.0, "ts": list(range(0, 12))}),
    Case("another decay rate", {"decay_rate > 0"}, _inv_make(False)),
    Case("decay_rate 0", {"decay_rate 0"}, _inv_make(True)),
], measure=lambda i: {"decay_rate 0" if i["decay_rate"] == 0 else "decay_rate > 0"})


def _inv_oracle(inp):
    torch = _torch()
    k = inp["decay_rate"]
    lrs = _torch_lrs(lambda o: torch.optim.lr_scheduler.LambdaLR(o, lambda t: 1.0 / (1.0 + k * t)),
                     inp["lr0"], max(inp["ts"]) + 1)
    return lrs[[int(t) for t in inp["ts"]]]


register("inverse_time_decay", ("inverse_time_decay",), _inv_inputs,
         _schedule_probe("inverse_time_decay", lambda i, t: (i["lr0"], t, i["decay_rate"])),
         _schedule_judge("inverse_time_decay", lambda i, t: f"{i['lr0']:.4g}, t={t}, decay_rate={i['decay_rate']:.4g}",
                         _inv_oracle,
                         "lr0 / (1 + decay_rate * t): with lr0 = 0.1 and decay_rate = 1 the rates are "
                         "0.1, 0.05, 0.0333, 0.025 (the notes' example)"),
         doc="inverse_time_decay against LambdaLR with 1 / (1 + k t)")


# transformer warm-up --------------------------------------------------------------------------
def _warm_make(warm_of):
    def make(rng):
        warm = warm_of(rng)
        T = int(rng.integers(warm + 2, 3 * warm + 20))
        ts = sorted({0, 1, warm - 1, warm, warm + 1, T - 1} | {int(x) for x in rng.integers(0, T, size=25)})
        return {"d_model": int(rng.choice([16, 128, 512, 1024])), "warmup_steps": warm,
                "ts": [t for t in ts if t >= 0]}
    return make


def _warm_properties(inp):
    w = inp["warmup_steps"]
    return {"warmup_steps 1" if w == 1 else ("warmup_steps 2" if w == 2 else "warmup_steps > 2")}


# visible and hidden alike: the notebook's case, warm-ups of 1 and 2 steps, short and long ones
_warm_inputs = Cases([
    Case("d_model 64, 10 warm-up steps", {"warmup_steps > 2"},
         lambda rng: {"d_model": 64, "warmup_steps": 10, "ts": list(range(0, 41))}),
    Case("one warm-up step", {"warmup_steps 1"}, _warm_make(lambda rng: 1)),
    Case("two warm-up steps", {"warmup_steps 2"}, _warm_make(lambda rng: 2)),
    Case("a short warm-up", {"warmup_steps > 2"}, _warm_make(lambda rng: int(rng.integers(3, 200)))),
    Case("a long warm-up", {"warmup_steps > 2"}, _warm_make(lambda rng: int(rng.integers(200, 1500)))),
], measure=_warm_properties)


def _warm_oracle(inp):
    torch = _torch()
    d, w = inp["d_model"], inp["warmup_steps"]

    def paper(t):    # "Attention is all you need", eq. (3); 0 at t = 0 (its limit)
        return 0.0 if t == 0 else d ** -0.5 * min(t ** -0.5, t * w ** -1.5)

    lrs = _torch_lrs(lambda o: torch.optim.lr_scheduler.LambdaLR(o, paper), 1.0, max(inp["ts"]) + 1)
    return lrs[[int(t) for t in inp["ts"]]]


register("warmup_schedule", ("warmup_schedule",), _warm_inputs,
         _schedule_probe("warmup_schedule", lambda i, t: (t, i["d_model"], i["warmup_steps"])),
         _schedule_judge("warmup_schedule",
                         lambda i, t: f"t={t}, d_model={i['d_model']}, warmup_steps={i['warmup_steps']}",
                         _warm_oracle,
                         "d_model**-0.5 * min(t**-0.5, t * warmup_steps**-1.5): linear growth up to "
                         "t = warmup_steps, then 1 / sqrt(t); t = 0 gives 0"),
         doc="warmup_schedule against LambdaLR with the transformer paper's formula")
