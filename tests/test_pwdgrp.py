"""/axis-cgi/pwdgrp.cgi (VAPIX user management) against a real `doorstation run`, with requests'
Digest auth: list, add, update (role, password), remove; the store's rules through it (last admin,
bounds, duplicates); the HTTP status and text of each refusal; a changed or removed user's
credentials stop working. PyPI `axis` v60 drives the same CGI in tests/test_axis_client.py."""
import time

import pytest
import requests

from tests.harness import ADMIN, OPERATOR, VIEWER, Station

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def station(tmp_path_factory):
    state = tmp_path_factory.mktemp("pwdgrp") / "state"
    st = Station(state).start()
    yield st
    st.stop()


def pwdgrp(station: Station, who=ADMIN, method="post", **fields) -> requests.Response:
    s = station.session(who)
    url = f"{station.url}/axis-cgi/pwdgrp.cgi"
    if method == "get":
        return s.get(url, params=fields, timeout=30)
    return s.post(url, data=fields, timeout=30)


def groups(station: Station) -> dict[str, list[str]]:
    r = pwdgrp(station, action="get")
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/plain")
    out = {}
    for line in r.text.splitlines():
        key, value = line.split("=", 1)
        assert value.startswith('"') and value.endswith('"'), line
        out[key] = [n for n in value.strip('"').split(",") if n]
    return out


