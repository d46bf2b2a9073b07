"""The web page in a real headless Chromium against a real `doorstation run`: first-use password,
login (keyboard only), a viewer without write controls, the accessibility check; then with real
SIP peers: status following the call the button places to baresip, the door-code form and
`#1234#` from baresip opening the relay, the open-door button, the SIP account form registering
at kamailio, a test call and hang-up, API errors next to their fields; screenshots at phone and
desktop width."""
from __future__ import annotations

import shutil

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.select import Select

from tests.harness import ADMIN, OPERATOR, VIEWER, Station, doorstation, free_sip_port
from tests.sip_peers import baresip_factory, kamailio_factory, wait_until  # noqa: F401  (fixtures)
from tests.stack_sip import EventTail, enable_sip, hardware_toml
from tests.web_browser import (
    DESKTOP,
    PHONE,
    axe_source,
    axe_violations,
    by_id,
    chromium,
    fill,
    page_errors,
    press,
    screenshot,
    tab_to,
    text_of,
    visible,
    wait,
    wait_text,
)

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not shutil.which("chromedriver"), reason="chromium-driver is not installed")]

WRITE_CONTROLS = ("open-door", "call-now", "hang-up", "sip-form", "account-form", "test-form", "door-form",
                  "vms-form", "codecs-form", "user-admin", "user-add-form", "user-edit-form", "user-remove")


@pytest.fixture
def browser():
    driver = chromium()
    yield driver
    driver.quit()


def log_in(driver, st: Station, user: tuple[str, str]) -> None:
    driver.delete_all_cookies()
    driver.get(f"{st.url}/")
    wait(driver, lambda d: visible(d, "login"), what="the login form")
    fill(driver, "login-user", user[0])
    fill(driver, "login-password", user[1])
    by_id(driver, "login-form").submit()
    wait(driver, lambda d: visible(d, "app"), what="the logged-in page")
    wait_text(driver, "st-version", "doorstation")


def assert_accessible(driver, axe: str, where: str) -> None:
    violations = axe_violations(driver, axe)
    assert violations == [], f"{where}: {violations}"


def test_first_use_login_keyboard_viewer_and_accessibility(tmp_path, browser):
    axe = axe_source()
    with Station(tmp_path / "state", with_users=False, extra_args=["--first-use"]) as st:
        d = browser
        d.get(f"{st.url}/")
        wait(d, lambda d: visible(d, "setup"), what="the first-use form")
        assert not visible(d, "login") and not visible(d, "app")
        assert_accessible(d, axe, "first-use form")
        # the two entries differ: said next to the second; too short: the API's reason next to the first
        fill(d, "setup-password", "first-use-pass-1")
        fill(d, "setup-again", "something-else")
        by_id(d, "setup-form").submit()
        wait_text(d, "setup-again-err", "differ")
        assert by_id(d, "setup-again").get_attribute("aria-invalid") == "true"
        fill(d, "setup-password", "short")
        fill(d, "setup-again", "short")
        by_id(d, "setup-form").submit()
        wait_text(d, "setup-password-err", "8 to 128 characters")
        fill(d, "setup-password", "first-use-pass-1")
        fill(d, "setup-again", "first-use-pass-1")
        by_id(d, "setup-form").submit()
        wait(d, lambda d: visible(d, "app"), what="the page after first use")
        assert text_of(d, "who-name") == "admin (admin)"
        wait_text(d, "st-version", "doorstation")
        assert_accessible(d, axe, "status and set-up page (admin)")
        # at phone width: one column, nothing wider than the screen, still no violations
        d.set_window_size(PHONE, 900)
        wait(d, lambda d: d.execute_script("return document.documentElement.scrollWidth") <= PHONE,
             what="no horizontal scrolling at 390 px")
        assert_accessible(d, axe, "admin page at phone width")
        d.set_window_size(DESKTOP, 1000)
        assert d.execute_script("return document.documentElement.scrollWidth") <= DESKTOP
        # log out; a wrong password is said next to the password field
        by_id(d, "logout").click()
        wait(d, lambda d: visible(d, "login"), what="the login form after log-out")
        assert_accessible(d, axe, "login form")
        fill(d, "login-user", "admin")
        fill(d, "login-password", "wrong-password")
        by_id(d, "login-form").submit()
        wait_text(d, "login-password-err", "Wrong user name or password")

        # keyboard only: the skip link, then the login fields in Tab order, Enter submits
        d.get(f"{st.url}/")
        wait(d, lambda d: visible(d, "login"), what="the login form")
        tab_to(d, "login-user")
        press(d, "admin")
        press(d, Keys.TAB)
        press(d, "first-use-pass-1")
        press(d, Keys.ENTER)
        wait(d, lambda d: visible(d, "app"), what="logged in by keyboard")
        tab_to(d, "open-door")           # every control is reachable with Tab
        press(d, Keys.ENTER)             # the confirmation takes the focus; Escape cancels it
        wait(d, lambda d: visible(d, "confirm"), what="the confirmation")
        assert d.execute_script("return document.activeElement.closest('dialog') !== null")
        press(d, Keys.ESCAPE)
        wait(d, lambda d: not visible(d, "confirm"), what="the confirmation to close")
        assert d.execute_script("return document.activeElement.id") == "open-door"
        tab_to(d, "acc-user")
        tab_to(d, "logout")
        press(d, Keys.ENTER)
        wait(d, lambda d: visible(d, "login"), what="logged out by keyboard")

        # a viewer: status, events, no control that writes
        for name, password in (VIEWER, OPERATOR):
            role = "viewer" if name == VIEWER[0] else "operator"
            added = doorstation("user", "add", name, "--role", role, "--password-stdin",
                                state_dir=st.state_dir, input=password + "\n")
            assert added.returncode == 0, added.stderr
        log_in(d, st, VIEWER)
        assert text_of(d, "who-name") == "viewer (viewer)"
        for ident in WRITE_CONTROLS:
            assert not d.find_elements(By.ID, ident), f"a viewer sees #{ident}"
        assert [b.get_attribute("id") for b in d.find_elements(By.CSS_SELECTOR, "#app button")] == []
        assert_accessible(d, axe, "viewer's page")
        # an operator calls and hangs up but neither opens the door nor changes settings
        log_in(d, st, OPERATOR)
        assert d.find_elements(By.ID, "call-now") and d.find_elements(By.ID, "hang-up")
        for ident in ("open-door", "sip-form", "account-form", "door-form"):
            assert not d.find_elements(By.ID, ident), f"an operator sees #{ident}"
        assert page_errors(d) == []       # no script error, nothing the CSP had to block


