"""Model factories for the CLI fuzz (``tests.fuzz.cli_models:NAME``)."""

import torch
from torch import nn


def seq1d(width=2):
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv1d(1, width, 3), nn.Flatten(), nn.Linear(4 * width, 2))


def small2d():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 3 * 3, 2))


def keyerror():
    class Bad(nn.Module):
        def __init__(self):
            super().__init__()
            self.l = nn.Linear(6, 2)

        def forward(self, x):
            raise KeyError("missing")
    return Bad()


def lazy():
    return nn.Sequential(nn.Flatten(), nn.LazyLinear(2))


def not_a_model():
    return 42


def raises():
    raise ValueError("the factory itself fails")
