"""dlhw.validation's prologue helpers: what they accept, and errors that name the function, the
argument and what was expected."""
import numpy as np
import pytest

from dlhw.validation import (as_array_like, as_config, require_generator, require_int_tuple,
                             require_numbers, state_array)


def test_require_numbers_names_every_argument_and_the_bounds():
    require_numbers("f", {"t": 0}, low=0)
    require_numbers("f", {"t": np.float64(2.5), "u": np.array(3)}, low=0, high=3)
    require_numbers("f", {"fan_in": np.int64(3), "fan_out": 1}, low=1, integer=True)
    with pytest.raises(ValueError, match=r"^f: t must be >= 0; got -1$"):
        require_numbers("f", {"t": -1}, low=0)
    with pytest.raises(ValueError, match=r"^f: s must be in \[0, 1\]; got 1.5$"):
        require_numbers("f", {"s": 1.5}, low=0, high=1)
    with pytest.raises(ValueError, match=r"^f: a and b must be integers >= 1; got a=3, b=2.5$"):
        require_numbers("f", {"a": 3, "b": 2.5}, low=1, integer=True)
    with pytest.raises(ValueError, match=r"^f: a, b and c must be >= 1; got a=1, b=0, c=1$"):
        require_numbers("f", {"a": 1, "b": 0, "c": 1}, low=1)
    with pytest.raises(ValueError, match=r"^f: n must be an integer <= 4; got 5$"):
        require_numbers("f", {"n": 5}, high=4, integer=True)
    for bad in ("3", None, np.ones(2), 1j, float("nan")):
        with pytest.raises(ValueError, match="f: t must be >= 0"):
            require_numbers("f", {"t": bad}, low=0)


def test_require_generator_and_int_tuple():
    rng = np.random.default_rng(0)
    assert require_generator("f", "rng", rng) is rng
    for bad in (0, np.random.RandomState(0), None):
        with pytest.raises(ValueError, match=r"f: rng must be a numpy.random.Generator \(np.random.default_rng"):
            require_generator("f", "rng", bad)
    require_int_tuple("f", "shape", (8, np.int32(3), 3, 3), ("F", "C", "HH", "WW"))
    for bad in ((8, 3, 3), (8, 0, 3, 3), (8, 3.0, 3, 3), "8333", None):
        with pytest.raises(ValueError, match=r"^f: shape must be \(F, C, HH, WW\), 4 integers >= 1; got "):
            require_int_tuple("f", "shape", bad, ("F", "C", "HH", "WW"))


def test_as_array_like_and_as_config():
    w = np.zeros((2, 3))
    assert as_array_like("f", "dw", [[1, 2, 3], [4, 5, 6]], w, "w").dtype == np.float64
    with pytest.raises(ValueError, match=r"^f: dw must have shape \(2, 3\) \(the shape of w\); got \(3, 2\)$"):
        as_array_like("f", "dw", np.zeros((3, 2)), w, "w")
    config = {"learning_rate": 1.0}
    assert as_config("f", "config", config) is config, "the caller's dict, updated in place"
    assert as_config("f", "config", None) == {}
    with pytest.raises(ValueError, match=r"^f: config must be a dict or None; got list$"):
        as_config("f", "config", [])


def test_state_array_creates_keeps_and_checks_the_state():
    w = np.ones((2, 3))
    config = {}
    v = state_array("f", config, "velocity", w)
    assert config["velocity"] is v and v.shape == (2, 3) and not v.any()
    assert state_array("f", config, "velocity", w) is v, "an existing float64 state is the same array"
    config["cache"] = np.ones((2, 3), dtype=np.float32)
    cache = state_array("f", config, "cache", w)
    assert cache.dtype == np.float64 and config["cache"] is cache
    config["m"] = np.zeros(3)
    with pytest.raises(ValueError, match=r"^f: config\['m'\] must have shape \(2, 3\) \(the shape of w\); got \(3,\)$"):
        state_array("f", config, "m", w)