def test_status_calls_door_code_open_door_and_sip_account(tmp_path, browser, baresip_factory, kamailio_factory):  # noqa: F811
    k = kamailio_factory()
    bob = baresip_factory()
    state = tmp_path / "state"
    state.mkdir()
    (state / "hardware.toml").write_text(hardware_toml(recipient=bob.aor, pulse_ms=1500))
    with Station(state) as st:
        enable_sip(st)
        d = browser
        log_in(d, st, ADMIN)
        wait_text(d, "st-relay", "locked")
        wait_text(d, "st-accounts", "peer-to-peer")
        hardware = wait_text(d, "hw-config", "DOOR_LOCK")          # what hardware.toml configured
        assert "CALL_BUTTON" in hardware and "CALL_LED" in hardware and "Microphone" in hardware
        wait_text(d, "hw-ports", "Door relay")

        # the door code, through the page's one form (event, trigger, configuration, account, relay)
        fill(d, "door-code", "12x")
        by_id(d, "door-form").submit()
        wait(d, lambda d: text_of(d, "door-code-err") != "", what="the code's error next to it")
        assert st.ok("GetDTMFEvents")["DTMFEvent"] == []            # nothing half-made is left
        fill(d, "door-code", "#1234#")
        by_id(d, "door-account").send_keys("peer")
        by_id(d, "door-form").submit()
        wait_text(d, "door-result", "#1234# on peer-to-peer opens the door")
        event_id = st.ok("GetDTMFEvents")["DTMFEvent"][0]["Id"]
        bindings = st.session().get(f"{st.url}/api/door/bindings", timeout=10).json()
        assert bindings["Effective"] == [event_id]

        # the call button rings baresip, which answers: the status follows through events
        tail = EventTail(st)
        assert doorstation("press", state_dir=st.state_dir).returncode == 0
        wait_text(d, "event-list", "Call button pressed")
        wait_text(d, "st-call", f"Active to {bob.aor}")
        call_text = wait_text(d, "st-call", ", 00:00:0")            # with its duration, ticking
        assert "Active" in call_text
        bob.wait_event("CALL_ESTABLISHED")
        screenshot(d, "desktop", DESKTOP)
        screenshot(d, "phone", PHONE, height=1500)
        d.set_window_size(DESKTOP, 1000)

        # #1234# from baresip: the relay opens (seen on the page), the log says why
        assert bob.command("sndcode", "#1234#")["ok"]
        wait_text(d, "st-relay", "open (unlocked)")
        wait_text(d, "event-list", "Door opened by a door code")
        wait_text(d, "st-relay", "locked")
        tail.wait_for(lambda e: e["topic"] == "doorstation:Relay" and e["data"].get("Cause") == "DTMF",
                      what="the relay opened by DTMF")

        # hang up from the page
        by_id(d, "hang-up").click()
        wait_text(d, "st-call", "Idle")
        bob.wait_event("CALL_CLOSED", timeout=10)

        # the open-door button asks first; Cancel opens nothing, confirming does
        by_id(d, "open-door").click()
        wait(d, lambda d: visible(d, "confirm"), what="the confirmation")
        by_id(d, "confirm-no").click()
        by_id(d, "open-door").click()
        wait(d, lambda d: visible(d, "confirm"), what="the confirmation")
        by_id(d, "confirm-yes").click()
        wait_text(d, "st-relay", "open (unlocked)")
        wait_text(d, "event-list", "Door opened by admin")
        tail.poll(1)
        opened = [e for e in tail.events if e["topic"] == "doorstation:Relay"
                  and e["data"].get("State") == "Unlocked" and e["data"].get("User") == "admin"]
        assert len(opened) == 1

        # an API error is shown next to its field: a SIP port out of range
        fill(d, "sip-port", "70000")
        by_id(d, "sip-form").submit()
        wait_text(d, "sip-port-err", "SIPPort")
        assert by_id(d, "sip-port").get_attribute("aria-invalid") == "true"

        # a SIP account at kamailio: saved through the form, its registration shown live
        fill(d, "acc-user", "door")
        fill(d, "acc-registrar", f"127.0.0.1:{k.port}")
        fill(d, "acc-password", "door-secret")
        by_id(d, "account-form").submit()
        wait_text(d, "st-accounts", f"registered at 127.0.0.1:{k.port}")
        wait_text(d, "event-list", "registered at")
        # a wrong password: the reason the registrar gave, in words
        fill(d, "acc-password", "wrong-secret")
        by_id(d, "account-form").submit()
        wait_text(d, "st-accounts", "not registered: 401 Unauthorized")

        # a test call from the form, then hang-up
        fill(d, "test-to", bob.aor)
        by_id(d, "test-form").submit()
        wait_text(d, "test-result", "Calling")
        wait_text(d, "st-call", f"to {bob.aor}")
        by_id(d, "test-hang-up").click()
        wait_text(d, "test-result", "Hung up")
        wait_text(d, "st-call", "Idle")
        assert page_errors(d) == []


