"""The command line, run in-process through main(argv) (and once through ``python -m redundancy``).

The demo's deterministic report text is compared with ``tests/golden/demo.txt``; regenerate it with
``REDUNDANCY_REGEN_GOLDEN=1 python -m pytest tests/cli/test_commands.py`` after an intended change.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

from redundancy.cli import commands as cli
from redundancy.analysis.demo import demo_text
from redundancy.checkpoint import load_weights
from redundancy.errors import CheckpointError

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "demo.txt"
ROOT = Path(__file__).resolve().parents[2]


def _run(capsys, argv):
    rc = cli.main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def _one_line(err):
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture
def factory_module(tmp_path, monkeypatch):
    """A module ``clifactories`` on sys.path with a small model factory and a failing one."""
    (tmp_path / "clifactories.py").write_text(textwrap.dedent("""
        import torch
        from torch import nn

        def small(width=4):
            torch.manual_seed(0)
            return nn.Sequential(nn.Conv2d(3, width, 3), nn.ReLU(), nn.Flatten(),
                                 nn.Linear(width * 4 * 4, 2))

        def not_a_model():
            return 42
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    return "clifactories"


def test_help_and_no_command(capsys):
    rc, out, _ = _run(capsys, ["--help"])
    assert rc == 0 and "examples:" in out and "redundancy analyze" in out and "exit codes" in out
    for cmd in ("demo", "analyze", "roi", "simulate"):
        rc, out, _ = _run(capsys, [cmd, "--help"])
        assert rc == 0 and "example" in out
    rc, out, err = _run(capsys, [])
    assert rc == 2 and "COMMAND" in out and "give a COMMAND" in _one_line(err)


@pytest.mark.parametrize("argv, needle", [
    (["demo", "--seed", "x"], "--seed"),
    (["nosuchcommand"], "nosuchcommand"),
    (["analyze", "m:f", "--input-shape", "3,a,4"], "'3,a,4' is not a shape"),
    (["analyze", "m:f", "--input-shape", "3,0,4"], "'3,0,4' is not a shape"),
    (["analyze", "m:f", "--model-arg", "novalue"], "KEY=VALUE"),
    (["roi", "a:b", "c:d", "--eps", "-1"], "'-1' is not a finite number > 0"),
    (["roi", "a:b", "c:d", "--batch-sizes", "1,0"], "'1,0' is not a list of positive integers"),
    (["roi", "a:b", "c:d", "--cost-per-sample", "nan"], "'nan' is not a finite number >= 0"),
    (["roi", "a:b"], "COMPRESSED"),
    (["simulate", "--quick"], "--out"),
    (["analyze", "no_such_module_xyz:f", "--input-shape", "3,8,8"], "cannot import module 'no_such_module_xyz'"),
])
def test_bad_arguments_exit_2_with_one_line(capsys, argv, needle):
    rc, _, err = _run(capsys, argv)
    assert rc == 2
    assert needle in _one_line(err)


def test_factory_errors(capsys, factory_module):
    rc, _, err = _run(capsys, ["analyze", f"{factory_module}:missing", "--input-shape", "3,6,6"])
    assert rc == 2 and "has no callable 'missing'" in _one_line(err)
    rc, _, err = _run(capsys, ["analyze", f"{factory_module}:not_a_model", "--input-shape", "3,6,6"])
    assert rc == 2 and "returned int, not a torch.nn.Module" in _one_line(err)
    rc, _, err = _run(capsys, ["analyze", f"{factory_module}:small"])
    assert rc == 2 and "give --input-shape" in _one_line(err)


def test_computation_failure_exits_1_with_one_line(capsys, monkeypatch):
    def boom(*a, **k):
        raise RuntimeError("shape mismatch deep inside torch\nsecond line")

    monkeypatch.setattr(cli, "load_model", boom)
    rc, _, err = _run(capsys, ["analyze", "x:y", "--input-shape", "3,4,4"])
    assert rc == 1
    assert _one_line(err) == ("redundancy: error: analyze failed: RuntimeError: "
                              "shape mismatch deep inside torch")


# ---- checkpoints -------------------------------------------------------------------------------

