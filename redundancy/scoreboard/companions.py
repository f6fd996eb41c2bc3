"""The companion methods' scores on the scoreboard: reuse a result the caller passes, or compute it
when the score is asked for and the method is installed; otherwise say why it is missing.

Interface every companion result provides (see the project brief): ``layer_table()`` -> DataFrame
with ``layer`` and ``redundancy`` in ``[0, 1]``; where it scores channels, ``channel_table()`` ->
DataFrame with ``layer``, ``channel``, ``importance`` (higher = the channel matters more).

* ``searched``: :func:`redundancy.rank_search.search.search_ranks` (data optional);
  ``layer_table().redundancy``.
* ``car``: :func:`redundancy.pruning.car_scores` (needs data); ``layer_table().redundancy`` and
  channel importances.
* ``pip``: :func:`redundancy.bayes.fit_spike_slab` (needs data); the layer score is the fraction
  of its channels with inclusion probability ``< 1/2`` (``channel_table()``: the ``pip`` column
  when there is one, else ``importance``), and the PIPs are the channel importances.
* ``longtail``: :func:`redundancy.longtail.mismatch_report` needs a compressed model, so the
  scoreboard never computes it; a passed report feeds the HTML headline (examples that flip).
"""

from __future__ import annotations

import math

import numpy as np

from redundancy.errors import RedundancyError

__all__: list[str] = []  # the face is in the package's __init__

KNOWN_RESULTS = ("searched", "car", "pip", "longtail")


def _compute_companion(name: str, model, data, *, seed: int = 0):
    """Run the companion method behind score ``name``; ``(result, None)`` or ``(None, reason)``."""
    try:
        if name == "searched":
            from redundancy.rank_search.search import search_ranks

            return search_ranks(model, data=data, seed=seed), None
        if data is None:
            return None, f"score {name!r} needs data; call scoreboard(model, data, ...)"
        if name == "car":
            from redundancy.pruning import car_scores

            return car_scores(model, data), None
        if name == "pip":
            from redundancy.bayes import fit_spike_slab

            return fit_spike_slab(model, data, seed=seed), None
    except ImportError as exc:
        return None, f"score {name!r}: its method is not installed in this build ({exc})"
    except RedundancyError as exc:  # the method refuses this model (e.g. a layer it cannot convert)
        return None, f"score {name!r}: the method refused this model: {exc}"
    raise RedundancyError(f"score {name!r} has no companion method; choose one of ['searched', 'car', 'pip']")


def _table(result, method: str, name: str):
    fn = getattr(result, method, None)
    if fn is None or not callable(fn):
        raise RedundancyError(f"results[{name!r}] is a {type(result).__name__} without {method}(); the "
                              f"scoreboard needs {method}() from the companion interface")
    df = fn()
    need = {"layer_table": ("layer", "redundancy"), "channel_table": ("layer", "channel", "importance")}[method]
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise RedundancyError(f"results[{name!r}].{method}() lacks the columns {missing}; it has "
                              f"{list(df.columns)}")
    return df


def _finite(name, what, values):
    """The values as float64; NaN (a layer or channel the method did not score) stays NaN, inf is refused."""
    v = np.asarray(values, dtype=np.float64)
    if np.isinf(v).any():
        raise RedundancyError(f"results[{name!r}] holds inf in {what}")
    return v


def _companion_layer_scores(name: str, result, layers) -> tuple[dict, list[str]]:
    """``({layer: redundancy}, unknown layer names)`` of a companion result (only model layers;
    a layer whose redundancy is NaN, i.e. the method did not score it, is left out)."""
    known = set(layers)
    if name == "pip":
        ch = _table(result, "channel_table", name)
        col = "pip" if "pip" in ch.columns else "importance"
        pips = _finite(name, f"channel_table().{col}", ch[col])
        ok = np.isfinite(pips)
        if ((pips[ok] < 0) | (pips[ok] > 1)).any():
            raise RedundancyError(f"results['pip'].channel_table().{col} must be probabilities in [0, 1]")
        frac = ch[ok].assign(_low=pips[ok] < 0.5).groupby("layer")["_low"].mean()
        scores = {str(k): float(v) for k, v in frac.items()}
    else:
        lt = _table(result, "layer_table", name)
        red = _finite(name, "layer_table().redundancy", lt["redundancy"])
        ok = np.isfinite(red)
        if ((red[ok] < -1e-9) | (red[ok] > 1 + 1e-9)).any():
            raise RedundancyError(f"results[{name!r}].layer_table().redundancy must lie in [0, 1]; got "
                                  f"[{red[ok].min():.3g}, {red[ok].max():.3g}]")
        scores = {str(k): float(min(max(v, 0.0), 1.0)) for k, v, good in zip(lt["layer"], red, ok) if good}
    unknown = sorted(k for k in scores if k not in known)
    return {k: v for k, v in scores.items() if k in known}, unknown


def companion_channel_scores(name: str, result, layers) -> dict[str, np.ndarray] | None:
    """``{layer: importance per channel}`` (channels in order ``0..K-1``), or ``None`` when the
    result has no ``channel_table()``."""
    if not callable(getattr(result, "channel_table", None)):
        return None
    ch = _table(result, "channel_table", name)
    out = {}
    for layer, grp in ch.groupby("layer", sort=False):
        if str(layer) not in set(layers):
            continue
        grp = grp.sort_values("channel")
        out[str(layer)] = _finite(name, "channel_table().importance", grp["importance"])
    return out


def _number(v):
    if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) and math.isfinite(float(v)):
        return v
    return None


def longtail_flips(result) -> list[dict] | None:
    """What a long-tail report says about flips: one ``{"model", "flips", "flip_rate", "n"}`` per
    compressed model, from the report's ``rows`` (``n_mismatch``, ``flip_rate``; ``n`` from the
    report), or from the attributes ``n_flips``/``n_mismatch``, ``flip_rate`` and ``n`` of a
    single-model report; ``None`` when the result states neither count nor rate.

    Examples
    --------
    >>> class Rep:
    ...     n, rows = 200, ({"model": "int8", "n_mismatch": 7, "flip_rate": 0.035},)
    >>> longtail_flips(Rep())
    [{'model': 'int8', 'flips': 7, 'flip_rate': 0.035, 'n': 200}]
    """
    if result is None:
        return None
    n = _number(getattr(result, "n", None))
    rows = getattr(result, "rows", None)
    if not isinstance(rows, (list, tuple)) or not all(isinstance(r, dict) for r in rows):
        rows = [{"model": None, "n_mismatch": getattr(result, "n_flips", getattr(result, "n_mismatch", None)),
                 "flip_rate": getattr(result, "flip_rate", None)}]
    out = []
    for r in rows:
        flips, rate = _number(r.get("n_mismatch", r.get("n_flips"))), _number(r.get("flip_rate"))
        if flips is None and rate is not None and n is not None:
            flips = round(float(rate) * int(n))
        if flips is None and rate is None:
            continue
        out.append({"model": r.get("model"), "flips": None if flips is None else int(flips),
                    "flip_rate": None if rate is None else float(rate), "n": None if n is None else int(n)})
    return out or None
