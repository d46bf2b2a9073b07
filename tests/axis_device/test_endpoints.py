"""Every Axis endpoint through Falcon's TestClient, with a fake supervisor (canned control replies)
and a fake authenticator that takes the role from a header. The real stack, with PyPI `axis` as
the client, is tests/test_axis_client.py."""
from __future__ import annotations

import json
from types import SimpleNamespace

import falcon.testing
import pytest

from daemon import hwconfig
from daemon.api.app import create_app
from daemon.api.axis import axis_routes
from daemon.api.axis.identity import DeviceIdentity
from daemon.control.client import ControlError
from daemon.faults import unavailable

HARDWARE = hwconfig.parse({"gpio": {
    "simulated": True, "call_button": {"line": "B"}, "call_led": {"line": "L"},
    "door_relay": {"line": "R", "pulse_ms": 1500},
    "inputs": {"door_contact": {"line": "C"}}, "outputs": {"light": {"line": "O"}}}})

IDENTITY = DeviceIdentity(serial_number="DCA632123456", soc_serial_number="10000000a1b2c3d4",
                          board="Raspberry Pi 4 Model B Rev 1.4", soc="BCM2711", hardware_id="c03114",
                          architecture="aarch64", version="0.1.0", build_date="Nov 30 2026 23:10",
                          build_number="202611302310")


class FakeControl:
    """Answers like the supervisor. `device_commands=False`: a supervisor without daemon/device.py's
    handlers (unknown control command); `down=True`: the supervisor is not running."""

    def __init__(self, device_commands: bool = True, down: bool = False):
        self.device_commands, self.down = device_commands, down
        self.active = {0: False, 1: False, 2: True, 3: False}
        self.names: dict[int, str] = {}
        self.calls: list[tuple[str, dict]] = []

    def request(self, command, args=None, timeout=None):
        self.calls.append((command, args or {}))
        if self.down:
            raise unavailable()
        if command == "status":
            return {"Hardware": {"Relay": "Unlocked" if self.active[1] else "Locked",
                                 "ButtonPressed": self.active[0]}}
        if command == "door.open":
            return {"Relay": "Unlocked", "PulseMs": 1500, "User": args["user"]}
        if command.startswith("device.") and self.device_commands:
            if command == "device.ports":
                return {"Ports": [{"Id": i, "Active": a, **({"Name": self.names[i]} if i in self.names else {})}
                                  for i, a in self.active.items()]}
            if command == "device.port.names.set":
                self.names.update({int(k): v for k, v in args["Names"].items()})
                return {}
            if command == "device.output.set":
                return {"Id": args["Id"], "Steps": len(args["Sequence"])}
        raise ControlError(f"unknown control command {command!r}")

    def commands(self) -> list[str]:
        return [c for c, _ in self.calls]


class RoleFromHeader:
    def process_request(self, req, resp):
        role = req.get_header("X-Role") or "admin"
        req.context.user = SimpleNamespace(name=f"{role}-user", role=role)


@pytest.fixture
def control():
    return FakeControl()


def client_for(control) -> falcon.testing.TestClient:
    routes = axis_routes(control, "/nonexistent", identity=lambda: IDENTITY, hardware=lambda: HARDWARE)
    return falcon.testing.TestClient(create_app(control, RoleFromHeader(), extra_routes=routes))


@pytest.fixture
def client(control):
    return client_for(control)


def post_json(client, path, body, role="admin"):
    r = client.simulate_post(path, body=json.dumps(body) if not isinstance(body, (bytes, str)) else body,
                             headers={"Content-Type": "application/json", "X-Role": role})
    return r, (r.json if r.text else None)


def parse_params(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))


# -- apidiscovery.cgi ---------------------------------------------------------------------------

def test_api_list(client):
    r, doc = post_json(client, "/axis-cgi/apidiscovery.cgi",
                       {"apiVersion": "1.0", "context": "c1", "method": "getApiList"}, role="viewer")
    assert r.status_code == 200
    assert doc["apiVersion"] == "1.0" and doc["context"] == "c1" and doc["method"] == "getApiList"
    ids = {a["id"]: a["version"] for a in doc["data"]["apiList"]}
    assert ids == {"api-discovery": "1.0", "basic-device-info": "1.1", "io-port-management": "1.0",
                   "param-cgi": "1.0", "sip": "2.0", "event-streaming-over-websocket": "1.0",
                   "mqtt-client": "1.0", "event-mqtt-bridge": "1.0", "user-management": "1.0"}
    assert all(set(a) >= {"id", "name", "version"} for a in doc["data"]["apiList"])


