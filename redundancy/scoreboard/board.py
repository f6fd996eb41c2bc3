"""``scoreboard(model, data)``: every redundancy score of every conv/linear layer, side by side.

Each score is defined in :mod:`redundancy.scoreboard.definitions` (formula and direction: higher =
more redundant); :mod:`.correlation` says how they agree. Results of the companion methods that
the caller already has are reused (``results={"car": car_result, ...}``), never recomputed.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

import redundancy._validation as _v
from redundancy._validation import _short, check_shape
from redundancy.errors import RedundancyError
from redundancy.scoreboard.channel_scores import (MAX_TAYLOR_EXAMPLES, _participation, l1_importance,
                                                  taylor_importance)
from redundancy.scoreboard.companions import (KNOWN_RESULTS, _companion_layer_scores, _compute_companion,
                                              companion_channel_scores)
from redundancy.scoreboard.correlation import consensus, correlation_matrix, rank_normalise, reference_table
from redundancy.scoreboard.definitions import CHANNEL_SCORES, COMPANIONS, DEFAULT_SCORES, SCORES
from redundancy.scoreboard.kernel_scores import report_scores, spectrum_scores

__all__ = ["Scoreboard", "scoreboard"]

_INFO = ["layer", "type", "out_channels", "params", "macs", "segment", "block"]


def _clean(obj):
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(float(obj)) else None
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def _records(df: pd.DataFrame | None) -> list[dict]:
    if df is None:
        return []
    return _clean(df.astype(object).where(df.notna(), None).to_dict(orient="records"))


@_v.result
class Scoreboard(_v.Result):
    """Result of :func:`scoreboard`.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per conv/linear layer: ``layer, type, out_channels, params, macs, segment, block``,
        one column per computed score (redundancy in ``[0, 1]``, NaN where it does not apply), and
        ``consensus, consensus_rank, spread, rank_spread, n_scores``.
    channels : pandas.DataFrame
        One row per (layer, channel): ``layer, channel`` and one importance column per channel
        score (higher = the channel matters more).
    correlations : dict of DataFrame
        ``layer_spearman``, ``layer_kendall`` (over layers) and ``channel_spearman``,
        ``channel_kendall`` (over channels, on importances rank-normalised within each layer).
    reference, channel_reference : DataFrame or None
        Correlation of every score with CAR (best first), when CAR is on the board.
    skipped : dict
        ``{score: reason}`` for every score asked for and not computed.
    notes : dict
        ``{score: note}`` (layers a score left out, companion layers not in the model).
    """

    model_name: str
    input_shape: tuple[int, ...]
    seed: int
    scores: tuple[str, ...]
    table: pd.DataFrame = field(repr=False, metadata=_v.NOT_EXPORTED)
    channels: pd.DataFrame = field(repr=False, metadata=_v.NOT_EXPORTED)
    correlations: dict = field(repr=False, metadata=_v.NOT_EXPORTED)
    reference: pd.DataFrame | None = field(repr=False, metadata=_v.NOT_EXPORTED)
    channel_reference: pd.DataFrame | None = field(repr=False, metadata=_v.NOT_EXPORTED)
    skipped: dict = field(repr=False)
    notes: dict = field(repr=False)
    timings: dict = field(repr=False, metadata=_v.NOT_EXPORTED)
    report: Any = field(repr=False, metadata=_v.NOT_EXPORTED)
    results: dict = field(repr=False, metadata=_v.NOT_EXPORTED)

    def to_pandas(self) -> pd.DataFrame:
        """The layer table (a copy)."""
        return self.table.copy()

    def rank_normalised(self) -> pd.DataFrame:
        """The score columns rank-normalised over layers (index = layer names)."""
        return rank_normalise(self.table.set_index("layer")[list(self.scores)])

    def redundant_fraction(self) -> float | None:
        """Parameter-weighted mean consensus: ``sum_l params_l c_l / sum_l params_l`` over the
        layers with a consensus ``c_l`` (None when no layer has one)."""
        t = self.table[np.isfinite(self.table["consensus"].to_numpy(float))]
        w = t["params"].to_numpy(float)
        if len(t) == 0 or w.sum() <= 0:
            return None
        return float(np.sum(w * t["consensus"].to_numpy(float)) / w.sum())

    def _extra_dict(self) -> dict[str, Any]:
        """The tables as records (NaN becomes ``None``), the definitions and the timings."""
        return _clean({"definitions": {s: dataclasses.asdict(SCORES[s]) for s in self.scores},
                "timings_s": dict(self.timings), "redundant_fraction": self.redundant_fraction(),
                "layers": _records(self.table), "channels": _records(self.channels),
                "correlations": {k: _records(v.reset_index().rename(columns={"index": "score"}))
                                 for k, v in self.correlations.items()},
                "reference": _records(self.reference), "channel_reference": _records(self.channel_reference)})

    def to_html(self, path, roi=None, report=None, *, title: str | None = None) -> str:
        """Write the one-page HTML report (see :func:`redundancy.scoreboard.html.scoreboard_to_html`)."""
        from redundancy.scoreboard.html import scoreboard_to_html

        return scoreboard_to_html(self, path, roi=roi, report=report, title=title)

    def __repr__(self) -> str:
        top = self.table.sort_values("consensus", ascending=False).head(3)
        tops = ", ".join(f"{r.layer}={r.consensus:.2f}" for r in top.itertuples() if np.isfinite(r.consensus))
        return (f"Scoreboard({self.model_name}, {len(self.table)} layers, scores={list(self.scores)}, "
                f"skipped={sorted(self.skipped)}, most redundant: {tops or '-'})")


def _select(scores, results, data) -> list[str]:
    """The score names to compute, in the order of :data:`SCORES`'s definitions or as given."""
    if scores is None:
        return [s for s in DEFAULT_SCORES if s != "taylor" or data is not None] + \
               [s for s in COMPANIONS if s in results]
    if isinstance(scores, str) and scores == "all":
        return list(SCORES)
    if isinstance(scores, str):
        scores = [scores]
    try:
        asked = list(dict.fromkeys(scores))
    except TypeError:
        raise RedundancyError(f"scores={scores!r} is not allowed; give None, 'all' or a list of score "
                              f"names from {list(SCORES)}") from None
    bad = [s for s in asked if s not in SCORES]
    if bad or not asked:
        raise RedundancyError(f"scores={bad or scores!r} are not scores; choose from {list(SCORES)} or 'all'")
    return asked


