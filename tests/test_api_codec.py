"""The simplified key-value format: the spec's examples both ways, limits, round trip, fuzz."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daemon.api import codec
from daemon.faults import VapixFault


def decode_query(query: str) -> dict:
    return codec.decode(codec.parse_query(query))


def parse_response(text: str) -> dict:
    """Read a simple-format answer the way a client does: lines of key=URL-encoded value."""
    return codec.decode(codec.parse_query("&".join(text.splitlines())))


def assert_malformed(query: str) -> None:
    with pytest.raises(VapixFault) as info:
        decode_query(query)
    assert info.value.subcode == "ter:MalformedRequest"
    assert info.value.http_status == 400


# ------------------------------------------------------------------------------------- decoding

def test_spec_add_peer_to_peer_account_request():
    params = decode_query("format=simple&action=axcall:SetSIPAccount&SIPAccount_UserId=peer-to-peer")
    assert params == {"SIPAccount": {"UserId": "peer-to-peer"}}


def test_spec_call_and_status_requests():
    assert decode_query("format=simple&action=axcall:Call&To=sip:6002@example.axis.com") == {
        "To": "sip:6002@example.axis.com"}
    assert decode_query("format=simple&action=axcall:Call&To=VMS_CALL") == {"To": "VMS_CALL"}
    assert decode_query("format=simple&action=axcall:GetCallStatus"
                        "&CallId=Out-0-1401964712.117694-gIRuBDTzh7BDKXw-5mDFKF") == {
        "CallId": "Out-0-1401964712.117694-gIRuBDTzh7BDKXw-5mDFKF"}


def test_list_indices_any_order():
    assert decode_query("SIPAccountId_1=b&SIPAccountId_0=a") == {"SIPAccountId": ["a", "b"]}
    assert decode_query("SIPAccount_0_UserId=x") == {"SIPAccount": [{"UserId": "x"}]}
    assert decode_query("SIPAccount_1_SIPProxy_0_Server=s&SIPAccount_0_UserId=u&SIPAccount_1_UserId=v") == {
        "SIPAccount": [{"UserId": "u"}, {"SIPProxy": [{"Server": "s"}], "UserId": "v"}]}


def test_scalar_values():
    assert decode_query("A=true&B=false&C=null&D=5060&E=&F=%22true%22&G=%22null%22&H=%22%22") == {
        "A": True, "B": False, "C": None, "D": "5060", "E": "", "F": "true", "G": "null", "H": ""}


def test_spec_string_example_is_url_decoded_once():
    # the spec's `"a+string%0A"`: quotes stripped, + is a space, %0A a newline
    assert decode_query("S=%22a+string%0A%22") == {"S": "a string\n"}
    assert decode_query('S="a+string%0A"') == {"S": "a string\n"}
    # %2541 is the text %41, not A: the value is decoded exactly once
    assert decode_query("S=%2541") == {"S": "%41"}
    assert codec.decode([("S", "%41")]) == {"S": "%41"}


def test_lone_quote_is_kept():
    assert decode_query("S=%22") == {"S": '"'}
    assert decode_query("S=%22abc") == {"S": '"abc'}


def test_format_and_action_are_not_parameters():
    assert decode_query("format=simple&action=axcall:GetSIPConfiguration") == {}


def test_jquery_cache_buster_is_ignored():
    assert decode_query("_=1700000000&A=1") == {"A": "1"}


def test_utf8_values():
    assert decode_query("CallerId=%C3%85ngstr%C3%B6m") == {"CallerId": "Ångström"}


@pytest.mark.parametrize("query", [
    "A_1=x",                      # not dense
    "A_0=x&A_2=y",                # hole
    "A=1&A_B=2",                  # scalar and struct
    "A_B=2&A=1",                  # same, other order
    "A_0=1&A_B=2",                # list and struct
    "A=1&A=2",                    # repeated
    "0=x",                        # starts with an index
    "A__B=1",                     # empty segment
    "_A=1",
    "A_=1",
    "A_01=1",                     # non-canonical index
    "A_1000=1",                   # index beyond the bound
    "A B=1",                      # not a name
    "_".join("A" * 13) + "=1",   # too deep
    "K" * 300 + "=1",             # key too long
])
def test_malformed_keys(query):
    assert_malformed(query)


def test_bad_utf8_is_malformed():
    assert_malformed("A=%FF%FE")
    with pytest.raises(VapixFault):
        codec.parse_query(b"A=\xff")


def test_too_many_pairs_is_malformed():
    assert_malformed("&".join(f"A{i}=1" for i in range(codec.MAX_PAIRS + 1)))
    assert len(decode_query("&".join(f"A{i}=1" for i in range(codec.MAX_PAIRS)))) == codec.MAX_PAIRS


def test_wsgi_latin1_query_is_read_as_utf8_bytes():
    # PEP 3333: raw non-ASCII bytes in QUERY_STRING arrive as latin-1 text
    raw = "CallerId=Å".encode("utf-8").decode("latin-1")
    assert decode_query(raw) == {"CallerId": "Å"}


# ------------------------------------------------------------------------------------- encoding

def test_spec_account_status_response():
    text = codec.encode({"SIPAccountStatus": {
        "SIPAccountId": "sip_account_0", "SIPURI": "sip:192.168.0.90:5060", "RegURI": None,
        "Status": 0, "StatusText": "Does not register"}})
    assert text.splitlines() == [
        'SIPAccountStatus_SIPAccountId="sip_account_0"',
        'SIPAccountStatus_SIPURI="sip:192.168.0.90:5060"',
        "SIPAccountStatus_RegURI=null",
        "SIPAccountStatus_Status=0",
        'SIPAccountStatus_StatusText="Does+not+register"',
    ]


def test_spec_sip_configuration_response_omits_empty_lists():
    text = codec.encode({"SIPConfiguration": {
        "SIPEnabled": False, "TURNServers": [], "STUNServers": [], "SIPPort": 5060,
        "SIPTLSPort": 5061, "AllowedUsers": []}})
    assert text.splitlines() == ["SIPConfiguration_SIPEnabled=false", "SIPConfiguration_SIPPort=5060",
                                 "SIPConfiguration_SIPTLSPort=5061"]


def test_spec_accounts_list_response():
    text = codec.encode({"SIPAccount": [
        {"Id": "sip_account_0", "Username": "local_account_ipv4_udp", "Password": None, "IsDefault": False},
        {"Id": "sip_account_3", "PublicDomain": "[fd12:3456:789a:1::90]", "PrioritizeIPv6": True,
         "CallerId": "Entrance Door (Axis)"}]})
    assert text.splitlines() == [
        'SIPAccount_0_Id="sip_account_0"',
        'SIPAccount_0_Username="local_account_ipv4_udp"',
        "SIPAccount_0_Password=null",
        "SIPAccount_0_IsDefault=false",
        'SIPAccount_1_Id="sip_account_3"',
        'SIPAccount_1_PublicDomain="[fd12:3456:789a:1::90]"',
        "SIPAccount_1_PrioritizeIPv6=true",
        'SIPAccount_1_CallerId="Entrance+Door+(Axis)"',
    ]


def test_call_id_stays_readable():
    assert codec.encode({"CallId": "Out-0-1401964712.117694-gIRuBDTzh7BDKXw-5mDFKF"}) == (
        'CallId="Out-0-1401964712.117694-gIRuBDTzh7BDKXw-5mDFKF"\n')


def test_special_characters_are_escaped():
    line = codec.encode({"S": 'a"b&c=d%+#\n'}).rstrip("\n")
    assert line == 'S="a%22b%26c%3Dd%25%2B%23%0A"'
    assert parse_response(line) == {"S": 'a"b&c=d%+#\n'}


def test_scalars():
    assert codec.encode({"A": True, "B": None, "C": -3, "D": 2.5, "E": 1e20, "F": "", "G": ["x", 1]}) == (
        'A=true\nB=null\nC=-3\nD=2.5\nE=1e20\nF=""\nG_0="x"\nG_1=1\n')


def test_empty_response_is_empty_text():
    assert codec.encode({}) == ""


def test_spec_fault_simple_form():
    fault = VapixFault("env:Receiver", "ter:Action", "axast:DeviceNotCalibrated",
                       "The Auto Speaker Test cannot be done without prior calibration.")
    assert codec.encode_fault(fault).splitlines() == [
        'Fault="env:Receiver"',
        'FaultCode="ter:Action"',
        'FaultSubCode="axast:DeviceNotCalibrated"',
        'FaultReason="The+Auto+Speaker+Test+cannot+be+done+without+prior+calibration."',
        "FaultMsg=null",
    ]


# ----------------------------------------------------------------------------------- round trip

names = st.from_regex(r"[A-Z][A-Za-z0-9]{0,11}", fullmatch=True)
scalars = st.one_of(st.booleans(), st.none(), st.integers(-10**12, 10**12),
                    st.floats(allow_nan=False, allow_infinity=False),
                    st.text(st.characters(exclude_categories=("Cs",)), max_size=30))


def _containers(children):
    # VAPIX responses: lists of scalars or of non-empty structures, structures of either
    struct = st.dictionaries(names, children, min_size=1, max_size=4)
    return st.one_of(struct,
                     st.lists(scalars, min_size=1, max_size=3),
                     st.lists(st.dictionaries(names, scalars, min_size=1, max_size=3), min_size=1, max_size=3))


# three container levels below the top: at most 1 + 2 * 3 + 1 key segments, within codec.MAX_DEPTH
level1 = st.one_of(scalars, _containers(scalars))
level2 = st.one_of(scalars, _containers(level1))
values = st.one_of(scalars, _containers(level2), st.just([]))  # empty lists produce no line
responses = st.dictionaries(names, values, max_size=5)


def expected_after_round_trip(value):
    """What survives: numbers come back as their text, empty lists/dicts vanish."""
    if isinstance(value, dict):
        out = {k: expected_after_round_trip(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v != {} and v != []}
    if isinstance(value, list):
        return [expected_after_round_trip(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    return codec.encode_scalar(value)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(responses)
def test_round_trip(response):
    assert parse_response(codec.encode(response)) == expected_after_round_trip(response)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_float_text_parses_back(value):
    text = codec.encode_scalar(value)
    assert "+" not in text
    assert float(text) == value


# ----------------------------------------------------------------------------------------- fuzz

query_alphabet = st.sampled_from(list("Aa0_1=&%\"+;:.-") + ["%FF", "%22", "true", "null", "SIPAccount"])


@settings(max_examples=400)
@given(st.one_of(st.text(max_size=80), st.binary(max_size=80),
                 st.lists(query_alphabet, max_size=40).map("".join)))
def test_fuzz_query_only_raises_faults(query):
    try:
        params = decode_query(query)
    except VapixFault as fault:
        assert fault.subcode == "ter:MalformedRequest"
    else:
        assert isinstance(params, dict)
