"""Fuzz profiles and the per-class counts.

``FUZZ_PROFILE=fast`` (default, CI: the whole directory in well under a minute) or ``long`` (by hand:
``FUZZ_PROFILE=long python -m pytest tests/fuzz -q``). The counts per class (ok, clear, raw,
nonfinite, hang, wrong) are printed at the end of the run; ``FUZZ_COUNTS=path.json`` also writes them.
"""

from __future__ import annotations

import json
import os
import resource

import pytest
from hypothesis import HealthCheck, Phase, settings

from tests.fuzz import harness

PROFILE = os.environ.get("FUZZ_PROFILE", "fast")
_COMMON = dict(deadline=None, database=None, print_blob=False, suppress_health_check=list(HealthCheck),
               phases=(Phase.explicit, Phase.generate))
settings.register_profile("fuzz-fast", derandomize=True, max_examples=int(os.environ.get("FUZZ_EXAMPLES", 6)),
                          **_COMMON)
settings.register_profile("fuzz-long", derandomize=False, max_examples=int(os.environ.get("FUZZ_EXAMPLES", 150)),
                          **_COMMON)

# an absurd allocation must fail, not swap the shared machine to death. The limit holds only while
# the fuzz modules run: it is put back afterwards, since later tests start child processes (a
# headless browser) that need a large address space.
_LIMIT_GB = float(os.environ.get("FUZZ_MEMORY_GB", "16"))


@pytest.fixture(autouse=True, scope="module")
def _memory_limit():
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        want = int(_LIMIT_GB * 2 ** 30)
        if hard == resource.RLIM_INFINITY or hard > want:
            resource.setrlimit(resource.RLIMIT_AS, (want, hard))
    except (ValueError, OSError):  # pragma: no cover - platform without RLIMIT_AS
        yield
        return
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def fuzz_settings():
    return settings.get_profile("fuzz-long" if PROFILE == "long" else "fuzz-fast")


def pytest_terminal_summary(terminalreporter):
    if not harness.COUNTS:
        return
    for line in harness.summary_lines():
        terminalreporter.write_line(line)
    path = os.environ.get("FUZZ_COUNTS")
    if path:
        with open(path, "w") as fh:
            json.dump({"profile": PROFILE, "totals": dict(harness.totals()),
                       "per_target": {k: dict(v) for k, v in sorted(harness.COUNTS.items())},
                       "examples": {f"{t} [{c}]": ex for (t, c), ex in sorted(harness.EXAMPLES.items())}},
                      fh, indent=1)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


@pytest.fixture(scope="session", autouse=True)
def _warm_up():
    """torch.func's first call costs seconds (lazy imports); pay it before any call is timed."""
    from torch import nn

    from redundancy import whole_network_tensor

    whole_network_tensor(nn.Linear(2, 1), (2,))
    yield
