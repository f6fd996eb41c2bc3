"""The result of greedy pruning (:func:`redundancy.pruning.prune`): what was removed, what it cost,
the model handed back and its verdict."""

from __future__ import annotations

from dataclasses import field
from typing import Any

from torch import nn

import redundancy._validation as _v
from redundancy.training.diagnostics import Convergence, Verdict

__all__ = ["PruneResult"]


@_v.result
class PruneResult(_v.Result):
    """What :func:`prune` removed and what the smaller model scores.

    Attributes
    ----------
    removed : tuple of (str, int)
        ``(layer, channel)`` of every removed unit, in removal order.
    channels_before, channels_after : dict
        Label layer -> channel count.
    quality_before, quality_after_mask : float
        Scoring metric on the scoring split, intact and with the removals masked.
    test_before, test_after, test_finetuned : float or None
        Test accuracy (R² for regression) of the intact, the pruned and the fine-tuned model.
    params_before, params_after, macs_before, macs_after : int
    max_abs_diff : float
        Largest output difference between the pruned and the masked model on a check batch.
    history : tuple of dict
        Per greedy step: ``removed`` units, ``quality`` after it and ``scores`` {(layer, channel): CAR}
        of the units scored at that step.
    max_accuracy_drop : float or None
        The accuracy budget the selection kept to (None: none).
    target_met : bool
        False when the budget stopped the pruning before the target (a DecisionWarning said so).
    verdict : Verdict
        Held-out accuracy (MSE for regression) of the original, the pruned and the fine-tuned model
        against chance and the budget (:func:`redundancy.training.check_decision`).
    convergence : Convergence or None
        The fine-tuning's stopping-rule evidence (None without fine-tuning).
    model : nn.Module
        The pruned (and fine-tuned) model.
    """

    criterion: str
    target: Any
    scope: str
    removed: tuple
    channels_before: dict
    channels_after: dict
    quality_before: float
    quality_after_mask: float
    test_before: float | None
    test_after: float | None
    test_finetuned: float | None
    params_before: int
    params_after: int
    macs_before: int
    macs_after: int
    max_abs_diff: float
    seed: int
    max_accuracy_drop: float | None = None
    target_met: bool = True
    verdict: Verdict | None = None
    convergence: Convergence | None = None
    history: tuple = field(default=(), repr=False, metadata=_v.NOT_EXPORTED)
    model: nn.Module | None = field(default=None, repr=False, compare=False, metadata=_v.NOT_EXPORTED)

    def __repr__(self) -> str:
        f = lambda v: "n/a" if v is None else f"{v:.4g}"  # noqa: E731
        v = "" if self.verdict is None else f", verdict={self.verdict.verdict!r}"
        c = "" if self.convergence is None else f", fine-tune converged={self.convergence.converged}"
        return (f"PruneResult(criterion={self.criterion!r}, removed={len(self.removed)}, "
                f"params {self.params_before}->{self.params_after}, test {f(self.test_before)}->{f(self.test_after)}"
                f"{'' if self.test_finetuned is None else f' (fine-tuned {f(self.test_finetuned)})'}{v}{c})")

    def to_pandas(self):
        """One row per pruned layer: channels before and after."""
        import pandas as pd

        return pd.DataFrame([{"layer": k, "channels_before": v, "channels_after": self.channels_after[k],
                              "removed": v - self.channels_after[k]} for k, v in self.channels_before.items()])

    def _extra_dict(self) -> dict[str, Any]:
        return {"history": [{"removed": [list(u) for u in h["removed"]], "quality": h["quality"]}
                            for h in self.history]}
