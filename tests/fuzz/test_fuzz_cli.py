"""Fuzz every CLI command in-process: exit 0, or exit 1/2 with exactly one line on stderr, no
traceback and no raw exception type (``failed: TypeError: ...``) in it."""

from __future__ import annotations

import contextlib
import io
import os
import re

from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz import harness
from tests.fuzz import values as V
from tests.fuzz.conftest import fuzz_settings

LONG = os.environ.get("FUZZ_PROFILE", "fast") == "long"
RAW = re.compile(r"failed: [A-Za-z]*(Error|Exception|Interrupt)\b|Traceback")

MODELS = st.sampled_from(["tests.fuzz.cli_models:seq1d", "tests.fuzz.cli_models:small2d",
                          "tests.fuzz.cli_models:keyerror", "tests.fuzz.cli_models:lazy",
                          "tests.fuzz.cli_models:not_a_model", "tests.fuzz.cli_models:raises",
                          "tests.fuzz.cli_models:nope", "no.such.module:f", "resnet20", "vgg", "", ":"])
SHAPES = st.just("1,6") | st.sampled_from(["1,6", "1,5,5", "1,7", "3,32,32", "0", "-1,3", "abc", "1e3", "1000000000000",
                          "1,1000000,1000000", "1x6", ""])
ODD = st.sampled_from(["0", "-1", "1", "2", "nan", "inf", "-inf", "1e308", "abc", "",
                       str(2 ** 64), str(10 ** 400), "1e-300", "0x10", "3.5"])
SMALL_ZOO = ["--model-arg", "widths=(2,2,2)", "--model-arg", "blocks_per_stage=1", "--model-arg",
             "in_channels=1", "--input-shape", "1,8,8"]


def _files():
    return V.checkpoint_files().map(lambda p: p)


@st.composite
def argv(draw):
    cmd = draw(st.sampled_from(["analyze", "analyze", "roi", "roi", "demo", "simulate", "bogus", None]))
    out = []
    if draw(st.integers(0, 9)) == 0:
        out.append("--debug-typo")
    if cmd is None:
        return out
    out.append(cmd)
    if cmd == "analyze":
        model = draw(MODELS)
        out.append(model)
        if model == "resnet20":
            out += SMALL_ZOO
        elif draw(st.integers(0, 4)):
            out += ["--input-shape", draw(SHAPES)]
        if draw(st.integers(0, 3)) == 0:
            out += ["--weights", draw(_files())]
        if draw(st.integers(0, 4)) == 0:
            out += ["--model-arg", draw(st.sampled_from(["width=3", "width=0", "width=abc", "nokey", "1=2",
                                                         "width=10**12"]))]
        out.append("--no-progress")
    elif cmd == "roi":
        out += [draw(MODELS), draw(MODELS), "--input-shape", draw(SHAPES), "--batch-sizes",
                draw(st.sampled_from(["1", "1,2", "0", "abc", "1000000000000"])), "--repeats",
                draw(st.sampled_from(["1", "2"]) | ODD), "--warmup", draw(st.sampled_from(["0"]) | ODD),
                "--no-progress"]
        for opt in ("--eps", "--sigma", "--cost-per-sample", "--cost-per-gmac", "--inferences-per-month", "--seed"):
            if draw(st.integers(0, 3)) == 0:
                out += [opt, draw(ODD)]
        if draw(st.integers(0, 4)) == 0:
            out += ["--weights-original", draw(_files())]
    elif cmd == "demo":
        # a valid demo runs a full example (tens of seconds): only in the long profile
        if LONG and draw(st.integers(0, 5)) == 0:
            out += ["--seed", draw(st.sampled_from(["0", "1"]))]
        else:
            out += ["--seed", draw(ODD.filter(lambda v: v not in ("0", "1", "2")))]
        if draw(st.booleans()):
            out += ["--out", draw(st.sampled_from([V.checkpoint_files().example() if False else
                                                   os.path.join(V._TMP, "text.pt"), ""]))]
    elif cmd == "simulate":
        # a valid simulate is a minutes-long study: only its argument handling is fuzzed
        opts = draw(st.sampled_from([[], ["--seed", "abc"], ["--out"], ["--quick", "--seed", "-1"],
                                     ["--out", os.path.join(V._TMP, "text.pt"), "--quick"]]))
        out += opts
    else:
        out += draw(st.lists(ODD, max_size=2))
    if draw(st.integers(0, 5)) == 0:
        out.insert(draw(st.integers(0, len(out))), "--debug")
    return out


def _run(args):
    from redundancy.cli import commands

    so, se = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(so), contextlib.redirect_stderr(se):
        rc = commands.main(list(args))
    return rc, so.getvalue(), se.getvalue()


def _classify(args):
    V.checkpoint_files()  # make sure the files exist
    limit = harness.TIME_LIMIT * (6 if "demo" in args else 1)
    kind, got = harness._run_with_timeout(lambda: _run(args), limit)
    if kind == "hang":
        return harness.Outcome("hang", f"no answer within {harness.TIME_LIMIT:g} s")
    if kind == "exc":
        return harness.Outcome("raw", f"main() raised {type(got).__name__}: {got}")
    rc, out, err = got
    lines = [ln for ln in err.splitlines() if ln.strip()]
    debug = "--debug" in args
    if rc == 0:
        return harness.Outcome("ok")
    if rc not in (1, 2):
        return harness.Outcome("raw", f"exit {rc}")
    if debug:
        lines = [ln for ln in lines if re.match(r"redundancy[a-z ]*: ", ln)]
    if len(lines) != 1:
        return harness.Outcome("raw", f"exit {rc} with {len(lines)} stderr lines: {err[-300:]!r}")
    if RAW.search(lines[0]):
        return harness.Outcome("raw", f"exit {rc}: {lines[0][:300]}")
    return harness.Outcome("clear", lines[0])


def test_fuzz_cli():
    failures = []

    @fuzz_settings()
    @given(argv())
    def run(args):
        outcome = _classify(args)
        harness.record("cli", outcome, " ".join(args))
        if outcome.cls not in harness.PASSING:
            failures.append(f"{outcome.cls}: redundancy {' '.join(args)} -> {outcome.detail[:300]}")

    run()
    assert not failures, f"{len(failures)} failing command(s):\n" + "\n".join(failures[:8])


def test_debug_prints_the_traceback():
    rc, _, err = _run(["analyze", "tests.fuzz.cli_models:keyerror", "--input-shape", "1,6", "--no-progress",
                       "--debug"])
    assert rc == 2 and "Traceback" in err and err.strip().splitlines()[-1].startswith("redundancy: error:")
    rc, _, err = _run(["analyze", "tests.fuzz.cli_models:keyerror", "--input-shape", "1,6", "--no-progress"])
    assert rc == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1
