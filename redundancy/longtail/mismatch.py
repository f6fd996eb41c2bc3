r"""Reference-vs-compressed mismatches and how they relate to per-example long-tail scores.

For a reference model :math:`f`, a compressed model :math:`g` and labelled examples
:math:`(x_j, y_j)`, the mismatch indicator is :math:`m_j = 1[\arg\max f(x_j) \ne \arg\max g(x_j)]`.
:func:`mismatch_report` gives, per compressed model: agreement :math:`1 - \bar m`, flip rate
:math:`\bar m`, the rates of "reference correct → compressed wrong" and the reverse, "both wrong but
different", and the flip rate of each class. Given per-example scores :math:`s_j` (memorization,
maximal influence, the reference's loss, any array) it adds

* the mismatch rate in equal-count score bins (quantile edges; tied scores share a bin);
* the enrichment of mismatches among the ``top_fraction`` highest-score examples
  (:math:`k = \lceil \text{top\_fraction}\cdot n \rceil`, ties broken by position),
  ``rate_top / rate_all`` (1: no concentration; at most ``1 / top_fraction``; ``rate_rest`` is
  reported too), with the one-sided permutation p-value
  :math:`(1 + \#\{\pi: X_\pi \ge X\}) / (1 + P)` where :math:`X` is the number of mismatches in the
  top set and :math:`X_\pi` that of a uniformly random set of ``k`` examples (a shuffle of the
  scores); under no association :math:`X` is hypergeometric;
* the AUC of the score as a mismatch predictor (Mann-Whitney, average ranks for ties).

(Dam et al., "Understanding the effect of the long tail on neural network compression", arXiv 2306.06238.)
"""

from __future__ import annotations

import math
import warnings
from dataclasses import field
from typing import Any

import numpy as np

import redundancy._validation as _v
from redundancy._validation import as_generator, check_module
from redundancy.data import as_dataset
from redundancy.errors import DecisionWarning, RedundancyError
from redundancy.longtail.estimator import MemorizationResult
from redundancy.training import Verdict, check_decision, check_device, evaluate

__all__ = ["LongTailRiskReport", "mismatch_report"]

_MAX_PERMUTATIONS = 1_000_000
#: most random draws of the permutation test (n_permutations x examples)
_MAX_DRAWS = 2 * 10 ** 9
_MAX_BINS = 1000
_MAX_BATCH = 1_000_000


def _as_models(compressed) -> dict:
    """``{name: model}`` from one model or a dict (names as given)."""
    if isinstance(compressed, dict):
        if not compressed:
            raise RedundancyError("compressed is an empty dict; give at least one model")
        return {str(k): check_module(f"compressed[{k!r}]", v) for k, v in compressed.items()}
    return {"compressed": check_module("compressed", compressed)}


@_v.validate_params({"n": _v.Int(1, _v.MAX_NUMEL), "split": _v.Choice("test", "train")})
def as_scores(scores, n: int, split: str) -> dict:
    """``{name: float array (n,)}`` from None, an array, a MemorizationResult or a dict of them.

    Every score must hold ``n`` finite numbers (one per example of ``split``); a MemorizationResult
    gives ``mem`` (``split="train"``) or ``max_infl`` (``"test"``)."""
    return _as_scores(scores, n, split)


def _as_scores(scores, n: int, split: str) -> dict:
    if scores is None:
        return {}
    if not isinstance(scores, dict):
        scores = {"memorization" if split == "train" else "max_influence": scores} \
            if isinstance(scores, MemorizationResult) else {"score": scores}
    out = {}
    for name, s in scores.items():
        if isinstance(s, MemorizationResult):
            s = s.mem if split == "train" else s.max_infl
        try:
            a = np.asarray(s, dtype=np.float64)
        except (TypeError, ValueError, OverflowError):
            raise RedundancyError(f"scores[{name!r}] is not a numeric array") from None
        if a.shape != (n,) or not np.isfinite(a).all():
            raise RedundancyError(f"scores[{name!r}] has shape {a.shape}; it must be {n} finite values, one per "
                                  f"{split} example")
        out[str(name)] = a
    return out