@_v.validate_params({"model": _v.Module(materialised=False), "seed": _v.Seed(allow_none=True, allow_generator=True),
                     "taylor_examples": _v.Int(1, MAX_TAYLOR_EXAMPLES), "progress": _v.Bool()})
def scoreboard(model, data=None, *, scores=None, input_shape=None, results=None, report=None, seed=0,
               taylor_examples: int = 512, device="cpu", progress: bool = False) -> Scoreboard:
    """Every redundancy score of every conv/linear layer of ``model``, with their agreement.

    Scores (formulas in :mod:`redundancy.scoreboard.definitions`; all ``in [0, 1]``, higher = more
    redundant): ``dof``, ``kr_segment``, ``kr_block``, ``numerical``, ``evbmf``, ``energy``, ``l1``
    (data-free), ``taylor`` (data), ``searched`` (rank search), ``car`` (CAR, data) and ``pip``
    (spike-and-slab inclusion probabilities, data). Per layer ``consensus`` = mean of the scores,
    ``spread`` = their standard deviation (:mod:`.correlation`).

    Parameters
    ----------
    model : torch.nn.Module
    data : Dataset or (X, y), optional
        Needed by ``taylor``, ``car`` and ``pip``; without it they are skipped with a reason.
    scores : None, "all" or list of str
        ``None``: the data-free scores, ``taylor`` when there is data, and the companion scores
        whose results are passed. ``"all"``: every score, computing the companion methods that are
        installed (slow). A list: exactly those.
    input_shape : tuple of int, optional
        Per-sample input shape; default ``data``'s.
    results : dict, optional
        Results the caller already has: ``{"searched": RankSearchResult, "car": CARResult,
        "pip": SpikeSlabResult, "longtail": LongTailRiskReport}``; reused, never recomputed.
    report : RedundancyReport, optional
        A report of ``analyze(model, input_shape)`` already computed (reused).
    seed : int, None or numpy.random.Generator
        Seeds the Taylor subsample, ``analyze``'s numerical dof and the companion methods (which get
        0 for None or a Generator).
    taylor_examples : int
        Training examples used by the Taylor score (at most 100,000).
    device : str
    progress : bool
        tqdm bar over the scores.

    Examples
    --------
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 2, 1), nn.Conv2d(2, 16, 1))
    >>> sb = scoreboard(net, input_shape=(1, 6, 6))
    >>> float(sb.table.set_index("layer").loc["3", "kr_segment"])
    0.875
    >>> sb.skipped["kr_block"]
    "score 'kr_block' applies to no layer of this model (no detected block)"
    """
    from tqdm.auto import tqdm

    from redundancy.data import as_dataset

    seed_int = int(seed) if isinstance(seed, int) else 0  # None or a Generator: the companions get seed 0
    results = _check_results(results)
    ds = as_dataset(data) if data is not None else None
    report, shape = _report(model, ds, input_shape, report, seed)
    asked = _select(scores, results, ds)
    run = _Run(model=model, ds=ds, report=report, results=results, seed=seed, seed_int=seed_int,
               taylor_examples=taylor_examples, device=device)
    for name in tqdm(asked, desc="scores", disable=not progress):
        t0 = time.perf_counter()
        if run.compute(name):
            run.timings[name] = time.perf_counter() - t0
    return _assemble(model, report, shape, seed_int, asked, run.layer_scores, run.channel_scores, run.skipped,
                     run.notes, run.timings, run.results)


