"""bench/call_cpu.py's logic without running calls: the two stations' hardware.toml parse (through
the daemon's own loader) to the same thing but for the canceller, the evidence check catches a
canceller that did not run (or ran where it should not), and the paired figures add up."""
import pytest

from bench.call_cpu import CallSample, check_canceller, station_hardware, summarize
from daemon.hwconfig import load
from hw.echo import AecConfig


@pytest.mark.parametrize("rate", [8000, 16000])
def test_the_two_stations_differ_only_in_the_canceller(tmp_path, rate):
    configs = {}
    for aec in (True, False):
        d = tmp_path / str(aec)
        d.mkdir()
        (d / "hardware.toml").write_text(station_hardware(aec, rate))
        configs[aec] = load(d)
    on, off = configs[True], configs[False]
    assert on.audio.simulated and on.gpio.simulated and on.audio.sample_rate == rate
    assert on.audio.aec == AecConfig()                     # the defaults: what a user gets
    assert off.audio.aec == AecConfig(enabled=False)
    assert on.audio.__class__(**{**vars(on.audio), "aec": off.audio.aec}) == off.audio
    assert (on.gpio, on.button, on.relay) == (off.gpio, off.button, off.relay)


def sample(condition, rnd, sup, bob=1.0, frames=1000, echo=1000):
    return CallSample(condition, "PCMU/8000", rnd, 20.0, sup, bob, 10.0, sup * 0.2, 0.2, 22.0,
                      frames, frames, echo if condition == "on" else None,
                      {"frames": echo} if condition == "on" else {"off": "disabled"})


def test_figures_are_paired_per_round():
    samples = [sample("on", 0, 4.0), sample("off", 0, 3.0), sample("off", 1, 2.5), sample("on", 1, 3.9)]
    f = summarize(samples)
    assert f["supervisor_pct_on"] == pytest.approx(3.95) and f["supervisor_pct_off"] == pytest.approx(2.75)
    assert (f["diff_min"], f["diff_max"]) == pytest.approx((1.0, 1.4))
    assert f["diff_mean"] == pytest.approx(1.2)
    assert f["ratio_on_off"] == pytest.approx(3.95 / 2.75)
    assert f["ratio_on_baresip"] == pytest.approx(3.95) and f["ratio_off_baresip"] == pytest.approx(2.75)


def test_evidence_check():
    good = [sample("on", 0, 4.0), sample("off", 0, 3.0)]
    assert check_canceller(good) == []
    lazy = [sample("on", 0, 4.0, echo=10), sample("off", 0, 3.0)]
    assert "the canceller processed 10 frames" in check_canceller(lazy)[0]
    stray = sample("off", 0, 3.0)
    stray.echo_frames = 1000
    assert "a canceller ran" in check_canceller([stray])[0]
    silent = [sample("on", 0, 4.0, frames=100, echo=100)]        # 100 frames in 20 s: no call audio
    assert "only 100 frames" in check_canceller(silent)[0]
    other_codec = sample("off", 0, 3.0)
    other_codec.negotiated = "PCMA"
    assert "asked for PCMU/8000, the call used PCMA" in check_canceller([other_codec])[0]
    same_codec = sample("off", 0, 3.0)
    same_codec.negotiated = "PCMU"
    assert check_canceller([same_codec]) == []


def vm_run(rnd, aec, sup, echo_frames, quality=None):
    return {"round": rnd, "aec": aec, "wall_s": 10.0, "counted_s": 14.0, "pct": {"supervisor": sup, "baresip": 10.0},
            "frames_to_call": 700, "echo_frames": echo_frames, "echo_state": {"off": "disabled"} if not aec else {},
            "echo_quality": quality, "mic_underruns": 0}


def test_vm_lane_aec_report():
    """bench/vm.py's item 5 report (it runs last in a VM run: a formatting error loses the run)."""
    from bench.vm import report_aec
    lines = []
    quality = {"rms": 9000, "freq_hz": 1000.0, "glitches": 2, "silent_frames": 0, "seconds": 10.0}
    report_aec(lines.append, [vm_run(0, True, 60.0, 700, quality), vm_run(0, False, 50.0, None)], 10)
    text = "\n".join(lines)
    assert "on 60.0 % / off 50.0 %" in text and "on/off 1.20x" in text and "(1000.0, 9000, 2)" in text
    assert "canceller 700 frames (50.0/s)" in text and "CHECK FAILED" not in text
    lines.clear()
    report_aec(lines.append, [vm_run(0, True, 60.0, 10), vm_run(0, False, 50.0, 700)], 10)
    assert "CHECK FAILED for rounds [(0, True), (0, False)]" in lines[-1]
