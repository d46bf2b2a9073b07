"""hardware.toml parsing: defaults, the documented Pi example, and errors that name the bad key."""
import re
from pathlib import Path

import pytest

from daemon.hwconfig import HwConfigError, load, parse
from hw.backends import open_lines
from hw.gpio import Bias, Direction
from hw.gpio_sim import SimLines

DOC = Path(__file__).resolve().parents[2] / "docs" / "hardware.md"
PI = """
[gpio]
chip = "pinctrl-bcm2711"
[gpio.call_button]
line = "GPIO17"
active_low = true
bias = "pull-up"
debounce_ms = 30
[gpio.call_led]
line = "GPIO27"
[gpio.door_relay]
line = "GPIO22"
pulse_ms = 5000
"""


def write(tmp_path, text):
    (tmp_path / "hardware.toml").write_text(text)
    return load(tmp_path)


def test_no_file_means_everything_simulated(tmp_path):
    cfg = load(tmp_path)
    assert cfg.gpio.simulated and cfg.audio.simulated
    assert cfg.button.recipient == "VMS_CALL" and cfg.relay.pulse_ms == 3000
    lines = open_lines(cfg.gpio)
    assert isinstance(lines, SimLines)
    lines.close()


def test_file_without_gpio_section_keeps_gpio_simulated(tmp_path):
    cfg = write(tmp_path, '[button]\nrecipient = "sip:desk@10.0.0.5"\n[relay]\ndtmf_events = ["1"]\n')
    assert cfg.gpio.simulated and cfg.button.recipient == "sip:desk@10.0.0.5"
    assert cfg.relay.dtmf_events == ("1",)


def test_pi_wiring(tmp_path):
    cfg = write(tmp_path, PI)
    assert not cfg.gpio.simulated and cfg.gpio.chip == "pinctrl-bcm2711"
    specs = {s.role: s for s in cfg.gpio.line_specs()}
    assert specs["call_button"].line == "GPIO17" and specs["call_button"].active_low
    assert specs["call_button"].bias is Bias.PULL_UP and specs["call_button"].debounce_ms == 30
    assert specs["door_relay"].direction is Direction.OUTPUT and cfg.relay.pulse_ms == 5000
    assert cfg.audio.simulated


def test_documented_example_parses_and_matches_the_wiring():
    text = DOC.read_text()
    example = re.search(r"```toml\n(.*?)```", text, re.S).group(1)
    import tomllib
    cfg = parse(tomllib.loads(example))
    roles = {s.role: s.line for s in cfg.gpio.line_specs()}
    assert (roles["call_button"], roles["call_led"], roles["door_relay"]) == ("GPIO17", "GPIO27", "GPIO22")
    assert not cfg.audio.simulated


@pytest.mark.parametrize("text, key", [
    ("[gpio]\n[gpio.call_led]\nline='A'\n[gpio.door_relay]\nline='B'\n", "gpio.call_button"),
    (PI.replace("debounce_ms = 30", "debounce_ms = -1"), "gpio.call_button.debounce_ms"),
    (PI.replace('bias = "pull-up"', 'bias = "up"'), "gpio.call_button.bias"),
    (PI.replace('active_low = true', 'active_low = "yes"'), "gpio.call_button.active_low"),
    (PI.replace('line = "GPIO27"', 'line = "GPIO17"'), "gpio"),
    (PI.replace('line = "GPIO27"', 'lin = "GPIO27"'), "gpio.call_led.lin"),
    (PI + '[gpio.inputs.call_led]\nline = "GPIO5"\n', "gpio.*.call_led"),
    ('[button]\nrecipient = "desk"\n', "button.recipient"),
    ('[button]\nwhile_active = "mute"\n', "button.while_active"),
    ('[relay]\ndtmf_events = "open"\n', "relay.dtmf_events"),
    ('[audio]\nsample_rate = 44100\n', "audio.sample_rate"),
    ('[audio]\nsim_input = "tone:high"\n', "audio.sim_input"),
    ('[audio.ringback]\nlevel = 2\n', "audio.ringback.level"),
    ('[sound]\n', "sound"),
])
def test_invalid_config_names_the_key(tmp_path, text, key):
    with pytest.raises(HwConfigError) as e:
        write(tmp_path, text)
    assert e.value.key == key and key in str(e.value)


def test_broken_toml_is_a_config_error(tmp_path):
    with pytest.raises(HwConfigError, match="not valid TOML"):
        write(tmp_path, "[gpio\n")


def test_echo_canceller_settings_from_hardware_toml():
    cfg = parse({"audio": {"simulated": True, "aec": {"tail_ms": 300, "noise_suppress_db": 0}}})
    assert (cfg.audio.aec.enabled, cfg.audio.aec.tail_ms, cfg.audio.aec.noise_suppress_db) == (True, 300, 0)
    assert parse({}).audio.aec.enabled                           # on by default
    with pytest.raises(HwConfigError) as e:
        parse({"audio": {"aec": {"tail_ms": 5}}})
    assert e.value.key == "audio.aec.tail_ms"
