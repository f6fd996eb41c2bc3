"""The scoreboard's Displays and its one-page HTML report, checked in a real browser (headless
Chromium): the page loads with no console message, requests nothing from the network, and every
embedded figure decodes to a non-blank image of the size the page declares."""

from __future__ import annotations

import base64
import io
import re
import shutil
import subprocess

import numpy as np
import pytest

from redundancy.errors import RedundancyError
from redundancy.scoreboard import scoreboard
from redundancy.scoreboard.html import headline, report_to_html

from tests.scoreboard.test_board import _Result, _data, planted_model

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "chrome")


class _LongTail:
    """A test double of the long-tail report: ``n`` examples, one summary row per compressed model."""

    n = 200
    rows = ({"model": "int8", "n_mismatch": 7, "flip_rate": 0.035, "accuracy": 0.9},
            {"model": "lowrank", "n_mismatch": 12, "flip_rate": 0.06, "accuracy": 0.88})


@pytest.fixture(scope="module")
def board():
    sb = scoreboard(planted_model(True), _data(), results={"longtail": _LongTail()})
    return sb


@pytest.fixture(scope="module")
def roi():
    from redundancy.analysis.roi import estimate_roi

    return estimate_roi(planted_model(False), planted_model(True), (1, 8, 8), batch_sizes=(1,), repeats=2,
                        warmup=0, cost_per_sample=0.1, cost_per_gmac=1e-3, inferences_per_month=1e6)


def _pngs(html: str) -> list[tuple[np.ndarray, int, int]]:
    import matplotlib.image as mpimg

    out = []
    for m in re.finditer(r'<img[^>]*width="(\d+)" height="(\d+)" src="data:image/png;base64,([^"]+)"', html):
        img = mpimg.imread(io.BytesIO(base64.b64decode(m.group(3))), format="png")
        out.append((img, int(m.group(1)), int(m.group(2))))
    return out


def _non_blank(img: np.ndarray) -> bool:
    rgb = img[..., :3]
    return float(rgb.std()) > 0.02 and float((rgb < 0.9).any(axis=-1).mean()) > 0.01


# ----------------------------------------------------------------------------- displays
def test_displays_draw_the_scoreboard(board):
    import matplotlib.pyplot as plt

    from redundancy.plotting import ScoreCorrelationDisplay, ScoreHeatmapDisplay

    heat = ScoreHeatmapDisplay.from_result(board).plot()
    assert heat.image_.get_array().shape == (len(board.table), len(board.scores) + 1)
    assert np.allclose(heat.values["consensus"], board.table.set_index("layer")["consensus_rank"])
    corr = ScoreCorrelationDisplay.from_result(board, level="channel", method="kendall").plot()
    assert list(corr.matrix.columns) == ["l1", "taylor"]
    assert heat.figure_ is not corr.figure_
    with pytest.raises(RedundancyError, match="level"):
        ScoreCorrelationDisplay.from_result(board, level="block")
    with pytest.raises(RedundancyError, match="Scoreboard"):
        ScoreHeatmapDisplay.from_result(object())
    plt.close("all")


# ----------------------------------------------------------------------------- the page
def test_headline_says_what_is_known_and_not_measured(board, roi):
    q = dict(headline(board, board.report, None, None))
    assert "of the parameters" in q["How much of the model is redundant?"]
    assert q["What does the compression save?"].startswith("not measured")
    assert q["How many long-tail examples flip?"].startswith("not measured")
    q = dict(headline(board, board.report, roi, _LongTail()))
    assert f"{roi.params_saved:,} of {roi.params_original:,}" in q["What does the compression save?"]
    assert f"{roi.extra_samples:+,}" in q["How much more data does it need?"]
    assert q["How many long-tail examples flip?"] == ("int8: 7 of 200 examples (flip rate 3.5 %); "
                                                       "lowrank: 12 of 200 examples (flip rate 6.0 %)")