def wait_until(check, seconds=10.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return check()


def test_get_lists_users_per_group_cumulatively(station):
    g = groups(station)
    assert g["admin"] == ["admin"]
    assert sorted(g["operator"]) == ["admin", "oper"]
    assert sorted(g["viewer"]) == sorted(g["users"]) == sorted(g["digusers"]) == ["admin", "oper", "viewer"]
    assert g["ptz"] == []


def test_add_update_remove_and_the_credentials_follow(station):
    r = pwdgrp(station, action="add", user="nina", pwd="nina-secret-1", grp="users", sgrp="viewer",
               comment="front desk")
    assert (r.status_code, r.text) == (200, "Created account nina.\r\n")
    nina = ("nina", "nina-secret-1")
    assert "nina" in groups(station)["viewer"] and "nina" not in groups(station)["operator"]
    assert station.session(nina).get(f"{station.url}/axis-cgi/usergroup.cgi", timeout=30).text.split() == \
        ["nina", "viewer"]
    # role change keeps the password
    r = pwdgrp(station, action="update", user="nina", sgrp="viewer:operator:ptz")
    assert (r.status_code, r.text) == (200, "Modified account nina.\r\n")
    assert "nina" in groups(station)["operator"]
    assert wait_until(lambda: station.session(nina).get(f"{station.url}/axis-cgi/usergroup.cgi", timeout=30)
                      .text.split() == ["nina", "operator", "viewer"])
    # password change: the old one stops working (the API caches a user for at most 2 s)
    assert pwdgrp(station, action="update", user="nina", pwd="nina-secret-2").status_code == 200
    assert wait_until(lambda: station.session(nina).get(f"{station.url}/axis-cgi/usergroup.cgi",
                                                        timeout=30).status_code == 401)
    nina = ("nina", "nina-secret-2")
    assert station.session(nina).get(f"{station.url}/axis-cgi/usergroup.cgi", timeout=30).status_code == 200
    # GET works as on Axis devices
    r = pwdgrp(station, method="get", action="remove", user="nina")
    assert (r.status_code, r.text) == (200, "Removed account nina.\r\n")
    assert "nina" not in groups(station)["users"]
    assert wait_until(lambda: station.session(nina).get(f"{station.url}/axis-cgi/usergroup.cgi",
                                                        timeout=30).status_code == 401)


def test_add_an_admin_then_the_first_admin_may_go(station):
    r = pwdgrp(station, action="add", user="boss", pwd="boss-secret-1", sgrp="viewer:operator:admin")
    assert r.status_code == 200
    boss = ("boss", "boss-secret-1")
    assert sorted(groups(station)["admin"]) == ["admin", "boss"]
    r = pwdgrp(station, boss, action="update", user="boss", sgrp="viewer")   # demote self: admin remains
    assert r.status_code == 200
    assert pwdgrp(station, action="remove", user="boss").status_code == 200


@pytest.mark.parametrize("fields, status, words", [
    ({"action": "remove", "user": "admin"}, 409, "last admin"),
    ({"action": "update", "user": "admin", "sgrp": "viewer:operator"}, 409, "last admin"),
    ({"action": "add", "user": "viewer", "pwd": "another-pass", "sgrp": "viewer"}, 409, "already exists"),
    ({"action": "update", "user": "ghost", "sgrp": "viewer"}, 404, "no user"),
    ({"action": "remove", "user": "ghost"}, 404, "no user"),
    ({"action": "add", "user": "bad name", "pwd": "long-enough", "sgrp": "viewer"}, 400, "user name"),
    ({"action": "add", "user": "x" * 65, "pwd": "long-enough", "sgrp": "viewer"}, 400, "user name"),
    ({"action": "add", "user": "shorty", "pwd": "short", "sgrp": "viewer"}, 400, "password"),
    ({"action": "add", "user": "longy", "pwd": "p" * 129, "sgrp": "viewer"}, 400, "password"),
    ({"action": "add", "user": "groupy", "pwd": "long-enough", "sgrp": "viewer:root"}, 400, "sgrp"),
    ({"action": "add", "user": "groupy", "pwd": "long-enough", "sgrp": "ptz"}, 400, "sgrp"),
    ({"action": "add", "user": "groupy", "pwd": "long-enough", "grp": "root", "sgrp": "viewer"}, 400, "grp"),
    ({"action": "add", "user": "groupy", "pwd": "long-enough"}, 400, "sgrp"),
    ({"action": "update", "user": "viewer"}, 400, "pwd or sgrp"),
    ({"action": "rename", "user": "viewer"}, 400, "action"),
    ({"action": "remove"}, 400, "user is required"),
])
def test_refusals_are_text_with_a_status_and_change_nothing(station, fields, status, words):
    before = groups(station)
    r = pwdgrp(station, **fields)
    assert r.status_code == status, r.text
    assert r.headers["Content-Type"].startswith("text/plain")
    assert r.text.startswith("# Error: ") and words in r.text, r.text
    assert groups(station) == before


def test_only_admins_may_use_it_and_input_is_bounded(station):
    for user in (VIEWER, OPERATOR):
        r = pwdgrp(station, user, action="get")
        assert r.status_code == 403 and r.text.startswith("# Error: "), r.text
        r = pwdgrp(station, user, action="add", user="sneaky", pwd="sneaky-pass", sgrp="viewer:operator:admin")
        assert r.status_code == 403
    assert "sneaky" not in groups(station)["users"]
    assert requests.post(f"{station.url}/axis-cgi/pwdgrp.cgi", data={"action": "get"}, timeout=30).status_code == 401
    r = pwdgrp(station, action="add", user="big", pwd="p" * 3000, sgrp="viewer")
    assert r.status_code == 413 and "big" not in groups(station)["users"]
    r = pwdgrp(station, **{f"f{i}": "1" for i in range(20)}, action="get")
    assert r.status_code == 400 and "too many" in r.text
    r = station.session(ADMIN).post(f"{station.url}/axis-cgi/pwdgrp.cgi",
                                    data="action=remove&user=viewer&user=admin", timeout=30,
                                    headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 400 and "once" in r.text


def test_listed_in_api_discovery(station):
    r = station.session(VIEWER).post(f"{station.url}/axis-cgi/apidiscovery.cgi",
                                     json={"apiVersion": "1.0", "method": "getApiList"}, timeout=30)
    ids = {a["id"]: a["version"] for a in r.json()["data"]["apiList"]}
    assert ids["user-management"] == "1.0"
