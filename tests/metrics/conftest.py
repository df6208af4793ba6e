"""Shared fixtures for the metrics tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gankit.metrics.inception import FIDInceptionV3


@pytest.fixture(scope="session")
def random_inception(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised state dict with the pt_inception layout, saved like the real one."""
    torch.manual_seed(0)
    model = FIDInceptionV3()
    state = {k: v for k, v in model.state_dict().items() if "num_batches_tracked" not in k}
    path = tmp_path_factory.mktemp("inception") / "pt_inception-random.pth"
    torch.save(state, path)
    return path
