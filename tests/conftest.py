import numpy as np
import pytest
import torch

import metarobot

FAMILIES = ["reach", "cartpole", "navigate", "grasp", "reach-v1", "reach-v2", "navigate-v1", "grasp-v1", "grasp-v2"]


@pytest.fixture(autouse=True)
def _one_thread():
    # tests are small; one torch thread keeps them fast and repeatable on 2 cores
    torch.set_num_threads(1)


@pytest.fixture(params=FAMILIES)
def family(request):
    return metarobot.get_family(request.param)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
