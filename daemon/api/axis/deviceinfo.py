"""POST /axis-cgi/basicdeviceinfo.cgi (Axis Basic device information API 1.1), viewer:

    getAllProperties                                    every key (daemon.api.axis.identity)
    getProperties {"propertyList": ["ProdNbr", ...]}    only those keys
"""
from __future__ import annotations

from typing import Callable

from daemon.api.axis.identity import DeviceIdentity
from daemon.api.axis.jsonapi import INVALID_PARAMETER, MISSING_PARAMETER, ApiError, JsonApiResource, JsonRequest

VERSIONS = ["1.0", "1.1"]


def make_resource(identity: Callable[[], DeviceIdentity]) -> JsonApiResource:
    def get_all(request: JsonRequest, user) -> dict:
        return {"propertyList": identity().basic_device_info()}

    def get_some(request: JsonRequest, user) -> dict:
        wanted = request.params.get("propertyList") if isinstance(request.params, dict) else None
        if not isinstance(wanted, list) or not wanted or len(wanted) > 64:
            raise ApiError(MISSING_PARAMETER, "params.propertyList must list the properties wanted")
        everything = identity().basic_device_info()
        unknown = [str(k)[:32] for k in wanted if k not in everything]
        if unknown:
            raise ApiError(INVALID_PARAMETER, f"Unknown properties: {', '.join(unknown[:8])}")
        return {"propertyList": {k: everything[k] for k in wanted}}

    return JsonApiResource(VERSIONS, {"getAllProperties": ("viewer", get_all),
                                      "getProperties": ("viewer", get_some)})
