"""Suite-wide settings: one torch thread per test process. Tests are small; on 2 shared cores,
more threads spin rather than compute (measured: 170 s -> 8 s for the model contract tests)."""

import os

import torch

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
torch.set_num_threads(1)
