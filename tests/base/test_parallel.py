"""Parallel runner: backends agree, finished work survives a kill, the dask.distributed path works."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from redundancy.errors import RedundancyError
from redundancy.parallel import run_tasks, task_key

ROOT = Path(__file__).resolve().parents[2]


def square(task):
    return {"value": task["x"] ** 2}


TASKS = [{"x": i} for i in range(6)]
EXPECTED = [{"value": i * i} for i in range(6)]


@pytest.mark.parametrize("backend", ["sequential", "threading", "loky"])
def test_backends_give_the_same_results_in_order(backend, tmp_path):
    assert run_tasks(square, TASKS, backend=backend, n_jobs=2, progress=False) == EXPECTED
    assert run_tasks(square, TASKS, backend=backend, n_jobs=2, cache_dir=tmp_path, progress=False) == EXPECTED
    assert len(list(tmp_path.glob("*.json"))) == 6


def test_task_key_covers_arrays_and_function():
    a = {"cov": np.eye(2), "n": 3}
    assert task_key(a) == task_key({"n": 3, "cov": np.eye(2)})
    assert task_key(a) != task_key({"n": 3, "cov": 2 * np.eye(2)})
    assert task_key(a, square) != task_key(a, abs)
    with pytest.raises(RedundancyError, match="cannot be hashed"):
        task_key({"f": object()})


def test_exception_mid_sweep_keeps_finished_work(tmp_path):
    calls = []

    def flaky(task):
        if task["x"] == 3:
            raise RuntimeError("boom")
        calls.append(task["x"])
        return square(task)

    with pytest.raises(RuntimeError):
        run_tasks(flaky, TASKS, backend="sequential", cache_dir=tmp_path, progress=False)
    assert len(list(tmp_path.glob("*.json"))) == 3

    def counting(task):
        calls.append(("again", task["x"]))
        return square(task)

    counting.__qualname__ = flaky.__qualname__  # same cache namespace as the killed sweep
    assert run_tasks(counting, TASKS, backend="sequential", cache_dir=tmp_path, progress=False) == EXPECTED
    assert [c for c in calls if isinstance(c, tuple)] == [("again", x) for x in (3, 4, 5)]


def test_resume_after_sigkill_loses_no_finished_work(tmp_path):
    """A real kill: a child process runs a slow sweep and is SIGKILLed mid-way; the rerun only
    computes what had not finished, and every finished result is reused unchanged."""
    cache = tmp_path / "cache"
    script = tmp_path / "sweep.py"
    script.write_text(textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(ROOT)!r})
        from redundancy.parallel import run_tasks
        def slow(task):
            time.sleep(0.3)
            return {{"value": task["x"] ** 2, "pid": __import__("os").getpid()}}
        slow.__module__ = "sweep"
        run_tasks(slow, [{{"x": i}} for i in range(40)], backend="sequential", cache_dir={str(cache)!r},
                  progress=False)
    """))
    proc = subprocess.Popen([sys.executable, str(script)])
    try:
        deadline = time.time() + 60
        while time.time() < deadline and len(list(cache.glob("*.json"))) < 3:
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    done = {p.name: json.loads(p.read_text()) for p in cache.glob("*.json")}
    assert 3 <= len(done) < 40
    assert not list(cache.glob(".tmp-*")) or all(p.stat().st_size >= 0 for p in cache.glob(".tmp-*"))

    computed = []

    def slow(task):
        computed.append(task["x"])
        return {"value": task["x"] ** 2, "pid": os.getpid()}

    slow.__module__, slow.__qualname__ = "sweep", "slow"  # the killed sweep's cache namespace
    out = run_tasks(slow, [{"x": i} for i in range(40)], backend="sequential", cache_dir=cache, progress=False)
    assert [o["value"] for o in out] == [i * i for i in range(40)]
    assert len(computed) == 40 - len(done)
    killed_pid = proc.pid
    assert sum(o["pid"] == killed_pid for o in out) == len(done)  # finished work reused, not recomputed


def test_dask_local_cluster(tmp_path):
    distributed = pytest.importorskip("distributed")
    from redundancy.validation.simulate import Design
    from redundancy.validation.validate import error_curve

    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cl, \
            distributed.Client(cl):
        assert run_tasks(square, TASKS, backend="dask", n_jobs=2, progress=False) == EXPECTED
        d = Design(input_shape=(8,), kernel=2, K=2, structure="cp", rank=1)
        a = error_curve(d, [30, 60], n_reps=2, backend="dask", n_jobs=2, cache_dir=tmp_path, progress=False)
    b = error_curve(d, [30, 60], n_reps=2, backend="sequential", progress=False)
    # Same seeds, same data: the fits agree up to L-BFGS's stopping tolerance (a worker thread's
    # torch may sum in another order, which moves the end point by ~1e-7, never more).
    np.testing.assert_allclose(a.errors, b.errors, rtol=1e-5)


def test_bad_arguments():
    with pytest.raises(RedundancyError, match="backend"):
        run_tasks(square, TASKS, backend="spark", progress=False)
    with pytest.raises(RedundancyError, match="n_jobs"):
        run_tasks(square, TASKS, backend="loky", n_jobs=0, progress=False)
    with pytest.raises(RedundancyError, match="callable"):
        run_tasks(3, TASKS, progress=False)
    with pytest.raises(RedundancyError, match="dask"):
        run_tasks(square, TASKS, backend="dask", progress=False)


def test_uncacheable_result_is_a_clear_error(tmp_path):
    with pytest.raises(RedundancyError, match="JSON-serialisable"):
        run_tasks(lambda t: {"a": object()}, [1], backend="sequential", cache_dir=tmp_path, progress=False)
    assert not list(tmp_path.iterdir())
