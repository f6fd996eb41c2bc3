"""Same --seed, same files (issue 24): every CLI subcommand runs twice, each time in a fresh
process and directory, with quick arguments, and the files it writes are compared byte for byte.

Wall-clock fields are stripped before the comparison (they are measurements, not results): JSON
keys, CSV columns and CSV rows (by their first cell) whose name contains ``time``, ``timing``,
``latency``, ``seconds``, ``elapsed`` or ``speedup``, and the ROI PNGs (``roi`` and ``demo_roi*``:
they plot the measured latency), and the ROI note that quotes the measured latency.
``simulate`` runs its quick grid cut to the first case (``_study_cases`` patched in the child
process: the full quick grid takes minutes).
"""

import json
import os
import re

import pytest

from tests.cli._examples import run_cli

pytestmark = pytest.mark.slow

WALL_CLOCK = re.compile(r"time|timing|latency|seconds|elapsed|speedup", re.I)

RUNS = {
    "demo": ["demo", "--seed", "3", "--out", "out"],
    "analyze": ["analyze", "small_cnn", "--model-arg", "widths=(4,8)", "--out", "out"],
    "roi": ["roi", "small_cnn", "small_cnn", "--compressed-arg", "widths=(4,8)", "--repeats", "1", "--warmup", "0",
            "--batch-sizes", "1", "--out", "out"],
    "simulate": ["simulate", "--quick", "--out", "out", "--no-progress"],
    "ranks": ["ranks", "small_cnn", "--model-arg", "widths=(4,8)", "--data", "digits", "--train-epochs", "1",
              "--iters", "3", "--warmup", "1", "--out", "out", "--no-progress"],
    "scoreboard": ["scoreboard", "small_cnn", "--model-arg", "widths=(4,8)", "--data", "digits", "--epochs", "1",
                   "--scores", "dof,numerical,evbmf,energy,l1,taylor", "--out", "out", "--no-progress"],
    "prune": ["prune", "cnn", "--data", "digits", "--model-arg", "widths=(4,8)", "--criterion", "l1",
              "--target", "0.25", "--epochs", "1", "--out", "out", "--no-progress"],
    "bayes": ["bayes", "mlp:16", "--data", "digits", "--epochs", "2", "--n-train", "300", "--out", "out",
              "--no-progress"],
    "longtail": ["longtail", "redundancy.zoo.small:two_conv_cnn", "redundancy.zoo.small:two_conv_cnn",
                 "--compressed-arg", "width=8", "--data", "digits", "--n-permutations", "20", "--out", "out",
                 "--no-progress"],
}

_SIM_PATCH = ("import redundancy.validation.study as s; _cases = s._study_cases; "
              "s._study_cases = lambda quick: _cases(quick)[:1]; "
              "from redundancy.cli.commands import main; import sys; sys.exit(main(sys.argv[1:]))")


def _strip(obj):
    if isinstance(obj, dict):
        return {k: _strip(v) for k, v in obj.items() if not WALL_CLOCK.search(str(k))}
    if isinstance(obj, list):   # a note quoting a measured latency ("Measured here: ... slower") goes too
        return [_strip(v) for v in obj if not (isinstance(v, str) and v.startswith("Measured here"))]
    return obj


def _content(path, sub):
    name = os.path.basename(path)
    if name.endswith(".json"):
        with open(path) as fh:
            return json.dumps(_strip(json.load(fh)), sort_keys=True)
    if name.endswith(".csv"):
        import pandas as pd

        t = pd.read_csv(path)
        t = t[[c for c in t.columns if not WALL_CLOCK.search(str(c))]]
        if len(t.columns):
            t = t[[not WALL_CLOCK.search(str(v)) for v in t.iloc[:, 0]]]
        return t.to_csv(index=False)
    if name.endswith(".png") and (sub == "roi" or "roi" in name):
        return None
    with open(path, "rb") as fh:
        return fh.read()


def _files(root):
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)


def _run(sub, cwd):
    if sub == "simulate":
        import subprocess
        import sys

        from tests.cli._examples import ROOT
        env = {**os.environ, "PYTHONPATH": ROOT, "PYTHONHASHSEED": "0", "MPLBACKEND": "Agg"}
        return subprocess.run([sys.executable, "-c", _SIM_PATCH, *RUNS[sub]], cwd=cwd, env=env,
                              capture_output=True, text=True, timeout=600)
    return run_cli(RUNS[sub], cwd)


@pytest.mark.parametrize("sub", sorted(RUNS))
def test_same_seed_writes_identical_files(sub, tmp_path):
    outs = []
    for i in (1, 2):
        cwd = tmp_path / f"run{i}"
        cwd.mkdir()
        r = _run(sub, cwd)
        assert r.returncode == 0, r.stderr[-2000:]
        outs.append(str(cwd / "out"))
    files = _files(outs[0])
    assert files and files == _files(outs[1])
    differ = [f for f in files if _content(os.path.join(outs[0], f), sub) != _content(os.path.join(outs[1], f), sub)]
    assert not differ, f"{sub}: files differ between two runs with the same seed: {differ}"


def test_subcommand_list_is_complete():
    from tests.cli._examples import SUBCOMMANDS

    assert sorted(SUBCOMMANDS) == sorted(RUNS)