def test_supported_versions_needs_no_api_version(client):
    for path, versions in (("/axis-cgi/apidiscovery.cgi", ["1.0"]),
                           ("/axis-cgi/basicdeviceinfo.cgi", ["1.0", "1.1"]),
                           ("/axis-cgi/io/portmanagement.cgi", ["1.0"])):
        r, doc = post_json(client, path, {"context": "v", "method": "getSupportedVersions"}, role="viewer")
        assert doc["data"] == {"apiVersions": versions} and doc["context"] == "v"


@pytest.mark.parametrize("body, code", [
    (b"{not json", 2101), (b"[1, 2]", 2101), (b'{"apiVersion": "1.0"}', 2103),
    (b'{"apiVersion": "1.0", "method": "dropTables"}', 2102),
    (b'{"apiVersion": "2.0", "method": "getApiList"}', 2100),
    (b'{"method": "getApiList"}', 2103),
    (b'{"apiVersion": 1, "method": "getApiList"}', 2104),
    (b'{"apiVersion": "1.0", "context": "' + b"x" * 300 + b'", "method": "getApiList"}', 2104),
])
def test_json_api_errors(client, body, code):
    r, doc = post_json(client, "/axis-cgi/apidiscovery.cgi", body)
    assert r.status_code == 200 and doc["error"]["code"] == code, doc


def test_json_api_bounds(client):
    r, doc = post_json(client, "/axis-cgi/apidiscovery.cgi", b'{"x": "' + b"a" * 70000 + b'"}')
    assert r.status_code == 413 and doc["error"]["code"] == 2104
    r = client.simulate_get("/axis-cgi/apidiscovery.cgi")
    assert r.status_code == 405 and r.json["error"]["code"] == 2106
    deep = b"[" * 30000 + b"]" * 30000          # fits the cap, nests past the parser's recursion limit
    r, doc = post_json(client, "/axis-cgi/apidiscovery.cgi", deep)
    assert r.status_code == 200 and doc["error"]["code"] == 2101


# -- basicdeviceinfo.cgi ------------------------------------------------------------------------

def test_basic_device_info(client):
    r, doc = post_json(client, "/axis-cgi/basicdeviceinfo.cgi",
                       {"apiVersion": "1.1", "context": "c", "method": "getAllProperties"}, role="viewer")
    props = doc["data"]["propertyList"]
    assert props == IDENTITY.basic_device_info()
    assert props["SerialNumber"] == "DCA632123456" and props["ProdNbr"] == "doorstation"
    r, doc = post_json(client, "/axis-cgi/basicdeviceinfo.cgi",
                       {"apiVersion": "1.1", "method": "getProperties",
                        "params": {"propertyList": ["SerialNumber", "Soc"]}})
    assert doc["data"] == {"propertyList": {"SerialNumber": "DCA632123456", "Soc": "BCM2711"}}
    r, doc = post_json(client, "/axis-cgi/basicdeviceinfo.cgi",
                       {"apiVersion": "1.1", "method": "getProperties", "params": {"propertyList": ["Nope"]}})
    assert doc["error"]["code"] == 2104


# -- param.cgi ----------------------------------------------------------------------------------

