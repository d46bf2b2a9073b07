"""Station configuration from `<state dir>/hardware.toml` (every key is described in docs/hardware.md).

The hardware sections ([gpio], [audio]) are parsed by hw/config.py, next to the devices; this
module adds the call flow's: [button] (what a press calls and does during a call) and [relay]
(DTMF events that open the door). No file, or a file without a [gpio] section, means simulated
GPIO; no [audio] section means simulated audio. Every error names the offending key
(HwConfigError.key), and unknown keys are errors too, so a typo never silently falls back to a
default.
"""
from __future__ import annotations

from dataclasses import dataclass
from os import PathLike
from typing import Any

from daemon.sip.calls import VMS_CALL
from hw.config import (
    DEFAULT_PULSE_MS,
    FILE_NAME,
    SIMULATED_GPIO,
    AudioConfig,
    GpioConfig,
    HwConfigError,
    InputConfig,
    LedConfig,
    OutputConfig,
    RingbackConfig,
    check_keys,
    parse_audio,
    parse_gpio,
    read_document,
    str_key,
    table,
)

__all__ = ["FILE_NAME", "SIMULATED_GPIO", "AudioConfig", "ButtonConfig", "GpioConfig", "HwConfig",
           "HwConfigError", "InputConfig", "LedConfig", "OutputConfig", "RelayConfig", "RingbackConfig",
           "load", "parse"]

BUSY_ACTIONS = ("ignore", "hangup")


@dataclass(frozen=True)
class ButtonConfig:
    recipient: str = VMS_CALL
    account_id: str | None = None
    while_calling: str = "hangup"
    while_active: str = "hangup"


@dataclass(frozen=True)
class RelayConfig:
    pulse_ms: int = DEFAULT_PULSE_MS
    dtmf_events: tuple[str, ...] = ()


@dataclass(frozen=True)
class HwConfig:
    gpio: GpioConfig
    led: LedConfig
    button: ButtonConfig
    relay: RelayConfig
    audio: AudioConfig


def parse(doc: dict[str, Any]) -> HwConfig:
    check_keys(doc, {"gpio", "button", "relay", "audio"}, "")
    gpio, led, pulse_ms = parse_gpio(table(doc, "gpio", ""))

    b = table(doc, "button", "") or {}
    check_keys(b, {"recipient", "account_id", "while_calling", "while_active"}, "button.")
    recipient = str_key(b, "recipient", "button.", ButtonConfig.recipient)
    if recipient != VMS_CALL and not recipient.startswith(("sip:", "sips:")):
        raise HwConfigError("button.recipient", f"must be a sip:/sips: URI or {VMS_CALL}, not {recipient!r}")
    button = ButtonConfig(recipient, str_key(b, "account_id", "button.", None),
                          str_key(b, "while_calling", "button.", "hangup", BUSY_ACTIONS),
                          str_key(b, "while_active", "button.", "hangup", BUSY_ACTIONS))

    r = table(doc, "relay", "") or {}
    check_keys(r, {"dtmf_events"}, "relay.")
    events = r.get("dtmf_events", [])
    if not isinstance(events, list) or not all(isinstance(e, str) and e for e in events):
        raise HwConfigError("relay.dtmf_events", "must be a list of DTMF event ids (strings)")
    relay = RelayConfig(pulse_ms, tuple(events))

    return HwConfig(gpio, led, button, relay, parse_audio(table(doc, "audio", "")))


def load(state_dir: str | PathLike[str]) -> HwConfig:
    """Read `<state_dir>/hardware.toml`; a missing file means everything simulated."""
    return parse(read_document(state_dir))
