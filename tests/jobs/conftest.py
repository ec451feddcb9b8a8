from tests.model.conftest import expected, features, waveforms  # noqa: F401 - shared fixtures
