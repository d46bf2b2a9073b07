"""Door-station audio: ALSA microphone/speaker bridged into pjsua2's conference bridge.

Layers, bottom up:
- `Pcm` (protocol): a non-blocking duplex PCM. `AlsaPcm` (pyalsaaudio, PCM_NONBLOCK) here,
  `SimPcm` in hw/audio_sim.py.
- `ByteFifo`: a bounded FIFO. The ALSA clock and pjsua2's media clock never tick at exactly the
  same rate, so each direction has one: when it would overflow, the oldest audio is dropped
  (overrun); when a frame is wanted and it is short, silence pads it (underrun). Both counted.
- `AudioBridge`: pure Python, no pjsua2. `frame_for_call()` (mic -> call) and
  `frame_from_call(data)` (call -> speaker) are what the media clock thread calls every 20 ms;
  both only move bytes and do non-blocking ALSA I/O, so they never stall that clock.
  Ring-back for the speaker is generated here (`RingbackTone`) while `ringback_active`.
- `PjAudioPort`: the `pj.AudioMediaPort` subclass that forwards the two callbacks to the bridge,
  with a fast path for frame.buf (see `fast_bytes`). `AudioBridge.open_port()/attach()/detach()`
  are the SIP engine's hooks (engine thread only).

A clock only while something plays or records. pjmedia's conference bridge is clocked by the null
sound device, which pjsua opens on any connection in the bridge and closes after
`sndAutoCloseTime` (1 s) without one (pjsua_aud.c; the engine arms that check at start-up). A call
attached to the port is such a connection; ring-back without a call connects the null device's
capture side to the port for as long as it plays. While the clock runs, the bridge calls every
port's put_frame on every 20 ms tick, connected or not (measured: 25 calls in 0.5 s), so the port's
callback also returns at once while nothing transmits to the port and the bridge is not `active`.
Ring-back is switched from the
supervisor's loop (`start()`/`stop()`); the connection is made on the SIP engine's thread through
`run_on_engine` (pjsua2 is only touched there).
"""
from __future__ import annotations

import array
import ctypes
import math
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Protocol

from hw.g711 import Resampler, mulaw_encode

if TYPE_CHECKING:
    from hw.echo import AecConfig

SAMPLE_BYTES = 2            # S16_LE mono
RECEIVE_RATE = 8000         # network receivers get G.711 mu-law at 8 kHz (audio/basic)
FRAME_MS = 20               # pjsua2 ptime; one callback per frame


class AudioError(Exception):
    """Base of the typed audio errors."""


class AudioDeviceError(AudioError, OSError):
    def __init__(self, device: str, detail: str) -> None:
        super().__init__(f"audio device {device!r}: {detail}")
        self.device = device


class Pcm(Protocol):
    """A duplex PCM whose calls never block."""

    def read(self) -> bytes:
        """Captured audio available now (possibly b"")."""
        ...

    def write(self, data: bytes) -> int:
        """Queue audio for playback; returns how many bytes were taken (0 if the device is full)."""
        ...

    def close(self) -> None: ...


# --- bounded FIFO -----------------------------------------------------------------------------