def _mismatch_stats(y, pred_ref, pred_cmp, n_classes: int) -> dict:
    """Agreement, flip rates and per-class flip rates of one compressed model (plain numpy)."""
    mis = pred_ref != pred_cmp
    rc, cc = pred_ref == y, pred_cmp == y
    per = np.array([mis[y == c].mean() if (y == c).any() else 0.0 for c in range(n_classes)])
    return {"accuracy": float(cc.mean()), "agreement": float(1 - mis.mean()), "flip_rate": float(mis.mean()),
            "n_mismatch": int(mis.sum()), "ref_correct_to_wrong": float((rc & ~cc).mean()),
            "ref_wrong_to_correct": float((~rc & cc).mean()), "both_wrong_differ": float((~rc & ~cc & mis).mean()),
            "per_class": per, "mismatch": mis}


def _auc(score, pos):
    from scipy.stats import rankdata

    n1 = int(pos.sum())
    n0 = len(pos) - n1
    if n1 == 0 or n0 == 0:
        return None
    return float((rankdata(score)[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def _two_edges(lo: float) -> np.ndarray:
    """Two increasing finite edges around a constant score ``lo`` (``[lo, lo + 1]`` where representable)."""
    if lo + 1 > lo:
        return np.array([lo, lo + 1.0])
    with np.errstate(over="ignore"):
        up = np.nextafter(lo, np.inf)
    return np.array([lo, up]) if np.isfinite(up) else np.array([np.nextafter(lo, -np.inf), lo])


def _uniform_edges(lo: float, hi: float, k: int) -> np.ndarray:
    if hi == lo:
        lo, hi = _two_edges(lo)
    with np.errstate(over="ignore"):
        span_ok = np.isfinite(hi - lo)
    if span_ok:
        return np.unique(np.linspace(lo, hi, k + 1))
    c = max(abs(lo), abs(hi))  # hi - lo overflows: interpolate on the scaled range
    return np.unique(np.linspace(lo / c, hi / c, k + 1) * c)


def _robust_mean(a: np.ndarray) -> float:
    """Mean without overflow of the sum (scores near the float limit)."""
    with np.errstate(over="ignore", invalid="ignore"):
        m = float(a.mean())
    if np.isfinite(m):
        return m
    c = float(np.abs(a).max())
    return c * float((a / c).mean())


def _bins(name: str, bins: Any):
    """``bins`` as given to :func:`bin_edges`, checked: an int, ``"uniform:K"`` or a float array of edges."""
    if isinstance(bins, str) and bins.startswith("uniform:"):
        k = bins[8:]
        if not (k.isascii() and k.isdecimal() and len(k) <= 4 and 1 <= int(k) <= _MAX_BINS):
            raise RedundancyError(f"{name}={bins!r} is not allowed; 'uniform:K' needs an integer K in [1, {_MAX_BINS}]")
        return bins
    if isinstance(bins, (int, np.integer)) and not isinstance(bins, (bool, np.bool_)) and 1 <= bins <= _MAX_BINS:
        return int(bins)
    try:
        edges = np.asarray(bins, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        edges = np.zeros(0)
    if edges.ndim != 1 or not 2 <= len(edges) <= _v.MAX_NUMEL or not np.isfinite(edges).all() \
            or np.any(np.diff(edges) <= 0):
        raise RedundancyError(f"{name}={_v._short(bins)} is not allowed; give an int in [1, {_MAX_BINS}] (quantile "
                              f"bins), 'uniform:K', or an increasing array of at least 2 finite edges")
    return edges


@_v.validate_params({"score": _v.Array(min_ndim=1, max_ndim=1), "bins": _bins})
def bin_edges(score, bins=5) -> np.ndarray:
    """Bin edges of a per-example score.

    Parameters
    ----------
    score : array (n,)
        Finite scores.
    bins : int, str or array
        ``int`` in [1, 1000] = equal-count (quantile) bins, tied scores kept together (so possibly
        fewer); ``"uniform:K"`` (``K`` in [1, 1000]) = ``K`` equal-width bins over the score's range;
        an increasing array of at least 2 finite edges = those edges (scores outside fall into the
        first / last bin). A constant score gets the single bin ``[s, s + 1]``.

    Returns
    -------
    numpy.ndarray
        Increasing finite edges.

    Examples
    --------
    >>> bin_edges(np.array([0.0, 1.0, 2.0, 3.0]), 2).tolist()
    [0.0, 1.5, 3.0]
    >>> bin_edges(np.array([0.0, 4.0]), "uniform:4").tolist()
    [0.0, 1.0, 2.0, 3.0, 4.0]
    """
    return _bin_edges(score, bins)


def _bin_edges(score: np.ndarray, bins) -> np.ndarray:
    """Edges for ``bins`` already checked by :func:`_bins`."""
    lo, hi = float(score.min()), float(score.max())
    if isinstance(bins, str):
        edges = _uniform_edges(lo, hi, int(bins[8:]))
    elif isinstance(bins, int):
        edges = np.unique(np.quantile(score, np.linspace(0, 1, bins + 1)))
    else:
        edges = bins
    if len(edges) < 2:
        edges = _two_edges(lo)
    return edges


def _score_stats(mismatch, score, *, n_bins=5, top_fraction: float = 0.1, n_permutations: int = 2000,
                seed=0) -> tuple[dict, list[dict]]:
    """Enrichment, permutation p-value and AUC of one score, and the mismatch rate per score bin
    (``n_bins`` as ``bins`` of :func:`bin_edges`)."""
    mis = np.asarray(mismatch, bool)
    n = len(mis)
    k = min(n, max(1, math.ceil(top_fraction * n)))
    top = np.zeros(n, bool)
    top[np.argsort(-score, kind="stable")[:k]] = True
    x = int(mis[top].sum())
    rate_top, rate_rest = x / k, (float(mis[~top].mean()) if k < n else 0.0)
    rng = as_generator(seed)
    hits, done = 0, 0
    while done < n_permutations and k < n:
        b = min(n_permutations - done, max(1, 2_000_000 // n))
        pick = np.argpartition(rng.random((b, n)), k - 1, axis=1)[:, :k]
        hits += int((mis[pick].sum(1) >= x).sum())
        done += b
    p = (1 + hits) / (1 + done) if done else 1.0
    edges = _bin_edges(score, n_bins)
    which = np.clip(np.searchsorted(edges, score, side="right") - 1, 0, len(edges) - 2)
    bins = [{"bin": b, "lo": float(edges[b]), "hi": float(edges[b + 1]), "count": int((which == b).sum()),
             "mean_score": _robust_mean(score[which == b]) if (which == b).any() else
             float(edges[b] / 2 + edges[b + 1] / 2),
             "mismatch_rate": float(mis[which == b].mean()) if (which == b).any() else 0.0}
            for b in range(len(edges) - 1)]
    rate_all = float(mis.mean())
    row = {"top_fraction": top_fraction, "n_top": k, "mismatch_top": x, "rate_top": rate_top, "rate_rest": rate_rest,
           "enrichment": rate_top / rate_all if rate_all > 0 else None, "p_value": p, "auc": _auc(score, mis)}
    return row, bins


@_v.result
class LongTailRiskReport(_v.Result):
    """What :func:`mismatch_report` found: one summary row per compressed model, class and score tables.

    Attributes
    ----------
    split : str
    n, n_classes : int
    reference_accuracy : float
    rows : tuple of dict
        Per compressed model: ``model, accuracy, agreement, flip_rate, n_mismatch,
        ref_correct_to_wrong, ref_wrong_to_correct, both_wrong_differ``.
    per_class : numpy.ndarray, shape (n_models, n_classes)
        Flip rate among the examples of each true class.
    class_counts : numpy.ndarray
    score_rows : tuple of dict
        Per (model, score): ``enrichment, p_value, auc, rate_top, rate_rest, n_top, ...``.
    bins : tuple of dict
        Per (model, score, bin): ``lo, hi, count, mismatch_rate``.
    mismatches : dict of name -> bool array; scores : dict of name -> array; labels : array
    verdict : Verdict
        The reference against chance (the accuracy of always answering the training split's
        commonest class) and the least accurate compressed model against both
        (:func:`~redundancy.training.check_decision`): ``"reference_near_chance"`` when the reference
        looks untrained (then every flip rate is noise), ``"near_chance"`` when a compressed model is.
    """

    split: str
    n: int
    n_classes: int
    reference_accuracy: float
    rows: tuple = field(repr=False)
    per_class: np.ndarray = field(repr=False)
    class_counts: np.ndarray = field(repr=False)
    score_rows: tuple = field(repr=False)
    bins: tuple = field(repr=False)
    mismatches: dict = field(repr=False, metadata=_v.NOT_EXPORTED)
    scores: dict = field(repr=False, metadata=_v.NOT_EXPORTED)
    labels: np.ndarray = field(repr=False, metadata=_v.NOT_EXPORTED)
    verdict: Verdict = field(repr=False)
    settings: dict = field(default_factory=dict, repr=False)

    @property
    def reference_near_chance(self) -> bool:
        """True when the reference's accuracy is near chance (an untrained reference: read nothing into the flips)."""
        return self.verdict.verdict == "reference_near_chance"

    @property
    def models(self) -> tuple[str, ...]:
        return tuple(r["model"] for r in self.rows)

    def to_pandas(self):
        """One row per compressed model; each score adds ``<score>_enrichment``, ``_p_value``, ``_auc``, ..."""
        import pandas as pd

        df = pd.DataFrame(list(self.rows)).set_index("model")
        for r in self.score_rows:
            for key in ("enrichment", "p_value", "auc", "rate_top", "rate_rest"):
                df.loc[r["model"], f"{r['score']}_{key}"] = np.nan if r[key] is None else r[key]
        return df

    def class_table(self):
        """Long table ``model, class, count, flip_rate``."""
        import pandas as pd

        return pd.DataFrame([{"model": m, "class": c, "count": int(self.class_counts[c]),
                              "flip_rate": float(self.per_class[i, c])}
                             for i, m in enumerate(self.models) for c in range(self.n_classes)])

    def bin_table(self):
        """Long table ``model, score, bin, lo, hi, count, mismatch_rate``."""
        import pandas as pd

        return pd.DataFrame(list(self.bins))

    def example_table(self):
        """One row per example: ``index, label``, each score, and a mismatch column per model."""
        import pandas as pd

        df = pd.DataFrame({"index": np.arange(self.n), "label": self.labels})
        for k, v in self.scores.items():
            df[k] = v
        for k, v in self.mismatches.items():
            df[f"mismatch_{k}"] = v
        return df

    __eq__ = object.__eq__  # identity (arrays have no single truth value)
    __hash__ = object.__hash__

    def __repr__(self) -> str:
        lines = [f"LongTailRiskReport(split={self.split!r}, n={self.n}, "
                 f"reference accuracy={self.reference_accuracy:.4f})"]
        if not self.verdict.ok:
            lines.append(f"  WARNING ({self.verdict.verdict}): {self.verdict.reason}")
        for r in self.rows:
            lines.append(f"  {r['model']:<20} acc {r['accuracy']:.4f}  flip {r['flip_rate']:.4f}  "
                         f"ref-correct->wrong {r['ref_correct_to_wrong']:.4f}")
        for r in self.score_rows:
            e = "n/a" if r["enrichment"] is None else f"{r['enrichment']:.2f}"
            a = "n/a" if r["auc"] is None else f"{r['auc']:.3f}"
            lines.append(f"  {r['model']:<20} {r['score']}: enrichment {e} (p={r['p_value']:.3g}), AUC {a}")
        return "\n".join(lines)


def _chance(y_train: np.ndarray, y: np.ndarray) -> float:
    """Accuracy on ``y`` of always answering the training split's commonest class (ties: the smallest label).

    >>> _chance(np.array([0, 1, 1]), np.array([1, 1, 0, 2]))
    0.5
    """
    return float(np.mean(np.asarray(y) == np.bincount(np.asarray(y_train).astype(np.int64)).argmax()))


def _verdict(ref_acc: float, worst: dict, chance: float) -> Verdict:
    """The reference against chance, the least accurate compressed model against both; a DecisionWarning unless ok."""
    v = check_decision(metric="accuracy", original=ref_acc, decided=worst["accuracy"], chance=chance,
                       what=f"compressed model {worst['model']!r}", warn=False)
    if v.verdict == "reference_near_chance":
        msg = (f"the reference's accuracy {ref_acc:.4g} is near chance ({chance:.4g}): it looks untrained, so "
               "its flips and enrichments mean nothing; give the reference its trained weights")
    else:
        msg = v.reason
    if not v.ok:
        warnings.warn(f"mismatch_report: {msg}", DecisionWarning, stacklevel=4)
    return v


def _classification(what: str):
    def check(name: str, data: Any):
        ds = as_dataset(data)
        if ds.task != "classification":
            raise RedundancyError(f"{what} needs a classification data set (integer labels)")
        return ds
    return check


def _open_fraction(name: str, value: Any) -> float:
    if not (isinstance(value, float) and 0 < value < 1):
        raise RedundancyError(f"{name}={value!r} is not allowed; it must be a float in (0, 1)")
    return value


@_v.validate_params({"reference": check_module, "compressed": lambda name, v: _as_models(v),
                     "data": _classification("mismatch_report"), "split": _v.Choice("test", "train"),
                     "n_bins": _bins, "top_fraction": _open_fraction, "n_permutations": _v.Int(0, _MAX_PERMUTATIONS),
                     "seed": _v.Seed(), "device": lambda name, v: check_device(v), "batch_size": _v.Int(1, _MAX_BATCH)})
def mismatch_report(reference, compressed, data, *, scores=None, split: str = "test", n_bins: int = 5,
                    top_fraction: float = 0.1, n_permutations: int = 2000, seed: int = 0, device: Any = "cpu",
                    batch_size: int = 1024) -> LongTailRiskReport:
    """Where a compressed model (or several) changes the reference's answers, and whether on the long tail.

    Parameters
    ----------
    reference : torch.nn.Module
    compressed : torch.nn.Module or dict of name -> torch.nn.Module
        Any models (low-rank, pruned, quantized, ...); one summary row each.
    data : Dataset or arrays
        Classification data; ``split`` chooses the examples.
    scores : array, MemorizationResult or dict of them, optional
        One value per example of ``split``; a MemorizationResult gives ``mem`` (train) or
        ``max_infl`` (test).
    split : {"test", "train"}
    n_bins : int, "uniform:K" or array of edges
        Score bins (see :func:`bin_edges`): equal-count by default.
    top_fraction, n_permutations, seed
        The high-score set and the permutation test.

    Returns
    -------
    LongTailRiskReport
        With a ``verdict``; a reference (or compressed model) near chance emits a
        :class:`~redundancy.errors.DecisionWarning`: flips against an untrained reference mean nothing.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from torch import nn
    >>> X = np.eye(4, dtype="float32"); y = np.array([0, 1, 0, 1])
    >>> ref = nn.Linear(4, 2); cmp = nn.Linear(4, 2)
    >>> with torch.no_grad():
    ...     _ = ref.weight.copy_(torch.tensor([[1., 0, 1, 0], [0, 1, 0, 1]])); _ = ref.bias.zero_()
    ...     _ = cmp.weight.copy_(torch.tensor([[1., 0, 0, 0], [0, 1, 1, 1]])); _ = cmp.bias.zero_()
    >>> rep = mismatch_report(ref, {"c": cmp}, (X, y), scores=[0., 0., 1., 0.], top_fraction=0.25)
    >>> rep.rows[0]["flip_rate"], rep.score_rows[0]["auc"]
    (0.25, 1.0)
    """
    models, ds = compressed, data
    y = ds.y_test if split == "test" else ds.y_train
    if scores is not None and n_permutations * len(y) > _MAX_DRAWS:
        raise RedundancyError(f"n_permutations={n_permutations} x {len(y)} examples needs "
                              f"{n_permutations * len(y):,} random draws; the limit is {_MAX_DRAWS:,} "
                              "(lower n_permutations)")
    sc = _as_scores(scores, len(y), split)
    ref = evaluate(reference, ds, split=split, device=device, batch_size=batch_size)
    rows, per, srows, bins, mism = [], [], [], [], {}
    for name, model in models.items():
        st = _mismatch_stats(y, ref.predictions, evaluate(model, ds, split=split, device=device,
                                                         batch_size=batch_size).predictions, ds.n_classes)
        per.append(st.pop("per_class"))
        mism[name] = st.pop("mismatch")
        rows.append({"model": name, **st})
        for sname, s in sc.items():
            row, b = _score_stats(mism[name], s, n_bins=n_bins, top_fraction=top_fraction,
                                 n_permutations=n_permutations, seed=seed)
            srows.append({"model": name, "score": sname, **row})
            bins += [{"model": name, "score": sname, **r} for r in b]
    counts = np.bincount(y, minlength=ds.n_classes)
    verdict = _verdict(float(ref.accuracy), min(rows, key=lambda r: r["accuracy"]), _chance(ds.y_train, y))
    return LongTailRiskReport(verdict=verdict, split=split, n=int(len(y)), n_classes=ds.n_classes, reference_accuracy=float(ref.accuracy),
                              rows=tuple(rows), per_class=np.array(per), class_counts=counts, score_rows=tuple(srows),
                              bins=tuple(bins), mismatches=mism, scores=sc, labels=np.asarray(y), settings={"n_bins": n_bins if isinstance(n_bins, (int, str)) else n_bins.tolist(),
                               "top_fraction": top_fraction, "n_permutations": n_permutations,
                               "seed": seed})
