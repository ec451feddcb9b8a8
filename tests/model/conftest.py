import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from model import load_model, log_mel

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
TINY = FIXTURES / "granite-nar-tiny"
TINY_ORIGINAL = FIXTURES / "granite-nar-tiny-original"
TINY_HUB = FIXTURES / "granite-nar-tiny-hub"  # IBM's own code's outputs for TINY_ORIGINAL (hub numerics)


@pytest.fixture(scope="session")
def expected():
    return json.loads((TINY / "expected.json").read_text())["utterances"]


@pytest.fixture(scope="session")
def expected_arrays():
    with np.load(TINY / "expected.npz") as z:
        return {k: z[k] for k in z.files}


@pytest.fixture(scope="session")
def waveforms(expected):
    out = {}
    for uid in expected:
        audio, sr = sf.read(TINY / "audio" / f"{uid}.flac", dtype="float32")
        assert sr == 16000
        out[uid] = audio
    return out


@pytest.fixture(scope="session")
def features(waveforms):
    return {uid: log_mel(w) for uid, w in waveforms.items()}


@pytest.fixture(scope="session", params=["native", "original"])
def tiny_model(request):
    """The transformers profile, whose oracle is ``granite-nar-tiny``: the native checkpoint as it
    loads, the original layout with ``numerics="transformers"`` (its own default is hub)."""
    if request.param == "native":
        return load_model(TINY, device="cpu")
    return load_model(TINY_ORIGINAL, device="cpu", numerics="transformers")


@pytest.fixture(scope="session")
def hub_expected():
    return json.loads((TINY_HUB / "expected.json").read_text())["utterances"]


@pytest.fixture(scope="session")
def hub_arrays():
    with np.load(TINY_HUB / "expected.npz") as z:
        return {k: z[k] for k in z.files}


@pytest.fixture(scope="session")
def hub_model():
    """The original-layout checkpoint as it loads: hub numerics, its own code's."""
    return load_model(TINY_ORIGINAL, device="cpu")


@pytest.fixture(scope="session")
def hub_features(waveforms):
    return {uid: log_mel(w, numerics="hub") for uid, w in waveforms.items()}


@pytest.fixture(scope="session")
def native_model():
    return load_model(TINY, device="cpu")
