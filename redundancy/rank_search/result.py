"""What :func:`redundancy.rank_search.search.search_ranks` returns: chosen ranks, ``p(r)`` bands, counts."""

from __future__ import annotations

from dataclasses import field
from typing import Any

import numpy as np
from torch import nn

import redundancy._validation as _v
from redundancy.training.diagnostics import Convergence, Verdict

from redundancy.rank_search.chains import build_chain, chain_kernel, chain_macs, chain_params, dense_macs
from redundancy.rank_search.factors import init_factors



@_v.result()
class LayerRank(_v.Result):
    """One searched layer.

    Attributes
    ----------
    name : str
        Qualified name in ``model.named_modules()`` of the model passed to the search.
    layer_type, method : str
        ``method`` is ``"tt"``, ``"cp"``, ``"tucker"`` or ``"svd"`` (a Linear).
    kernel_shape : tuple of int
    rank : int
        ``r* = argmax p`` of the last stage.
    max_rank : int
        Largest rank searched for this layer (``min(exact rank, break-even rank)``).
    candidates, probs : tuple
        The last stage's candidates and ``p(r)`` over them.
    expected_rank, rank_std : float
        Mean and standard deviation of ``r`` under the final ``p``.
    rank_low, rank_high : int
        The 5 % and 95 % quantiles of the final ``p`` (the uncertainty band on the effective rank).
    params_dense, params_decomposed, macs_dense, macs_decomposed : int
        Parameters (bias included) and MACs (one input) of the layer and of its chain at ``r*``.
    redundancy : float
        ``max(0, 1 − params(r*)/params_dense)``: the fraction of the layer's parameters the search says can go.
    rel_error : float
        ``||W − Ŵ_{r*}|| / ||W||`` of the decomposition the compressed model uses.
    """

    name: str
    layer_type: str
    method: str
    kernel_shape: tuple[int, ...]
    rank: int
    max_rank: int
    candidates: tuple[int, ...]
    probs: tuple[float, ...]
    expected_rank: float
    rank_std: float
    rank_low: int
    rank_high: int
    params_dense: int
    params_decomposed: int
    macs_dense: int
    macs_decomposed: int
    redundancy: float
    rel_error: float



@_v.result()
class RankSearchResult(_v.Result):
    """Result of a RENE rank search.

    Attributes
    ----------
    method : {"tt", "cp", "tucker"}
    mode : {"data", "data-free"}
        Whether the logits were driven by held-out cross-entropy or by the reconstruction error.
    layers : tuple of LayerRank
    skipped : tuple of dict
        ``{"name", "layer_type", "reason"}`` for each layer left as it was.
    trajectory : tuple of dict
        One entry per stage and layer: ``stage``, ``step``, ``layer``, ``candidates``, ``probs``,
        ``r_bar``, plus the stage's final ``loss_w``, ``loss_a``, ``reconstruction``, ``penalty``.
    params_dense, params_decomposed, macs_dense, macs_decomposed : int
        Whole-model totals (parameters by ``sum(p.numel())``, MACs of conv and linear layers).
    settings : dict
    seconds : float
    val_loss_dense, val_loss_compressed : float or None
        With data: the held-out cross-entropy (the split ``L_val`` used) of the model and of the
        compressed model before any fine-tune; ``None`` data-free. A compressed loss near chance
        (``log n_classes``) means the objective traded the accuracy away (docs/rank_search.md).
    verdict : Verdict or None
        With data: held-out accuracy of the original and of the compressed model before and after
        fine-tuning, chance and the budget; data-free: ``"not_applicable"``.
    convergence : Convergence or None
        The fine-tuning's stopping-rule evidence (None without ``finetune_epochs``).
    model : torch.nn.Module
        A copy of the input model with every searched layer replaced by its chain at ``r*``.
    """

    method: str
    mode: str
    layers: tuple[LayerRank, ...]
    skipped: tuple[dict, ...]
    trajectory: tuple[dict, ...] = field(repr=False)
    params_dense: int = 0
    params_decomposed: int = 0
    macs_dense: int = 0
    macs_decomposed: int = 0
    settings: dict = field(default_factory=dict, repr=False)
    seconds: float = 0.0
    val_loss_dense: float | None = None
    val_loss_compressed: float | None = None
    verdict: Verdict | None = None
    convergence: Convergence | None = None
    model: nn.Module | None = field(default=None, repr=False, compare=False, metadata=_v.NOT_EXPORTED)

    @property
    def ranks(self) -> dict[str, int]:
        """``{layer name: r*}``."""
        return {row.name: row.rank for row in self.layers}

    @property
    def params_kept(self) -> float:
        """``params_decomposed / params_dense`` of the whole model."""
        return self.params_decomposed / self.params_dense if self.params_dense else 1.0

    @property
    def macs_kept(self) -> float:
        return self.macs_decomposed / self.macs_dense if self.macs_dense else 1.0

    def layer_table(self):
        """One row per searched layer: ``layer``, ``redundancy`` and the other :class:`LayerRank` fields."""
        import pandas as pd

        rows = []
        for r in self.layers:
            d = r.to_dict()
            d["layer"] = d.pop("name")
            d["kernel_shape"] = "x".join(map(str, r.kernel_shape))
            d["candidates"] = ",".join(map(str, r.candidates))
            d["probs"] = ",".join(f"{p:.4f}" for p in r.probs)
            rows.append(d)
        cols = ["layer", "redundancy", "rank", "max_rank", "expected_rank", "rank_std", "rank_low", "rank_high",
                "params_dense", "params_decomposed", "macs_dense", "macs_decomposed", "rel_error", "method",
                "layer_type", "kernel_shape", "candidates", "probs"]
        return pd.DataFrame(rows, columns=cols)

    def to_pandas(self):
        """Same as :meth:`layer_table`."""
        return self.layer_table()

    def _extra_dict(self) -> dict[str, Any]:
        return {"params_kept": self.params_kept, "macs_kept": self.macs_kept}

    def __repr__(self) -> str:
        ranks = ", ".join(f"{r.name}={r.rank}" for r in self.layers[:6]) + (", ..." if len(self.layers) > 6 else "")
        return (f"RankSearchResult(method={self.method!r}, mode={self.mode!r}, layers={len(self.layers)}, "
                f"skipped={len(self.skipped)}, params kept={self.params_kept:.3f}, MACs kept={self.macs_kept:.3f}, "
                f"ranks: {ranks}" + ("" if self.verdict is None else f", verdict={self.verdict.verdict!r}") + ")")


