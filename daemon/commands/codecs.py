"""Audio codec priority list: GetSupported/GetDefault/Get/SetAudioCodecs.

The supported list is whatever the SIP stack really offers (runtime.supported_codecs()). The
default list is the G.711 pair (every SIP peer has them) and G.722 (wide-band): offering every
codec the stack has (L16 at six rates, speex at three, iLBC, GSM) makes the INVITE ~1.4 kB, over
pjsip's 1300-byte limit, so it would leave over TCP and miss UDP-only peers (seen in the VM lane).
The others stay available through SetAudioCodecs. A client's Options are type-checked but not applied: the answer shows
the stack's Options for a codec, never something we would not do.
"""
from __future__ import annotations

import copy

from daemon.commands import Context, command
from daemon.commands import validate as v
from daemon.faults import invalid_arg, missing_arg

SETTING_KEY = "audio_codecs"
PREFERRED = (("PCMU", 8000), ("PCMA", 8000), ("G722", 16000))


def supported(ctx: Context) -> list[dict]:
    return [copy.deepcopy(codec) for codec in ctx.runtime.supported_codecs()]


def _key(codec: dict) -> tuple[str, int | None]:
    return str(codec.get("Name", "")).lower(), codec.get("SampleRate")


def default_list(codecs: list[dict]) -> list[dict]:
    chosen = [c for name, rate in PREFERRED for c in codecs if _key(c) == (name.lower(), rate)]
    return chosen or list(codecs)  # a stack without any of them: offer what it has


def current_list(store, codecs) -> list[dict]:
    """The stored priority list restricted to what the stack still offers, else the default.
    `codecs`: the supported list, or anything with supported_codecs() (the runtime)."""
    if hasattr(codecs, "supported_codecs"):
        codecs = codecs.supported_codecs()
    stored = (store.get_setting(SETTING_KEY) or {}).get("AudioCodec", [])
    by_key = {_key(c): c for c in codecs}
    chosen = [by_key[_key(c)] for c in stored if _key(c) in by_key]
    return chosen or default_list(codecs)


@command("GetSupportedAudioCodecs", role="viewer")
def get_supported_audio_codecs(ctx: Context, params: dict) -> dict:
    v.as_object(params, "request")
    return {"AudioCodec": supported(ctx)}


@command("GetDefaultAudioCodecs", role="viewer")
def get_default_audio_codecs(ctx: Context, params: dict) -> dict:
    v.as_object(params, "request")
    return {"AudioCodec": default_list(supported(ctx))}


@command("GetAudioCodecs", role="viewer")
def get_audio_codecs(ctx: Context, params: dict) -> dict:
    v.as_object(params, "request")
    return {"AudioCodec": current_list(ctx.store, supported(ctx))}


@command("SetAudioCodecs", role="admin")
def set_audio_codecs(ctx: Context, params: dict) -> dict:
    items = v.unwrap_many(params, "AudioCodec", "AudioCodecs", "AudioCodec", lenient=ctx.lenient)
    if not items:
        raise invalid_arg("AudioCodec must list at least one codec")
    codecs = supported(ctx)
    chosen: list[dict] = []
    for i, item in enumerate(items):
        chosen_codec = _match(item, i, codecs, ctx.lenient)
        if chosen_codec in chosen:
            raise invalid_arg(f"AudioCodec #{i} ({chosen_codec['Name']}/{chosen_codec.get('SampleRate')}) "
                              "is listed twice")
        chosen.append(chosen_codec)
    with ctx.store.transaction() as tx:
        tx.put_setting(SETTING_KEY, {"AudioCodec": [{"Name": c["Name"], "SampleRate": c.get("SampleRate")}
                                                    for c in chosen]})
    ctx.runtime.config_changed("codecs")
    return {}


def _match(item: dict, index: int, codecs: list[dict], lenient: bool) -> dict:
    if item.get("Name") is None:
        raise missing_arg(f"AudioCodec #{index} Name is required")
    name = v.string(item["Name"], "AudioCodec Name", lenient=lenient, max_len=64)
    rate = item.get("SampleRate")
    if rate is not None:
        rate = v.integer(rate, "AudioCodec SampleRate", lenient=lenient, lo=1, hi=1_000_000)
    if item.get("Options") is not None:
        v.string(item["Options"], "AudioCodec Options", lenient=lenient)
    for codec in codecs:
        if str(codec.get("Name", "")).lower() == name.lower() and (rate is None or codec.get("SampleRate") == rate):
            return codec
    raise invalid_arg(f"AudioCodec {name}" + (f"/{rate}" if rate is not None else "") + " is not supported")
