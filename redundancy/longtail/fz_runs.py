"""Load Feldman & Zhang's released per-run arrays (``aux_arrays.npz``) instead of training.

Each released held-out run stores, per run, ``subsample_idx`` (the training indices the run used),
``correctness_train`` (0/1 per training example) and ``correctness_test`` (0/1 per test example).
:func:`load_fz_runs` reads a list of such files (or every ``*.npz`` under a folder, sorted), or one
file with the stacked arrays ``trainset_mask`` (T, n_train), ``trainset_correctness`` and
``testset_correctness`` (the names of FZ's MNIST demo), and returns the same
:class:`~redundancy.longtail.estimator.MemorizationResult` that training would.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

import redundancy._validation as _v
from redundancy.errors import RedundancyError
from redundancy.longtail.estimator import MAX_DENSE, MemorizationResult, estimate_memorization

__all__ = ["load_fz_runs"]

_MAX_FILES = 100_000


def _read(path: Path) -> dict:
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError) as exc:
        raise RedundancyError(f"runs file {os.fspath(path)!r} cannot be read as .npz ({exc})") from None


def _run_files(name: str, paths: Any) -> list[Path]:
    """The ``.npz`` files named by ``paths`` (a folder, one file or a list of files), all existing."""
    if isinstance(paths, (str, os.PathLike)):
        p = Path(paths)
        files = sorted(p.glob("*.npz")) if p.is_dir() else [p]
    else:
        try:
            files = [Path(f) for f in paths]
        except TypeError:
            raise RedundancyError(f"{name}={_v._short(paths)} must be a folder, a .npz file or a list of .npz files") from None
    if not files or len(files) > _MAX_FILES:
        raise RedundancyError(f"{name}={paths!r} names {len(files)} .npz files; give 1..{_MAX_FILES}")
    missing = [os.fspath(f) for f in files if not f.is_file()]
    if missing:
        raise RedundancyError(f"runs file(s) not found: {missing[:3]}")
    return files


@_v.validate_params({"paths": _run_files, "top_k": _v.Int(1), "max_dense": _v.Int(0)})
def load_fz_runs(paths, *, y_train=None, y_test=None, top_k: int = 10,
                 max_dense: int = MAX_DENSE) -> MemorizationResult:
    """Memorization and influence from released runs (no training).

    Parameters
    ----------
    paths : str, Path or list of them
        A folder (every ``*.npz`` in it, sorted by name), one file, or a list of per-run files.
    y_train, y_test : array, optional
        Labels for the tables.

    Examples
    --------
    >>> import numpy as np, os, tempfile
    >>> d = tempfile.mkdtemp()
    >>> for t, idx in enumerate([[0], [1], [0]]):
    ...     np.savez(os.path.join(d, f"run{t}.npz"), subsample_idx=np.array(idx),
    ...              correctness_train=np.array([1, 1]), correctness_test=np.array([t % 2]))
    >>> load_fz_runs(d).n_models
    3
    """
    files = paths
    first = _read(files[0])
    if len(files) == 1 and {"trainset_mask", "trainset_correctness"} <= set(first):
        te = first.get("testset_correctness")
        return estimate_memorization(first["trainset_mask"], first["trainset_correctness"], te, y_train=y_train,
                                     y_test=y_test, top_k=top_k, max_dense=max_dense,
                                     settings={"source": os.fspath(files[0])})
    masks, ctr, cte = [], [], []
    for f in files:
        z = first if f == files[0] else _read(f)
        need = {"subsample_idx", "correctness_train", "correctness_test"}
        if not need <= set(z):
            raise RedundancyError(f"runs file {os.fspath(f)!r} has keys {sorted(z)}; a run needs {sorted(need)}")
        c = np.asarray(z["correctness_train"]).ravel()
        idx = np.asarray(z["subsample_idx"]).ravel()
        if not np.issubdtype(idx.dtype, np.integer) or (idx.size and (idx.min() < 0 or idx.max() >= c.size)):
            raise RedundancyError(f"runs file {os.fspath(f)!r}: subsample_idx must be integers in [0, {c.size})")
        if masks and (c.size != masks[0].size or np.asarray(z["correctness_test"]).size != cte[0].size):
            raise RedundancyError(f"runs file {os.fspath(f)!r} has {c.size} training / "
                                  f"{np.asarray(z['correctness_test']).size} test examples; the first run has "
                                  f"{masks[0].size} / {cte[0].size}")
        mask = np.zeros(c.size, bool)
        mask[idx] = True
        masks.append(mask)
        ctr.append(c)
        cte.append(np.asarray(z["correctness_test"]).ravel())
    return estimate_memorization(np.stack(masks), np.stack(ctr), np.stack(cte), y_train=y_train, y_test=y_test,
                                 top_k=top_k, max_dense=max_dense,
                                 settings={"source": "fz_runs", "n_files": len(files)})
