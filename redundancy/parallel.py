"""Run independent tasks through joblib with a selectable backend, a progress bar and a disk cache.

:func:`run_tasks` maps ``fn`` over ``tasks``. With ``cache_dir`` each finished task's result is
written at once, by the worker, to ``cache_dir/<key>.json`` (written to a temporary file, then
renamed, so a kill never leaves a half-written entry); a later call with the same tasks loads the
finished ones and runs only the rest, so a killed sweep resumes where it stopped. The key is a
SHA-256 of the task's canonical JSON (arrays by their bytes) and of ``fn``'s qualified name.

Backends: ``"sequential"`` (a plain loop), any joblib backend (``"loky"``, ``"threading"``,
``"multiprocessing"``) and ``"dask"`` (joblib's dask backend on the current
``dask.distributed`` client; create a ``Client`` — e.g. on a ``LocalCluster`` or an existing
scheduler — before calling).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from redundancy._validation import check_choice, check_int
from redundancy.errors import RedundancyError

import redundancy._validation as _v

__all__ = ["run_tasks", "task_key"]

BACKENDS = ("sequential", "loky", "threading", "multiprocessing", "dask")


def _canonical(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return {"__ndarray__": hashlib.sha256(np.ascontiguousarray(obj).tobytes()).hexdigest(),
                "shape": list(obj.shape), "dtype": str(obj.dtype)}
    if isinstance(obj, dict):
        return {str(k): _canonical(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, (list, tuple)):
        return [_canonical(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    raise RedundancyError(f"task value {obj!r} of type {type(obj).__name__} cannot be hashed for the cache; "
                          "use numbers, strings, lists, dicts and numpy arrays")


def task_key(task: Any, fn: Callable | None = None) -> str:
    """Stable cache key of a task (and of the function that runs it).

    Examples
    --------
    >>> task_key({"n": 10, "rep": 0}) == task_key({"rep": 0, "n": 10})
    True
    """
    name = "" if fn is None else f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', repr(fn))}"
    blob = json.dumps({"fn": name, "task": _canonical(task)}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def _store(path: Path, result: Any) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(result, fh)
    except TypeError as exc:
        os.unlink(tmp)
        raise RedundancyError(f"a task result cannot be cached: {exc}; with cache_dir, fn must return "
                              "JSON-serialisable values (numbers, strings, lists, dicts)") from None
    os.replace(tmp, path)


def _call(fn, task, index, path):
    result = fn(task)
    if path is not None:
        _store(Path(path), result)
    return index, result


def _load(path: Path):
    try:
        with open(path) as fh:
            return True, json.load(fh)
    except (OSError, ValueError):
        return False, None


def _cache_dir(name, value):
    _v.PathArg()(name, value)
    if os.path.exists(value) and not os.path.isdir(value):
        raise _v.RedundancyError(f"{name}={os.fspath(value)!r} exists and is not a directory")
    return value


@_v.validate_params({"fn": _v.CallableArg(), "tasks": _v.Instance((list, tuple, range), "list of tasks"),
                     "n_jobs": _v.Int(-1, 1024), "progress": _v.Bool(), "cache_dir": _v.NoneOr(_v.Check(_cache_dir))})
def run_tasks(fn: Callable[[Any], Any], tasks: Sequence[Any], *, backend: str = "loky", n_jobs: int = 1,
              cache_dir=None, progress: bool = True, desc: str | None = None) -> list[Any]:
    """``[fn(t) for t in tasks]`` in parallel, with progress and resumable on-disk caching.

    Parameters
    ----------
    fn : callable
        Takes one task, returns a JSON-serialisable result; must be picklable (module level) for
        process backends.
    tasks : sequence
        Tasks (dicts, lists, numbers, strings, numpy arrays); equal tasks share a cache entry.
    backend : {"sequential", "loky", "threading", "multiprocessing", "dask"}
    n_jobs : int
        Workers (``-1``: all); ignored by ``"sequential"``.
    cache_dir : str or Path, optional
        Directory of finished results (created if missing).
    progress : bool
        Show a tqdm bar.
    desc : str, optional
        Progress-bar label.

    Returns
    -------
    list
        Results in the order of ``tasks``.

    Examples
    --------
    >>> run_tasks(abs, [-1, 2, -3], backend="sequential", progress=False)
    [1, 2, 3]
    """
    if not callable(fn):
        raise RedundancyError(f"fn={fn!r} is not callable; give a function of one task")
    check_choice("backend", backend, BACKENDS)
    n_jobs = check_int("n_jobs", n_jobs, min_value=-1)
    if n_jobs == 0:
        raise RedundancyError("n_jobs=0 is not allowed; give -1 (all cores) or an integer >= 1")
    tasks = list(tasks)
    results: list[Any] = [None] * len(tasks)
    todo = []
    paths: list[Path | None] = [None] * len(tasks)
    if cache_dir is not None:
        cdir = Path(cache_dir)
        cdir.mkdir(parents=True, exist_ok=True)
    for i, t in enumerate(tasks):
        if cache_dir is not None:
            paths[i] = cdir / f"{task_key(t, fn)}.json"
            ok, val = _load(paths[i]) if paths[i].exists() else (False, None)
            if ok:
                results[i] = val
                continue
        todo.append(i)
    from tqdm.auto import tqdm

    bar = tqdm(total=len(tasks), initial=len(tasks) - len(todo), disable=not progress, desc=desc, leave=False)
    try:
        if backend == "sequential" or not todo:
            for i in todo:
                _, results[i] = _call(fn, tasks[i], i, paths[i])
                bar.update(1)
        else:
            import joblib

            if backend == "dask":
                try:
                    from distributed import get_client

                    get_client()
                except (ImportError, ValueError) as exc:
                    raise RedundancyError(
                        "backend='dask' needs a running dask.distributed Client (e.g. "
                        "Client(LocalCluster(processes=False))) created before the call") from exc
            with joblib.parallel_config(backend=backend, n_jobs=n_jobs):
                gen = joblib.Parallel(return_as="generator_unordered")(
                    joblib.delayed(_call)(fn, tasks[i], i, None if paths[i] is None else str(paths[i]))
                    for i in todo)
                for i, res in gen:
                    results[i] = res
                    bar.update(1)
    finally:
        bar.close()
    return results
