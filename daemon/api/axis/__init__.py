"""The station as an Axis device to VMSs and Home Assistant (VAPIX): API discovery, basic device
information, param.cgi, I/O ports (portmanagement.cgi and the legacy port.cgi), usergroup.cgi and pwdgrp.cgi
(user management).
What each endpoint answers, and why: docs/axis.md.

`axis_routes(control, state_dir)` returns {path: resource} for daemon.api.app; every route is
behind the same authenticator as the rest of the API, and each resource checks the role it needs.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Callable

from daemon import hwconfig
from daemon.api.axis import deviceinfo, discovery, mqtt, portmanagement
from daemon.api.axis.identity import DeviceIdentity, IdentitySources, read_identity
from daemon.api.axis.params import ParamCgiResource
from daemon.api.axis.portcgi import PortCgiResource
from daemon.api.axis.ports import StationPorts
from daemon.api.axis.pwdgrp import PwdgrpResource
from daemon.api.axis.usergroup import UserGroupResource


def load_hardware(state_dir: str | os.PathLike) -> hwconfig.HwConfig:
    """hardware.toml as the supervisor read it at start (an invalid file stops the supervisor, so
    the API then only needs something to answer with: the defaults)."""
    try:
        return hwconfig.load(state_dir)
    except hwconfig.HwConfigError:
        return hwconfig.parse({})


def axis_routes(control, state_dir: str | os.PathLike,
                identity: Callable[[], DeviceIdentity] | None = None,
                hardware: Callable[[], hwconfig.HwConfig] | None = None) -> dict[str, object]:
    """`identity` and `hardware` default to the board (read once per process) and
    <state_dir>/hardware.toml (read once); tests pass their own."""
    identity = identity or functools.cache(lambda: read_identity(IdentitySources()))
    hardware = hardware or functools.cache(lambda: load_hardware(Path(state_dir)))
    ports = StationPorts(control, lambda: hardware().gpio)
    return {
        "/axis-cgi/apidiscovery.cgi": discovery.make_resource(),
        "/axis-cgi/basicdeviceinfo.cgi": deviceinfo.make_resource(identity),
        "/axis-cgi/param.cgi": ParamCgiResource(identity, ports, lambda: hardware().relay.pulse_ms),
        "/axis-cgi/io/portmanagement.cgi": portmanagement.make_resource(ports),
        "/axis-cgi/io/port.cgi": PortCgiResource(ports),
        "/axis-cgi/usergroup.cgi": UserGroupResource(),
        "/axis-cgi/mqtt/client.cgi": mqtt.client_resource(control),
        "/axis-cgi/mqtt/event.cgi": mqtt.event_resource(control),
        "/axis-cgi/pwdgrp.cgi": PwdgrpResource(control),
    }
