"""Issue 24's long-tail items: the `longtail --help` example runs as pasted (with smaller sizes
appended), and a reference near chance is flagged in the report, the API and the CLI's stderr."""

import shlex
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from redundancy.cli import main
from redundancy.cli.longtail import EXAMPLES
from redundancy.errors import DecisionWarning
from redundancy.longtail import mismatch_report
from redundancy.training import train


def _examples():
    """The ``redundancy ...`` commands of the epilog, continuation lines joined."""
    text = EXAMPLES.replace("\\\n", " ")
    return [shlex.split(line.strip())[1:] for line in text.splitlines() if line.strip().startswith("redundancy ")]


def test_help_example_runs_when_pasted(tmp_path, capsys):
    runnable = [a for a in _examples() if not any(x.startswith("mypkg") for x in a)]  # mypkg: the user's own
    assert len(runnable) == 1
    quick = ["--num-samples", "400", "--memorization-models", "4", "--epochs", "2", "--train-epochs", "4",
             "--n-permutations", "20", "--no-progress", "--out", str(tmp_path / "lt")]
    assert main(runnable[0] + quick) == 0  # argparse: the later value of an option wins
    assert (tmp_path / "lt" / "longtail.json").exists()
    cap = capsys.readouterr()
    assert "LongTailRiskReport" in cap.out and "reference_near_chance" not in cap.out


def _blobs(seed=0, n=120):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    X = (rng.normal(size=(n, 4)) * 0.5 + 2 * np.eye(3, 4)[y]).astype(np.float32)
    return X, y.astype(np.int64)


def test_untrained_reference_is_flagged():
    X, y = _blobs()
    torch.manual_seed(0)
    ref, cmp = nn.Linear(4, 3), nn.Linear(4, 3)
    with torch.no_grad():
        ref.weight.zero_()
        ref.bias.copy_(torch.tensor([0.0, 0.0, 1.0]))  # always class 2: an untrained-looking reference
    with pytest.warns(DecisionWarning, match="near chance") as rec:
        rep = mismatch_report(ref, {"c": cmp}, (X, y), n_permutations=10)
    assert rec[0].filename == __file__
    assert rep.reference_near_chance and rep.verdict.verdict == "reference_near_chance"
    # chance: always answering the commonest training class (here train = test split)
    assert rep.verdict.chance == pytest.approx(np.mean(y == np.bincount(y).argmax()))
    assert "WARNING (reference_near_chance)" in repr(rep) and rep.to_dict()["verdict"]["verdict"] == rep.verdict.verdict


def test_trained_reference_is_not_flagged():
    X, y = _blobs()
    torch.manual_seed(0)
    ref = nn.Linear(4, 3)
    train(ref, (X, y), epochs=30, lr=0.05, seed=0)
    cmp = nn.Linear(4, 3)
    cmp.load_state_dict(ref.state_dict())
    with warnings.catch_warnings():
        warnings.simplefilter("error", DecisionWarning)
        rep = mismatch_report(ref, {"same": cmp}, (X, y), n_permutations=10)
    assert rep.verdict.ok and not rep.reference_near_chance and rep.rows[0]["flip_rate"] == 0.0


def test_chance_is_the_training_majority_on_the_evaluated_split():
    X, y = _blobs()
    Xte, yte = X[:30], np.full(30, 2)                   # a test split of one class only
    torch.manual_seed(0)
    ref = nn.Linear(4, 3)
    train(ref, (X, y), epochs=30, lr=0.05, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DecisionWarning)
        rep = mismatch_report(ref, ref, (X, y, Xte, yte), n_permutations=10)
    major = np.bincount(y).argmax()
    assert rep.verdict.chance == pytest.approx(float(major == 2))