class ByteFifo:
    """Bounded byte FIFO; thread-safe (the clock thread and the ALSA pump may differ)."""

    def __init__(self, capacity: int, sample_bytes: int = SAMPLE_BYTES) -> None:
        self.capacity = capacity - capacity % sample_bytes
        self._sample = sample_bytes
        self._buf = bytearray()
        self._lock = threading.Lock()
        self.overruns = 0        # pushes that had to drop old audio
        self.dropped_bytes = 0
        self.underruns = 0       # pops that had to be padded with silence
        self.padded_bytes = 0
        self.trims = 0           # latency trims (see LatencyTrimmer)
        self.trimmed_bytes = 0
        self.high_water = 0

    def __len__(self) -> int:
        return len(self._buf)

    def push(self, data: bytes) -> None:
        with self._lock:
            self._buf += data
            excess = len(self._buf) - self.capacity
            if excess > 0:
                excess += (-excess) % self._sample   # keep sample alignment
                del self._buf[:excess]
                self.overruns += 1
                self.dropped_bytes += excess
            self.high_water = max(self.high_water, len(self._buf))

    def pop(self, n: int) -> bytes:
        """Exactly n bytes: what is there, padded with silence if short."""
        with self._lock:
            out = bytes(self._buf[:n])
            del self._buf[:n]
        if len(out) < n:
            self.underruns += 1
            self.padded_bytes += n - len(out)
            out += bytes(n - len(out))
        return out

    def drain(self) -> bytes:
        """Everything buffered, emptying the FIFO (no padding)."""
        with self._lock:
            out = bytes(self._buf)
            self._buf.clear()
        return out

    def peek_all(self) -> bytes:
        with self._lock:
            return bytes(self._buf)

    def take(self, n: int) -> None:
        with self._lock:
            del self._buf[:n]

    def trim(self, n: int) -> None:
        """Drop the n oldest bytes to cut latency (counted apart from overflow drops)."""
        n -= n % self._sample
        if n > 0:
            with self._lock:
                n = min(n, len(self._buf))
                del self._buf[:n]
            self.trims += 1
            self.trimmed_bytes += n

    def stats(self) -> dict[str, int]:
        return {"level": len(self._buf), "capacity": self.capacity, "high_water": self.high_water,
                "overruns": self.overruns, "dropped_bytes": self.dropped_bytes,
                "underruns": self.underruns, "padded_bytes": self.padded_bytes,
                "trims": self.trims, "trimmed_bytes": self.trimmed_bytes}


class LatencyTrimmer:
    """Keeps a FIFO's standing level near `target` bytes, like a jitter buffer.

    The capacity bound alone would let a clock that is slightly faster on the producing side fill
    the FIFO and keep it full: audio then lags by the whole capacity. Instead, the lowest level
    seen over a window of ticks is the part of the buffer that jitter never needed; if it is above
    the target, that excess is dropped at once (one short glitch every few seconds at 1 % drift,
    none at a realistic 0.01 %).
    """

    def __init__(self, fifo: ByteFifo, target: int, window_ticks: int = 50) -> None:
        self.fifo = fifo
        self.target = target
        self.window = window_ticks
        self._ticks = 0
        self._min: int | None = None

    def tick(self) -> None:
        level = len(self.fifo)
        self._min = level if self._min is None else min(self._min, level)
        self._ticks += 1
        if self._ticks >= self.window:
            if self._min > self.target:
                self.fifo.trim(self._min - self.target)
            self._ticks, self._min = 0, None


# --- ring-back --------------------------------------------------------------------------------

