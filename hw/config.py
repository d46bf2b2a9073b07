"""The hardware part of `hardware.toml`: GPIO lines, LED blink, relay pulse, sound devices.

Parsed here, next to the devices, so hw/ needs nothing from daemon/; daemon/hwconfig.py reads the
file and adds the call flow's sections ([button], [relay]). Every error names the offending key
(HwConfigError.key), and unknown keys are errors too.
"""
from __future__ import annotations

import tomllib
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any, Literal, overload

from hw.aec_config import AecConfig
from hw.gpio import Bias, Direction, LineSpec

FILE_NAME = "hardware.toml"
DEFAULT_PULSE_MS = 3000


class HwConfigError(ValueError):
    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"hardware config: {key}: {problem}")
        self.key = key
        self.problem = problem


@dataclass(frozen=True)
class InputConfig:
    line: str | int
    active_low: bool = False
    bias: Bias = Bias.AS_IS
    debounce_ms: int = 0


@dataclass(frozen=True)
class OutputConfig:
    line: str | int
    active_low: bool = False


@dataclass(frozen=True)
class GpioConfig:
    simulated: bool
    chip: str | None
    consumer: str
    call_button: InputConfig
    call_led: OutputConfig
    door_relay: OutputConfig
    inputs: dict[str, InputConfig] = field(default_factory=dict)
    outputs: dict[str, OutputConfig] = field(default_factory=dict)

    def line_specs(self) -> list[LineSpec]:
        """One spec per role, for a backend (gpiod or simulator) to request."""
        ins = {"call_button": self.call_button, **self.inputs}
        outs = {"call_led": self.call_led, "door_relay": self.door_relay, **self.outputs}
        specs = [LineSpec(role, c.line, Direction.INPUT, c.active_low, c.bias, c.debounce_ms)
                 for role, c in ins.items()]
        specs += [LineSpec(role, c.line, Direction.OUTPUT, c.active_low, initial=False)
                  for role, c in outs.items()]
        return specs


@dataclass(frozen=True)
class LedConfig:
    blink_on_ms: int = 500
    blink_off_ms: int = 500


@dataclass(frozen=True)
class RingbackConfig:
    frequency_hz: float = 425.0     # European ring-back; 440+480 Hz dual tone is the US one
    on_ms: int = 1000
    off_ms: int = 4000
    level: float = 0.25             # of full scale


@dataclass(frozen=True)
class AudioConfig:
    simulated: bool = True
    capture_device: str = "default"
    playback_device: str = "default"
    sample_rate: int = 16000
    fifo_ms: int = 200              # bound on buffered audio each way (absorbs clock drift)
    target_ms: int = 40             # standing latency each FIFO is trimmed back to
    mixer_card: int | None = None
    playback_mixer: str | None = None
    playback_volume: int | None = None   # percent
    capture_mixer: str | None = None
    capture_volume: int | None = None    # percent
    sim_input: str = "tone:440"    # simulated microphone: tone:<Hz> | silence | path to a WAV file
    sim_output: str | None = None  # simulated speaker: WAV file to write, or discard
    ringback: RingbackConfig = RingbackConfig()
    aec: AecConfig = AecConfig()    # [audio.aec]: echo cancellation + noise suppression (docs/audio.md)


# --- parsing helpers: each takes the dotted key so errors can name it ---------------------------

@overload
def table(d: dict, key: str, path: str, required: Literal[True]) -> dict: ...
@overload
def table(d: dict, key: str, path: str, required: bool = False) -> dict | None: ...
def table(d: dict, key: str, path: str, required: bool = False) -> dict | None:
    v = d.get(key)
    if v is None:
        if required:
            raise HwConfigError(f"{path}{key}", "missing section")
        return None
    if not isinstance(v, dict):
        raise HwConfigError(f"{path}{key}", "must be a table")
    return v


def check_keys(d: dict, allowed: set[str], path: str) -> None:
    for k in d:
        if k not in allowed:
            raise HwConfigError(f"{path}{k}", f"unknown key (known: {', '.join(sorted(allowed))})")


# With a default the value is always there: the overloads tell the type checker so.
@overload
def int_key(d: dict, key: str, path: str, default: int, lo: int, hi: int) -> int: ...
@overload
def int_key(d: dict, key: str, path: str, default: None, lo: int, hi: int) -> int | None: ...
def int_key(d: dict, key: str, path: str, default: int | None, lo: int, hi: int) -> int | None:
    v = d.get(key, default)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int):
        raise HwConfigError(f"{path}{key}", f"must be an integer, not {v!r}")
    if not lo <= v <= hi:
        raise HwConfigError(f"{path}{key}", f"must be between {lo} and {hi}, not {v}")
    return v


