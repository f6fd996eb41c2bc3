"""How good a trained or decided answer is: :class:`Convergence` and :class:`Verdict`.

Every method that trains returns a :class:`Convergence` (did the monitored objective settle before
the budget ran out?) and every method that decides (prune, choose ranks, keep nodes) returns a
:class:`Verdict` (the accuracy or loss of the model it hands back against the original, chance and
the user's budget). Both warn when the answer should not be trusted: :class:`ConvergenceWarning`
and :class:`DecisionWarning` (scikit-learn's habit).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import field

import numpy as np

import redundancy._validation as _v
from redundancy.errors import ConvergenceWarning, DecisionWarning, RedundancyError

__all__ = ["Convergence", "Verdict"]

VERDICTS = ("ok", "over_budget", "large_drop", "near_chance", "reference_near_chance", "not_applicable")


@_v.result
class Convergence(_v.Result):
    """Whether a training run settled: the stopping rule's evidence.

    Attributes
    ----------
    epochs_run, max_epochs : int
        Epochs (or iterations) taken, and the cap.
    final_objective : float
        The monitored objective at the end (training loss, negative ELBO, ...).
    rel_change : float
        Relative improvement of the best objective over the last ``patience`` epochs,
        ``(best_{t-p} - best_t) / max(|best_{t-p}|, 1e-12)`` (0 when nothing improved).
    converged : bool
        True when the stopping rule fired (``rel_change < tol``) or the objective reached ``atol``.
    monitor : str
        What was monitored.
    train_accuracy : float or None
        Accuracy on the training data at the end (classifiers).
    tol, patience : float, int
        The stopping rule's settings.
    history : tuple of float
        The monitored objective after every epoch.
    """

    epochs_run: int
    max_epochs: int
    final_objective: float
    rel_change: float
    converged: bool
    monitor: str = "training loss"
    train_accuracy: float | None = None
    tol: float = 1e-4
    patience: int = 5
    history: tuple[float, ...] = field(default=(), repr=False)

    def summary(self) -> str:
        """One line: ``converged after 23/200 epochs (training loss 0.0312, change 4e-05)``."""
        state = "converged" if self.converged else "NOT converged"
        acc = "" if self.train_accuracy is None else f", train accuracy {self.train_accuracy:.3f}"
        return (f"{state} after {self.epochs_run}/{self.max_epochs} epochs ({self.monitor} "
                f"{self.final_objective:.4g}, recent change {self.rel_change:.2g}{acc})")


def _improvement(history: Sequence[float], patience: int) -> float:
    """Relative improvement of the running best over the last ``patience`` entries (over all of them
    when there are fewer; ``inf`` for a single entry: nothing to compare yet)."""
    h = np.minimum.accumulate(np.asarray(history, dtype=float))
    if len(h) < 2:
        return math.inf
    before, now = h[-min(patience, len(h) - 1) - 1], h[-1]
    return float((before - now) / max(abs(before), 1e-12))


def has_settled(history: Sequence[float], *, tol: float = 1e-4, patience: int = 5,
                atol: float | None = None) -> bool:
    r"""The stopping rule: the best objective improved by less than ``tol`` (relative) in ``patience`` epochs.

    .. math:: \frac{b_{t-p} - b_t}{\max(|b_{t-p}|, 10^{-12})} < \mathrm{tol},
              \qquad b_t = \min_{s \le t} h_s,

    or the objective is already at or below ``atol`` (for a loss bounded below by 0, e.g. ``1e-8``;
    ``None``, the default, for objectives that can be negative such as a negative ELBO).

    Examples
    --------
    >>> has_settled([3.0, 2.0, 1.0, 0.5], patience=2)
    False
    >>> has_settled([1.0, 0.5, 0.5, 0.5, 0.5], patience=3)
    True
    """
    if atol is not None and len(history) and min(history) <= atol:
        return True
    return len(history) > patience and _improvement(history, patience) < tol


def assess_convergence(history: Sequence[float], *, max_epochs: int, tol: float = 1e-4, patience: int = 5,
                       atol: float | None = None, monitor: str = "training loss", train_accuracy: float | None = None,
                       stopped: bool | None = None) -> Convergence:
    """A :class:`Convergence` from an objective history (``stopped``: the loop's own verdict, if known).

    Examples
    --------
    >>> c = assess_convergence([1.0, 0.5, 0.5, 0.5], max_epochs=4, patience=2)
    >>> c.converged, c.epochs_run
    (True, 4)
    """
    history = tuple(float(v) for v in history)
    if not history:
        raise RedundancyError("assess_convergence needs at least one epoch of history")
    change = _improvement(history, patience)
    settled = has_settled(history, tol=tol, patience=patience, atol=atol) if stopped is None else bool(stopped)
    return Convergence(epochs_run=len(history), max_epochs=int(max_epochs), final_objective=history[-1],
                       rel_change=0.0 if not math.isfinite(change) else max(change, 0.0), converged=settled,
                       monitor=monitor, train_accuracy=train_accuracy, tol=float(tol), patience=int(patience),
                       history=history)


def warn_unconverged(method: str, conv: Convergence, suggestion: str, *, stacklevel: int = 3) -> None:
    """Emit a :class:`~redundancy.errors.ConvergenceWarning` naming the method, budget and a fix."""
    if conv.converged:
        return
    warnings.warn(f"{method}: training did not converge within its budget: {conv.summary()}; {suggestion}",
                  ConvergenceWarning, stacklevel=stacklevel)


@_v.result
class Verdict(_v.Result):
    """How good a decision's model is, in the user's terms.

    Attributes
    ----------
    metric : {"accuracy", "loss"}
        Accuracy (higher is better) or a loss such as held-out cross-entropy (lower is better).
    original, decided : float
        The metric of the original model and of the decided model before fine-tuning.
    finetuned : float or None
        After fine-tuning (None when there was none).
    chance : float
        Chance level: the majority-class rate (accuracy) or ``log(n_classes)`` (cross-entropy).
    budget : float or None
        Largest allowed degradation (accuracy points as a fraction, or loss increase).
    verdict : str
        ``"ok"``, ``"over_budget"`` (lost more than ``budget``), ``"large_drop"`` (no budget was
        given and the model kept less than half of the original's margin over chance),
        ``"near_chance"`` (it kept at most 10 % of that margin), ``"reference_near_chance"`` (the
        original itself is near chance: nothing to judge against) or ``"not_applicable"``
        (nothing to measure with, e.g. a data-free decision).
    reason : str
        One line that says why.
    """

    metric: str
    original: float
    decided: float
    finetuned: float | None
    chance: float
    budget: float | None
    verdict: str
    reason: str

    @property
    def final(self) -> float:
        """The metric of the model handed back (fine-tuned when there was fine-tuning)."""
        return self.decided if self.finetuned is None else self.finetuned

    @property
    def ok(self) -> bool:
        return self.verdict == "ok"


def chance_level(y: np.ndarray) -> float:
    """Majority-class rate of labels ``y`` (the accuracy of always predicting the commonest class).

    Examples
    --------
    >>> chance_level(np.array([0, 0, 1, 2]))
    0.5
    """
    y = np.asarray(y).ravel()
    if y.size == 0:
        raise RedundancyError("chance_level needs at least one label")
    return float(np.bincount(y.astype(np.int64)).max() / y.size)


def _gain(metric: str, value: float, ref: float) -> float:
    """How much better ``value`` is than ``ref`` (positive = better), for either direction."""
    return value - ref if metric == "accuracy" else ref - value


def check_decision(*, metric: str, original: float, decided: float, chance: float, finetuned: float | None = None,
                   budget: float | None = None, what: str = "the decision", warn: bool = True,
                   stacklevel: int = 3) -> Verdict:
    """Judge a decided model against the original, chance and the budget; warn unless it is ``"ok"``.

    Near chance: the handed-back model keeps at most 10 % of the original's margin over chance
    (and the original itself has a margin of at least 0.05 in accuracy or 5 % of ``chance`` in loss;
    otherwise the verdict is ``"reference_near_chance"``). Over budget: it lost more than ``budget``.
    Without a budget, a model that keeps less than half of the margin is a ``"large_drop"``.

    Examples
    --------
    >>> v = check_decision(metric="accuracy", original=0.9, decided=0.5, finetuned=0.88, chance=0.1,
    ...                    budget=0.05)
    >>> v.verdict, round(v.final, 2)
    ('ok', 0.88)
    """
    if metric not in ("accuracy", "loss"):
        raise RedundancyError(f"metric={metric!r} is not allowed; use 'accuracy' or 'loss'")
    final = decided if finetuned is None else finetuned
    margin = _gain(metric, original, chance)
    floor = 0.05 if metric == "accuracy" else 0.05 * abs(chance)
    if margin < floor:
        verdict, reason = "reference_near_chance", (
            f"the original model's {metric} {original:.4g} is near chance ({chance:.4g}): it looks untrained, "
            "so nothing can be judged against it")
    elif _gain(metric, final, chance) <= 0.1 * margin:
        verdict, reason = "near_chance", (
            f"{what} hands back a model with {metric} {final:.4g}, near chance ({chance:.4g}; original {original:.4g})")
    elif budget is not None and _gain(metric, original, final) > budget:
        verdict, reason = "over_budget", (
            f"{what} costs {abs(_gain(metric, original, final)):.4g} in {metric} ({original:.4g} -> {final:.4g}), "
            f"more than the budget {budget:.4g}")
    elif budget is None and _gain(metric, final, chance) < 0.5 * margin:
        verdict, reason = "large_drop", (
            f"{what} keeps less than half of the original's margin over chance ({metric} {original:.4g} -> "
            f"{final:.4g}, chance {chance:.4g}); no budget was given: pass one to stop before this")
    else:
        verdict, reason = "ok", f"{metric} {original:.4g} -> {final:.4g} (chance {chance:.4g})"
    out = Verdict(metric=metric, original=float(original), decided=float(decided),
                  finetuned=None if finetuned is None else float(finetuned), chance=float(chance),
                  budget=None if budget is None else float(budget), verdict=verdict, reason=reason)
    if warn and verdict != "ok":
        warnings.warn(f"{what}: {reason}", DecisionWarning, stacklevel=stacklevel)
    return out