def test_param_list_properties_as_axis_sends_it(client):
    # PyPI axis: POST, form data labelled text/plain
    r = client.simulate_post("/axis-cgi/param.cgi", body="action=list&group=root.Properties",
                             headers={"Content-Type": "text/plain", "X-Role": "viewer"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    params = parse_params(r.text)
    assert params["root.Properties.API.HTTP.Version"] == "3"
    assert params["root.Properties.System.SerialNumber"] == "DCA632123456"
    assert params["root.Properties.Firmware.Version"] == "0.1.0"
    assert {"root.Properties.API.Metadata.Metadata", "root.Properties.API.Metadata.Version",
            "root.Properties.Firmware.BuildDate", "root.Properties.Firmware.BuildNumber",
            "root.Properties.API.SIP.SIP"} <= set(params)
    assert all(k.startswith("root.Properties.") for k in params)


def test_param_list_groups_and_unknown_group(client):
    r = client.simulate_get("/axis-cgi/param.cgi", query_string="action=list&group=Brand,root.Nope,IOPort.I1",
                            headers={"X-Role": "viewer"})
    lines = r.text.splitlines()
    assert "# Error: Error -1 getting param in group 'root.Nope'" in lines
    params = parse_params(r.text)
    assert params["root.Brand.ProdNbr"] == "doorstation"
    assert params["root.IOPort.I1.Output.Name"] == "Door relay"
    assert params["root.IOPort.I1.Output.PulseTime"] == "1500"
    assert not any(k.startswith("root.IOPort.I0") for k in params)


def test_param_list_everything_and_io_counts(client):
    params = parse_params(client.simulate_get("/axis-cgi/param.cgi", query_string="action=list").text)
    assert params["root.Input.NbrOfInputs"] == "2" and params["root.Output.NbrOfOutputs"] == "2"
    assert params["root.IOPort.I2.Input.Name"] == "door_contact"
    assert params["root.IOPort.I3.Direction"] == "output"
    assert {k.split(".")[1] for k in params} == {"Brand", "IOPort", "Input", "Output", "Properties"}


def test_param_update_of_a_read_only_parameter(client):
    r = client.simulate_get("/axis-cgi/param.cgi", query_string="action=update&Brand.ProdNbr=evil",
                            headers={"X-Role": "admin"})
    assert r.status_code == 200 and r.text == "# Error: Error setting 'root.Brand.ProdNbr' to 'evil'!\r\n"
    r = client.simulate_get("/axis-cgi/param.cgi", query_string="action=update&Brand.ProdNbr=evil",
                            headers={"X-Role": "operator"})
    assert r.status_code == 403


def test_param_bounds(client):
    r = client.simulate_get("/axis-cgi/param.cgi", query_string="action=list&" + "&".join(f"g{i}=1" for i in range(40)))
    assert r.text.startswith("# Error: at most")
    r = client.simulate_post("/axis-cgi/param.cgi", body="action=list&group=" + "A" * 9000,
                             headers={"Content-Type": "text/plain"})
    assert r.status_code == 413
    r = client.simulate_get("/axis-cgi/param.cgi", query_string="action=list&group=%0Aroot.Brand.X%3D1")
    assert "\nroot.Brand.X=1" not in r.text


# -- portmanagement.cgi -------------------------------------------------------------------------

def get_ports(client, role="viewer"):
    return post_json(client, "/axis-cgi/io/portmanagement.cgi",
                     {"apiVersion": "1.0", "context": "p", "method": "getPorts"}, role=role)[1]


def test_get_ports(client):
    data = get_ports(client)["data"]
    assert data["numberOfPorts"] == 4
    assert [(i["port"], i["name"], i["direction"], i["state"]) for i in data["items"]] == [
        ("0", "Call button", "input", "open"), ("1", "Door relay", "output", "open"),
        ("2", "door_contact", "input", "closed"), ("3", "light", "output", "open")]
    assert all(i["normalState"] == "open" and i["configurable"] is False for i in data["items"])


def test_get_ports_from_status_on_an_older_supervisor():
    control = FakeControl(device_commands=False)
    control.active[1] = True
    items = get_ports(client_for(control))["data"]["items"]
    assert [i["state"] for i in items] == ["open", "closed", "open", "open"]
    assert "status" in control.commands()


def set_ports(client, params, role="operator"):
    return post_json(client, "/axis-cgi/io/portmanagement.cgi",
                     {"apiVersion": "1.0", "context": "s", "method": "setPorts", "params": params}, role=role)[1]


def test_set_ports_closed_on_relay_opens_the_door(client, control):
    assert set_ports(client, [{"port": "1", "state": "closed"}]) == {
        "apiVersion": "1.0", "context": "s", "method": "setPorts", "data": {}}
    assert ("door.open", {"user": "operator-user"}) in control.calls
    control.calls.clear()
    assert "data" in set_ports(client, {"ports": [{"port": "1", "state": "closed"}]}, role="admin")
    assert ("door.open", {"user": "admin-user"}) in control.calls


def test_set_ports_open_on_relay_does_nothing(client, control):
    assert "data" in set_ports(client, [{"port": "1", "state": "open"}])
    assert "door.open" not in control.commands()


def test_set_ports_refusals_change_nothing(client, control):
    cases = [([{"port": "0", "state": "closed"}], 2201, 200, "operator"),        # an input
             ([{"port": "9", "state": "closed"}], 2200, 200, "operator"),        # no such port
             ([{"port": "1", "state": "ajar"}], 2104, 200, "operator"),
             ([{"port": "1", "name": "Front door"}], 2105, 403, "operator"),     # renaming is admin's
             ([{"port": "1", "usage": "Gate"}], 2201, 200, "admin"),             # usage is hardware.toml's
             ([{"port": "1", "name": "a=b"}], 2104, 200, "admin"),
             ([{"port": "1", "name": "x" * 65}], 2104, 200, "admin"),
             ([{"port": 1, "state": "closed"}], 2104, 200, "operator"),
             ([], 2103, 200, "operator"), ({"ports": "1"}, 2103, 200, "operator"),
             ([{"port": "1", "state": "closed"}] * 17, 2103, 200, "operator"),
             ([{"port": "1", "state": "closed"}, {"port": "0", "state": "closed"}], 2201, 200, "operator"),
             ([{"port": "1", "state": "closed"}], 2105, 403, "viewer")]
    for params, code, status, role in cases:
        r, doc = post_json(client, "/axis-cgi/io/portmanagement.cgi",
                           {"apiVersion": "1.0", "method": "setPorts", "params": params}, role=role)
        assert (r.status_code, doc["error"]["code"]) == (status, code), (params, doc)
    assert not {"door.open", "device.output.set", "device.port.names.set"} & set(control.commands())


def test_rename_a_port(client, control):
    assert "data" in set_ports(client, [{"port": "1", "name": "Front door"}], role="admin")
    assert control.calls[-1] == ("device.port.names.set", {"Names": {"1": "Front door"}})
    assert get_ports(client)["data"]["items"][1]["name"] == "Front door"
    params = parse_params(client.simulate_get("/axis-cgi/param.cgi", query_string="action=list&group=IOPort.I1").text)
    assert params["root.IOPort.I1.Output.Name"] == "Front door"


def test_param_update_renames_ports(client, control):
    r = client.simulate_get("/axis-cgi/param.cgi", headers={"X-Role": "admin"},
                            query_string="action=update&IOPort.I2.Input.Name=Door%20contact&root.IOPort.I3.Output.Name=Porch")
    assert r.text == "OK\r\n"
    assert control.calls[-1] == ("device.port.names.set", {"Names": {"2": "Door contact", "3": "Porch"}})
    assert [i["name"] for i in get_ports(client)["data"]["items"]][2:] == ["Door contact", "Porch"]


@pytest.mark.parametrize("query", [
    "action=update&IOPort.I2.Output.Name=x",                       # port 2 is an input
    "action=update&IOPort.I9.Input.Name=x",
    "action=update&IOPort.I2.Input.Name=ok&Brand.ProdNbr=x",       # all or nothing
    "action=update&IOPort.I2.Input.Name=a%3Db",
    "action=update&IOPort.I2.Input.Name=",
    "action=update&IOPort.I2.Input.Trig=open",
])
def test_param_update_refusals(client, control, query):
    r = client.simulate_get("/axis-cgi/param.cgi", query_string=query, headers={"X-Role": "admin"})
    assert r.text.startswith("# Error: Error setting 'root."), r.text
    assert "device.port.names.set" not in control.commands()


def test_rename_on_an_older_supervisor():
    client = client_for(FakeControl(device_commands=False))
    r = client.simulate_get("/axis-cgi/param.cgi", query_string="action=update&IOPort.I2.Input.Name=x")
    assert r.text == "# Error: This supervisor cannot store port names yet\r\n"
    assert set_ports(client, [{"port": "1", "name": "x"}], role="admin")["error"]["code"] == 2201


def test_set_ports_on_extra_output(client, control):
    assert "data" in set_ports(client, [{"port": "3", "state": "closed"}])
    assert ("device.output.set", {"Id": 3, "User": "operator-user",
                                  "Sequence": [{"Active": True, "Ms": 0}]}) in control.calls


def test_extra_output_on_an_older_supervisor():
    control = FakeControl(device_commands=False)
    doc = set_ports(client_for(control), [{"port": "3", "state": "closed"}])
    assert doc["error"]["code"] == 2201


def test_state_sequence(client, control):
    seq = {"port": "3", "sequence": [{"state": "closed", "time": 500}, {"state": "open", "time": 0}]}
    r, doc = post_json(client, "/axis-cgi/io/portmanagement.cgi",
                       {"apiVersion": "1.0", "method": "setStateSequence", "params": seq})
    assert doc["data"] == {}
    assert control.calls[-1] == ("device.output.set", {"Id": 3, "User": "admin-user", "Sequence": [
        {"Active": True, "Ms": 500}, {"Active": False, "Ms": 0}]})
    seq = {"port": "1", "sequence": [{"state": "closed", "time": 60000}, {"state": "open", "time": 0}]}
    post_json(client, "/axis-cgi/io/portmanagement.cgi",
              {"apiVersion": "1.0", "method": "setStateSequence", "params": seq})
    assert control.commands().count("door.open") == 1
    for bad in ({"port": "1", "sequence": [{"state": "closed", "time": 60001}]},
                {"port": "1", "sequence": [{"state": "closed"}] * 17},
                {"port": "0", "sequence": [{"state": "closed", "time": 1}]}):
        r, doc = post_json(client, "/axis-cgi/io/portmanagement.cgi",
                           {"apiVersion": "1.0", "method": "setStateSequence", "params": bad})
        assert "error" in doc, bad
    assert control.commands().count("door.open") == 1


def test_supervisor_down_is_503():
    r, doc = post_json(client_for(FakeControl(down=True)), "/axis-cgi/io/portmanagement.cgi",
                       {"apiVersion": "1.0", "method": "getPorts"})
    assert r.status_code == 503 and doc["error"]["code"] == 1100


# -- port.cgi -----------------------------------------------------------------------------------

def test_port_cgi(client, control):
    r = client.simulate_get("/axis-cgi/io/port.cgi", query_string="checkactive=1,3", headers={"X-Role": "viewer"})
    assert r.text == "port1=inactive\r\nport3=active\r\n"
    r = client.simulate_get("/axis-cgi/io/port.cgi", query_string="action=2%3A%2F", headers={"X-Role": "operator"})
    assert r.text == "OK\r\n" and ("door.open", {"user": "operator-user"}) in control.calls
    r = client.simulate_get("/axis-cgi/io/port.cgi", query_string="action=4%3A%2F300%5C",
                            headers={"X-Role": "operator"})
    assert r.text == "OK\r\n"
    assert control.calls[-1][1]["Sequence"] == [{"Active": True, "Ms": 300}, {"Active": False, "Ms": 0}]


def test_port_cgi_refusals(client, control):
    for query, role, status in (("action=2%3A%2F", "viewer", 403), ("action=1%3A%2F", "operator", 200),
                                ("action=9%3A%2F", "operator", 200), ("action=2%3Ax", "operator", 200),
                                ("action=0%3A%2F", "operator", 200), ("checkactive=7", "viewer", 200),
                                ("action=2%3A%2F99999%5C", "operator", 200), ("", "viewer", 200)):
        r = client.simulate_get("/axis-cgi/io/port.cgi", query_string=query, headers={"X-Role": role})
        assert r.status_code == status and r.text.startswith("# Error:"), (query, r.text)
    assert "door.open" not in control.commands()


# -- usergroup.cgi ------------------------------------------------------------------------------

@pytest.mark.parametrize("role, groups", [("viewer", "viewer"), ("operator", "operator viewer"),
                                          ("admin", "admin operator viewer")])
def test_usergroup(client, role, groups):
    r = client.simulate_get("/axis-cgi/usergroup.cgi", headers={"X-Role": role})
    assert r.text.splitlines() == [f"{role}-user", groups]