def test_page_is_self_contained_escaped_and_every_figure_is_drawn(board, roi, tmp_path):
    path = board.to_html(tmp_path / "page.html", roi=roi, title="<b>net & co</b>")
    html = open(path, encoding="utf-8").read()
    assert "&lt;b&gt;net &amp; co&lt;/b&gt;" in html and "<b>net" not in html     # autoescaped
    # nothing fetched: every src/href is inline data, no URL anywhere outside the CSP line
    assert not re.findall(r'(?:src|href)="(?!data:)', html)
    assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/", html, re.I)
    assert "<link" not in html and "@import" not in html
    # headline before figures before tables
    assert html.index("The answer") < html.index("<h2>Figures") < html.index("<h2>Tables")
    assert "int8: 7 of 200 examples" in html
    figs = _pngs(html)
    assert len(figs) == 4                                     # heat map, correlations, consensus, ranks
    for img, w, h in figs:
        assert img.shape[:2] == (h, w) and _non_blank(img)


def test_page_ranks_the_scores_against_car_when_car_is_given(tmp_path):
    net = planted_model(True)
    car = _Result({"0": 0.1, "2": 0.2, "4": 0.3, "5": 0.9, "7": 0.4}, {"5": [1.0] * 4 + [0.0] * 12})
    sb = scoreboard(net, input_shape=(1, 8, 8), results={"car": car}, scores=["numerical", "l1", "car"])
    html = open(sb.to_html(tmp_path / "car.html"), encoding="utf-8").read()
    assert "Which score predicts the CAR accuracy drop best (per layer)" in html
    best = sb.reference.iloc[0]
    assert best["score"] in ("numerical", "l1") and f"<td>{best['score']}</td>" in html


def test_report_page_from_analyze(board, tmp_path):
    path = report_to_html(board.report, tmp_path / "report.html")
    html = open(path, encoding="utf-8").read()
    assert "not measured" in html and "Layers (analyze)" in html
    assert len(_pngs(html)) == 1
    with pytest.raises(RedundancyError, match="RedundancyReport"):
        report_to_html(object(), tmp_path / "x.html")
    with pytest.raises(RedundancyError, match="does not exist"):
        report_to_html(board.report, tmp_path / "no" / "x.html")


def _browser() -> str | None:
    for name in BROWSERS:
        exe = shutil.which(name)
        if exe:
            return exe
    return None


def _render(exe: str, url: str, shot) -> tuple[str, str]:
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
           "--host-resolver-rules=MAP * ~NOTFOUND", "--enable-logging=stderr", "--v=0",
           "--window-size=1200,2400", f"--screenshot={shot}", "--dump-dom", url]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout, proc.stderr


def test_page_in_headless_chromium(board, roi, tmp_path):
    exe = _browser()
    if exe is None:
        pytest.skip("no Chromium found (apt-get install chromium)")
    import matplotlib.image as mpimg

    page = board.to_html(tmp_path / "page.html", roi=roi)
    dom, log = _render(exe, f"file://{page}", tmp_path / "shot.png")
    assert "How much of the model is redundant?" in dom                        # page loaded
    assert 'data-figures-expected="4"' in dom and 'data-figures-drawn="4"' in dom  # decoded at full size
    console = [ln for ln in log.splitlines() if "CONSOLE" in ln]
    assert console == []                                   # no console error (nor any message)
    shot = mpimg.imread(tmp_path / "shot.png")
    assert shot.shape[:2] == (2400, 1200) and _non_blank(shot)
    # the same checks catch a page that reaches out: its request is refused and logged
    bad = tmp_path / "bad.html"
    bad.write_text(open(page, encoding="utf-8").read().replace(
        "<h1>", '<img src="https://example.com/x.png"><h1>', 1), encoding="utf-8")
    _, log = _render(exe, f"file://{bad}", tmp_path / "bad.png")
    assert any("CONSOLE" in ln and "example.com" in ln for ln in log.splitlines())