class RingbackTone:
    """A cadenced sine (e.g. 425 Hz, 1 s on / 4 s off), generated once, read frame by frame."""

    def __init__(self, rate: int, frequency_hz: float = 425.0, on_ms: int = 1000,
                 off_ms: int = 4000, level: float = 0.25) -> None:
        amp = int(32767 * max(0.0, min(1.0, level)))
        on = rate * on_ms // 1000
        samples = array.array("h", (int(amp * math.sin(2 * math.pi * frequency_hz * i / rate))
                                    for i in range(on)))
        samples.extend([0] * (rate * off_ms // 1000))
        self._pcm = samples.tobytes()
        self._pos = 0

    def reset(self) -> None:
        self._pos = 0

    def next(self, n: int) -> bytes:
        out = bytearray()
        while len(out) < n:
            chunk = self._pcm[self._pos:self._pos + n - len(out)]
            out += chunk
            self._pos = (self._pos + len(chunk)) % len(self._pcm)
        return bytes(out)


# --- HTTP streams on the hub ------------------------------------------------------------------

class StreamTap:
    """One network stream's end at the hub: a bounded FIFO the media clock fills (microphone ->
    receiver) or empties (transmitter -> speaker), plus its counters. `kind` is "receive" or
    "transmit". A transmitter is only mixed once audio has arrived (`started`), so the wait for
    its first bytes is not counted as underruns."""

    def __init__(self, stream_id: int, kind: str, capacity: int) -> None:
        self.stream_id = stream_id
        self.kind = kind
        self.fifo = ByteFifo(capacity)
        self.started = False
        self.frames = 0
        self.dropped_bytes = 0      # receive: audio the network side could not take in time

    def stats(self) -> dict[str, Any]:
        f = self.fifo
        return {"Id": self.stream_id, "Kind": self.kind, "Frames": self.frames,
                "Underruns": f.underruns, "Overruns": f.overruns,
                "DroppedBytes": f.dropped_bytes + self.dropped_bytes, "Level": len(f)}


def mix_into(acc: array.array, pcm: bytes) -> None:
    """acc += pcm (S16), saturating. Pure Python over one 20 ms frame (320 samples at 16 kHz)."""
    other = array.array("h", pcm)
    for i, x in enumerate(other):
        y = acc[i] + x
        acc[i] = 32767 if y > 32767 else -32768 if y < -32768 else y


# --- the bridge core --------------------------------------------------------------------------


class PeakMeter:
    """The peak level of the last second of frames (at 20 ms each), in dBFS, for the status and the
    web page. Fed on the media clock thread (two C-level passes over a frame's samples); read
    from any thread (one int)."""

    def __init__(self, frames_per_window: int = 50) -> None:
        self._window = frames_per_window
        self._count = 0
        self._peak = 0
        self.last = 0                        # peak of the last full window, 0..32768

    def feed(self, frame: bytes) -> None:
        samples = array.array("h", frame[:len(frame) & ~1])
        if samples:
            peak = max(max(samples), -min(samples))
            if peak > self._peak:
                self._peak = peak
        self._count += 1
        if self._count >= self._window:
            self.last, self._peak, self._count = self._peak, 0, 0

    def dbfs(self) -> float | None:
        """None for digital silence."""
        return round(20 * math.log10(self.last / 32768), 1) if self.last else None

class AudioBridge:
    def __init__(self, pcm: Pcm, rate: int = 16000, fifo_ms: int = 200,
                 ringback: RingbackTone | None = None, target_ms: int = 40,
                 echo: "AecConfig | None" = None) -> None:
        """`echo`: the echo canceller's settings (hw/echo.py); None = its defaults (on). If
        libspeexdsp cannot be loaded the hub runs without one and says so in stats()."""
        self.pcm = pcm
        self.rate = rate
        self.frame_bytes = rate * FRAME_MS // 1000 * SAMPLE_BYTES
        cap = max(2 * self.frame_bytes, rate * fifo_ms // 1000 * SAMPLE_BYTES)
        self.mic = ByteFifo(cap)        # ALSA capture -> call
        self.speaker = ByteFifo(cap)    # call -> ALSA playback
        target = rate * target_ms // 1000 * SAMPLE_BYTES
        self._trimmers = (LatencyTrimmer(self.mic, target), LatencyTrimmer(self.speaker, target))
        self._ringback = ringback or RingbackTone(rate)
        self.ringback_active = False    # set from any thread; read on the clock thread
        self.frames_in = 0
        self.frames_out = 0
        self.mic_level = PeakMeter()         # what goes to the call and receivers (after AEC)
        self.speaker_level = PeakMeter()     # what goes to the speaker (call, transmitters, ring-back)
        self.device_errors = 0
        self.last_error: str | None = None
        self._port: Any = None
        self._port_name = ""
        self._attached: Any = None
        self._clocked = False           # null capture -> port connected for ring-back (engine thread)
        self.call_id: str | None = None   # the call the bridge is attached to (informational)
        # network streams (HTTP receive/transmit): replaced whole under the lock, read without it
        # on the clock thread (a tuple swap is atomic)
        self._streams_lock = threading.Lock()
        self._receivers: tuple[StreamTap, ...] = ()
        self._transmitters: tuple[StreamTap, ...] = ()
        # called on the clock thread after microphone audio went to the receivers (the stream
        # server sets it to a call_soon_threadsafe of its flush); must not block
        self.on_received: Callable[[], None] | None = None
        # receivers all get the same mu-law 8 kHz, made once per frame (not once per receiver)
        self._rx_resampler = Resampler(rate, RECEIVE_RATE)
        self.echo: Any = None              # hw.echo.EchoCanceller: microphone minus speaker echo
        self.echo_error: str | None = None
        self._echo_ref = bytes(self.frame_bytes)   # the speaker frame of the previous tick
        self._open_echo(echo)
        # How to run a function on the SIP engine's thread (the wiring sets it to the engine's
        # submit); None runs it at once, for callers already on that thread (tests).
        self.run_on_engine: Callable[[Callable[[], None]], object] | None = None

    def _open_echo(self, config: "AecConfig | None") -> None:
        from hw.echo import AecConfig, EchoCanceller, EchoError
        config = config or AecConfig()
        if not config.enabled:
            return
        try:
            self.echo = EchoCanceller(self.rate, self.frame_bytes // SAMPLE_BYTES, config)
        except EchoError as e:
            self.echo_error = str(e)

    @property
    def active(self) -> bool:
        """A call is attached, ring-back plays or a network stream is open: the media clock's
        frames are worked on."""
        return self._wants_clock() or self._attached is not None

    def _wants_clock(self) -> bool:
        return self.ringback_active or bool(self._receivers) or bool(self._transmitters)

    # -- network streams (supervisor loop) --
    def add_stream(self, tap: StreamTap) -> None:
        with self._streams_lock:
            if tap.kind == "receive":
                self._receivers = (*self._receivers, tap)
            else:
                self._transmitters = (*self._transmitters, tap)
        self._clock_on_engine()

    def remove_stream(self, tap: StreamTap) -> None:
        with self._streams_lock:
            self._receivers = tuple(t for t in self._receivers if t is not tap)
            self._transmitters = tuple(t for t in self._transmitters if t is not tap)
        self._clock_on_engine()

    # ring-back switch (daemon.intercom.Ringback protocol)
    def start(self) -> None:
        self._ringback.reset()
        self.ringback_active = True
        self._clock_on_engine()

    def stop(self) -> None:
        self.ringback_active = False
        self._clock_on_engine()

    def _clock_on_engine(self) -> None:
        if self.run_on_engine is None:
            self._sync_clock()
            return
        try:
            self.run_on_engine(self._sync_clock)
        except Exception as e:          # the engine is not running: nothing can be clocked
            self.last_error = f"ring-back switch: {e}"

    def _sync_clock(self) -> None:
        """Engine thread: the null device's capture side feeds the port, and the port feeds the
        null device's playback side, while ring-back plays or a network stream is open. That keeps
        the bridge's clock running and asks the port for microphone frames even without a call
        (the bridge only asks ports that transmit somewhere); the disconnect lets pjsua close the
        null device again."""
        want = self._wants_clock() and self._port is not None
        if want == self._clocked:
            return
        import pjsua2 as pj
        try:
            manager = pj.Endpoint.instance().audDevManager()
            capture, playback = manager.getCaptureDevMedia(), manager.getPlaybackDevMedia()
            if want:
                capture.startTransmit(self._port)
                self._port.startTransmit(playback)
            else:
                capture.stopTransmit(self._port)
                self._port.stopTransmit(playback)
            self._clocked = want
        except Exception as e:          # pj.Error: the endpoint is going away
            self.last_error = f"clock: {e}"
            self._clocked = False

    # -- media clock thread: keep these short and non-blocking --
    def frame_for_call(self) -> bytes:
        """Mic -> call: one frame of captured audio (padded with silence if the mic is behind)."""
        self.pump()
        self.frames_out += 1
        frame = self.mic.pop(self.frame_bytes)
        self._trimmers[0].tick()
        if self.echo is not None:
            # the reference is what went to the speaker one tick ago; the FIFO and device delay
            # after that is part of the echo path the filter's tail covers
            frame = self.echo.process(frame, self._echo_ref)
        self.mic_level.feed(frame)
        receivers = self._receivers
        if receivers:
            encoded = mulaw_encode(self._rx_resampler.process(frame))
            for tap in receivers:
                tap.fifo.push(encoded)
                tap.frames += 1
            if self.on_received is not None:
                try:
                    self.on_received()
                except Exception as e:     # the loop is closing: nothing to wake
                    self.last_error = f"receive wake-up: {e}"
        return frame

    def frame_from_call(self, data: bytes) -> None:
        """Call -> speaker. While ring-back is on, the speaker plays ring-back instead of the call
        audio (early media would otherwise mix with the tone)."""
        if self.ringback_active:
            data = self._ringback.next(self.frame_bytes)
        transmitters = self._transmitters
        if transmitters:
            acc = array.array("h", data[:self.frame_bytes].ljust(self.frame_bytes, b"\0"))
            for tap in transmitters:
                if not tap.started:
                    if not len(tap.fifo):
                        continue
                    tap.started = True
                mix_into(acc, tap.fifo.pop(self.frame_bytes))
                tap.frames += 1
            data = acc.tobytes()
        if self.echo is not None:
            self._echo_ref = data if len(data) == self.frame_bytes else data[:self.frame_bytes].ljust(
                self.frame_bytes, b"\0")
        self.frames_in += 1
        self.speaker_level.feed(data)
        self.speaker.push(data)
        self.pump()
        self._trimmers[1].tick()

    def pump(self) -> None:
        """Move whatever the device has/accepts right now; bounded, never waits."""
        try:
            for _ in range(16):                # at most 16 captured chunks per tick
                got = self.pcm.read()
                if not got:
                    break
                self.mic.push(got)
            pending = self.speaker.peek_all()
            if pending:
                taken = self.pcm.write(pending)
                if taken:
                    self.speaker.take(taken)
        except AudioError as e:                # a device error must not kill the clock thread
            self.device_errors += 1
            self.last_error = str(e)

    def stats(self) -> dict[str, Any]:
        s = {"mic": self.mic.stats(), "speaker": self.speaker.stats(), "frames_in": self.frames_in,
             "frames_out": self.frames_out, "device_errors": self.device_errors,
             "last_error": self.last_error, "active": self.active,
             # peak of the last second while the clock runs (None: silence or not clocked)
             "levels": {"mic_dbfs": self.mic_level.dbfs() if self.active else None,
                        "speaker_dbfs": self.speaker_level.dbfs() if self.active else None},
             "streams": [t.stats() for t in (*self._receivers, *self._transmitters)],
             "echo": ({"tail_ms": self.echo.config.tail_ms, "noise_suppress_db": self.echo.config.noise_suppress_db,
                       "agc": self.echo.config.agc, "frames": self.echo.frames} if self.echo is not None
                      else {"off": self.echo_error or "disabled"})}
        dev = getattr(self.pcm, "stats", None)
        if dev:
            s["device"] = dev()
        return s

    # -- SIP engine hooks (call these on the engine thread only) --
    def open_port(self, ep: Any = None, name: str = "doorstation-audio") -> Any:
        """Create the pjsua2 port; a call attached to it or ring-back gives it a clock.
        `ep` defaults to the process's pjsua2 Endpoint (it must be started, with the null device).

        The port is handed over to C++ (`__disown__`): its destructor never runs from Python.
        Otherwise it would run on whatever thread drops the last reference (an unregistered
        thread aborts the process) or after libDestroy (a pjmedia assertion aborts it). The cost is
        one small port object per Endpoint lifetime. After an Endpoint restart the old port is
        detected (its slot no longer carries our name) and a new one is made."""
        import pjsua2 as pj
        if self._port is not None and not self._port_alive():
            self._port, self._attached, self.call_id, self._clocked = None, None, None, False
        if self._port is None:
            ep = ep if ep is not None else pj.Endpoint.instance()
            port = _port_class()(self)
            fmt = pj.MediaFormatAudio()
            fmt.type = pj.PJMEDIA_TYPE_AUDIO
            fmt.clockRate = self.rate
            fmt.channelCount = 1
            fmt.bitsPerSample = 16
            fmt.frameTimeUsec = FRAME_MS * 1000
            port.createPort(name, fmt)
            port.__disown__()
            self._port, self._port_name = port, name
            self._sync_clock()          # ring-back may have been switched on before the port existed
        return self._port

    def _port_alive(self) -> bool:
        try:
            return self._port.getPortInfo().name == self._port_name
        except Exception:           # pj.Error: the slot is gone with its conference bridge
            return False

    def attach(self, call_audio_media: Any) -> None:
        """From Call.onCallMediaState when the audio media is active: connect both ways."""
        if self._port is None:
            raise AudioError("open_port(ep) must be called before attach()")
        if self._attached is not None:
            self.detach()
        self._port.startTransmit(call_audio_media)
        call_audio_media.startTransmit(self._port)
        self._attached = call_audio_media

    def media_hook(self, call_id: str, call_audio_media: Any) -> None:
        """Fits the SIP engine's `media_hook(call_id, AudioMedia)` (engine thread, inside
        onCallMediaState): opens the port on first use, then attaches the call."""
        self.open_port()
        self.attach(call_audio_media)
        self.call_id = call_id

    def detach(self) -> None:
        """When the call's media goes away (or on DISCONNECTED): disconnect both ways."""
        am, self._attached, self.call_id = self._attached, None, None
        if am is not None and self._port is not None:
            for stop in (lambda: self._port.stopTransmit(am), lambda: am.stopTransmit(self._port)):
                try:
                    stop()
                except Exception:   # pjsua2 raises pj.Error when the media is already gone
                    pass

    def close(self) -> None:
        """Close the sound device. Touches no pjsua2 (safe on any thread, before or after
        libDestroy): the port is C++-owned and its connections end with the call or the library."""
        self._attached, self._port, self.call_id, self._clocked = None, None, None, False
        self.ringback_active = False
        self._receivers, self._transmitters = (), ()
        self.pcm.close()
        if self.echo is not None:      # the clock thread is gone with the engine by now
            self.echo.close()


# --- pjsua2 glue --------------------------------------------------------------------------------

def _vector_bytes_slow(vec: Any) -> bytes:
    return bytes(vec)


def _vector_bytes_fast(vec: Any) -> bytes:
    """std::vector<unsigned char> contents without SWIG's per-element copy: libstdc++ lays a
    vector out as (begin, end, end_of_storage) pointers; read [begin, end) in one memcpy."""
    begin, end, _ = (ctypes.c_void_p * 3).from_address(int(vec.this))
    if not begin or not end or end <= begin:
        return b""
    return ctypes.string_at(begin, end - begin)


def _vector_fill_fast(vec: Any, data: bytes) -> bool:
    begin, end, _ = (ctypes.c_void_p * 3).from_address(int(vec.this))
    if not begin or not end or (end - begin) != len(data):
        return False
    ctypes.memmove(begin, data, len(data))
    return True


_fast_ok: bool | None = None


def fast_path_ok() -> bool:
    """Self-check of the fast path against SWIG's own conversion (once, on first use)."""
    global _fast_ok
    if _fast_ok is None:
        try:
            import pjsua2 as pj
            sample = bytes(range(256)) * 2 + bytes(range(128))
            vec = pj.ByteVector(sample)
            frame = pj.MediaFrame()
            frame.buf = vec
            ok = _vector_bytes_fast(vec) == sample == bytes(vec)
            ok = ok and _vector_bytes_fast(frame.buf) == sample
            other = bytes(reversed(sample))
            ok = ok and _vector_fill_fast(vec, other) and bytes(vec) == other
            _fast_ok = bool(ok)
        except Exception:
            _fast_ok = False
    return _fast_ok


def fast_bytes(vec: Any) -> bytes:
    return _vector_bytes_fast(vec) if fast_path_ok() else _vector_bytes_slow(vec)


_PORT_CLASS: Any = None


def _port_class() -> Any:
    """The AudioMediaPort subclass, built on first use so hw.audio imports without pjsua2."""
    global _PORT_CLASS
    if _PORT_CLASS is None:
        import pjsua2 as pj
        fast = fast_path_ok()

        class PjAudioPort(pj.AudioMediaPort):
            def __init__(self, bridge: AudioBridge) -> None:
                super().__init__()
                self.bridge = bridge
                self._out = pj.ByteVector(bytes(bridge.frame_bytes))  # reused every frame
                self.callback_errors = 0

            def onFrameRequested(self, frame: Any) -> None:
                try:
                    data = self.bridge.frame_for_call()
                    if not (fast and _vector_fill_fast(self._out, data)):
                        self._out = pj.ByteVector(data)
                    frame.type = pj.PJMEDIA_FRAME_TYPE_AUDIO
                    frame.buf = self._out
                    frame.size = len(data)
                except Exception:       # never let an exception escape into pjmedia
                    self.callback_errors += 1

            def onFrameReceived(self, frame: Any) -> None:
                # Idle (nobody transmits to the port: the bridge sends NONE frames, no call, no
                # ring-back): every tick still comes here; do nothing.
                if frame.type != pj.PJMEDIA_FRAME_TYPE_AUDIO and not self.bridge.active:
                    return
                try:
                    if frame.type == pj.PJMEDIA_FRAME_TYPE_AUDIO and frame.size:
                        data = _vector_bytes_fast(frame.buf) if fast else bytes(frame.buf)
                    else:
                        data = bytes(self.bridge.frame_bytes)
                    self.bridge.frame_from_call(data[:self.bridge.frame_bytes])
                except Exception:
                    self.callback_errors += 1

        _PORT_CLASS = PjAudioPort
    return _PORT_CLASS


# --- ALSA -----------------------------------------------------------------------------------------

@dataclass
class AlsaCounters:
    capture_overruns: int = 0     # the kernel's capture buffer overflowed before we read it
    playback_xruns: int = 0       # the kernel's playback buffer ran dry


class AlsaPcm:
    """pyalsaaudio capture + playback in PCM_NONBLOCK mode, S16_LE mono."""

    def __init__(self, capture_device: str, playback_device: str, rate: int = 16000,
                 period_ms: int = FRAME_MS, periods: int = 4) -> None:
        import alsaaudio
        self._alsa = alsaaudio
        period = rate * period_ms // 1000
        common = dict(channels=1, rate=rate, format=alsaaudio.PCM_FORMAT_S16_LE,
                      periodsize=period, periods=periods)
        self.counters = AlsaCounters()
        self._cap = self._open(alsaaudio.PCM_CAPTURE, capture_device, common)
        try:
            self._play = self._open(alsaaudio.PCM_PLAYBACK, playback_device, common)
        except AudioDeviceError:
            self._cap.close()
            raise

    def _open(self, kind: int, device: str, params: dict) -> Any:
        try:
            return self._alsa.PCM(kind, self._alsa.PCM_NONBLOCK, device=device, **params)
        except self._alsa.ALSAAudioError as e:
            raise AudioDeviceError(device, str(e)) from None

    def read(self) -> bytes:
        try:
            n, data = self._cap.read()
        except self._alsa.ALSAAudioError as e:
            raise AudioDeviceError("capture", str(e)) from None
        if n < 0:                    # -EPIPE: overrun; pyalsaaudio re-prepares the stream
            self.counters.capture_overruns += 1
            return b""
        return data if n > 0 else b""

    def write(self, data: bytes) -> int:
        try:
            if self._play.state() == self._alsa.PCM_STATE_XRUN:
                self.counters.playback_xruns += 1   # write() below re-prepares it
            frames = self._play.write(data[:len(data) - len(data) % SAMPLE_BYTES])
        except self._alsa.ALSAAudioError as e:
            raise AudioDeviceError("playback", str(e)) from None
        return max(0, frames) * SAMPLE_BYTES

    def stats(self) -> dict[str, int]:
        return {"capture_overruns": self.counters.capture_overruns,
                "playback_xruns": self.counters.playback_xruns}

    def close(self) -> None:
        for pcm in (self._cap, self._play):
            try:
                pcm.close()
            except self._alsa.ALSAAudioError:
                pass


def set_volume(card_index: int | None, control: str, percent: int, capture: bool = False) -> None:
    """Set a mixer control (e.g. "PCM", "Mic") to percent; typed error if it does not exist."""
    import alsaaudio
    try:
        mixer = alsaaudio.Mixer(control, cardindex=-1 if card_index is None else card_index)
        if capture:
            mixer.setvolume(percent, pcmtype=alsaaudio.PCM_CAPTURE)
        else:
            mixer.setvolume(percent)
        mixer.close()
    except alsaaudio.ALSAAudioError as e:
        raise AudioDeviceError(f"mixer {control}", str(e)) from None
