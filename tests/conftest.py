"""Shared test fixtures: a local Hub server for the real `huggingface_hub` client, and one torch thread.

The machines running the suite have 2 cores shared by several processes; with more than one intra-op thread per
process a tiny model step was measured at 2.3 s instead of 0.05 s (threads spinning against each other), so the suite
runs torch single-threaded. Subprocesses inherit `OMP_NUM_THREADS=1`.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

sys.path.insert(0, os.path.dirname(__file__))

from hub_server import LocalHub  # noqa: E402


@pytest.fixture
def local_hub(tmp_path, monkeypatch):
    """A local Hub at `http://127.0.0.1:<free port>`, with the real `huggingface_hub` client (and transformers on top
    of it) pointed at it, an isolated `HF_HOME` / cache and a dummy token. Yields the [`LocalHub`]; stopped at
    teardown.

    `HF_ENDPOINT` is read by huggingface_hub at import time, which has happened by now, so the module constants and
    the shared `HfApi` instances are patched as well as the environment.
    """
    import huggingface_hub
    import transformers.utils.hub as transformers_hub
    from huggingface_hub import constants

    hub = LocalHub().start()
    home = tmp_path / "hf_home"
    cache = home / "hub"
    environment = {
        "HF_ENDPOINT": hub.url,
        "HF_HUB_DISABLE_XET": "1",
        "HF_HOME": str(home),
        "HF_HUB_CACHE": str(cache),
        "HF_TOKEN": "hf_local_test_token",
        "HF_HUB_OFFLINE": "0",
        "TRANSFORMERS_OFFLINE": "0",
        "HF_HUB_DISABLE_TELEMETRY": "1",
    }
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    patched = {
        "ENDPOINT": hub.url,
        "HUGGINGFACE_CO_URL_TEMPLATE": hub.url + "/{repo_id}/resolve/{revision}/{filename}",
        "HF_HOME": str(home),
        "HF_HUB_CACHE": str(cache),
        "HF_HUB_OFFLINE": False,
        "HF_HUB_DISABLE_XET": True,
        "HF_HUB_DISABLE_TELEMETRY": True,
        "HF_TOKEN_PATH": str(home / "token"),
        "HF_STORED_TOKENS_PATH": str(home / "stored_tokens"),
    }
    for key, value in patched.items():
        if hasattr(constants, key):
            monkeypatch.setattr(constants, key, value)
    monkeypatch.setattr(huggingface_hub.hf_api.api, "endpoint", hub.url)
    monkeypatch.setattr(transformers_hub, "_hf_api", None)
    try:
        yield hub
    finally:
        hub.stop()
