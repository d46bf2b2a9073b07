"""Host side of the VM lane: boot scripts/vmlane, run tests/vm inside, check the guest's results.

Skips (with the script's reason) only where the lane cannot run: exit code 77 from scripts/vmlane.
"""
import json
import os
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SKIP_CODE = 77
# The whole guest suite (boot, tests/vm incl. the end-to-end call and the echo path's recordings,
# power-off) took ~15 min under TCG here with the arm64 lane's VM on the same two cores (three
# attempts per delay then; two now); the VM is killed (rc 98, no junit.xml) if it runs past this.
GUEST_TIMEOUT_S = 1200


@pytest.fixture(scope="module")
def guest_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("vmlane-out")
    env = dict(os.environ, DOORSTATION_VMLANE_OUT=str(out), VMLANE_TIMEOUT=str(GUEST_TIMEOUT_S))
    # + time for a first `scripts/vmlane setup` (~20 s to a few minutes, network-bound)
    proc = subprocess.run([str(REPO / "scripts" / "vmlane"), "run", "sh tests/vm/guest.sh"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=GUEST_TIMEOUT_S + 600)
    if proc.returncode == SKIP_CODE:
        pytest.skip(f"VM lane cannot run here: {proc.stderr.strip().splitlines()[-1]}")
    log = (out / "guest.log").read_text() if (out / "guest.log").exists() else "<no guest.log>"
    return proc, out, log


def test_guest_pytest_passed(guest_run):
    proc, out, log = guest_run
    junit = out / "junit.xml"
    assert junit.exists(), \
        f"no junit.xml from the guest (rc={proc.returncode})\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}"
    suite = ET.parse(junit).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    counts = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
    failed = [c.get("name") for c in suite.iter("testcase")
              if c.find("failure") is not None or c.find("error") is not None]
    assert counts["failures"] == counts["errors"] == 0, f"guest failures: {failed}\n{log[-6000:]}"
    assert counts["tests"] - counts["skipped"] >= 10, f"too few guest tests ran: {counts}\n{log[-3000:]}"
    assert proc.returncode == 0, log[-3000:]


def test_guest_ran_the_gpio_contract_on_real_gpiod(guest_run):
    _, out, _ = guest_run
    names = [c.get("classname", "") + "::" + c.get("name", "")
             for c in ET.parse(out / "junit.xml").getroot().iter("testcase")
             if c.find("skipped") is None]
    assert any("test_gpio_contract" in n and "press_and_release" in n for n in names), names


def _ran(out: Path) -> dict[str, str]:
    """classname::name -> "passed" | "failed" | "skipped" for every guest test case."""
    result = {}
    for c in ET.parse(out / "junit.xml").getroot().iter("testcase"):
        outcome = ("failed" if c.find("failure") is not None or c.find("error") is not None
                   else "skipped" if c.find("skipped") is not None else "passed")
        result[c.get("classname", "") + "::" + c.get("name", "")] = outcome
    return result


def test_guest_ran_the_end_to_end_call(guest_run):
    """The whole station (doorstation run on gpio-sim + snd-aloop, baresip echo peer) really ran."""
    _, out, log = guest_run
    e2e = {n: o for n, o in _ran(out).items() if "test_end_to_end" in n}
    assert e2e and set(e2e.values()) == {"passed"}, f"{e2e}\n{log[-3000:]}"
    figures = json.loads((out / "e2e.json").read_text())
    assert figures["echo"] and figures["ringback"], figures


def test_guest_ran_the_door_guard_on_gpiosim(guest_run):
    """The relay re-locked on time on real kernel GPIO under load (tests/vm/test_door_guard_gpiosim.py)."""
    _, out, log = guest_run
    runs = {n: o for n, o in _ran(out).items() if "test_door_guard_gpiosim" in n}
    assert len(runs) == 3 and set(runs.values()) == {"passed"}, f"{runs}\n{log[-3000:]}"


def test_guest_echo_path_meets_the_bar(guest_run):
    """Issue 12: ERLE >= 25 dB after convergence on the VM lane's snd-aloop echo path, the near end
    kept in double talk (taken as losing less than 10 dB of it), at a 20 and a 150 ms room delay.
    The guest recorded the frames with the canceller off (tests/vm/test_echo_path.py, 2 attempts
    per delay); here the hub's canceller, with its default settings, runs on them as the hub pairs
    them and the figures are computed. Under emulation a stall now and then moves the echo path
    (counted per attempt: "disruptions"), so each delay must meet the bar in one of its attempts."""
    from hw.echo import AecConfig
    from tests.echo_figures import figures
    from tests.vm.echo_run import approx_lag, output_8k, replay
    _, out, log = guest_run
    runs = {n: o for n, o in _ran(out).items() if "test_echo_path" in n}
    assert len(runs) == 2 and set(runs.values()) == {"passed"}, f"{runs}\n{log[-3000:]}"
    seen: dict[str, list] = {}
    for run_json in sorted((out / "echo-path").glob("off-*/run.json")):
        d = run_json.parent
        run = json.loads(run_json.read_text())
        f = figures(d, output_8k(d, run["rate"], replay(d, run["rate"], AecConfig())), approx_lag(run))
        figs = {k: f.get(k) for k in ("erle_db", "convergence_s", "near_solo_db", "near_double_talk_db")}
        print(d.name, figs, "disruptions:", run["disruptions"]["total"])
        ok = (f["convergence_s"] is not None and (f["erle_db"] or 0) >= 25
              and (f["near_double_talk_db"] or -99) >= -10)
        seen.setdefault(str(run["delay_ms"]), []).append((ok, d.name, figs, run["disruptions"]))
    assert set(seen) == {"20", "150"}, seen
    for delay, attempts in seen.items():
        assert any(ok for ok, *_ in attempts), f"{delay} ms: no attempt met the bar: {attempts}"