# ----------------------------------------------------------------------------- command line
def test_cli_scoreboard_and_analyze_html(tmp_path, capsys):
    import json

    from redundancy.cli import main

    out = tmp_path / "sb"
    rc = main(["scoreboard", "small_cnn", "--data", "digits", "--scores", "numerical,l1,taylor",
               "--model-arg", "widths=(4, 8)", "--out", str(out), "--html", str(out / "page.html"),
               "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    d = json.loads((out / "scoreboard.json").read_text())
    assert d["scores"] == ["numerical", "l1", "taylor"] and len(d["layers"]) == 3
    for f in ("scoreboard.csv", "channels.csv", "heatmap.png", "correlation.png", "page.html"):
        assert (out / f).stat().st_size > 0
    rc = main(["analyze", "small_cnn", "--html", str(tmp_path / "a.html"), "--no-progress"])
    assert rc == 0 and "Layers (analyze)" in (tmp_path / "a.html").read_text()
    capsys.readouterr()
    assert main(["scoreboard", "small_cnn", "--scores", "nope"]) == 2
    assert "nope" in capsys.readouterr().err
    assert main(["scoreboard", "small_cnn", "--epochs", "2"]) == 2
    assert main(["scoreboard", "small_cnn", "--data", "cifar"]) == 2


def test_real_mismatch_report_in_the_headline():
    longtail = pytest.importorskip("redundancy.longtail", exc_type=ImportError)
    ref, comp = planted_model(False), planted_model(True)
    rep = longtail.mismatch_report(ref, {"planted": comp}, _data(), n_permutations=10)
    q = dict(headline(None, None, None, rep))["How many long-tail examples flip?"]
    assert q.startswith(f"planted: {rep.rows[0]['n_mismatch']:,} of {rep.n:,} examples")


def test_page_marks_numbers_that_rest_on_unconverged_or_failed_decisions(tmp_path):
    """A companion result whose fine-tune did not converge, or whose verdict is not "ok", gets the mark
    on its score column, the consensus and the headline, and a caveat that says why."""
    from redundancy.scoreboard.html import MARK, caveats
    from redundancy.training import assess_convergence, check_decision

    layers = ["0", "2", "4", "5", "7", "11"]
    car = _Result({l: 0.1 * i for i, l in enumerate(layers)}, {"5": [1.0] * 16, "7": [0.5] * 16})
    car.verdict = check_decision(metric="accuracy", original=0.9, decided=0.11, chance=0.1, warn=False)
    searched = _Result({"5": 0.5, "7": 0.25})
    searched.convergence = assess_convergence([3.0, 2.0, 1.0], max_epochs=3)
    searched.verdict = check_decision(metric="accuracy", original=0.9, decided=0.89, chance=0.1, budget=0.05,
                                      warn=False)
    ok = _Result({"5": 0.5})
    ok.verdict = searched.verdict
    assert caveats({"searched": ok}) == {}
    marks = caveats({"car": car, "searched": searched})
    assert "near_chance" in marks["car"] and "did not converge" in marks["searched"]
    sb = scoreboard(planted_model(True), _data(), scores=["numerical", "car", "searched"],
                    results={"car": car, "searched": searched})
    text = open(sb.to_html(tmp_path / "page.html"), encoding="utf-8").read()
    assert 'id="caveats"' in text and "NOT converged after 3/3 epochs" in text
    assert f"<th>car {MARK}</th>" in text and f"<th>searched {MARK}</th>" in text
    assert f"<th>consensus {MARK}</th>" in text and "<th>numerical</th>" in text
    assert f"{MARK} (rests on the marked results below)" in text
    clean = scoreboard(planted_model(True), _data(), scores=["numerical", "searched"], results={"searched": ok})
    assert 'id="caveats"' not in open(clean.to_html(tmp_path / "clean.html"), encoding="utf-8").read()
