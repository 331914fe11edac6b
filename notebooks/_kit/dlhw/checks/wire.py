"""A pickle-free encoding of nested values, and the frames they travel in, between student code and the judge.

The grader's judge must never unpickle what a student's process sends (unpickling runs
code), so values travel as JSON for the structure plus ``.npy`` blobs (``allow_pickle=False``)
for arrays. Supported: None, bool, int, float, complex-free str, numpy arrays of numeric or
bool dtype, numpy scalars, and lists, tuples and str-keyed dicts of these.

Every message between the grader's processes (the student's channel in ``dlhw.checks.core``,
the judge, the grading server and the instructor's process: ``grader.sandbox.protocol``) is one
*frame*: an 8-byte little-endian length, then that many bytes. This is the one implementation
of that framing; it lives here because the kit ships this module and the grader may import the
kit, never the other way round. Reads may carry a deadline, so that no process of the grader
blocks on a peer that stopped or that sends half a message.
"""
from __future__ import annotations

import base64
import io
import json
import math
import os
import select
import struct
import time
from typing import Any, Optional

import numpy as np

__all__ = ["encode", "decode", "WireError", "send_frame", "read_frame", "MAX_FRAME"]

MAX_DEPTH = 16
MAX_FRAME = 64 << 20            # the largest message a submission may send (outputs are arrays)


class WireError(ValueError):
    """A value that cannot cross the wire (an unsupported type, a cyclic or too-deep value)."""


def _pack(x: Any, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise WireError("value nested too deeply")
    if x is None or isinstance(x, (bool, str)):
        return x
    if isinstance(x, (int, np.integer)) and not isinstance(x, np.bool_):
        return {"__int__": str(int(x))}
    if isinstance(x, (float, np.floating)):
        f = float(x)
        return {"__float__": repr(f)} if not math.isfinite(f) else f
    if isinstance(x, np.bool_):
        return bool(x)
    if isinstance(x, np.ndarray):
        if x.dtype.kind not in "biuf":
            raise WireError(f"arrays of dtype {x.dtype} cannot be sent (numeric arrays only)")
        buf = io.BytesIO()
        # (ascontiguousarray alone would turn a 0-d array into shape (1,))
        np.save(buf, np.ascontiguousarray(x).reshape(x.shape), allow_pickle=False)
        return {"__array__": base64.b64encode(buf.getvalue()).decode("ascii")}
    if isinstance(x, (list, tuple)):
        return {"__seq__": "tuple" if isinstance(x, tuple) else "list",
                "items": [_pack(v, depth + 1) for v in x]}
    if isinstance(x, dict):
        if not all(isinstance(k, str) for k in x):
            raise WireError("dict keys must be strings")
        return {"__dict__": {k: _pack(v, depth + 1) for k, v in x.items()}}
    raise WireError(f"values of type {type(x).__name__} cannot be sent")


def _unpack(x: Any) -> Any:
    if x is None or isinstance(x, (bool, str, int, float)):
        return x
    if isinstance(x, dict):
        if "__int__" in x:
            return int(x["__int__"])
        if "__float__" in x:
            return float(x["__float__"])
        if "__array__" in x:
            return np.load(io.BytesIO(base64.b64decode(x["__array__"])), allow_pickle=False)
        if "__seq__" in x:
            items = [_unpack(v) for v in x["items"]]
            return tuple(items) if x["__seq__"] == "tuple" else items
        if "__dict__" in x:
            return {str(k): _unpack(v) for k, v in x["__dict__"].items()}
    raise WireError("malformed message")


def encode(x: Any) -> bytes:
    """``x`` as bytes (JSON with base64 .npy blobs)."""
    return json.dumps(_pack(x, 0)).encode("utf-8")


def decode(data: bytes) -> Any:
    """The value ``encode`` turned into ``data``; raises WireError on anything malformed."""
    try:
        return _unpack(json.loads(data.decode("utf-8")))
    except WireError:
        raise
    except Exception as exc:  # malformed JSON, base64 or .npy from a hostile sender
        raise WireError(f"malformed message ({type(exc).__name__})") from None


# ------------------------------------------------------------------------------- frames
def write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data):]


def send_frame(fd: int, payload: bytes) -> None:
    """Write ``payload`` to the descriptor ``fd`` as one frame (length, then bytes)."""
    write_all(fd, struct.pack("<Q", len(payload)) + payload)


def read_exact(fd: int, n: int, deadline: Optional[float] = None) -> bytes:
    """``n`` bytes; EOFError when the peer closed, TimeoutError past ``deadline`` (monotonic)."""
    chunks = []
    while n:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError
        b = os.read(fd, min(n, 1 << 20))
        if not b:
            raise EOFError("the peer closed the channel")
        chunks.append(b)
        n -= len(b)
    return b"".join(chunks)


def read_frame(fd: int, deadline: Optional[float] = None, limit: int = MAX_FRAME) -> bytes:
    """One frame's bytes; ValueError for one longer than ``limit``."""
    (n,) = struct.unpack("<Q", read_exact(fd, 8, deadline))
    if n > limit:
        raise ValueError(f"a message of {n} bytes (the limit is {limit})")
    return read_exact(fd, n, deadline)
