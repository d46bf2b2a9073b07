"""Pure logic of the WebSocket event stream: events:configure parsing and answers, content
filters, copies per matching entry, and wssession tokens (single use, expiry, bounds)."""
import json

import pytest

from daemon.api.wsevents import configure
from daemon.api.wsevents.tokens import MAX_TOKENS_PER_USER, TokenUser, WsSessionTokens
from daemon.axis_events import CHANGED, Notification

PORT1_ON = Notification("tns1:Device/tnsaxis:IO/Port", (("port", "1"),), (("state", "1"),), CHANGED, 1.0)
PORT2_ON = Notification("tns1:Device/tnsaxis:IO/Port", (("port", "2"),), (("state", "1"),), CHANGED, 1.0)


def request(filters, version="1.0", context="ctx"):
    return json.dumps({"apiVersion": version, "context": context, "method": "events:configure",
                       "params": {"eventFilterList": filters}})


def test_answer_echoes_version_and_context():
    parsed = configure.parse(request([{"topicFilter": "tns1:Device//."}], version="1.3"))
    assert json.loads(configure.answer(parsed)) == {"apiVersion": "1.3", "context": "ctx",
                                                    "method": "events:configure", "data": {}}


def test_content_filter_terms_and_copies():
    both = 'boolean(//SimpleItem[@Name="port" and @Value="1"]) and boolean(//SimpleItem[@Name="state" and @Value="1"])'
    parsed = configure.parse(request([{"contentFilter": both}, {"topicFilter": "tns1:Device/tnsaxis:IO/Port"}]))
    assert configure.copies(parsed.filters, PORT1_ON) == 2
    assert configure.copies(parsed.filters, PORT2_ON) == 1
    single = configure.ContentFilter("boolean( //SimpleItem[ @Name='port' and @Value='2' ] )")
    assert single.matches(PORT2_ON) and not single.matches(PORT1_ON)


@pytest.mark.parametrize("text", [
    "//SimpleItem[@Name='a']", "boolean(//SimpleItem[@Name='a' and @Value='1']) or boolean(//x)",
    "boolean(//SimpleItem[@Name='a' and @Value='1'])boolean(//SimpleItem[@Name='b' and @Value='1'])",
    "x" * 600])
def test_unsupported_content_filters_are_refused(text):
    with pytest.raises(ValueError):
        configure.ContentFilter(text)


def test_errors_carry_method_and_context():
    with pytest.raises(configure.ConfigureError) as e:
        configure.parse(json.dumps({"apiVersion": "1.0", "context": "z", "method": "events:other"}))
    doc = json.loads(configure.error_answer(e.value))
    assert doc == {"apiVersion": "1.0", "context": "z", "method": "events:other",
                   "error": {"code": 2102, "message": "Method not supported: events:other"}}


def test_tokens_are_single_use_and_expire():
    now = [100.0]
    tokens = WsSessionTokens(clock=lambda: now[0])
    a = tokens.issue(TokenUser("ann", "viewer"))
    assert a is not None and len(a) == 19 and a.isdigit()
    assert tokens.redeem(a) == TokenUser("ann", "viewer")
    assert tokens.redeem(a) is None
    b = tokens.issue(TokenUser("ann", "viewer"))
    now[0] += 15.01
    assert tokens.redeem(b) is None and len(tokens) == 0


def test_tokens_per_user_are_bounded_and_pruned():
    now = [0.0]
    tokens = WsSessionTokens(clock=lambda: now[0])
    for _ in range(MAX_TOKENS_PER_USER):
        assert tokens.issue(TokenUser("ann", "admin"))
    assert tokens.issue(TokenUser("ann", "admin")) is None
    assert tokens.issue(TokenUser("bob", "admin")) is not None
    now[0] += 16
    assert tokens.issue(TokenUser("ann", "admin")) is not None      # the expired ones are gone