def float_key(d: dict, key: str, path: str, default: float, lo: float, hi: float) -> float:
    v = d.get(key, default)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise HwConfigError(f"{path}{key}", f"must be a number, not {v!r}")
    if not lo <= v <= hi:
        raise HwConfigError(f"{path}{key}", f"must be between {lo} and {hi}, not {v}")
    return float(v)


def bool_key(d: dict, key: str, path: str, default: bool) -> bool:
    v = d.get(key, default)
    if not isinstance(v, bool):
        raise HwConfigError(f"{path}{key}", f"must be true or false, not {v!r}")
    return v


@overload
def str_key(d: dict, key: str, path: str, default: str, choices: tuple[str, ...] = ()) -> str: ...
@overload
def str_key(d: dict, key: str, path: str, default: None, choices: tuple[str, ...] = ()) -> str | None: ...
def str_key(d: dict, key: str, path: str, default: str | None, choices: tuple[str, ...] = ()) -> str | None:
    v = d.get(key, default)
    if v is None:
        return None
    if not isinstance(v, str) or not v:
        raise HwConfigError(f"{path}{key}", f"must be a non-empty string, not {v!r}")
    if choices and v not in choices:
        raise HwConfigError(f"{path}{key}", f"must be one of {', '.join(choices)}, not {v!r}")
    return v


def _line(d: dict, path: str) -> str | int:
    if "line" not in d:
        raise HwConfigError(f"{path}line", "missing (a line name such as \"GPIO17\", or an offset)")
    v = d["line"]
    if isinstance(v, bool) or not isinstance(v, (str, int)) or v == "" or (isinstance(v, int) and v < 0):
        raise HwConfigError(f"{path}line", f"must be a line name or a non-negative offset, not {v!r}")
    return v


_IN_KEYS = {"line", "active_low", "bias", "debounce_ms"}
_OUT_KEYS = {"line", "active_low"}


def _input(d: dict, path: str, default_debounce: int) -> InputConfig:
    check_keys(d, _IN_KEYS, path)
    bias = str_key(d, "bias", path, "as-is", tuple(b.value for b in Bias))
    return InputConfig(_line(d, path), bool_key(d, "active_low", path, False), Bias(bias),
                       int_key(d, "debounce_ms", path, default_debounce, 0, 1000))


def _output(d: dict, path: str, extra: AbstractSet[str] = frozenset()) -> OutputConfig:
    check_keys(d, _OUT_KEYS | extra, path)
    return OutputConfig(_line(d, path), bool_key(d, "active_low", path, False))


# Simulated lines carry the names the VM lane's gpio-sim chip uses.
SIMULATED_GPIO = GpioConfig(
    simulated=True, chip=None, consumer="doorstation",
    call_button=InputConfig("CALL_BUTTON", debounce_ms=30),
    call_led=OutputConfig("CALL_LED"), door_relay=OutputConfig("DOOR_LOCK"))


def parse_gpio(g: dict | None) -> tuple[GpioConfig, LedConfig, int]:
    """[gpio]: the lines, the LED's blink and the relay's pulse (None: simulated lines)."""
    led = LedConfig()
    pulse_ms = DEFAULT_PULSE_MS
    if g is None:
        gpio = SIMULATED_GPIO
    else:
        check_keys(g, {"chip", "consumer", "simulated", "call_button", "call_led", "door_relay",
                       "inputs", "outputs"}, "gpio.")
        btn = _input(table(g, "call_button", "gpio.", True), "gpio.call_button.", 30)
        led_t = table(g, "call_led", "gpio.", True)
        relay_t = table(g, "door_relay", "gpio.", True)
        led = LedConfig(int_key(led_t, "blink_on_ms", "gpio.call_led.", 500, 20, 10000),
                        int_key(led_t, "blink_off_ms", "gpio.call_led.", 500, 20, 10000))
        pulse_ms = int_key(relay_t, "pulse_ms", "gpio.door_relay.", pulse_ms, 50, 60000)
        inputs = {name: _input(table(t, name, "gpio.inputs.", True), f"gpio.inputs.{name}.", 0)
                  for t in [table(g, "inputs", "gpio.") or {}] for name in t}
        outputs = {name: _output(table(t, name, "gpio.outputs.", True), f"gpio.outputs.{name}.")
                   for t in [table(g, "outputs", "gpio.") or {}] for name in t}
        roles = {"call_button", "call_led", "door_relay"}
        for name in [*inputs, *outputs]:
            if name in roles:
                raise HwConfigError(f"gpio.*.{name}", "name already used by another line")
            roles.add(name)
        gpio = GpioConfig(bool_key(g, "simulated", "gpio.", False), str_key(g, "chip", "gpio.", None),
                          str_key(g, "consumer", "gpio.", "doorstation"),
                          btn, _output(led_t, "gpio.call_led.", {"blink_on_ms", "blink_off_ms"}),
                          _output(relay_t, "gpio.door_relay.", {"pulse_ms"}), inputs, outputs)
        lines = [s.line for s in gpio.line_specs()]
        dup = next((x for x in lines if lines.count(x) > 1), None)
        if dup is not None:
            raise HwConfigError("gpio", f"line {dup!r} is used by two roles")
    return gpio, led, pulse_ms


