"""Feldman-Zhang subsampling: train ``T`` models on random subsets, record 0/1 correctness, estimate.

:func:`memorization` draws, for model ``t``, a subset of ``round(subset_ratio * n_train)`` training
examples without replacement, an initialisation seed and a batch-order seed (all from ``seed``,
model by model, so the first models do not change when ``n_models`` grows), trains the models in
chunks with :func:`redundancy.training.train_ensemble` (``torch.func.vmap``: many small models at
once), records each model's 0/1 correctness on the whole training set and the test set, and returns
:func:`~redundancy.longtail.estimator.estimate_memorization` of the masks and correctness.

Chunks run through :func:`redundancy.parallel.run_tasks` (joblib, or dask.distributed on a
cluster); with ``cache_dir`` each finished chunk is stored at once, so a killed run resumes without
losing finished chunks. The cache key holds the data, the architecture and initialisation of
``make_model`` (a hash of its weights at seed 0), the subsets, the seeds and the training settings.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

import redundancy._validation as _v
from redundancy.data import as_dataset
from redundancy.errors import ConvergenceWarning, RedundancyError
from redundancy.longtail.estimator import MAX_DENSE, MemorizationResult, estimate_memorization
from redundancy.parallel import BACKENDS, run_tasks
from redundancy.training import Convergence, check_device, predict, train_ensemble

__all__ = ["memorization"]

_MAX_MODELS = 100_000
#: most indices drawn by draw_runs (n_models x n_train)
_MAX_DRAW = 2 * 10 ** 9


@_v.validate_params({"n_train": _v.Int(2, _v.MAX_NUMEL), "n_models": _v.Int(1, _MAX_MODELS),
                     "subset_ratio": _v.Float(0.0, 1.0, lo_open=True, hi_open=True), "seed": _v.Seed()})
def draw_runs(n_train: int, n_models: int, subset_ratio: float = 0.7, seed: int = 0):
    """Subsets ``(T, m)`` (sorted indices), initialisation seeds and batch seeds of ``T`` runs.

    Run ``t`` draws, from its own child of ``SeedSequence(seed)``, ``m = round(subset_ratio *
    n_train)`` training indices without replacement and two seeds in ``[0, 2**62)``, so the first
    runs do not change when ``n_models`` grows.

    Parameters
    ----------
    n_train : int
        Training examples, at least 2.
    n_models : int
        Runs ``T`` in [1, 100000].
    subset_ratio : float
        In (0, 1); the subset must hold at least one example and leave at least one out.
    seed : int

    Refuses more than ``T * n_train = 2 * 10**9`` indices to shuffle (the subsets are drawn run by run).

    Examples
    --------
    >>> sub, init, order = draw_runs(10, 3, 0.7, seed=0)
    >>> sub.shape, len(init), len(order)
    ((3, 7), 3, 3)
    """
    return _draw_runs(n_train, n_models, subset_ratio, seed)


def _draw_runs(n_train: int, n_models: int, subset_ratio: float, seed: int):
    m = int(round(subset_ratio * n_train))
    if not 1 <= m < n_train:
        raise RedundancyError(f"subset_ratio={subset_ratio} of n_train={n_train} gives a subset of {m}; "
                              "it must hold at least 1 and leave at least 1 example out")
    if n_models * n_train > _MAX_DRAW:
        raise RedundancyError(f"n_models={n_models} x n_train={n_train} = {n_models * n_train:,} indices to draw; "
                              f"the limit is {_MAX_DRAW:,}")
    _v.check_memory("the subsets", n_models * m, 8)
    ss = np.random.SeedSequence(seed)
    sub, init, order = [], [], []
    for child in ss.spawn(n_models):
        rng = np.random.default_rng(child)
        sub.append(np.sort(rng.choice(n_train, m, replace=False)))
        a, b = rng.integers(0, 2 ** 62, size=2)
        init.append(int(a))
        order.append(int(b))
    return np.stack(sub), init, order


@_v.validate_params({"make_model": _v.CallableArg(), "seeds": _v.Items(_v.Seed(), max_len=_MAX_MODELS)})
def make_models(make_model: Callable[[], torch.nn.Module], seeds) -> list[torch.nn.Module]:
    """``make_model()`` once per seed, each under ``torch.manual_seed(seed)`` (caller's RNG untouched).

    Parameters
    ----------
    make_model : callable
        ``make_model() -> torch.nn.Module``, a fresh model each call; an exception it raises becomes
        a :class:`~redundancy.errors.RedundancyError`.
    seeds : sequence of int
        Up to 100000 seeds in ``[0, 2**63 - 1]``.

    Examples
    --------
    >>> from torch import nn
    >>> a, b = make_models(lambda: nn.Linear(2, 1), [3, 3])
    >>> bool((a.weight == b.weight).all()) and a is not b
    True
    """
    return _make_models(make_model, seeds)


def _make_models(make_model, seeds) -> list[torch.nn.Module]:
    out = []
    for s in seeds:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(s))
            try:
                model = make_model()
            except RedundancyError:
                raise
            except Exception as exc:  # noqa: BLE001 - the caller's factory may raise anything
                raise RedundancyError(f"make_model() raised {type(exc).__name__}: "
                                      f"{_v._short(_v._first_line(exc), 200)}") from None
        if not isinstance(model, torch.nn.Module):
            raise RedundancyError(f"make_model() returned {type(model).__name__}; it must return a torch.nn.Module")
        if any(model is o for o in out):
            raise RedundancyError("make_model() returned the same model object twice; it must build a new model "
                                  "on every call")
        out.append(model)
    return out


def _pack(a: np.ndarray) -> str:
    return base64.b64encode(np.packbits(a.astype(bool), axis=None).tobytes()).decode()


def _unpack(s: str, shape) -> np.ndarray:
    bits = np.unpackbits(np.frombuffer(base64.b64decode(s), np.uint8))
    return bits[: int(np.prod(shape))].reshape(shape).astype(bool)


def _fingerprint(make_model, ds) -> tuple[str, str]:
    h = hashlib.sha256()
    for a in (ds.X_train, ds.y_train, ds.X_test, ds.y_test):
        h.update(np.ascontiguousarray(a).tobytes())
    g = hashlib.sha256(f"{getattr(make_model, '__module__', '')}.{getattr(make_model, '__qualname__', '')}".encode())
    for name, t in _make_models(make_model, [0])[0].state_dict().items():
        g.update(name.encode())
        g.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:24], g.hexdigest()[:24]


class _Chunk:
    """Train one chunk of runs and return packed correctness (picklable for joblib/dask)."""

    def __init__(self, make_model, ds, device):
        self.make_model, self.ds, self.device = make_model, ds, device
        self.__qualname__ = "_Chunk"  # stable: part of the cache key (with this module's name)

    def __call__(self, task: dict) -> dict:
        ds, sub = self.ds, np.asarray(task["subsets"], dtype=np.int64)
        models = _make_models(self.make_model, task["init_seeds"])
        with warnings.catch_warnings():  # memorization reports the runs' fit as a whole
            warnings.simplefilter("ignore", ConvergenceWarning)
            res = train_ensemble(models, ds, sub, seeds=task["order_seeds"], device=self.device, **task["train"])
        dev = check_device(self.device)
        out = {}
        for split, X, y in (("train", ds.X_train, ds.y_train), ("test", ds.X_test, ds.y_test)):
            Xt = torch.as_tensor(np.ascontiguousarray(X)).to(dev)
            yt = torch.as_tensor(y).to(dev)
            corr = np.stack([(predict(m, Xt).argmax(1) == yt).cpu().numpy() for m in models])
            out[split] = _pack(corr)
        out["final_loss"] = [float(res.losses[t, res.epochs_run[t] - 1]) if res.epochs_run[t] else float("nan")
                             for t in range(len(models))]
        out["fit_accuracy"] = res.train_accuracy.tolist()
        out["epochs_run"] = res.epochs_run.tolist()
        out["converged"] = res.converged.tolist()
        out["worst"] = res.convergence.to_dict()
        return out


def _maker(name: str, value: Any):
    if not callable(value):
        raise RedundancyError(f"{name}={value!r} is not callable; give a function returning a new model")
    return value


def _classification_data(name: str, data: Any):
    ds = as_dataset(data)
    if ds.task != "classification":
        raise RedundancyError("memorization needs a classification data set (integer labels)")
    return ds


@_v.validate_params({"make_model": _maker, "data": _classification_data, "n_models": _v.Int(2, _MAX_MODELS),
                     "subset_ratio": _v.Float(0.0, 1.0, lo_open=True, hi_open=True), "seed": _v.Seed(), "device": lambda name, v: check_device(v),
                     "chunk_size": _v.Int(1, _MAX_MODELS), "backend": _v.Choice(*BACKENDS), "top_k": _v.Int(1),
                     "max_dense": _v.Int(0), "progress": _v.Bool(),
                     "fit_threshold": _v.Float(0.0, 1.0, lo_open=True), "min_fit_fraction": _v.Float(0.0, 1.0)})
def memorization(make_model: Callable[[], torch.nn.Module], data: Any, *, n_models: int = 100,
                 subset_ratio: float = 0.7, epochs: int = 200, fit_threshold: float = 0.99, tol: float = 1e-4,
                 patience: int = 10, min_fit_fraction: float = 0.9, batch_size: int = 64, lr: float = 1e-2,
                 optimizer: str = "adam", weight_decay: float = 0.0, seed: int = 0, device: Any = "cpu",
                 chunk_size: int = 64, backend: str = "sequential", n_jobs: int = 1, cache_dir=None,
                 top_k: int = 10, max_dense: int = MAX_DENSE, progress: bool = False) -> MemorizationResult:
    """Feldman-Zhang memorization and influence by training ``n_models`` models on random subsets,
    each until it fits its subset.

    Every run trains (:func:`redundancy.training.train_ensemble`) until its accuracy on its own
    subset reaches ``fit_threshold``, or its training loss has stopped improving (relative change
    below ``tol`` over ``patience`` epochs), or ``epochs`` (the cap) run out: Feldman and Zhang's
    estimator assumes the runs fit their subsets. The result reports the fraction of runs that
    reached the threshold (``fit_fraction``) and each example's in-subset accuracy
    (``in_subset_accuracy``); below ``min_fit_fraction`` a
    :class:`~redundancy.errors.ConvergenceWarning` says the estimates are unreliable.

    Parameters
    ----------
    make_model : callable
        ``make_model() -> torch.nn.Module`` (a fresh, randomly initialised classifier without
        buffers or dropout); module-level for process backends.
    data : Dataset or arrays
        A classification data set; memorization is estimated on its training split, influence on
        its test split.
    n_models, subset_ratio : int, float
        ``T`` runs, each on ``round(subset_ratio * n_train)`` examples.
    epochs : int
        The cap on every run's epochs.
    fit_threshold, tol, patience : float, float, int
        A run stops once its subset accuracy is at least ``fit_threshold`` or its loss has settled.
    min_fit_fraction : float
        Warn when fewer runs than this reached ``fit_threshold``.
    batch_size, lr, optimizer, weight_decay
        Training of every run (Adam at ``lr=1e-2`` by default: small networks fit their subsets in
        tens of epochs).
    seed : int
    device : str
    chunk_size : int
        Runs trained at once (one vmapped ensemble, one cached task).
    backend, n_jobs, cache_dir
        Passed to :func:`redundancy.parallel.run_tasks`.
    top_k, max_dense
        See :func:`~redundancy.longtail.estimator.estimate_memorization`.

    Returns
    -------
    MemorizationResult

    Examples
    --------
    >>> import numpy as np
    >>> from torch import nn
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(60, 4)).astype("float32"); y = (X[:, 0] > 0).astype("int64")
    >>> X[:, 0] += np.where(y == 1, 1.0, -1.0)  # a margin: every run can fit its subset
    >>> res = memorization(lambda: nn.Linear(4, 2), (X, y), n_models=8, seed=0)
    >>> res.mem.shape, res.n_models, res.fit_fraction
    ((60,), 8, 1.0)
    """
    ds = data
    sub, init, order = _draw_runs(len(ds.y_train), n_models, subset_ratio, seed)
    dkey, mkey = _fingerprint(make_model, ds)
    train_kw = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "optimizer": optimizer,
                "weight_decay": weight_decay, "tol": tol, "patience": patience, "target_accuracy": fit_threshold}
    tasks = [{"data": dkey, "model": mkey, "subsets": sub[a:a + chunk_size], "init_seeds": init[a:a + chunk_size],
              "order_seeds": order[a:a + chunk_size], "train": train_kw}
             for a in range(0, n_models, chunk_size)]
    results = run_tasks(_Chunk(make_model, ds, str(device)), tasks, backend=backend, n_jobs=n_jobs,
                        cache_dir=cache_dir, progress=progress, desc="memorization chunks")
    n, m = len(ds.y_train), len(ds.y_test)
    Ctr = np.concatenate([_unpack(r["train"], (len(t["init_seeds"]), n)) for r, t in zip(results, tasks)])
    Cte = np.concatenate([_unpack(r["test"], (len(t["init_seeds"]), m)) for r, t in zip(results, tasks)])
    masks = np.zeros((n_models, n), bool)
    np.put_along_axis(masks, sub, True, axis=1)
    fit_acc = np.array([v for r in results for v in r["fit_accuracy"]], dtype=float)
    settings = {"subset_ratio": subset_ratio, "seed": seed, "chunk_size": chunk_size, "device": str(device),
                "source": "trained", "fit_threshold": fit_threshold, "min_fit_fraction": min_fit_fraction,
                "mean_final_loss": float(np.mean([v for r in results for v in r["final_loss"]] or [0.0])),
                "mean_epochs_run": float(np.mean([v for r in results for v in r["epochs_run"]])), **train_kw}
    res = estimate_memorization(masks, Ctr, Cte, y_train=ds.y_train, y_test=ds.y_test, top_k=top_k,
                                max_dense=max_dense, settings=settings)
    res = dataclasses.replace(res, fit_fraction=float(np.mean(fit_acc >= fit_threshold)), run_fit_accuracy=fit_acc,
                              convergence=_least_converged(results))
    _warn_unfit(res, fit_threshold, min_fit_fraction, epochs, lr)
    return res


def _least_converged(results: list[dict]) -> Convergence:
    """The chunks' least converged runs, the worst of them (unconverged first, then the slowest)."""
    convs = []
    for r in results:
        d = r["worst"]
        convs.append(Convergence(**{f.name: d[f.name] for f in dataclasses.fields(Convergence) if f.name in d}
                                 | {"history": tuple(d.get("history", ()))}))
    return max(convs, key=lambda c: (not c.converged, c.epochs_run))


def _warn_unfit(res: MemorizationResult, threshold: float, min_fraction: float, epochs: int, lr: float) -> None:
    if res.fit_fraction >= min_fraction:
        return
    warnings.warn(f"memorization: only {res.fit_fraction:.0%} of the {res.n_models} runs reached accuracy "
                  f"{threshold} on their own subset (median {np.median(res.run_fit_accuracy):.3f}; "
                  f"min_fit_fraction={min_fraction}) within epochs={epochs} at lr={lr}: the estimates are unreliable "
                  "(an example a run did not fit counts as not memorized, so mem is understated); raise epochs or "
                  "lr, or use a larger model", ConvergenceWarning, stacklevel=4)