def _check_results(results) -> dict:
    if results is not None and not isinstance(results, Mapping):
        raise RedundancyError(f"results={_short(results)} is not allowed; give None or a dict "
                              f"{{name: result}} with names from {list(KNOWN_RESULTS)}")
    results = dict(results or {})
    bad = [k for k in results if k not in KNOWN_RESULTS]
    if bad:
        raise RedundancyError(f"results has keys {bad}; allowed keys are {list(KNOWN_RESULTS)}")
    return results


def _report(model, ds, input_shape, report, seed):
    """The caller's report (checked) or ``analyze(model, input_shape)``, and the checked input shape."""
    from redundancy.analysis.report import RedundancyReport, analyze

    if input_shape is None:
        if ds is None and report is None:
            raise RedundancyError("input_shape=None and data=None: give input_shape (per-sample shape) or data")
        input_shape = ds.input_shape if ds is not None else report.input_shape
    shape = check_shape("input_shape", input_shape)
    if report is not None and not isinstance(report, RedundancyReport):
        raise RedundancyError(f"report must be a RedundancyReport; got {type(report).__name__}")
    return (analyze(model, shape, seed=seed) if report is None else report), shape


@dataclass
class _Run:
    """The scores of one :func:`scoreboard` call, computed one name at a time."""

    model: Any
    ds: Any
    report: Any
    results: dict
    seed: Any
    seed_int: int
    taylor_examples: int
    device: Any
    layer_scores: dict = field(default_factory=dict)
    channel_scores: dict = field(default_factory=dict)
    skipped: dict = field(default_factory=dict)
    notes: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    spectra: dict = field(default_factory=dict)

    def __post_init__(self):
        self.layers = [r.name for r in self.report.layers]
        self.rep = report_scores(self.report)

    def compute(self, name: str) -> bool:
        """Compute score ``name``; False when it is skipped (the reason goes to ``skipped``)."""
        if name in self.rep:
            self.layer_scores[name] = self.rep[name]
        elif name in ("evbmf", "energy"):
            self._spectrum(name)
        elif name == "l1":
            self.channel_scores["l1"] = l1_importance(self.model, self.layers)
        elif name == "taylor":
            if self.ds is None:
                self.skipped[name] = "score 'taylor' needs data; call scoreboard(model, data, ...)"
                return False
            self.channel_scores["taylor"] = taylor_importance(self.model, self.ds, self.layers,
                                                              n_examples=self.taylor_examples, seed=self.seed,
                                                              device=self.device)
        elif not self._companion(name):
            return False
        if name in self.channel_scores and name not in self.layer_scores:
            self.layer_scores[name] = {k: _participation(np.asarray(v, dtype=float))
                                       for k, v in self.channel_scores[name].items()}
        return True

    def _spectrum(self, name: str) -> None:
        if not self.spectra:  # one SVD pass gives both
            ev, en, why = spectrum_scores(self.model, self.report)
            self.spectra.update(evbmf=ev, energy=en)
            for score, reasons in why.items():
                if reasons:
                    self.notes[score] = "; ".join(reasons.values())
        self.layer_scores[name] = self.spectra[name]

    def _companion(self, name: str) -> bool:
        """A companion score: reuse the caller's result, else compute it; False when skipped."""
        res = self.results.get(name)
        if res is None:
            res, why = _compute_companion(name, self.model, self.ds, seed=self.seed_int)
            if res is None:
                self.skipped[name] = why
                return False
            self.results[name] = res
        self.layer_scores[name], unknown = _companion_layer_scores(name, res, self.layers)
        if unknown:
            self.notes[name] = f"layers not in the model, ignored: {unknown[:5]}"
        if name in CHANNEL_SCORES:
            ch = companion_channel_scores(name, res, self.layers)
            if ch:
                self.channel_scores[name] = ch
        return True


