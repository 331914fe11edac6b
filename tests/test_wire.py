"""The pickle-free wire between the student's process and the judge keeps values exactly."""
import numpy as np

from dlhw.checks.wire import decode, encode


def test_arrays_keep_shape_dtype_and_values():
    values = {"zero_d": np.array(2.5), "empty": np.zeros((0, 3)), "ints": np.arange(6).reshape(2, 3),
              "fortran": np.asfortranarray(np.arange(6.0).reshape(2, 3)), "view": np.arange(10.0)[::3],
              "bool": np.array([True, False]), "nested": [np.array(1.0), (np.ones(2), None)]}
    back = decode(encode(values))
    for key in ("zero_d", "empty", "ints", "fortran", "view", "bool"):
        assert back[key].shape == values[key].shape and back[key].dtype == values[key].dtype, key
        np.testing.assert_array_equal(back[key], values[key])
    assert back["nested"][0].shape == () and isinstance(back["nested"][1], tuple)
