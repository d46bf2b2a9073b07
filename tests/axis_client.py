"""Runs PyPI's `axis` v60 (Home Assistant's Axis library) against a station; run with the
interpreter of .venv-axis (scripts/test makes it), never imported by the tests themselves.

    python tests/axis_client.py HOST PORT USER PASSWORD initialize     -> JSON of what axis learnt
    python tests/axis_client.py HOST PORT USER PASSWORD close|open ID  -> setPorts state closed|open
    python tests/axis_client.py HOST PORT USER PASSWORD events RTSP_PORT SECONDS [close ID]
        -> subscribes to the RTSP event stream (as Home Assistant does), prints "playing" once the
           stream plays and its first events arrived, optionally switches port ID on through
           setPorts, collects for SECONDS, then prints the events: [topic, id, state, operation]

    python tests/axis_client.py HOST PORT USER PASSWORD users NAME PASSWORD
        -> through pwdgrp.cgi (vapix.users): list, create NAME as viewer, modify to operator, list,
           initialize_users + load_user_groups (the rights axis then reads), delete, list

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
        if action == "users":
            return await manage_users(device, rest[0], rest[1])
        if action == "events":
            return await stream_events(device, int(rest[0]), float(rest[1]), list(rest[2:]))
        raise SystemExit(f"unknown action {action}")


async def manage_users(device: AxisDevice, name: str, password: str) -> dict:
    from axis.models.pwdgrp_cgi import SecondaryGroup
    users = device.vapix.users

    async def listing() -> dict:
        # v60 splits an empty group (ptz="") into one user named "": not one of ours
        return {n: str(u.privileges) for n, u in sorted((await users.list()).items()) if n}

    before = await listing()
    await users.create(name, pwd=password, sgrp=SecondaryGroup.VIEWER, comment="made by axis")
    created = await listing()
    await users.modify(name, sgrp=SecondaryGroup.OPERATOR)
    modified = await listing()
    await device.vapix.initialize_users()
    await device.vapix.load_user_groups()
    rights = str(device.vapix.access_rights)
    await users.delete(name)
    return {"before": before, "created": created, "modified": modified, "rights": rights,
            "after": await listing()}


async def stream_events(device: AxisDevice, rtsp_port: int, seconds: float, then: list[str]) -> dict:
    import axis.rtsp
    from axis.rtsp import Signal
    axis.rtsp.RTSP_PORT = rtsp_port      # v60 hard-codes 554; the test station listens elsewhere
    events, signals = [], []
    device.event.subscribe(lambda e: events.append([str(e.topic_base), e.id, e.state, str(e.operation)]))
    device.stream.connection_status_callback.append(lambda s: signals.append(str(s)))
    device.enable_events()
    device.stream.start()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while loop.time() < deadline and not (str(Signal.PLAYING) in signals and events):
        if str(Signal.FAILED) in signals:
            break
        await asyncio.sleep(0.05)
    print("playing" if str(Signal.PLAYING) in signals else "not playing", flush=True)
    if then[:1] == ["close"]:
        await device.vapix.api_discovery.update()
        await device.vapix.io_port_management.close(then[1])
    await asyncio.sleep(seconds)
    device.stream.stop()
    return {"signals": signals, "events": events}


if __name__ == "__main__":
    try:
        result = asyncio.run(asyncio.wait_for(main(*sys.argv[1:]), 60))
    except AxisException as e:
        result = {"error": type(e).__name__, "message": str(e)}
    print(json.dumps(result))
