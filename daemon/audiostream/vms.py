"""VMS calls answered by streams: VMSCallConfiguration's thresholds over the stream counts.

Per the Call service spec: three counts (audio device->network, audio network->device, video
device->network) are each evaluated against their threshold; a threshold <= 0 is not used; a
count reaching its threshold is one VMS call, so two counts over their thresholds are two calls.

What a count reaching its threshold does:
- an outgoing VMS call is `Calling` (axcall:Call To=VMS_CALL, not yet answered): the oldest such
  call becomes `Active` with `AcceptedByRemote` (the VMS answered it);
- no call is waiting: an incoming VMS call starts, `Active` with `AcceptedByDevice` (the spec's
  "Incoming VMS call": a client starts transmitting).
The count falling below its threshold ends that call with `Terminated`. Ending the call otherwise
(TerminateCall, the call button, shutdown) closes the streams of that kind (`call_ended`).

Pure logic over two ports: `calls` (the runtime's VMS call table) and `close_streams(kind)`.
Video streams are counted as 0: the station serves no video.
"""
from __future__ import annotations

from typing import Callable, Protocol

# threshold name -> the stream kind that counts for it (None: no such streams on this station)
THRESHOLD_KINDS: dict[str, str | None] = {
    "AudioFromDeviceToNetworkStreams": "receive",
    "AudioFromNetworkToDeviceStreams": "transmit",
    "VideoFromDeviceToNetworkStreams": None,
}


class VmsCallTable(Protocol):
    def answer_waiting_vms_call(self) -> str | None:
        """The oldest unanswered outgoing VMS call made Active (AcceptedByRemote); None if none."""
        ...

    def start_incoming_vms_call(self) -> str:
        """A new VMS call, Active (AcceptedByDevice)."""
        ...

    def end_vms_call(self, call_id: str, reason: str) -> None: ...


class VmsStreamCalls:
    def __init__(self, load_config: Callable[[], dict], calls: VmsCallTable,
                 close_streams: Callable[[str], object]) -> None:
        self._load_config = load_config
        self._calls = calls
        self._close_streams = close_streams
        self._counts: dict[str, int] = {}
        self.bound: dict[str, str] = {}       # threshold name -> the VMS call it made

    def counts_changed(self, counts: dict[str, int]) -> None:
        self._counts = dict(counts)
        self.evaluate()

    def evaluate(self) -> None:
        """Also after SetVMSCallConfiguration: a changed threshold may start or end a call."""
        config = self._load_config()
        for name, kind in THRESHOLD_KINDS.items():
            threshold = int(config.get(name, 0))
            count = self._counts.get(kind, 0) if kind else 0
            over = bool(config.get("Enabled", True)) and threshold > 0 and count >= threshold
            call_id = self.bound.get(name)
            if over and call_id is None:
                self.bound[name] = (self._calls.answer_waiting_vms_call()
                                    or self._calls.start_incoming_vms_call())
            elif not over and call_id is not None:
                del self.bound[name]
                self._calls.end_vms_call(call_id, "Terminated")

    def call_ended(self, call_id: str) -> None:
        """A VMS call ended by other means (TerminateCall, button, NoAnswer): close its streams."""
        for name, bound_id in list(self.bound.items()):
            if bound_id == call_id:
                del self.bound[name]
                kind = THRESHOLD_KINDS[name]
                if kind:
                    self._close_streams(kind)

    def status(self) -> dict:
        return {"Counts": dict(self._counts), "Calls": dict(self.bound)}
