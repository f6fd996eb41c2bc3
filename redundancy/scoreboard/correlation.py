"""How the scores agree: rank normalisation, Spearman and Kendall correlations, the consensus.

* rank-normalised score of layer ``l``: ``(rank_l - 1) / (n - 1)`` with average ranks of ties
  (``scipy.stats.rankdata``) over the ``n`` layers the score covers (0.5 when ``n = 1``), so 0 =
  least and 1 = most redundant on this model, whatever the score's scale;
* correlation of two scores: ``scipy.stats.spearmanr`` / ``kendalltau`` (tau-b) over the layers (or
  channels) where both are defined; undefined (NaN) with fewer than 3 common entries or when one
  of them is constant there;
* consensus of layer ``l``: ``mean_s x_sl`` over the scores defined on ``l`` (an absolute
  redundancy in ``[0, 1]``), ``consensus_rank = mean_s rank-normalised x_sl``, ``spread =``
  population standard deviation of ``x_sl`` over ``s`` and ``rank_spread`` the same of the
  rank-normalised values.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["rank_normalise", "correlation_matrix", "reference_table", "consensus"]

MIN_COMMON = 3


def rank_normalise(frame: pd.DataFrame) -> pd.DataFrame:
    """Each column's average ranks mapped to ``[0, 1]``; NaN stays NaN.

    Examples
    --------
    >>> rank_normalise(pd.DataFrame({"a": [0.1, 0.5, 0.5, 0.9]}))["a"].tolist()
    [0.0, 0.5, 0.5, 1.0]
    """
    out = pd.DataFrame(index=frame.index)
    for c in frame.columns:
        v = frame[c].to_numpy(dtype=float)
        ok = np.isfinite(v)
        r = np.full(v.shape, np.nan)
        n = int(ok.sum())
        if n == 1:
            r[ok] = 0.5
        elif n > 1:
            r[ok] = (stats.rankdata(v[ok]) - 1.0) / (n - 1.0)
        out[c] = r
    return out


def _pair(x: np.ndarray, y: np.ndarray, method: str) -> tuple[float, int]:
    ok = np.isfinite(x) & np.isfinite(y)
    n = int(ok.sum())
    if n < MIN_COMMON or np.ptp(x[ok]) == 0 or np.ptp(y[ok]) == 0:
        return float("nan"), n
    fn = stats.spearmanr if method == "spearman" else stats.kendalltau
    return float(fn(x[ok], y[ok])[0]), n


def correlation_matrix(frame: pd.DataFrame, method: str = "spearman") -> pd.DataFrame:
    """Pairwise rank correlation of the columns (pairwise-complete entries).

    Examples
    --------
    >>> df = pd.DataFrame({"a": [1, 2, 3, 4], "b": [2, 4, 6, 9], "c": [4, 3, 2, 1]})
    >>> correlation_matrix(df).round(3).values.tolist()
    [[1.0, 1.0, -1.0], [1.0, 1.0, -1.0], [-1.0, -1.0, 1.0]]
    """
    cols = list(frame.columns)
    m = np.full((len(cols), len(cols)), np.nan)
    for i, a in enumerate(cols):
        for j, b in enumerate(cols):
            if j >= i:
                m[i, j] = m[j, i] = _pair(frame[a].to_numpy(float), frame[b].to_numpy(float), method)[0]
    return pd.DataFrame(m, index=cols, columns=cols)


def reference_table(frame: pd.DataFrame, reference: str) -> pd.DataFrame:
    """Spearman and Kendall correlation of every other column with ``reference``, best first
    (rows ``score, spearman, kendall, n``); which cheap score predicts the reference best."""
    rows = []
    ref = frame[reference].to_numpy(float)
    for c in frame.columns:
        if c == reference:
            continue
        x = frame[c].to_numpy(float)
        rho, n = _pair(x, ref, "spearman")
        tau, _ = _pair(x, ref, "kendall")
        rows.append({"score": c, "spearman": rho, "kendall": tau, "n": n})
    df = pd.DataFrame(rows, columns=["score", "spearman", "kendall", "n"])
    return df.sort_values("spearman", ascending=False, na_position="last").reset_index(drop=True)


def consensus(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns ``consensus, consensus_rank, spread, rank_spread, n_scores`` per row of ``frame``.

    Examples
    --------
    >>> c = consensus(pd.DataFrame({"a": [0.0, 1.0], "b": [0.2, 0.6]}))
    >>> c["consensus"].round(3).tolist(), c["consensus_rank"].tolist()
    ([0.1, 0.8], [0.0, 1.0])
    """
    raw = frame.to_numpy(float)
    ranks = rank_normalise(frame).to_numpy(float)
    n = np.isfinite(raw).sum(1)
    out = pd.DataFrame(index=frame.index)
    with np.errstate(invalid="ignore"):
        safe = np.where(n > 0, n, 1)
        out["consensus"] = np.where(n > 0, np.nansum(raw, 1) / safe, np.nan)
        out["consensus_rank"] = np.where(n > 0, np.nansum(ranks, 1) / safe, np.nan)
        dev = np.where(np.isfinite(raw), raw - out["consensus"].to_numpy()[:, None], 0.0)
        rdev = np.where(np.isfinite(ranks), ranks - out["consensus_rank"].to_numpy()[:, None], 0.0)
        out["spread"] = np.where(n > 0, np.sqrt((dev ** 2).sum(1) / safe), np.nan)
        out["rank_spread"] = np.where(n > 0, np.sqrt((rdev ** 2).sum(1) / safe), np.nan)
    out["n_scores"] = n
    return out
