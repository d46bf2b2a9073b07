"""Runs PyPI's `axis` v60 (Home Assistant's Axis library) against a station; run with the
interpreter of .venv-axis (scripts/test makes it), never imported by the tests themselves.

    python tests/axis_client.py HOST PORT USER PASSWORD initialize     -> JSON of what axis learnt
    python tests/axis_client.py HOST PORT USER PASSWORD close|open ID  -> setPorts state closed|open

Prints one JSON object; errors become {"error": "<axis exception class>", "message": ...}.
"""
import asyncio
import json
import sys

import httpx
from axis.device import AxisDevice
from axis.errors import AxisException
from axis.models.configuration import Configuration


async def main(host: str, port: str, user: str, password: str, action: str, *rest: str) -> dict:
    async with httpx.AsyncClient(verify=False) as session:
        device = AxisDevice(Configuration(session, host, port=int(port), username=user, password=password))
        vapix = device.vapix
        if action == "initialize":
            await vapix.initialize()
            await vapix.load_user_groups()
            ports = vapix.ports
            return {
                "serial_number": vapix.serial_number,
                "product_number": vapix.product_number,
                "product_type": vapix.product_type,
                "firmware_version": vapix.firmware_version,
                "access_rights": str(vapix.access_rights),
                "port_api": type(ports).__name__,
                "apis": sorted(str(api_id) for api_id in vapix.api_discovery),
                "ports": [{"id": p.id, "name": p.name, "direction": str(p.direction),
                           "state": getattr(p, "state", None)} for p in ports.values()],
                "http_api_version": vapix.params.property_handler["0"].api_http_version
                if vapix.params.property_handler.initialized else None,
            }
        if action in ("close", "open"):
            await vapix.api_discovery.update()
            await getattr(vapix.io_port_management, action)(rest[0])
            return {"done": action, "port": rest[0]}
        raise SystemExit(f"unknown action {action}")


if __name__ == "__main__":
    try:
        result = asyncio.run(asyncio.wait_for(main(*sys.argv[1:]), 60))
    except AxisException as e:
        result = {"error": type(e).__name__, "message": str(e)}
    print(json.dumps(result))
