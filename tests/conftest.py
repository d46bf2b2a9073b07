import pytest

from tests.harness import Station
from tests.test_commands_fakes import Station as CommandStation


@pytest.fixture
def station(tmp_path):
    """A real `doorstation run` (supervisor + gunicorn) with a fresh state directory."""
    st = Station(tmp_path / "state")
    st.start()
    try:
        yield st
    finally:
        st.stop()


@pytest.fixture
def st(tmp_path):
    """A store + fake runtime that runs commands the way the supervisor does (no processes)."""
    station = CommandStation(tmp_path / "doorstation.sqlite3")
    try:
        yield station
    finally:
        station.close()
