"""Baseline for bench/api.py: a bare Falcon endpoint with no auth, no codec, no supervisor, served by
gunicorn with the same settings as the door station's API."""
import falcon

BODY = b'{"AudioCodec": [{"Name": "PCMU", "SampleRate": 8000}, {"Name": "PCMA", "SampleRate": 8000}]}'


class Bare:
    def on_post(self, req, resp):
        req.bounded_stream.read()
        resp.content_type = falcon.MEDIA_JSON
        resp.data = BODY

    on_get = on_post


app = falcon.App()
app.add_route("/vapix/call", Bare())
