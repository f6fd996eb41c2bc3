"""The scoreboard figures: bad arguments are named, NaN cells are drawn."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from redundancy.errors import RedundancyError
from redundancy.scoreboard.figures import MAX_PIXELS, draw_bars, draw_heatmap, draw_matrix, png_base64


_GOOD = pd.DataFrame({"a": [0.1, 0.5, 0.9], "b": [0.2, 0.4, np.nan]})


def _ax():
    return Figure().subplots()


def test_draw_functions_name_the_bad_argument():
    for call, name in ((lambda: draw_bars(None, ["a"], [0.5], title="t", ylabel="y"), "ax"),
                       (lambda: draw_bars(_ax(), ["a", "b"], [0.5], title="t", ylabel="y"), "values"),
                       (lambda: draw_bars(_ax(), ["a"], [np.inf], title="t", ylabel="y"), "values"),
                       (lambda: draw_bars(_ax(), None, [0.5], title="t", ylabel="y"), "labels"),
                       (lambda: draw_bars(_ax(), ["a"], [0.5], title=3, ylabel="y"), "title"),
                       (lambda: draw_heatmap(_ax(), np.zeros((2, 2)), ["a"], ["x", "y"], title="t",
                                             cbar_label="c"), "values"),
                       (lambda: draw_heatmap(_ax(), np.zeros((1, 1)), ["a"], ["x"], title="t", cbar_label=None),
                        "cbar_label"),
                       (lambda: draw_matrix(_ax(), np.eye(2), ["a", "b", "c"], title="t"), "matrix"),
                       (lambda: draw_matrix(_ax(), np.eye(101), [str(i) for i in range(101)], title="t"), "labels"),
                       (lambda: png_base64(None), "fig"),
                       (lambda: png_base64(Figure(figsize=(1000, 1000))), "fig")):
        with pytest.raises(RedundancyError, match=name):
            call()
    assert 1000 * 1000 * 100 ** 2 > MAX_PIXELS


def test_draw_functions_accept_nan_cells_and_draw_them():
    ax = _ax()
    im = draw_heatmap(ax, np.array([[0.2, np.nan]]), ["l"], ["a", "b"], title="t", cbar_label="c")
    assert im.get_array().mask.tolist() == [[False, True]]
    im = draw_matrix(_ax(), np.array([[1.0, np.nan], [np.nan, 1.0]]), ["a", "b"], title="t")
    assert "n/a" in [t.get_text() for t in im.axes.texts]
    bars = draw_bars(_ax(), ["a", "b"], [0.3, np.nan], title="t", ylabel="y")
    assert [b.get_height() for b in bars] == [0.3, 0.0]
    data, w, h = png_base64(ax.figure)
    assert (w, h) == (640, 480) and len(data) > 100
