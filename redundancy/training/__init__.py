"""The one training and evaluation loop of the package.

Every method that trains or scores a network (the real-data K/R ablation, rank-search fine-tuning,
CAR fine-tuning, spike-and-slab fits, the memorization estimator) goes through :func:`train` and
:func:`evaluate`; none has a loop of its own.

* :func:`train`: seeded, deterministic mini-batch training (Adam or SGD) of a torch model in place,
  with a tqdm bar, an optional custom loss ``loss(model, X, y) -> scalar`` (an ELBO, a distillation
  loss) and an optional checkpoint file that lets an interrupted run resume where it stopped.
* :func:`evaluate`: accuracy, mean loss, per-class accuracy and predictions (classification), or
  mean squared error, R² and predictions (regression), in eval mode, without gradients.

* :class:`Convergence` / :class:`Verdict` (in :mod:`.diagnostics`): how good a trained or decided
  answer is: the stopping rule's evidence, and a decision's model against the original, chance and
  the user's budget (with :class:`~redundancy.errors.ConvergenceWarning` /
  :class:`~redundancy.errors.DecisionWarning`).

``data`` is a :class:`redundancy.data.Dataset` or arrays (see :func:`redundancy.data.as_dataset`).
"""

from redundancy.training.diagnostics import (Convergence, Verdict, assess_convergence,  # noqa: F401
                                             chance_level, check_decision, has_settled, warn_unconverged)
from redundancy.training.common import batches, check_device, default_loss  # noqa: F401 - importable, not on the face
from redundancy.training.ensemble import EnsembleTrainResult, train_ensemble  # noqa: F401
from redundancy.training.evaluation import EvalResult, evaluate, predict
from redundancy.training.loop import TrainResult, train

__all__ = ["train", "evaluate", "predict", "train_ensemble", "TrainResult", "EvalResult", "Convergence", "Verdict"]
