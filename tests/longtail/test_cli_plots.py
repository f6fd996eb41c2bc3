"""Displays of long-tail risk and the `redundancy longtail` command."""

import json

import matplotlib
import numpy as np
import pytest
import torch

from redundancy.cli import main
from redundancy.longtail import estimate_memorization, example_loss, mismatch_report
from redundancy.zoo.small import two_conv_cnn
from redundancy.plotting import ClassFlipDisplay, MemorizationDisplay, MismatchByScoreDisplay

matplotlib.use("Agg")


def _report(rng):
    X = rng.normal(size=(60, 1, 8, 8)).astype(np.float32)
    y = rng.integers(0, 3, 60)
    torch.manual_seed(0)
    ref = two_conv_cnn((1, 8, 8), 3, width=4)
    cmps = {"a": two_conv_cnn((1, 8, 8), 3, width=4), "b": two_conv_cnn((1, 8, 8), 3, width=4)}
    return mismatch_report(ref, cmps, (X, y), scores={"s": rng.random(60), "t": rng.random(60)}, n_permutations=50)


def test_displays_draw_the_report_numbers(rng):
    rep = _report(rng)
    d = MismatchByScoreDisplay.from_report(rep, score="t").plot()
    assert len(d.lines_) == 2 and d.figure_ is d.ax_.figure
    rows = rep.bin_table().query("model == 'a' and score == 't'")
    np.testing.assert_allclose(d.lines_[0].get_ydata(), rows["mismatch_rate"])
    c = ClassFlipDisplay.from_report(rep).plot()
    np.testing.assert_allclose([b.get_height() for b in c.bars_[1]], rep.per_class[1])
    M, C = rng.random((6, 20)) < 0.7, rng.random((6, 20)) < 0.8
    m = MemorizationDisplay.from_result(estimate_memorization(M, C)).plot()
    assert m.hist_[0].sum() == 20
    with pytest.raises(Exception, match="score"):
        MismatchByScoreDisplay.from_report(rep, score="nope")


def test_example_loss_is_cross_entropy(rng):
    X = rng.normal(size=(10, 1, 8, 8)).astype(np.float32)
    y = rng.integers(0, 3, 10)
    net = two_conv_cnn((1, 8, 8), 3, width=2).eval()
    with torch.no_grad():
        p = torch.softmax(net(torch.as_tensor(X)).double(), 1).numpy()
    np.testing.assert_allclose(example_loss(net, (X, y)), -np.log(p[np.arange(10), y]), rtol=1e-6)


def test_cli_longtail_writes_files(tmp_path, capsys):
    torch.manual_seed(0)
    ref = two_conv_cnn((1, 8, 8), 10, width=4)
    torch.save(ref.state_dict(), tmp_path / "ref.pt")
    torch.save(ref.state_dict(), tmp_path / "same.pt")
    spec = "redundancy.zoo.small:two_conv_cnn"
    rc = main(["longtail", spec, spec, spec, "--data", "digits", "--ref-arg", "width=4", "--compressed-arg", "width=4",
               "--ref-weights", str(tmp_path / "ref.pt"), "--compressed-weights", str(tmp_path / "same.pt"),
               str(tmp_path / "ref.pt"), "--n-permutations", "20", "--out", str(tmp_path / "out")])
    assert rc == 0
    out = json.loads((tmp_path / "out" / "longtail.json").read_text())
    assert [r["flip_rate"] for r in out["rows"]] == [0.0, 0.0]  # identical weights: nothing flips
    assert out["score_rows"][0]["score"] == "reference_loss"
    for f in ("summary.csv", "classes.csv", "bins.csv", "mismatch_by_score.png", "class_flips.png"):
        assert (tmp_path / "out" / f).exists()
    cap = capsys.readouterr()
    assert "LongTailRiskReport" in cap.out
    # the reference is untrained: the report says so, on stdout and as one line on stderr
    assert out["verdict"]["verdict"] == "reference_near_chance" and "WARNING" in cap.out
    assert any(line.startswith("redundancy: warning:") and "near chance" in line for line in cap.err.splitlines())


def test_cli_longtail_bad_arguments(tmp_path, capsys):
    spec = "redundancy.zoo.small:two_conv_cnn"
    assert main(["longtail", spec, spec, "--data", "cifar"]) == 2
    assert main(["longtail", spec, spec, "--data", "digits", "--compressed-weights", "a.pt", "b.pt"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "one per model" in err[-1] and len(err) == 2
    assert main(["longtail", "nope_model", spec, "--data", "digits"]) == 2
