"""The grading protocol's types and framing, without a sandbox (fast)."""
from __future__ import annotations

import json
import os
import pickle
import time

import pytest

from dlhw.checks import core
from dlhw.checks.wire import read_frame, send_frame
from grader.sandbox.protocol import (CellError, CellJob, CellResult, Job, JobResult, Limits, Op, Status, Verdict,
                                     recv, send)


def _job():
    return Job([CellJob("x = 1"), CellJob("check('affine_forward', f)", [("affine_forward", False),
                                                                          ("affine_forward", True)])],
               "seed", Limits(cell_timeout=5, forbidden=("torch",), references={"f": "dlhw.nn.layers:f"}),
               {"blocks.py": "eA=="}, key=("alice", "nb"))


def test_a_job_crosses_json_and_pickle_unchanged():
    job = _job()
    assert Job.from_wire(json.loads(json.dumps(job.to_wire()))) == job
    assert pickle.loads(pickle.dumps(job)) == job


def test_a_cell_result_crosses_json_with_its_status():
    r = CellResult(Status.ERROR, [Verdict("affine_forward", True, False, "wrong")], stdout="out",
                   error=CellError("ValueError", "bad", "tb"))
    back = CellResult.from_wire(json.loads(json.dumps(r.to_wire())))
    assert back == r and back.status is Status.ERROR
    res = JobResult([r, CellResult.stopped(Status.NOT_RUN, "not run")], 1.5, key=("a", "b"))
    assert pickle.loads(pickle.dumps(res)) == res


def test_stopped_statuses():
    assert {s for s in Status if s.stopped} == {Status.TIMEOUT, Status.DIED, Status.NOT_RUN, Status.PROTOCOL}
    assert Status.OK == "ok"        # a str enum: it is its JSON value


def test_frames_round_trip_and_a_read_has_a_deadline():
    r, w = os.pipe()
    try:
        send(w, Op.CELL, index=3)
        assert recv(r) == {"op": "cell", "index": 3}
        send_frame(w, b"x" * 100)
        with pytest.raises(ValueError, match="100 bytes"):
            read_frame(r, limit=10)
        assert os.read(r, 1000) == b"x" * 100      # refused before its body was read
        t0 = time.monotonic()
        with pytest.raises(TimeoutError):
            read_frame(r, time.monotonic() + 0.2)
        assert time.monotonic() - t0 < 2
    finally:
        os.close(r)
        os.close(w)


def test_install_channel_connects_check_to_the_judge():
    to_judge_r, to_judge_w = os.pipe()
    to_kit_r, to_kit_w = os.pipe()
    try:
        core.install_channel(to_kit_r, to_judge_w, "n0nce")
        send_frame(to_kit_w, core.encode({"answer": 42}))
        assert core._CHANNEL.ask({"op": "inputs", "check": "c"}) == {"answer": 42}
        assert core.decode(read_frame(to_judge_r)) == {"op": "inputs", "check": "c", "nonce": "n0nce"}
    finally:
        core.install_channel(None)
        for fd in (to_judge_r, to_judge_w, to_kit_r, to_kit_w):
            os.close(fd)
    assert core._CHANNEL is None
