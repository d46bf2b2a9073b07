"""The RTSP event stream, as its own process (`python -m daemon.rtsp`, started by
`doorstation run --rtsp HOST:PORT` or systemd/doorstation-rtsp.service).

A crash here never touches the supervisor (which keeps the door safe): this process is only a
client of the supervisor's control socket, like the API. See docs/events.md.
"""
