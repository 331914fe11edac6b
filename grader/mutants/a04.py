"""Assignment 04: slips students make in update rules and schedules, and correct variants."""
from grader.mutants import Mutant

WRONG = [
    Mutant("sgd", "steps up the gradient", replace=[("w - config", "w + config")],
           fails=["test_sgd"]),
    Mutant("sgd", "hard-codes the learning rate instead of reading config",
           replace=[('config["learning_rate"] * dw', "1e-2 * dw")], fails=["test_sgd"]),
    Mutant("sgd_momentum", "momentum sign: v = momentum * v + lr * dw, still w + v (climbs)",
           replace=[('v -= config["learning_rate"] * dw', 'v += config["learning_rate"] * dw')],
           fails=["test_sgd_momentum", "test_sgd_momentum_state"]),
    Mutant("sgd_momentum", "velocity not stored in config (a new local array every call)",
           replace=[('v *= config["momentum"]                      # in place: the state lives in config\n'
                     '    v -= config["learning_rate"] * dw',
                     'v = config["momentum"] * v - config["learning_rate"] * dw')],
           fails=["test_sgd_momentum", "test_sgd_momentum_state"]),
    Mutant("sgd_momentum", "keeps PyTorch's buffer b = mu b + dw in config['velocity'] "
                           "(right iterates, wrong state)",
           replace=[('v *= config["momentum"]                      # in place: the state lives in config\n'
                     '    v -= config["learning_rate"] * dw\n'
                     '    next_w = w + v',
                     'v *= config["momentum"]\n'
                     '    v += dw\n'
                     '    next_w = w - config["learning_rate"] * v')],
           fails=["test_sgd_momentum_state"]),
    Mutant("sgd_momentum", "resets the velocity on every call",
           replace=[('    state_array("sgd_momentum", config, "velocity", w)',
                     '    config["velocity"] = np.zeros_like(w)')],
           fails=["test_sgd_momentum", "test_sgd_momentum_state"]),
    Mutant("nesterov_momentum", "Nesterov = plain momentum (w + v)",
           replace=[("next_w = w - mu * v_prev + (1 + mu) * v", "next_w = w + v")],
           fails=["test_nesterov_momentum", "test_nesterov_momentum_state"]),
    Mutant("nesterov_momentum", "v_prev aliases v (no copy), so the look-ahead cancels",
           replace=[("v_prev = v.copy()", "v_prev = v")],
           fails=["test_nesterov_momentum"]),
    Mutant("nesterov_momentum", "look-ahead with the wrong weights: w + mu * v_prev + (1 - mu) * v",
           replace=[("next_w = w - mu * v_prev + (1 + mu) * v", "next_w = w + mu * v_prev + (1 - mu) * v")],
           fails=["test_nesterov_momentum"]),
    Mutant("rmsprop", "decay rate swapped: cache = (1 - rho) cache + rho dw^2",
           replace=[("cache *= rho\n    cache += (1 - rho) * dw * dw", "cache *= 1 - rho\n    cache += rho * dw * dw")],
           fails=["test_rmsprop", "test_rmsprop_state"]),
    Mutant("rmsprop", "epsilon inside the square root",
           replace=[('(np.sqrt(cache) + config["epsilon"])', 'np.sqrt(cache + config["epsilon"])')],
           fails=["test_rmsprop"]),
    Mutant("rmsprop", "divides by the cache itself, not its square root",
           replace=[('(np.sqrt(cache) + config["epsilon"])', '(cache + config["epsilon"])')],
           fails=["test_rmsprop"]),
    Mutant("rmsprop", "a fresh cache every call (state not carried)",
           replace=[('rho, cache = config["decay_rate"], config["cache"]',
                     'rho, cache = config["decay_rate"], np.zeros_like(w)')],
           fails=["test_rmsprop", "test_rmsprop_state"]),
    Mutant("adam", "no bias correction", code='''
def adam(w, dw, config=None):
    if config is None:
        config = {}
    config.setdefault("learning_rate", 1e-3)
    config.setdefault("beta1", 0.9)
    config.setdefault("beta2", 0.999)
    config.setdefault("epsilon", 1e-8)
    config.setdefault("t", 0)
    config.setdefault("m", np.zeros_like(w))
    config.setdefault("v", np.zeros_like(w))
    config["t"] += 1
    config["m"] = config["beta1"] * config["m"] + (1 - config["beta1"]) * dw
    config["v"] = config["beta2"] * config["v"] + (1 - config["beta2"]) * dw ** 2
    next_w = w - config["learning_rate"] * config["m"] / (np.sqrt(config["v"]) + config["epsilon"])
    return next_w, config
''', fails=["test_adam", "test_adam_state"]),
    Mutant("adam", "t incremented after use (the first step divides by 1 - beta**0 = 0)",
           replace=[('config["t"] += 1                             # before use: the first step has t = 1\n'
                     '    t = config["t"]',
                     't = config["t"]\n    config["t"] += 1')],
           fails=["test_adam", "test_adam_state"]),
    Mutant("adam", "epsilon inside the square root (the lecture slide's form)",
           replace=[('np.sqrt(scratch, out=scratch)\n    scratch += config["epsilon"]',
                     'scratch += config["epsilon"]\n    np.sqrt(scratch, out=scratch)')],
           fails=["test_adam"]),
    Mutant("adam", "t reset to 0 on every call",
           replace=[('config.setdefault("t", 0)', 'config["t"] = 0')],
           fails=["test_adam", "test_adam_state"]),
    Mutant("adam", "v from |dw| instead of dw^2",
           replace=[("np.multiply(dw, dw, out=scratch)", "np.abs(dw, out=scratch)")],
           fails=["test_adam", "test_adam_state"]),
    Mutant("adamw", "weight decay through the gradient (L2), not decoupled",
           replace=[('decayed = w * (1 - config["learning_rate"] * config["weight_decay"])\n'
                     '    next_w, config = adam(decayed, dw, config)',
                     'next_w, config = adam(w, dw + config["weight_decay"] * w, config)')],
           fails=["test_adamw"]),
    Mutant("adamw", "decay without the learning rate: w * (1 - weight_decay)",
           replace=[('w * (1 - config["learning_rate"] * config["weight_decay"])',
                     'w * (1 - config["weight_decay"])')],
           fails=["test_adamw"]),
    Mutant("step_decay", "off by one: the first drop comes one step early",
           replace=[("int(t) // int(step_size)", "(int(t) + 1) // int(step_size)")],
           fails=["test_step_decay"]),
    Mutant("step_decay", "continuous exponent (exponential decay, no floor)",
           replace=[("int(t) // int(step_size)", "t / step_size")],
           fails=["test_step_decay"]),
    Mutant("inverse_time_decay", "exponential instead of 1/t: lr0 / (1 + k) ** t",
           replace=[("lr0 / (1 + decay_rate * t)", "lr0 / (1 + decay_rate) ** t")],
           fails=["test_inverse_time_decay"]),
    Mutant("warmup_schedule", "the paper's formula verbatim: 0 ** -0.5 at t = 0", code='''
def warmup_schedule(t, d_model, warmup_steps=4000):
    return d_model ** -0.5 * min(t ** -0.5, t * warmup_steps ** -1.5)
''', fails=["test_warmup_schedule"]),
    Mutant("warmup_schedule", "warm-up slope with warmup_steps ** -0.5",
           replace=[("t * warmup_steps ** -1.5", "t * warmup_steps ** -0.5")],
           fails=["test_warmup_schedule"]),
    Mutant("warmup_schedule", "forgets the d_model ** -0.5 factor after the warm-up",
           replace=[("lr = d_model ** -0.5 * t ** -0.5", "lr = t ** -0.5")],
           fails=["test_warmup_schedule"]),
    # ----------------------------------------------------------------- hints that name the real cause
    Mutant("adam", "t starts at 1 (the first step uses t = 2)",
           replace=[('config.setdefault("t", 0)', 'config.setdefault("t", 1)')],
           fails=["test_adam", "test_adam_state"], hint="the first step used t = 2"),
]

