"""Audio over the network (VAPIX Audio API transmit.cgi/receive.cgi) and the VMS calls they answer.

- codec: G.711 mu-law and integer-ratio resampling (the API process converts; the supervisor only
  moves 16-bit PCM at the hub's rate).
- protocol: the per-stream Unix socket between the API process and the supervisor.
- server: the supervisor's end: admission (caps), stream counts, the hub taps, slow receivers.
- vms: VMSCallConfiguration thresholds over the stream counts -> VMS call transitions.
"""
import os
from pathlib import Path


def audio_socket_path(state_dir: str | os.PathLike) -> Path:
    """Where the stream socket lives, beside the control socket."""
    return Path(state_dir) / "run" / "audio.sock"
