"""The built-in example behind ``redundancy demo``: a Tucker-compressed linear CNN, end to end.

:func:`run_demo` builds the two designs (a ``TuckerConv`` spec and the plain conv it compresses),
computes their degrees of freedom, the redundancy report, the whole-network tensor with its identity
check, and the ROI of the plain conv against its Tucker-2 compression; it returns a
:class:`DemoResult` whose :meth:`~DemoResult.text` is what the command prints. The deterministic
first part, :func:`demo_text`, is compared with ``tests/golden/demo.txt``.
"""

from __future__ import annotations

from dataclasses import field
from typing import Any

import numpy as np

import redundancy._validation as _v

__all__ = []  # the face is redundancy.analysis; the rest is importable from here

DEMO_SHAPE = (8, 12, 12)
DEMO_K, DEMO_R = 32, 4


def _demo_specs():
    """The demo's two designs as specs: (Tucker-compressed, plain conv), same shapes."""
    from redundancy.linear.spec import AvgPool, Conv, Dense, LinearCNN, TuckerConv

    spec = LinearCNN(DEMO_SHAPE, [TuckerConv(DEMO_K, 3, ranks=(DEMO_R, DEMO_R)), AvgPool(2), Dense(1)])
    return spec, LinearCNN(DEMO_SHAPE, [Conv(DEMO_K, 3), AvgPool(2), Dense(1)])


def _demo_design(seed: int):
    """The demo's two designs: (spec, compressed net, original net) for ``seed``."""
    spec, plain = _demo_specs()
    return spec, spec.build(seed=seed), plain.build(seed=seed)


def _text(seed: int):
    from redundancy.analysis.report import analyze
    from redundancy.analysis.table import report_text
    from redundancy.linear.dof import degrees_of_freedom

    spec, net, _ = _demo_design(seed)
    dof = degrees_of_freedom(spec)
    report = analyze(net, spec.input_shape)
    lines = ["redundancy demo: a Tucker-compressed linear CNN",
             f"  input shape            {spec.input_shape}",
             f"  layers                 {', '.join(spec.layer_names())}",
             f"  K (output channels)    {DEMO_K},  R (Tucker rank)  {DEMO_R},  K/R = {DEMO_K / DEMO_R:g}",
             f"  naive parameter count  {int(dof.naive)}",
             f"  degrees of freedom     {int(dof.dof)}  (method {dof.method})",
             f"  naive / dof            {dof.naive / dof.dof:.4f}",
             "", report_text(report)]
    return "\n".join(lines), dof, report


@_v.validate_params({"seed": _v.Seed()})
def demo_text(seed: int = 0):
    """The deterministic part of the demo (compared with ``tests/golden/demo.txt``), the dof of the
    compressed spec and its redundancy report: ``(text, dof, report)``."""
    return _text(seed)


def _identity_check(net, spec, res, seed: int) -> float:
    import torch

    x = np.random.default_rng(seed).normal(size=(64, *spec.input_shape))
    with torch.no_grad():
        y = net(torch.from_numpy(x)).reshape(64, -1).numpy()
    return float(np.abs(res.apply(x) - y).max() / np.abs(y).max())


def _roi(plain, spec, dof, seed: int):
    from redundancy.analysis.roi import estimate_roi
    from redundancy.linear.dof import degrees_of_freedom
    from redundancy.lowrank.compression import compress

    plain_dof = degrees_of_freedom(_demo_specs()[1])
    # the design as it would be deployed: the plain conv compressed into a Tucker-2 chain
    # (1x1 -> 3x3 -> 1x1); it reaches the same set of W as the TuckerConv spec, hence the same dof
    deployed = compress(plain, ranks=(DEMO_R, DEMO_R), method="tucker").model
    return estimate_roi(plain, deployed, spec.input_shape, batch_sizes=(1, 8), repeats=5, warmup=2, eps=0.1,
                        cost_per_sample=0.05, cost_per_gmac=1e-4, inferences_per_month=1e8, seed=seed,
                        dof=(plain_dof.dof, dof.dof), naive=(plain_dof.naive, dof.naive))


@_v.result
class DemoResult(_v.Result):
    """What the demo computed: the golden ``summary`` text, the whole-network tensor's shape and
    Frobenius norm, the identity check's relative error, the report and the ROI."""

    summary: str
    tensor_shape: tuple
    tensor_norm: float
    identity_error: float
    roi: Any
    report: Any = field(default=None, metadata=_v.NOT_EXPORTED)
    dof: Any = field(default=None, metadata=_v.NOT_EXPORTED)

    @property
    def ok(self) -> bool:
        """The whole-network tensor reproduces the forward pass (relative error below 1e-10)."""
        return self.identity_error < 1e-10

    def text(self) -> str:
        """The demo's terminal output (without the file list and the timing)."""
        roi = self.roi
        return "\n".join([
            self.summary, "",
            f"whole-network tensor     W shape {self.tensor_shape}, ||W||_F = {self.tensor_norm:.4f}",
            f"identity check           max relative error of <W, x> + b vs forward on 64 inputs: "
            f"{self.identity_error:.1e}",
            "ROI of the design deployed as a Tucker-2 chain (redundancy.compress of the plain conv) vs the plain "
            "conv\n(eps=0.1, $0.05/sample, $1e-4/GMAC, 1e8 inferences/month):",
            "  " + repr(roi).replace("\n", "\n  "),
            f"  note: {roi.notes[0]}"])


@_v.validate_params({"seed": _v.Seed()})
def run_demo(seed: int = 0) -> DemoResult:
    """Run the built-in example for ``seed`` (see the module docstring)."""
    from redundancy.linear.tensor import whole_network_tensor

    text, dof, report = _text(seed)
    spec, net, plain = _demo_design(seed)
    res = whole_network_tensor(net, spec.input_shape)
    err = _identity_check(net, spec, res, seed)
    return DemoResult(summary=text, tensor_shape=tuple(res.W.shape), tensor_norm=float(np.linalg.norm(res.W)),
                      identity_error=err, roi=_roi(plain, spec, dof, seed), report=report, dof=dof)
