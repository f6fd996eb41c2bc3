import os

import matplotlib
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, settings

matplotlib.use("Agg")
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

# Deterministic profile for CI (as in SciPy's conftest): derandomized, no deadline.
settings.register_profile(
    "ci", derandomize=True, deadline=None, max_examples=40, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
settings.register_profile(
    "dev", deadline=None, max_examples=25,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
settings.register_profile("thorough", deadline=None, max_examples=400,
                          suppress_health_check=list(HealthCheck))
# The README's test command and CI run the same deterministic suite; a random profile ("dev", "thorough")
# is there by name for fuzzing: HYPOTHESIS_PROFILE=dev python -m pytest ...
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
