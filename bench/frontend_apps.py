"""The two app shapes bench/frontend.py compares, doing the same thing: a bare Falcon endpoint
(POST /vapix/call, a fixed JSON body) and a long-poll (GET /poll?wait=S answers after S seconds,
as /api/events does when nothing happens). WSGI for gthread/gevent, ASGI for uvicorn's worker."""
import asyncio
import time

import falcon
import falcon.asgi

BODY = b'{"AudioCodec": [{"Name": "PCMU", "SampleRate": 8000}, {"Name": "PCMA", "SampleRate": 8000}]}'


class Call:
    def on_post(self, req, resp):
        req.bounded_stream.read()
        resp.content_type = falcon.MEDIA_JSON
        resp.data = BODY


class Poll:
    def on_get(self, req, resp):
        time.sleep(min(float(req.get_param("wait", default="1")), 30))  # cooperative under gevent
        resp.media = {"events": []}


class AsyncCall:
    async def on_post(self, req, resp):
        await req.stream.read()
        resp.content_type = falcon.MEDIA_JSON
        resp.data = BODY


class AsyncPoll:
    async def on_get(self, req, resp):
        await asyncio.sleep(min(float(req.get_param("wait", default="1")), 30))
        resp.media = {"events": []}


wsgi_app = falcon.App()
wsgi_app.add_route("/vapix/call", Call())
wsgi_app.add_route("/poll", Poll())

asgi_app = falcon.asgi.App()
asgi_app.add_route("/vapix/call", AsyncCall())
asgi_app.add_route("/poll", AsyncPoll())
