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

import redundancy._validation as _v
from redundancy.errors import RedundancyError

__all__: list[str] = []  # the face is in the package's __init__

MIN_COMMON = 3
#: Most score columns (the correlation matrix has ``columns**2`` entries).
MAX_COLUMNS = 1_000
#: Most entries (rows x columns) of a score frame.
MAX_CELLS = 10_000_000


def _check_frame(name: str, frame) -> pd.DataFrame:
    """A DataFrame of real-valued columns with unique labels; NaN = not scored, inf refused."""
    if not isinstance(frame, pd.DataFrame):
        raise RedundancyError(f"{name}={_v._short(frame)} is not allowed; {name} must be a pandas DataFrame "
                              "(one column per score)")
    if frame.shape[1] > MAX_COLUMNS or frame.size > MAX_CELLS:
        raise RedundancyError(f"{name} has shape {frame.shape}; the limits are {MAX_COLUMNS:,} columns and "
                              f"{MAX_CELLS:,} entries")
    if not frame.columns.is_unique:
        dup = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})[:5]
        raise RedundancyError(f"{name} has duplicate column labels {dup}; every score needs its own column")
    for c in frame.columns:
        col = frame[c]
        if not (pd.api.types.is_numeric_dtype(col) or col.isna().all()) or pd.api.types.is_complex_dtype(col):
            raise RedundancyError(f"{name} column {_v._short(c, 40)} has dtype {col.dtype}; every column must "
                                  "hold real numbers (NaN where a score does not apply)")
        v = col.to_numpy(dtype=float, na_value=np.nan)
        if np.isinf(v).any():
            raise RedundancyError(f"{name} column {_v._short(c, 40)} holds inf; scores must be finite (NaN where "
                                  "a score does not apply)")
    return frame


@_v.validate_params({"frame": _v.Check(_check_frame)})
def rank_normalise(frame: pd.DataFrame) -> pd.DataFrame:
    """Each column's average ranks mapped to ``[0, 1]``; NaN stays NaN.

    ``frame``: a DataFrame of real-valued score columns with unique labels (NaN = not scored; inf
    refused; at most :data:`MAX_COLUMNS` columns and :data:`MAX_CELLS` entries).

    Examples
    --------
    >>> rank_normalise(pd.DataFrame({"a": [0.1, 0.5, 0.5, 0.9]}))["a"].tolist()
    [0.0, 0.5, 0.5, 1.0]
    """
    out = pd.DataFrame(index=frame.index)
    for c in frame.columns:
        v = frame[c].to_numpy(dtype=float, na_value=np.nan)
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


def _col(frame, c) -> np.ndarray:
    return frame[c].to_numpy(dtype=float, na_value=np.nan)


@_v.validate_params({"frame": _v.Check(_check_frame), "method": _v.Choice("spearman", "kendall")})
def correlation_matrix(frame: pd.DataFrame, method: str = "spearman") -> pd.DataFrame:
    """Pairwise rank correlation of the columns (pairwise-complete entries).

    ``frame`` as in :func:`rank_normalise`; ``method``: ``"spearman"`` or ``"kendall"`` (tau-b). An
    entry is NaN (undefined) with fewer than 3 common rows or a constant column on them.

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
                m[i, j] = m[j, i] = _pair(_col(frame, a), _col(frame, b), method)[0]
    return pd.DataFrame(m, index=cols, columns=cols)


def _check_reference(frame, reference):
    try:
        ok = reference in frame.columns
    except TypeError:  # an unhashable label
        ok = False
    if not ok:
        raise RedundancyError(f"reference={_v._short(reference)} is not a column of frame; choose one of "
                              f"{[str(c) for c in frame.columns][:20]}")


@_v.validate_params({"frame": _v.Check(_check_frame)})
def reference_table(frame: pd.DataFrame, reference: str) -> pd.DataFrame:
    """Spearman and Kendall correlation of every other column with ``reference``, best first
    (rows ``score, spearman, kendall, n``); which cheap score predicts the reference best.

    ``frame`` as in :func:`rank_normalise`; ``reference``: one of its column labels.

    Examples
    --------
    >>> df = pd.DataFrame({"car": [0.1, 0.4, 0.9, 0.5], "l1": [0.2, 0.3, 0.8, 0.6], "x": [4, 3, 1, 2]})
    >>> reference_table(df, "car")[["score", "spearman"]].values.tolist()
    [['l1', 1.0], ['x', -1.0]]
    """
    _check_reference(frame, reference)
    rows = []
    ref = _col(frame, reference)
    for c in frame.columns:
        if c == reference:
            continue
        x = _col(frame, c)
        rho, n = _pair(x, ref, "spearman")
        tau, _ = _pair(x, ref, "kendall")
        rows.append({"score": c, "spearman": rho, "kendall": tau, "n": n})
    df = pd.DataFrame(rows, columns=["score", "spearman", "kendall", "n"])
    return df.sort_values("spearman", ascending=False, na_position="last").reset_index(drop=True)


@_v.validate_params({"frame": _v.Check(_check_frame)})
def consensus(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns ``consensus, consensus_rank, spread, rank_spread, n_scores`` per row of ``frame``.

    ``frame`` as in :func:`rank_normalise` (NaN = not scored; a row without any score gets NaN).
    The values are divided by the largest absolute one before averaging (no overflow); a spread
    that does not fit a float is refused.

    Examples
    --------
    >>> c = consensus(pd.DataFrame({"a": [0.0, 1.0], "b": [0.2, 0.6]}))
    >>> c["consensus"].round(3).tolist(), c["consensus_rank"].tolist()
    ([0.1, 0.8], [0.0, 1.0])
    """
    raw = frame.to_numpy(dtype=float, na_value=np.nan) if frame.shape[1] else np.zeros((len(frame), 0))
    ranks = rank_normalise(frame).to_numpy(dtype=float, na_value=np.nan) if frame.shape[1] else raw
    fin = raw[np.isfinite(raw)]
    scale = float(np.max(np.abs(fin))) if fin.size else 0.0
    scale = scale if scale > 0 else 1.0
    raw = raw / scale
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
    out["consensus"] *= scale
    out["spread"] *= scale
    for c in ("consensus", "spread"):
        if np.isinf(out[c].to_numpy()).any():
            raise RedundancyError(f"the {c} of these scores overflows a float (values near {scale:.3g}); "
                                  "rescale the frame")
    out["n_scores"] = n
    return out
