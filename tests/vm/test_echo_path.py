"""Issue 12's echo path, recorded in the VM lane: the station's audio hub (built from hardware.toml
as the supervisor builds it, echo canceller on) plays a far end's speech on snd-aloop; a room
process (tests/vm/echo_room.py) plays it back into the microphone after a delay, attenuated, with
reflections, plus a visitor's voice; the hub's output to the call is recorded.

The tracks go to $VMLANE_OUT/echo-path/on-<delay>/; the host (tests/test_vmlane.py) computes the
figures (tests/echo_figures.py: pure Python, minutes under emulation, seconds natively) and asserts
the issue's bar there. Here: the run itself happened as designed (the room heard the far end, the
canceller ran on every frame, the devices reported no error).
"""
import json
import os
from pathlib import Path

import pytest

from tests.vm.echo_run import LANE_RATE, run_once, speech

OUT = Path(os.environ.get("VMLANE_OUT", "/tmp"))
DELAYS_MS = (20, 150)          # the range, both ends
TAIL_MS = 500                  # see docs/audio.md "Measured on a real echo path"


@pytest.fixture(scope="module")
def voices(tmp_path_factory):
    work = tmp_path_factory.mktemp("echo")
    far, near = speech(work, LANE_RATE)
    near_raw = work / "near.raw"
    near_raw.write_bytes(near)
    return far, near_raw


@pytest.mark.parametrize("delay_ms", DELAYS_MS)
def test_echo_path_recorded(voices, delay_ms):
    far, near_raw = voices
    out = OUT / "echo-path" / f"on-{delay_ms:03d}"
    run = run_once(out, far, near_raw, delay_ms, aec=True, tail_ms=TAIL_MS, rate=LANE_RATE)
    assert run["room_rc"] == 0 and run["room_ready"], run
    room = json.loads((out / "room.json").read_text())
    assert room["onset"] is not None and room["double_talk"], room
    assert run["hub"]["echo"].get("frames") == run["ticks"], run["hub"]
    assert run["hub"]["device_errors"] == 0, run["hub"]
