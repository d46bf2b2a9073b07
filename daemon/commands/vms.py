"""The VMS call configuration singleton: Get/SetVMSCallConfiguration.

Set validates every field it is given and keeps the current value of every field it is not
(the table lists all five as mandatory; a partial update is accepted rather than refused).
"""
from __future__ import annotations

import copy

from daemon.commands import Context, command
from daemon.commands import validate as v

SETTING_KEY = "vms_call_configuration"
MAX_TIMEOUT = 3600
# Thresholds: 0 or negative disables one (spec); bounded so nonsense is refused.
THRESHOLD_RANGE = (-1000, 1000)
THRESHOLDS = ("AudioFromDeviceToNetworkStreams", "AudioFromNetworkToDeviceStreams",
              "VideoFromDeviceToNetworkStreams")

DEFAULTS = {
    "Enabled": True,
    "AudioFromDeviceToNetworkStreams": 0,
    "AudioFromNetworkToDeviceStreams": 1,
    "VideoFromDeviceToNetworkStreams": 0,
    "Timeout": 30,
}


def load(store_or_tx) -> dict:
    config = copy.deepcopy(DEFAULTS)
    config.update({k: val for k, val in (store_or_tx.get_setting(SETTING_KEY) or {}).items() if k in DEFAULTS})
    return config


@command("GetVMSCallConfiguration", role="viewer")
def get_vms_call_configuration(ctx: Context, params: dict) -> dict:
    v.as_object(params, "request")
    return {"VMSCallConfiguration": load(ctx.store)}


@command("SetVMSCallConfiguration", role="admin")
def set_vms_call_configuration(ctx: Context, params: dict) -> dict:
    given, _request = v.unwrap_one(params, ("VMSCallConfiguration",), "VMSCallConfiguration")
    with ctx.store.transaction() as tx:
        config = load(tx)
        if "Enabled" in given:
            config["Enabled"] = v.boolean(given["Enabled"], "Enabled", lenient=ctx.lenient)
        for name in THRESHOLDS:
            if name in given:
                config[name] = v.integer(given[name], name, lenient=ctx.lenient,
                                         lo=THRESHOLD_RANGE[0], hi=THRESHOLD_RANGE[1])
        if "Timeout" in given:
            config["Timeout"] = v.integer(given["Timeout"], "Timeout", lenient=ctx.lenient, lo=1, hi=MAX_TIMEOUT)
        tx.put_setting(SETTING_KEY, config)
    ctx.runtime.config_changed("vms")
    return {}
