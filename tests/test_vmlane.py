"""Host side of the VM lane: boot scripts/vmlane, run tests/vm inside, check the guest's results.

Skips (with the script's reason) only where the lane cannot run: exit code 77 from scripts/vmlane.
"""
import os
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SKIP_CODE = 77


@pytest.fixture(scope="module")
def guest_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("vmlane-out")
    env = dict(os.environ, DOORSTATION_VMLANE_OUT=str(out))
    proc = subprocess.run([str(REPO / "scripts" / "vmlane"), "run", "sh tests/vm/guest.sh"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=1200)
    if proc.returncode == SKIP_CODE:
        pytest.skip(f"VM lane cannot run here: {proc.stderr.strip().splitlines()[-1]}")
    log = (out / "guest.log").read_text() if (out / "guest.log").exists() else "<no guest.log>"
    return proc, out, log


def test_guest_pytest_passed(guest_run):
    proc, out, log = guest_run
    junit = out / "junit.xml"
    assert junit.exists(), f"no junit.xml from the guest (rc={proc.returncode})\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}"
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
