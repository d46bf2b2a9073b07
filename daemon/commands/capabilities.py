"""axcall:GetServiceCapabilities: what this implementation really supports."""
from __future__ import annotations

from daemon.commands import Context, command
from daemon.commands.validate import as_object


@command("GetServiceCapabilities", role="viewer")
def get_service_capabilities(ctx: Context, params: dict) -> dict:
    as_object(params, "request")
    return {"Capabilities": {
        "SIP": True,
        "DTMF": True,
        "AudioCodec": True,
        "MediaEncryption": True,
        # No certificate store: the SIPAccount Certificate field is not supported (ignored).
        "Certificate": False,
        "Attribute": True,
    }}
