"""Length-prefixed messages between the grader's processes, and the judge's identity.

Every message is an 8-byte little-endian length, then that many bytes (JSON, or the kit's wire
encoding). Reads may carry a deadline, so that no process of the grader ever blocks on a peer
that stopped or that sends half a message. No side effects on import: the instructor's process,
the grading server and the reference helper all use it.
"""
from __future__ import annotations

import hashlib
import json
import os
import select
import struct
import time
from typing import Optional

MAX_FRAME = 64 << 20            # the largest message a submission may send (outputs are arrays)


def write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data):]


def send_frame(fd: int, payload: bytes) -> None:
    write_all(fd, struct.pack("<Q", len(payload)) + payload)


def send(fd: int, obj) -> None:
    send_frame(fd, json.dumps(obj).encode())


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
            raise EOFError
        chunks.append(b)
        n -= len(b)
    return b"".join(chunks)


def read_frame(fd: int, deadline: Optional[float] = None, limit: int = MAX_FRAME) -> bytes:
    """One message's bytes; ValueError for one longer than ``limit``."""
    (n,) = struct.unpack("<Q", read_exact(fd, 8, deadline))
    if n > limit:
        raise ValueError(f"a message of {n} bytes (the limit is {limit})")
    return read_exact(fd, n, deadline)


def recv(fd: int, deadline: Optional[float] = None):
    return json.loads(read_frame(fd, deadline, limit=1 << 40))


def tree_digest(roots) -> str:
    """sha256 over every file (relative path and content) under ``roots``: the judge's identity."""
    h = hashlib.sha256()
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
            for name in sorted(filenames):
                if name.endswith(".pyc"):
                    continue
                path = os.path.join(dirpath, name)
                h.update(os.path.relpath(path, root).encode() + b"\0")
                with open(path, "rb") as fh:
                    h.update(hashlib.sha256(fh.read()).digest())
    return h.hexdigest()