def _assemble(model, report, shape, seed, asked, layer_scores, channel_scores, skipped, notes, timings, results):
    for s in asked:
        if s in layer_scores and all(v is None for v in layer_scores[s].values()):
            del layer_scores[s]
            skipped[s] = (f"score {s!r} applies to no layer of this model"
                          + (" (no detected block)" if s == "kr_block" else "")
                          + (f": {notes[s]}" if notes.get(s) else ""))
    computed = tuple(s for s in asked if s in layer_scores)
    rows = []
    for r in report.layers:
        row = {"layer": r.name, "type": r.type, "out_channels": r.out_channels, "params": r.params,
               "macs": r.macs, "segment": r.segment, "block": r.block}
        for s in computed:
            v = layer_scores[s].get(r.name)
            row[s] = float("nan") if v is None else float(v)
        rows.append(row)
    table = pd.DataFrame(rows, columns=_INFO + list(computed))
    scores_only = table[list(computed)].astype(float)
    table = pd.concat([table, consensus(scores_only)], axis=1)
    ch_names = [s for s in computed if s in channel_scores]
    ch_rows = []
    for r in report.layers:
        k = max((len(channel_scores[s].get(r.name, ())) for s in ch_names), default=0)
        for c in range(k):
            row = {"layer": r.name, "channel": c}
            for s in ch_names:
                v = channel_scores[s].get(r.name)
                row[s] = float(v[c]) if v is not None and c < len(v) else float("nan")
            ch_rows.append(row)
    channels = pd.DataFrame(ch_rows, columns=["layer", "channel"] + ch_names)
    within = (channels.groupby("layer", sort=False)[ch_names].transform(
        lambda s: rank_normalise(s.to_frame())[s.name]) if len(channels) and ch_names
        else channels[ch_names])
    corr = {"layer_spearman": correlation_matrix(scores_only, "spearman"),
            "layer_kendall": correlation_matrix(scores_only, "kendall"),
            "channel_spearman": correlation_matrix(within, "spearman"),
            "channel_kendall": correlation_matrix(within, "kendall")}
    ref = reference_table(scores_only, "car") if "car" in computed else None
    ch_ref = reference_table(within, "car") if "car" in ch_names else None
    return Scoreboard(model_name=report.model_name if report.model_name else type(model).__name__,
                      input_shape=tuple(shape), seed=seed, scores=computed, table=table, channels=channels,
                      correlations=corr, reference=ref, channel_reference=ch_ref, skipped=skipped, notes=notes,
                      timings=timings, report=report, results=results)
