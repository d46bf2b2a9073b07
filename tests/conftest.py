import pytest

from tests.harness import Station


@pytest.fixture
def station(tmp_path):
    """A real `doorstation run` (supervisor + gunicorn) with a fresh state directory."""
    st = Station(tmp_path / "state")
    st.start()
    try:
        yield st
    finally:
        st.stop()