class _Payload:
    """Unpickling this would call ``open(path, "w")``: code run by merely loading the file."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_malicious_pickle_is_refused(tmp_path, capsys, factory_module):
    marker = tmp_path / "code_ran"
    evil = tmp_path / "evil.pt"
    torch.save({"0.weight": _Payload(str(marker))}, evil)
    with pytest.raises(CheckpointError, match="refused: it contains a pickled Python object"):
        load_weights(nn.Linear(2, 2), evil)
    rc, _, err = _run(capsys, ["analyze", f"{factory_module}:small", "--input-shape", "3,6,6",
                               "--weights", str(evil)])
    assert rc == 2 and "refused" in _one_line(err)
    assert not marker.exists()


def test_state_dict_mismatches_are_named(tmp_path):
    src = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    good = tmp_path / "good.pt"
    torch.save(src.state_dict(), good)
    dst = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    load_weights(dst, good)
    assert torch.equal(dst[1].weight, src[1].weight)

    sd = src.state_dict()
    sd.pop("1.bias")
    sd["extra.weight"] = torch.zeros(1)
    sd["0.weight"] = torch.zeros(5, 3)
    bad = tmp_path / "bad.pt"
    torch.save(sd, bad)
    with pytest.raises(CheckpointError) as info:
        load_weights(nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2)), bad)
    msg = str(info.value)
    assert "missing keys: 1.bias" in msg and "unexpected keys: extra.weight" in msg
    assert "0.weight (5, 3) vs model (4, 3)" in msg

    wrapped = tmp_path / "wrapped.pt"
    torch.save({"state_dict": src.state_dict(), "epoch": 3}, wrapped)
    load_weights(dst, wrapped)                       # a {"state_dict": ...} wrapper is unwrapped


def test_unreadable_and_non_tensor_checkpoints(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"definitely not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable torch checkpoint"):
        load_weights(nn.Linear(2, 2), junk)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_weights(nn.Linear(2, 2), tmp_path / "nope.pt")
    lst = tmp_path / "list.pt"
    torch.save([torch.zeros(2)], lst)
    with pytest.raises(CheckpointError, match="holds a list, not a state_dict"):
        load_weights(nn.Linear(2, 2), lst)
    mixed = tmp_path / "mixed.pt"
    torch.save({"weight": torch.zeros(2, 2), "note": "hi"}, mixed)
    with pytest.raises(CheckpointError, match="not tensors: note"):
        load_weights(nn.Linear(2, 2), mixed)


def test_python_dash_m_once():
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "redundancy", "roi", "a:b", "c:d", "--repeats", "x"],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert proc.returncode == 2
    assert "--repeats" in _one_line(proc.stderr) and proc.stdout == ""


# ---- commands end to end (need analyze / dof / zoo from the other issues) ----------------------

def _needs(*mods):
    for m in mods:
        pytest.importorskip(m)


def test_demo_text_matches_golden():
    _needs("redundancy.analysis.report", "redundancy.linear.dof")
    text, dof, report = demo_text(seed=0)
    if os.environ.get("REDUNDANCY_REGEN_GOLDEN"):
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(text + "\n")
    assert text + "\n" == GOLDEN.read_text(), "demo text changed; REDUNDANCY_REGEN_GOLDEN=1 regenerates"
    # the numbers in it are the library's: dof and naive count of the spec, K/R of the design
    assert f"degrees of freedom     {dof.dof}" in text and f"naive parameter count  {dof.naive}" in text
    assert report.summary.params == dof.naive and "K/R = 8" in text


def test_demo_end_to_end(tmp_path, capsys):
    _needs("redundancy.analysis.report", "redundancy.linear.dof", "redundancy.linear.bounds")
    text, _, _ = demo_text(seed=0)
    rc, out, _ = _run(capsys, ["demo", "--out", str(tmp_path)])
    assert rc == 0
    assert text in out and "identity check" in out and "break-even" in out
    data = json.loads((tmp_path / "demo_report.json").read_text())
    assert isinstance(data, dict)
    roi = json.loads((tmp_path / "demo_roi.json").read_text())
    assert roi["params_saved"] > 0
    for f in ("demo_report_layers.csv", "demo_report_bound_vs_count.png", "demo_roi.png", "demo_roi_cost.png"):
        assert (tmp_path / f).stat().st_size > 0


def test_analyze_factory_with_weights(tmp_path, capsys, factory_module):
    _needs("redundancy.analysis.report")
    import importlib

    src = importlib.import_module(factory_module).small()
    weights = tmp_path / "w.pt"
    torch.save(src.state_dict(), weights)
    rc, out, err = _run(capsys, ["analyze", f"{factory_module}:small", "--input-shape", "3,6,6",
                                 "--weights", str(weights), "--out", str(tmp_path / "o"), "--no-progress"])
    assert rc == 0, err
    assert "layers" in out and "summary: params" in out
    assert (tmp_path / "o" / "report.json").exists() and (tmp_path / "o" / "report_layers.csv").exists()
    torch.save(nn.Linear(2, 2).state_dict(), tmp_path / "wrong.pt")
    rc, _, err = _run(capsys, ["analyze", f"{factory_module}:small", "--input-shape", "3,6,6",
                               "--weights", str(tmp_path / "wrong.pt")])
    assert rc == 2 and "missing keys: 0.weight" in _one_line(err)


def test_analyze_zoo_unknown_name(capsys):
    _needs("redundancy.zoo")
    rc, _, err = _run(capsys, ["analyze", "no-such-net"])
    assert rc == 2 and "is not a zoo model" in _one_line(err)


def test_roi_command_writes_files(tmp_path, capsys, factory_module):
    _needs("redundancy.analysis.report", "redundancy.linear.bounds", "redundancy.linear.dof")
    from redundancy import counts

    if not hasattr(counts, "count_macs"):
        pytest.skip("count_macs not merged yet")
    rc, out, err = _run(capsys, ["roi", f"{factory_module}:small", f"{factory_module}:small",
                                 "--input-shape", "3,6,6", "--batch-sizes", "1,2",
                                 "--repeats", "2", "--warmup", "0", "--cost-per-sample", "1",
                                 "--cost-per-gmac", "1", "--inferences-per-month", "10",
                                 "--out", str(tmp_path), "--no-progress"])
    assert rc == 0, err
    assert "RoiResult" in out and "slower" in out.lower()
    assert json.loads((tmp_path / "roi.json").read_text())["params_saved"] == 0
    assert (tmp_path / "roi.png").stat().st_size > 0 and (tmp_path / "roi_cost.png").exists()


def test_simulate_calls_run_study(tmp_path, capsys, monkeypatch):
    validate = pytest.importorskip("redundancy.validation.study")
    seen = {}

    def fake(out_dir, quick=True, seed=0, progress=True):
        seen.update(out_dir=out_dir, quick=quick, seed=seed, progress=progress)
        return {"slope_tucker": -0.5, "files": ["a.json", "b.png"], "inputs": {"n_reps": 2},
                "curves": [{"label": "tucker K=8", "dof": 12, "naive": 40, "slope": -0.51,
                            "constant_dof": 0.9, "constant_naive": 0.5}]}

    monkeypatch.setattr(validate, "run_study", fake)
    rc, out, _ = _run(capsys, ["simulate", "--quick", "--out", str(tmp_path), "--seed", "3"])
    assert rc == 0 and "slope_tucker: -0.5" in out and "files: a.json, b.png" in out and "n_reps" not in out
    assert "tucker K=8" in out and "-0.51" in out
    assert seen == {"out_dir": str(tmp_path), "quick": True, "seed": 3, "progress": True}


def test_table_columns_are_report_fields():
    report_mod = pytest.importorskip("redundancy.analysis.report")
    from dataclasses import fields

    from redundancy.analysis.table import BLOCK_COLUMNS, LAYER_COLUMNS

    for cols, cls in ((LAYER_COLUMNS, report_mod.LayerRow), (BLOCK_COLUMNS, report_mod.BlockRow)):
        names = {f.name for f in fields(cls)}
        assert [f for _, f in cols if f not in names] == []
        assert len({h for h, _ in cols}) == len(cols)          # no column twice