RIGHT = [
    Mutant("sgd", "without the validation prelude", code='''
def sgd(w, dw, config=None):
    config = {} if config is None else config
    config.setdefault("learning_rate", 1e-2)
    return w - config["learning_rate"] * dw, config
'''),
    Mutant("sgd_momentum", "new arrays stored back into config, no in-place updates", code='''
def sgd_momentum(w, dw, config=None):
    if config is None:
        config = {}
    config.setdefault("learning_rate", 1e-2)
    config.setdefault("momentum", 0.9)
    v = config.get("velocity", np.zeros_like(w))
    v = config["momentum"] * v - config["learning_rate"] * dw
    config["velocity"] = v
    return w + v, config
'''),
    Mutant("nesterov_momentum", "the CS231n form: w + mu * v_new - lr * dw, and a new config dict", code='''
def nesterov_momentum(w, dw, config=None):
    config = dict(config or {})
    lr = config.setdefault("learning_rate", 1e-2)
    mu = config.setdefault("momentum", 0.9)
    v = mu * config.get("velocity", np.zeros_like(w)) - lr * dw
    config["velocity"] = v
    return w + mu * v - lr * dw, config
'''),
    Mutant("rmsprop", "a loop over the entries", code='''
def rmsprop(w, dw, config=None):
    if config is None:
        config = {}
    config.setdefault("learning_rate", 1e-2)
    config.setdefault("decay_rate", 0.99)
    config.setdefault("epsilon", 1e-8)
    cache = np.array(config.get("cache", np.zeros_like(w)), dtype=float)
    next_w = np.array(w, dtype=float)
    for i in np.ndindex(w.shape):
        cache[i] = config["decay_rate"] * cache[i] + (1 - config["decay_rate"]) * dw[i] ** 2
        next_w[i] = w[i] - config["learning_rate"] * dw[i] / (np.sqrt(cache[i]) + config["epsilon"])
    config["cache"] = cache
    return next_w, config
'''),
    Mutant("adam", "the textbook form with m_hat and v_hat arrays", code='''
def adam(w, dw, config=None):
    if config is None:
        config = {}
    config.setdefault("learning_rate", 1e-3)
    config.setdefault("beta1", 0.9)
    config.setdefault("beta2", 0.999)
    config.setdefault("epsilon", 1e-8)
    config.setdefault("t", 0)
    m = config.get("m", np.zeros_like(w))
    v = config.get("v", np.zeros_like(w))
    b1, b2 = config["beta1"], config["beta2"]
    t = config["t"] + 1
    m = b1 * m + (1 - b1) * dw
    v = b2 * v + (1 - b2) * (dw * dw)
    m_hat = m / (1 - b1 ** t)
    v_hat = v / (1 - b2 ** t)
    next_w = w - config["learning_rate"] * m_hat / (np.sqrt(v_hat) + config["epsilon"])
    config.update(m=m, v=v, t=t)
    return next_w, config
'''),
    Mutant("adamw", "written out in full, without calling adam", code='''
def adamw(w, dw, config=None):
    if config is None:
        config = {}
    for key, value in (("learning_rate", 1e-3), ("weight_decay", 1e-2), ("beta1", 0.9),
                       ("beta2", 0.999), ("epsilon", 1e-8), ("t", 0)):
        config.setdefault(key, value)
    lr, b1, b2 = config["learning_rate"], config["beta1"], config["beta2"]
    config["t"] += 1
    t = config["t"]
    config["m"] = b1 * config.get("m", 0.0) + (1 - b1) * dw
    config["v"] = b2 * config.get("v", 0.0) + (1 - b2) * dw ** 2
    step = (config["m"] / (1 - b1 ** t)) / (np.sqrt(config["v"] / (1 - b2 ** t)) + config["epsilon"])
    next_w = w - lr * config["weight_decay"] * w - lr * step
    return next_w, config
'''),
    Mutant("step_decay", "math.floor of the quotient", code='''
import math
def step_decay(lr0, t, step_size, gamma=0.5):
    return lr0 * gamma ** math.floor(t / step_size)
'''),
    Mutant("warmup_schedule", "the paper's min, guarded at t = 0", code='''
def warmup_schedule(t, d_model, warmup_steps=4000):
    if t == 0:
        return 0.0
    return float(d_model ** -0.5 * min(t ** -0.5, t * warmup_steps ** -1.5))
'''),
]
