"""daemon/device.py: port ids from hardware.toml, and the supervisor-side handlers over simulated
GPIO lines (the same SimLines the station uses without hardware) and the timer queue."""
import asyncio
from types import SimpleNamespace

import pytest

from daemon import hwconfig
from daemon.device import DevicePorts, control_handlers, port_layout
from daemon.faults import VapixFault
from hw.gpio_sim import SimLines
from hw.timers import ManualClock, TimerQueue

DOC = {"gpio": {"simulated": True, "call_button": {"line": "B"}, "call_led": {"line": "L"},
                "door_relay": {"line": "R"},
                "inputs": {"door_contact": {"line": "C"}, "tamper": {"line": "T"}},
                "outputs": {"light": {"line": "O"}}}}


def test_ids_follow_hardware_toml():
    layout = port_layout(hwconfig.parse(DOC).gpio)
    assert [(p.id, p.role, p.direction) for p in layout] == [
        (0, "call_button", "input"), (1, "door_relay", "output"), (2, "door_contact", "input"),
        (3, "tamper", "input"), (4, "light", "output")]
    assert [(p.id, p.role) for p in port_layout(hwconfig.parse({}).gpio)] == [(0, "call_button"), (1, "door_relay")]
    assert "call_led" not in {p.role for p in layout}


@pytest.fixture
def rig():
    cfg = hwconfig.parse(DOC).gpio
    lines = SimLines(cfg.line_specs())
    clock = ManualClock()
    timers = TimerQueue(clock)
    events = []
    ports = DevicePorts(cfg, lines, timers, lambda topic, data: events.append((topic, data)))
    yield SimpleNamespace(lines=lines, clock=clock, timers=timers, events=events, ports=ports)
    lines.close()


def test_read_reports_every_line(rig):
    rig.lines.press("door_contact")
    rig.lines.set_value("door_relay", True)
    states = {p["Id"]: p["Active"] for p in rig.ports.read()["Ports"]}
    assert states == {0: False, 1: True, 2: True, 3: False, 4: False}


def test_output_sequence_runs_on_the_timers(rig):
    rig.ports.set_output({"Id": 4, "User": "oper", "Sequence": [{"Active": True, "Ms": 500},
                                                                 {"Active": False, "Ms": 0}]})
    assert rig.lines.get_value("light") is True
    rig.clock.advance(0.499)
    rig.timers.run_due()
    assert rig.lines.get_value("light") is True
    rig.clock.advance(0.002)
    rig.timers.run_due()
    assert rig.lines.get_value("light") is False
    assert rig.events == [("doorstation:Output", {"Output": "light", "Port": 4, "Active": True, "User": "oper"}),
                          ("doorstation:Output", {"Output": "light", "Port": 4, "Active": False, "User": "oper"})]


def test_a_new_request_replaces_the_running_sequence(rig):
    rig.ports.set_output({"Id": 4, "User": "a", "Sequence": [{"Active": True, "Ms": 1000}, {"Active": False, "Ms": 0}]})
    rig.ports.set_output({"Id": 4, "User": "b", "Sequence": [{"Active": True, "Ms": 0}]})
    rig.clock.advance(2)
    rig.timers.run_due()
    assert rig.lines.get_value("light") is True      # a's pending "off" was cancelled
    assert len(rig.timers) == 0


@pytest.mark.parametrize("args", [
    {"Id": 1, "Sequence": [{"Active": True, "Ms": 0}]},            # the relay: door policy only
    {"Id": 0, "Sequence": [{"Active": True, "Ms": 0}]},            # an input
    {"Id": 9, "Sequence": [{"Active": True, "Ms": 0}]},
    {"Id": "4", "Sequence": [{"Active": True, "Ms": 0}]},
    {"Id": 4, "Sequence": []},
    {"Id": 4, "Sequence": [{"Active": True, "Ms": 0}] * 17},
    {"Id": 4, "Sequence": [{"Active": 1, "Ms": 0}]},
    {"Id": 4, "Sequence": [{"Active": True, "Ms": 60001}]},
])
def test_refusals_touch_no_line(rig, args):
    with pytest.raises(VapixFault):
        rig.ports.set_output(args)
    assert rig.lines.get_value("light") is False and rig.lines.get_value("door_relay") is False
    assert rig.events == []


def test_port_names_are_stored_by_role(tmp_path):
    from daemon.store import Store
    cfg = hwconfig.parse(DOC).gpio
    lines = SimLines(cfg.line_specs())
    store = Store.open(tmp_path)
    try:
        ports = DevicePorts(cfg, lines, TimerQueue(ManualClock()), lambda t, d: None, store)
        read = ports.set_names({"Names": {"2": "Front contact", "1": "Gate"}})
        assert [p["Name"] for p in read["Ports"]] == ["Call button", "Gate", "Front contact", "tamper", "light"]
        # the name follows the line's role: with another input before it, door_contact moves to id 3
        inputs = {"bell2": {"line": "X"}, **DOC["gpio"]["inputs"]}
        moved = hwconfig.parse({"gpio": {**DOC["gpio"], "inputs": inputs}}).gpio
        lines2 = SimLines(moved.line_specs())
        again = DevicePorts(moved, lines2, TimerQueue(ManualClock()), lambda t, d: None, store).read()["Ports"]
        assert (again[3]["Role"], again[3]["Name"]) == ("door_contact", "Front contact")
        lines2.close()
        assert ports.set_names({"Names": {"2": None}})["Ports"][2]["Name"] == "door_contact"
        for bad in ({"Names": {"9": "x"}}, {"Names": {"2": "a=b"}}, {"Names": {"2": ""}}, {"Names": []},
                    {"Names": {"2": "ok", "x": "y"}}, {"Names": {"2": "x" * 65}}):
            with pytest.raises(VapixFault):
                ports.set_names(bad)
        assert [p["Name"] for p in ports.read()["Ports"]][1:3] == ["Gate", "door_contact"]
    finally:
        store.close()
        lines.close()


def test_control_handlers_on_a_real_loop():
    cfg = hwconfig.parse(DOC)
    lines = SimLines(cfg.gpio.line_specs())
    events = []

    async def run():
        runtime = SimpleNamespace(hardware=SimpleNamespace(gpio_config=cfg.gpio, lines=lines),
                                  loop=asyncio.get_running_loop(),
                                  emit_hardware_event=lambda t, d: events.append(d["Active"]))
        handlers = control_handlers(runtime)
        handlers["device.output.set"]({"Id": 4, "User": "u", "Sequence": [{"Active": True, "Ms": 50},
                                                                          {"Active": False, "Ms": 0}]})
        first = handlers["device.ports"]({})["Ports"][4]["Active"]
        await asyncio.sleep(0.2)
        return first, handlers["device.ports"]({})["Ports"][4]["Active"]

    try:
        assert asyncio.run(run()) == (True, False)
        assert events == [True, False]
    finally:
        lines.close()
    with pytest.raises(VapixFault):
        control_handlers(SimpleNamespace(hardware=None))["device.ports"]({})