def _quantile_band(candidates, probs, lo: float = 0.05, hi: float = 0.95) -> tuple[int, int]:
    """The ``lo`` and ``hi`` quantiles of the discrete distribution ``p`` over sorted candidates."""
    c = np.asarray(candidates)
    cdf = np.cumsum(np.asarray(probs, dtype=float))
    cdf /= cdf[-1]
    return int(c[np.searchsorted(cdf, lo)]), int(c[min(np.searchsorted(cdf, hi), len(c) - 1)])


def _layer_row(name, layer, method, r_star, probs, cands, max_rank, positions, seed):
    """The :class:`LayerRank` of one searched layer and its chain at ``r_star`` (decomposed from the
    original weights); ``positions`` are the layer's ``(P_in, P_out)`` per call, for the MACs."""
    m = "svd" if isinstance(layer, nn.Linear) else method
    w = layer.weight.detach().cpu().double().numpy()
    chain = build_chain(layer, init_factors(w, method, r_star, seed=seed), m)
    w_hat = chain_kernel(chain).detach().cpu().double().numpy()
    rel = float(np.linalg.norm(w - w_hat) / max(np.linalg.norm(w), 1e-300))
    c = np.asarray(cands, dtype=float)
    mean = float((probs * c).sum())
    std = float(np.sqrt(max(0.0, (probs * (c - mean) ** 2).sum())))
    lo, hi = _quantile_band(cands, probs)
    p_dense = sum(p.numel() for p in layer.parameters())
    p_dec = chain_params(layer, r_star, m)
    macs_d = sum(dense_macs(layer, a, b) for a, b in positions)
    macs_c = sum(chain_macs(layer, r_star, m, a, b) for a, b in positions)
    row = LayerRank(name=name, layer_type=type(layer).__name__, method=m, kernel_shape=tuple(w.shape), rank=r_star,
                    max_rank=max_rank, candidates=tuple(int(v) for v in cands), probs=tuple(float(v) for v in probs),
                    expected_rank=mean, rank_std=std, rank_low=lo, rank_high=hi, params_dense=p_dense,
                    params_decomposed=p_dec, macs_dense=macs_d, macs_decomposed=macs_c,
                    redundancy=max(0.0, 1.0 - p_dec / p_dense), rel_error=rel)
    return row, chain
