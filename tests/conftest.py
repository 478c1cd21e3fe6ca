import os

import pytest
import torch

# Tests never reach a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(scope="session")
def data_root():
    from flare.errors import DataError
    from flare.tasks.data_root import find_data_root

    try:
        return find_data_root().path
    except DataError as err:  # the shared data is part of the test set-up
        pytest.fail(str(err))
