"""The accuracy budget of :func:`~redundancy.pruning.prune` and the verdict on the model it hands back.

Budget: ``max_accuracy_drop`` is the largest allowed drop of the held-out accuracy (the test split of
``data``; the training split when there is no test split), ``acc(original) - acc(pruned)``. The
greedy (and ranked) selection measures the held-out accuracy of the masked model after every step
and stops before the step that would break the budget: the model handed back is the last one within
it (before fine-tuning; fine-tuning can only be judged afterwards and is reported in the verdict).

Verdict: :func:`redundancy.training.check_decision` on the held-out accuracy (classification) or the
held-out mean squared error (regression; chance = the MSE of predicting the mean) of the original,
the pruned model before and after fine-tuning, chance = the majority-class rate.
"""

from __future__ import annotations

import warnings

import numpy as np

from redundancy.errors import DecisionWarning
from redundancy.pruning.masked import _variant_quality, as_tensors

__all__: list[str] = []

#: default ``max_accuracy_drop`` of :func:`~redundancy.pruning.prune` (5 accuracy points)
DEFAULT_MAX_ACCURACY_DROP = 0.05


def held_out_split(ds) -> str:
    """``"test"`` when ``ds`` has test examples, else ``"train"``."""
    return "test" if len(ds.y_test) else "train"


class Budget:
    """Held-out accuracy of masked variants against the budget (inactive without one or for regression)."""

    def __init__(self, model, groups, ds, dev, budget, batch_masks):
        self.budget = budget if (budget is not None and ds.task == "classification") else None
        self.blocked: dict | None = None
        if self.budget is None:
            return
        self.model, self.groups = model, groups
        self.X, self.y = as_tensors(ds, held_out_split(ds), model, dev)
        self.qkw = dict(metric="accuracy", task=ds.task, n_classes=ds.n_classes, batch_masks=batch_masks)
        self.base, _, _, _ = _variant_quality(model, groups, [()], self.X, self.y, **self.qkw)

    @property
    def active(self) -> bool:
        return self.budget is not None

    def first_violation(self, removed_sets) -> int | None:
        """Index of the first removal set whose held-out drop exceeds the budget (None: all within)."""
        if not self.active or not removed_sets:
            return None
        _, q, _, _ = _variant_quality(self.model, self.groups, [tuple(s) for s in removed_sets], self.X, self.y,
                                      **self.qkw)
        drops = self.base - np.asarray(q)
        bad = np.flatnonzero(drops > self.budget + 1e-12)
        if not len(bad):
            return None
        i = int(bad[0])
        self.blocked = {"removed": len(removed_sets[i]), "accuracy": float(q[i]), "drop": float(drops[i])}
        return i


def warn_target(budget: Budget, removed: int, want: int) -> str | None:
    """A DecisionWarning (and its text) when the budget stopped the pruning short of the target."""
    if not budget.active or removed >= want or budget.blocked is None:
        return None
    b = budget.blocked
    text = (f"the target ({want} channels) cannot be met within max_accuracy_drop={budget.budget:g}: stopped after "
            f"{removed} channels; removing {b['removed']} would cost {b['drop']:.4f} held-out accuracy "
            f"({budget.base:.4f} -> {b['accuracy']:.4f})")
    warnings.warn(f"prune: {text}", DecisionWarning, stacklevel=6)
    return text


def held_out_scores(model, ds, dev):
    """``(reported, judged)`` of ``model`` on the held-out split: accuracy (R² for regression) and the
    verdict's metric (accuracy, or the mean squared error for regression)."""
    from redundancy.training import evaluate

    ev = evaluate(model, ds, split=held_out_split(ds), device=dev)
    if ds.task == "classification":
        return ev.accuracy, ev.accuracy
    return ev.r2, ev.loss


def verdict(ds, judged, budget: Budget, *, target_note: str | None, warn: bool):
    """The :class:`~redundancy.training.Verdict` of ``judged = (original, pruned, fine-tuned or None)``."""
    from redundancy.training import chance_level, check_decision

    y = ds.y_test if held_out_split(ds) == "test" else ds.y_train
    if ds.task == "classification":
        metric, chance = "accuracy", chance_level(y)
    else:
        metric, chance = "loss", float(np.mean((np.asarray(y, dtype=float) - np.mean(y)) ** 2))
    v = check_decision(metric=metric, original=judged[0], decided=judged[1], finetuned=judged[2], chance=chance,
                       budget=budget.budget, what="prune", warn=warn, stacklevel=7)
    if target_note is not None:
        import dataclasses

        v = dataclasses.replace(v, reason=f"{v.reason}; {target_note}")
    return v
