"""Unparsable SIP packets in the station's log (issue 9: pjsip quoted them verbatim, so a peer could
forge whole log lines with CR/LF and fill the log with 60 KB packets): escaped onto one line,
truncated, rate-limited with a count of what was suppressed.

Unit tests of daemon.sip.logguard and EngineLogWriter, then raw UDP garbage sent with a socket to a
real `doorstation run` with SIP on, reading its log."""
from __future__ import annotations

import logging
import re
import socket
import time

import pytest

from daemon.sip import logguard
from tests.stack_sip import enable_sip, start_station


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


# -- unit ------------------------------------------------------------------------------------------

def test_escape_keeps_one_printable_line():
    assert logguard.escape("a\r\nVia: evil\tx\\y") == "a\\r\\nVia: evil\\tx\\\\y"
    assert logguard.escape("nul\x00 del\x7f c1\x85 ls\u2028 lone\udc80") == \
        "nul\\x00 del\\x7f c1\\x85 ls\\u2028 lone\\udc80"
    assert logguard.escape("h\u00e9llo \u4e16\u754c") == "h\u00e9llo \u4e16\u754c"   # printable text stays


def test_escape_truncates_and_says_how_long_the_original_was():
    out = logguard.escape("X" * 60000)
    assert out == "X" * 200 + "... (60000 chars)"
    out = logguard.escape("\n" * 500)
    assert out == "\\n" * 100 + "... (500 chars)" and len(out) < 220


def test_token_bucket_burst_then_rate_and_suppressed_count():
    clock = FakeClock()
    bucket = logguard.TokenBucket(rate=2.0, burst=5, clock=clock)
    assert [bucket.admit() for _ in range(8)] == [True] * 5 + [False] * 3
    assert bucket.take_suppressed() == 3 and bucket.take_suppressed() == 0
    clock.now += 1.0   # two tokens back
    assert [bucket.admit() for _ in range(3)] == [True, True, False]
    clock.now += 3600  # never more than the burst
    assert sum(bucket.admit() for _ in range(10)) == 5


def test_engine_log_writer_escapes_limits_and_reports_suppressed(caplog):
    pytest.importorskip("pjsua2")
    from daemon.sip.callbacks import EngineLogWriter
    clock = FakeClock()
    log = logging.getLogger("test.sip.guard")
    writer = EngineLogWriter(log, logguard.TokenBucket(rate=1.0, burst=3, clock=clock))
    caplog.set_level(logging.DEBUG, logger="test.sip.guard")
    forged = "Dropping packet: INVITE\r\n2026-11-30 supervisor ERROR doorstation: forged\r\n" + "A" * 5000
    for _ in range(10):
        writer.emit(1, forged)
    writer.emit(4, "debug\nline")          # debug: escaped, never rate-limited
    clock.now += 1.0
    writer.emit(2, "after the pause")
    messages = [(r.levelno, r.getMessage()) for r in caplog.records]
    errors = [m for lvl, m in messages if lvl == logging.ERROR]
    assert len(errors) == 3
    assert all("\n" not in m and "\r" not in m and len(m) < 240 for _, m in messages)
    assert errors[0].startswith("pjsip: Dropping packet: INVITE\\r\\n2026-11-30 supervisor ERROR")
    assert (logging.DEBUG, "pjsip: debug\\nline") in messages
    assert messages[-2:] == [(logging.WARNING, "pjsip: 7 error/warning lines suppressed (rate limit)"),
                             (logging.WARNING, "pjsip: after the pause")]


# -- the real station ---------------------------------------------------------------------------------

FORGED = b"2026-11-30 23:00:00,000 supervisor ERROR doorstation: FORGED-LINE"


def pjsip_lines(lines: list[str]) -> list[str]:
    return [line for line in lines if "pjsip:" in line]


@pytest.mark.integration
def test_raw_udp_garbage_is_logged_escaped_truncated_and_rate_limited(tmp_path):
    st = start_station(tmp_path / "state")
    try:
        port = enable_sip(st)
        time.sleep(0.3)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        target = ("127.0.0.1", port)
        start = len(st.output)
        # a packet that would forge a log line, and a 60 KB one
        sock.sendto(b"INVITE sip:door@127.0.0.1 SIP/2.0\r\nVia: broken\r\n" + FORGED + b"\r\n\r\n", target)
        sock.sendto(b"OPTIONS sip:door@127.0.0.1 SIP/2.0\r\n" + b"X" * 60000, target)
        deadline = time.monotonic() + 10
        while len(pjsip_lines(st.output[start:])) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        first = pjsip_lines(st.output[start:])
        assert len(first) >= 2, "".join(st.output[start:])

        # a flood: far more than the burst within a second or two
        flood_start = time.monotonic()
        for i in range(400):
            sock.sendto(b"BYE sip:x SIP/2.0\r\nVia: " + str(i).encode() + b"\r\n" + FORGED + b"\r\n\r\n", target)
        flood_seconds = time.monotonic() - flood_start
        time.sleep(1.5)
        sock.sendto(b"garbage after the flood\r\nVia: x\r\n\r\n", target)   # the next admitted line reports
        deadline = time.monotonic() + 10
        while not any("suppressed (rate limit)" in line for line in st.output[start:]) and time.monotonic() < deadline:
            time.sleep(0.05)
        sock.close()

        lines = st.output[start:]
        logged = pjsip_lines(lines)
        assert not any(line.startswith(FORGED.decode()) for line in lines), "a peer forged a log line"
        assert all(len(line) < 400 for line in logged), max(logged, key=len)
        assert any("\\r\\n" in line or "..." in line for line in logged)
        # the bucket: BURST at once, RATE per second after; the 400 packets did not make 400 lines
        allowed = logguard.BURST + logguard.RATE * (flood_seconds + 1.5 + 2) + 2
        assert len(logged) <= allowed + 2, (len(logged), allowed)
        suppressed = [int(m.group(1)) for line in lines
                      if (m := re.search(r"pjsip: (\d+) error/warning lines suppressed", line))]
        # (the kernel may drop some of 400 back-to-back datagrams: not every one reaches pjsip)
        assert suppressed and sum(suppressed) >= 100, suppressed
        print(f"400 garbage packets in {flood_seconds:.3f} s -> {len(logged)} pjsip lines, "
              f"{sum(suppressed)} reported suppressed")
        # the station still answers its API
        assert st.ok("GetSIPConfiguration")["SIPConfiguration"]["SIPEnabled"] is True
    finally:
        st.stop()
