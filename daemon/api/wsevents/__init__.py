"""Axis event streaming over WebSocket: `ws(s)://HOST/vapix/ws-data-stream?sources=events`.

    configure.py  the client's `events:configure` (topic and content filters), pure
    tokens.py     `/axis-cgi/wssession.cgi` tokens and the middleware that accepts them
    hub.py        one follower of the supervisor's event log per API process, fan-out to streams
    stream.py     the WebSocket endpoint itself (wsproto on the gevent worker's socket)

What it answers and why: docs/events.md.
"""