def test_sip_settings_form_and_codec_order(tmp_path, browser):
    with Station(tmp_path / "state") as st:
        d = browser
        log_in(d, st, ADMIN)
        wait(d, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#codec-list li")) >= 2, what="the codecs")
        port, tls = free_sip_port(), free_sip_port()
        if not by_id(d, "sip-enabled").is_selected():
            by_id(d, "sip-enabled").click()
        fill(d, "sip-port", str(port))
        fill(d, "sip-tls-port", str(tls))
        by_id(d, "sip-form").submit()
        wait_text(d, "notice", "SIP settings saved")
        config = st.ok("GetSIPConfiguration")["SIPConfiguration"]
        assert config["SIPEnabled"] is True and config["SIPPort"] == port and config["SIPTLSPort"] == tls
        wait_text(d, "st-sip", "in force")
        # move the second codec to the top with its button, save, read back through the API
        first, second = [li.get_attribute("data-name") for li in d.find_elements(By.CSS_SELECTOR, "#codec-list li")][:2]
        d.find_elements(By.CSS_SELECTOR, "#codec-list li")[1].find_element(By.XPATH, ".//button[1]").click()
        by_id(d, "codecs-form").submit()
        wait_text(d, "notice", "Codec order saved")
        names = [c["Name"] for c in st.ok("GetAudioCodecs")["AudioCodec"]]
        assert names[:2] == [second, first]
        assert page_errors(d) == []


def pwdgrp_groups(st: Station) -> dict[str, list[str]]:
    r = st.session(ADMIN).post(f"{st.url}/axis-cgi/pwdgrp.cgi", data={"action": "get"}, timeout=30)
    assert r.status_code == 200, r.text
    return {k: [n for n in v.strip('"').split(",") if n]
            for k, v in (line.split("=", 1) for line in r.text.splitlines())}


def user_rows(driver) -> list[tuple[str, str]]:
    return [tuple(td.text for td in tr.find_elements(By.TAG_NAME, "td"))
            for tr in driver.find_elements(By.CSS_SELECTOR, "#user-rows tr")]


def test_users_and_roles_through_pwdgrp(tmp_path, browser):
    """An admin adds a viewer (errors next to their fields), the viewer logs in and sees no write
    controls; removing or demoting the last admin is refused with the reason shown; a role change
    and a removal (after its confirmation) reach the store through pwdgrp.cgi."""
    axe = axe_source()
    with Station(tmp_path / "state") as st:
        d = browser
        log_in(d, st, ADMIN)
        wait(d, lambda d: ("viewer", "viewer") in user_rows(d), what="the user list")
        assert ("admin", "admin") in user_rows(d) and ("oper", "operator") in user_rows(d)
        # add: passwords differ / too short / name taken / bad name, each next to its field
        fill(d, "user-add-name", "guest")
        fill(d, "user-add-password", "guest-pass-1")
        fill(d, "user-add-again", "guest-pass-2")
        by_id(d, "user-add-form").submit()
        wait_text(d, "user-add-again-err", "differ")
        fill(d, "user-add-password", "short")
        fill(d, "user-add-again", "short")
        by_id(d, "user-add-form").submit()
        wait_text(d, "user-add-password-err", "8 to 128 characters")
        assert by_id(d, "user-add-password").get_attribute("aria-invalid") == "true"
        for name, words in (("viewer", "already exists"), ("no spaces", "user name")):
            fill(d, "user-add-name", name)
            fill(d, "user-add-password", "guest-pass-1")
            fill(d, "user-add-again", "guest-pass-1")
            by_id(d, "user-add-form").submit()
            wait_text(d, "user-add-name-err", words)
        assert_accessible(d, axe, "users section with errors shown")
        fill(d, "user-add-name", "guest")
        fill(d, "user-add-password", "guest-pass-1")
        fill(d, "user-add-again", "guest-pass-1")
        Select(by_id(d, "user-add-role")).select_by_visible_text("viewer")
        by_id(d, "user-add-form").submit()
        wait_text(d, "notice", "User guest added as viewer")
        wait(d, lambda d: ("guest", "viewer") in user_rows(d), what="guest in the list")
        assert "guest" in pwdgrp_groups(st)["viewer"] and "guest" not in pwdgrp_groups(st)["operator"]

        # the new viewer logs in: no write controls, no user management
        log_in(d, st, ("guest", "guest-pass-1"))
        assert text_of(d, "who-name") == "guest (viewer)"
        for ident in WRITE_CONTROLS:
            assert not d.find_elements(By.ID, ident), f"a viewer sees #{ident}"
        assert "role viewer" in text_of(d, "users-me")

        # the last admin can be neither removed nor demoted: the reason next to the field
        log_in(d, st, ADMIN)
        wait(d, lambda d: ("guest", "viewer") in user_rows(d), what="the user list")
        Select(by_id(d, "user-edit-name")).select_by_visible_text("admin")
        by_id(d, "user-remove").click()
        wait(d, lambda d: visible(d, "confirm-remove"), what="the removal confirmation")
        assert "admin" in text_of(d, "confirm-remove-text")
        by_id(d, "confirm-remove-yes").click()
        reason = wait_text(d, "user-edit-name-err", "last admin")
        assert "add another admin first" in reason
        Select(by_id(d, "user-edit-role")).select_by_visible_text("operator")
        by_id(d, "user-edit-form").submit()
        wait_text(d, "user-edit-role-err", "last admin")
        assert pwdgrp_groups(st)["admin"] == ["admin"]

        # a role change, then a removal: Escape cancels the confirmation, "Remove" removes
        Select(by_id(d, "user-edit-name")).select_by_visible_text("guest")
        assert Select(by_id(d, "user-edit-role")).first_selected_option.text == "viewer"
        Select(by_id(d, "user-edit-role")).select_by_visible_text("operator")
        by_id(d, "user-edit-form").submit()
        wait_text(d, "notice", "User guest changed")
        assert "guest" in pwdgrp_groups(st)["operator"]
        wait(d, lambda d: ("guest", "operator") in user_rows(d), what="guest as operator")
        by_id(d, "user-remove").click()
        wait(d, lambda d: visible(d, "confirm-remove"), what="the removal confirmation")
        press(d, Keys.ESCAPE)
        wait(d, lambda d: not visible(d, "confirm-remove"), what="the confirmation to close")
        assert "guest" in pwdgrp_groups(st)["users"]
        by_id(d, "user-remove").click()
        wait(d, lambda d: visible(d, "confirm-remove"), what="the removal confirmation")
        by_id(d, "confirm-remove-yes").click()
        wait_text(d, "notice", "User guest removed")
        assert "guest" not in pwdgrp_groups(st)["users"]
        wait(d, lambda d: all(row[0] != "guest" for row in user_rows(d)), what="guest gone from the list")
        assert page_errors(d) == []
