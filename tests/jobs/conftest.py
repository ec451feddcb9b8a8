import pytest

from tests.model.conftest import expected, features, waveforms  # noqa: F401 - shared fixtures


@pytest.fixture(autouse=True)
def _one_ray_session(ray_session):
    """Every test here shares the session's one local Ray (tests/conftest.py): a job that calls
    ``ray.init()`` itself then finds it, so the session's settings hold for the whole run whatever
    the order of the tests."""