def parse_audio(a: dict | None) -> AudioConfig:
    """[audio] (None: simulated sound devices)."""
    if a is None:
        return AudioConfig()
    p = "audio."
    check_keys(a, {"capture_device", "playback_device", "sample_rate", "fifo_ms", "target_ms", "mixer_card",
                    "playback_mixer", "playback_volume", "capture_mixer", "capture_volume",
                    "simulated", "sim_input", "sim_output", "ringback", "aec"}, p)
    rate = int_key(a, "sample_rate", p, 16000, 8000, 48000)
    if rate not in (8000, 16000, 32000, 48000):
        raise HwConfigError("audio.sample_rate", f"must be 8000, 16000, 32000 or 48000, not {rate}")
    rb = table(a, "ringback", p) or {}
    check_keys(rb, {"frequency_hz", "on_ms", "off_ms", "level"}, "audio.ringback.")
    ringback = RingbackConfig(float_key(rb, "frequency_hz", "audio.ringback.", 425.0, 50, 4000),
                              int_key(rb, "on_ms", "audio.ringback.", 1000, 100, 10000),
                              int_key(rb, "off_ms", "audio.ringback.", 4000, 0, 20000),
                              float_key(rb, "level", "audio.ringback.", 0.25, 0.0, 1.0))
    fifo_ms = int_key(a, "fifo_ms", p, 200, 40, 2000)
    target_ms = int_key(a, "target_ms", p, 40, 20, 2000)
    if target_ms >= fifo_ms:
        raise HwConfigError("audio.target_ms", f"must be below audio.fifo_ms ({fifo_ms}), not {target_ms}")
    sim_input = str_key(a, "sim_input", p, "tone:440")
    if sim_input.startswith("tone:"):
        try:
            float(sim_input[5:])
        except ValueError:
            raise HwConfigError("audio.sim_input",
                                f"tone needs a frequency, e.g. tone:440, not {sim_input!r}") from None
    return AudioConfig(
        simulated=bool_key(a, "simulated", p, False),
        capture_device=str_key(a, "capture_device", p, "default"),
        playback_device=str_key(a, "playback_device", p, "default"),
        sample_rate=rate,
        fifo_ms=fifo_ms, target_ms=target_ms,
        mixer_card=int_key(a, "mixer_card", p, None, 0, 31),
        playback_mixer=str_key(a, "playback_mixer", p, None),
        playback_volume=int_key(a, "playback_volume", p, None, 0, 100),
        capture_mixer=str_key(a, "capture_mixer", p, None),
        capture_volume=int_key(a, "capture_volume", p, None, 0, 100),
        sim_input=sim_input, sim_output=str_key(a, "sim_output", p, None), ringback=ringback,
        aec=parse_aec(table(a, "aec", p)))


def parse_aec(t: dict | None) -> AecConfig:
    """[audio.aec] (None: the defaults, on)."""
    if t is None:
        return AecConfig()
    p = "audio.aec."
    check_keys(t, {"enabled", "tail_ms", "noise_suppress_db", "agc", "agc_target"}, p)
    return AecConfig(bool_key(t, "enabled", p, True), int_key(t, "tail_ms", p, AecConfig.tail_ms, 20, 500),
                     int_key(t, "noise_suppress_db", p, -15, -60, 0), bool_key(t, "agc", p, False),
                     int_key(t, "agc_target", p, 8000, 1000, 30000))


def read_document(state_dir: str | PathLike[str]) -> dict[str, Any]:
    """`<state_dir>/hardware.toml` as a TOML document; a missing file is an empty one."""
    path = Path(state_dir) / FILE_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise HwConfigError(str(path), f"cannot be read: {e.strerror}") from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise HwConfigError(str(path), f"is not valid TOML: {e}") from None
    return doc
