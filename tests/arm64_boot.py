"""Boot the built Raspberry Pi image on an emulated arm64 machine and check it from outside; run by
tests/test_arm64_image.py as `unshare --net python -m tests.arm64_boot IMAGE WORKDIR`, so it runs
in a network namespace of its own: qemu's user-mode network, baresip, curl and ssh see only that
namespace's loopback, and nothing of the boot reaches the machine's network.

qemu-system-aarch64 -M virt -cpu cortex-a72 (TCG; there is no Pi 4 machine in bookworm's qemu)
boots the kernel and initrd taken from the image's own boot partition, from a sparse copy of the
image that is 512 MiB larger (the first boot grows the root file system into it) and that carries
a doorstation.txt (host name, admin password, SSH key). Inside this namespace:

  127.0.0.1:2222 -> guest :22 (ssh), 127.0.0.1:8080 -> guest :80 (the API)
  10.0.2.15 (the guest's own address, added to this namespace's lo) UDP 5060 and 4000-4011 ->
  the guest's, so a SIP peer here reaches the station at the address in its Contact and SDP;
  the guest reaches this namespace's 127.0.0.1 as 10.0.2.2 (qemu's user network); baresip listens on
  10.0.2.2 (also added to lo), so the Contact and SDP addresses it sends are the ones the guest
  uses, and an nftables rule in the namespace turns UDP that qemu sends to 127.0.0.1 into UDP to
  10.0.2.2 (ACK, BYE and RTP from the station reach baresip). A second rule gives baresip's RTP
  the source 10.0.2.2: its RTP socket is unbound, so the kernel sends to 10.0.2.15 from 10.0.2.15,
  and qemu's user network hands such a packet to the guest with that source unchanged (it only
  rewrites 127.0.0.0/8): the guest's kernel drops a packet from its own address as martian, and
  the station received no RTP at all, hence no RFC 2833 DTMF (SIP came from 127.0.0.1 and passed).

Developer switches: DOORSTATION_ARM64_QUICK=1 stops after the SIP check (no unit tests, no
scripts/install), DOORSTATION_ARM64_DEBUG=1 runs the supervisor with its debug log.

Writes WORKDIR/results.json: {check: {"ok": bool, "detail": str}} and WORKDIR/console.log.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

FAT_OFFSET = 4 * 1024 * 1024          # scripts/build-image: the boot partition starts at sector 8192
GUEST = "10.0.2.15"
HOST_ALIAS = "10.0.2.2"
SSH_PORT, HTTP_PORT = 2222, 8080
RTP_PORTS = range(4000, 4012)
BOOT_TIMEOUT = float(os.environ.get("DOORSTATION_ARM64_BOOT_TIMEOUT", "600"))
# Pure-logic tests (no gunicorn, no SIP peers, no VM lane): the station's code on aarch64 CPython.
GUEST_TESTS = ["tests/test_firstboot.py", "tests/test_rtsp_unit.py", "tests/test_api_codec.py",
               "tests/test_users.py", "tests/test_commands_fakes.py", "tests/hw/test_hwconfig.py",
               "tests/hw/test_devices.py", "tests/hw/test_intercom.py"]


def sh(*argv: str, timeout: float = 60, check: bool = True, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), timeout=timeout, check=check, capture_output=True, text=True, **kw)


class Guest:
    def __init__(self, work: Path):
        self.key = work / "id_ed25519"
        self.base = ["ssh", "-i", str(self.key), "-p", str(SSH_PORT), "-o", "StrictHostKeyChecking=no",
                     "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10",
                     "-o", "BatchMode=yes", "root@127.0.0.1"]

    def run(self, command: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([*self.base, command], timeout=timeout, capture_output=True, text=True)

    def copy_in(self, local: Path, remote: str, timeout: float = 120) -> None:
        subprocess.run(["scp", "-q", "-r", "-i", str(self.key), "-P", str(SSH_PORT), "-o", "StrictHostKeyChecking=no",
                        "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", str(local),
                        f"root@127.0.0.1:{remote}"], timeout=timeout, check=True, capture_output=True)


class Results:
    def __init__(self, path: Path):
        self.path, self.data = path, {}

    def put(self, name: str, ok: bool, detail: str = "") -> None:
        self.data[name] = {"ok": bool(ok), "detail": detail[-3000:]}
        self.path.write_text(json.dumps(self.data, indent=1))
        print(f"arm64: {'ok  ' if ok else 'FAIL'} {name}: {detail[-300:]}", flush=True)


def api(method: str, user: str | None, password: str | None, path: str = "/vapix/call",
        body: dict | None = None, timeout: float = 30) -> tuple[int, str]:
    argv = ["curl", "-s", "-m", str(int(timeout)), "-w", "\n%{http_code}"]
    if user:
        argv += ["--digest", "-u", f"{user}:{password}"]
    if body is not None:
        argv += ["-d", json.dumps(body)]
    r = subprocess.run([*argv, f"http://127.0.0.1:{HTTP_PORT}{path}"], capture_output=True, text=True,
                       timeout=timeout + 5)
    text, _, code = r.stdout.rpartition("\n")
    return int(code or 0), text


def prepare(image: Path, work: Path, password: str) -> tuple[Path, Path, Path]:
    disk = work / "disk.img"
    sh("cp", "--sparse=always", str(image), str(disk), timeout=300)
    with open(disk, "r+b") as f:
        f.truncate(image.stat().st_size + 512 * 1024 * 1024)
    fat = f"{disk}@@{FAT_OFFSET}"
    names = [n.removeprefix("::/").removeprefix("::") for n in sh("mdir", "-b", "-i", fat, "::/").stdout.split()]
    kernel = next(n for n in names if n.startswith("vmlinuz"))
    initrd = next(n for n in names if n.startswith("initrd.img"))
    sh("mcopy", "-n", "-i", fat, f"::/{kernel}", str(work / "vmlinuz"))
    sh("mcopy", "-n", "-i", fat, f"::/{initrd}", str(work / "initrd.img"))
    sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "arm64-lane", "-f", str(work / "id_ed25519"))
    pub = (work / "id_ed25519.pub").read_text().strip()
    (work / "doorstation.txt").write_text(
        f"# written by tests/arm64_boot.py\nhostname = arm64-lane\nadmin_password = {password}\n"
        f"ssh_authorized_key = {pub}\nhardware = simulated\n")
    sh("mcopy", "-i", fat, str(work / "doorstation.txt"), "::/doorstation.txt")
    return disk, work / "vmlinuz", work / "initrd.img"


def start_qemu(disk: Path, kernel: Path, initrd: Path, work: Path) -> subprocess.Popen:
    fwd = [f"hostfwd=tcp:127.0.0.1:{SSH_PORT}-:22", f"hostfwd=tcp:127.0.0.1:{HTTP_PORT}-:80",
           f"hostfwd=udp:{GUEST}:5060-:5060"] + [f"hostfwd=udp:{GUEST}:{p}-:{p}" for p in RTP_PORTS]
    argv = ["qemu-system-aarch64", "-M", "virt", "-cpu", "cortex-a72", "-smp", "2", "-m", "1024",
            "-display", "none", "-no-reboot", "-serial", f"file:{work / 'console.log'}", "-monitor", "none",
            "-kernel", str(kernel), "-initrd", str(initrd),
            "-append", "root=LABEL=RASPIROOT rw rootwait console=ttyAMA0 panic=-1",
            "-drive", f"file={disk},format=raw,if=none,id=hd,snapshot=on",
            "-device", "virtio-blk-pci,drive=hd",
            "-netdev", "user,id=n0," + ",".join(fwd), "-device", "virtio-net-pci,netdev=n0",
            "-device", "virtio-rng-pci"]
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=open(work / "qemu.log", "wb"),
                            stderr=subprocess.STDOUT)


def wait_for_ssh(guest: Guest, qemu: subprocess.Popen, deadline: float) -> bool:
    while time.monotonic() < deadline and qemu.poll() is None:
        try:
            if guest.run("true", timeout=20).returncode == 0:
                return True
        except subprocess.TimeoutExpired:
            pass
        time.sleep(3)
    return False


def check_units(guest: Guest, r: Results) -> None:
    out = guest.run("systemctl is-active doorstation-supervisor doorstation-api doorstation-rtsp "
                    "doorstation-firstboot doorstation-growroot; systemctl --failed --no-legend")
    r.put("units active", out.stdout.split()[:5] == ["active"] * 5, out.stdout)
    props = "-p Type -p ActiveState -p SubState -p NRestarts -p WatchdogUSec -p WatchdogTimestampMonotonic"
    first = guest.run(f"systemctl show doorstation-supervisor {props}").stdout
    time.sleep(25)
    second = guest.run(f"systemctl show doorstation-supervisor {props}").stdout

    def prop(text: str, name: str) -> str:
        return next((line.split("=", 1)[1] for line in text.splitlines() if line.startswith(name + "=")), "")
    ready = prop(second, "Type") == "notify" and prop(second, "SubState") == "running"
    r.put("supervisor READY (Type=notify, running)", ready, second)
    fed = prop(first, "WatchdogTimestampMonotonic") not in ("", "0") and \
        prop(second, "WatchdogTimestampMonotonic") != prop(first, "WatchdogTimestampMonotonic") and \
        prop(second, "NRestarts") == "0"
    r.put("supervisor feeds the watchdog", fed, first + "---\n" + second)


def check_firstboot(guest: Guest, r: Results, password: str) -> None:
    out = guest.run("hostname; test ! -e /boot/firmware/doorstation.txt && echo consumed; "
                    "cat /boot/firmware/doorstation-applied.txt; "
                    "systemctl is-enabled ssh.service; journalctl -b -u doorstation-firstboot --no-pager -o cat")
    text = out.stdout
    r.put("first boot: doorstation.txt applied and consumed",
          text.startswith("arm64-lane\n") and "consumed" in text and "password set" in text
          and password not in text and "enabled" in text, text)
    out = guest.run("findmnt -no SOURCE /; lsblk -bno SIZE $(findmnt -no SOURCE /); df -B1 --output=size / | tail -1;"
                    "journalctl -b -u doorstation-growroot --no-pager -o cat")
    r.put("first boot: root grown", "grown from" in out.stdout, out.stdout)


def check_api(r: Results, password: str) -> None:
    code, text = api("GET", None, None, "/vapix/call?action=axcall:GetSIPConfiguration")
    r.put("API refuses without a user (401)", code == 401, f"{code} {text[:200]}")
    code, text = api("POST", "admin", password, body={"axcall:GetSIPConfiguration": {}})
    r.put("API answers the admin set by doorstation.txt", code == 200 and "SIPConfiguration" in text,
          f"{code} {text[:500]}")


def wait_applied(password: str, timeout: float = 120) -> float:
    """Seconds until the station says its SIP configuration is in force (GET /api/status)."""
    started = time.monotonic()
    state = ""
    for _ in range(int(timeout)):                 # bounded: about one poll a second
        code, text = api("GET", "admin", password, "/api/status", timeout=15)
        state = json.loads(text).get("SIPConfiguration", {}).get("State", "") if code == 200 else f"HTTP {code}"
        if state in ("Applied", "Failed") or time.monotonic() - started > timeout:
            break
        time.sleep(1)
    if state != "Applied":
        raise RuntimeError(f"SIP configuration not applied: {state}")
    return time.monotonic() - started


def udp_flows(packets: list) -> str:
    """What crossed this namespace's `lo` during the call: per UDP flow the packets, bytes and RTP
    payload types seen, then the SDP of each SIP message (which codecs and telephone-event)."""
    flows: dict[tuple, list] = {}
    sdps: list[str] = []
    for p in packets:
        if p.proto != 17 or p.outgoing:            # `lo` shows each packet twice: count it once
            continue
        f = flows.setdefault((p.src, p.sport, p.dst, p.dport), [0, 0, {}])
        f[0] += 1
        f[1] += len(p.payload)
        if p.payload[:1] and p.payload[0] >> 6 == 2 and len(p.payload) >= 12:     # RTP version 2
            pt = p.payload[1] & 0x7F
            f[2][pt] = f[2].get(pt, 0) + 1
        elif b"SIP/2.0" in p.payload[:200] and b"\r\n\r\nv=0" in p.payload:
            head, _, body = p.payload.decode(errors="replace").partition("\r\n\r\n")
            sdps.append(f"{head.splitlines()[0]}\n{body}")
    lines = [f"{s}:{sp} -> {d}:{dp}  {n} packets {b} bytes  RTP payload types {pts}"
             for (s, sp, d, dp), (n, b, pts) in sorted(flows.items(), key=lambda kv: -kv[1][0])[:20]]
    return "\n".join(lines + sdps[:4])


def check_sip(guest: Guest, r: Results, password: str, work: Path) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.packets import PacketCapture
    from tests.sip_peers import Baresip
    peer = Baresip(work / "baresip", host=HOST_ALIAS).start()
    packets: list = []
    capture = PacketCapture("lo", packets.append)
    try:
        steps = []

        def call(body: dict) -> dict:
            code, text = api("POST", "admin", password, body=body)
            steps.append(f"{code} {text[:300]}")
            if code != 200:
                raise RuntimeError(f"{body} -> {code} {text[:300]}")
            return json.loads(text) if text.strip().startswith("{") else {}
        call({"axcall:SetSIPConfiguration": {"SIPConfiguration": {"SIPEnabled": True, "AllowIncomingCalls": True}}})
        event = call({"axcall:SetDTMFEvent": {"DTMFEvent": {"Name": "OpenDoorEvent"}}})["DTMFEventId"]
        trigger = call({"axcall:SetDTMFTrigger": {"DTMFTrigger": {"DTMFSequence": "#1234#",
                                                                   "DTMFEventId": event}}})["DTMFTriggerId"]
        conf = call({"axcall:SetDTMFConfiguration": {"DTMFConfiguration": {
            "Name": "Door", "DTMFTriggerId": [trigger]}}})["DTMFConfigurationId"]
        call({"axcall:SetSIPAccount": {"SIPAccount": {"Id": "peer-to-peer", "DTMFConfigurationId": conf}}})
        # writes are answered at once and applied in the background (slow under emulation): a call
        # placed before the account's DTMF configuration is in force has no door code
        steps.append(f"configuration applied after {wait_applied(password):.1f} s")
        mark = peer.mark()
        call({"axcall:Call": {"To": f"sip:bob@{HOST_ALIAS}:{peer.sip_port}", "SIPAccountId": "peer-to-peer"}})
        peer.wait_event("CALL_ESTABLISHED", timeout=30, since=mark)
        r.put("SIP call from the station to baresip connects", True, "\n".join(steps))
        time.sleep(1)
        assert peer.command("sndcode", "#1234#")["ok"]
        seen, deadline, after, got = False, time.monotonic() + 30, 0, ""
        while not seen and time.monotonic() < deadline:
            code, text = api("GET", "admin", password, f"/api/events?after={after}&wait=5", timeout=15)
            got = text[-1500:]
            if code == 200:
                doc = json.loads(text)
                after = doc.get("next", after)
                seen = "tnsaxis:Call/DTMF" in text and "OpenDoorEvent" in text
        if not seen:                # what the network and the station saw, to tell where it was lost
            journal = guest.run("journalctl -b -u doorstation-supervisor --no-pager -o cat | tail -80; "
                                "echo '-- /proc/net/udp (drops last):'; cat /proc/net/udp").stdout
            got += f"\n-- UDP flows on lo during the call:\n{udp_flows(packets)}\n-- supervisor:\n{journal}"
        r.put("RFC 2833 DTMF from baresip reaches the station (DTMF event)", seen, got)
        peer.command("hangup")
    except Exception as e:          # noqa: BLE001 - the report says what failed
        r.put("SIP call from the station to baresip connects", False, f"{e!r}\n" + "\n".join(steps))
        log = (work / "baresip" / "baresip.log")
        r.put("baresip log", False, log.read_text()[-2500:] if log.exists() else "")
    finally:
        capture.close()
        peer.stop()


def check_unit_tests(guest: Guest, r: Results, wheels: Path) -> None:
    if not wheels.is_dir():
        r.put("unit tests on arm64", False, f"no test wheels in {wheels}")
        return
    guest.copy_in(wheels, "/tmp/test-wheels")
    out = guest.run("set -e; /opt/doorstation/.venv/bin/python -m pip install -q --no-index "
                    "--find-links /tmp/test-wheels pytest hypothesis requests 2>&1 | tail -5; "
                    "cd /opt/doorstation && timeout 900 .venv/bin/python -m pytest -q -p no:cacheprovider "
                    "-m 'not sip and not vm and not slow and not integration' "
                    f"{' '.join(GUEST_TESTS)} 2>&1 | tail -15; "
                    "uname -m", timeout=1000)
    text = out.stdout + out.stderr
    r.put("unit tests on arm64 (pytest in the guest)", " passed" in text and " failed" not in text
          and " error" not in text and text.strip().endswith("aarch64"), text)


def check_install(guest: Guest, r: Results, wheels: Path) -> None:
    """scripts/install (the Raspberry Pi OS path) on this arm64 Debian: remove what the image
    installed, then install from a copy of the source with the image's aarch64 wheels (no network
    in the guest, so no PyPI and no apt: every Debian package it asks for is already there)."""
    if not wheels.is_dir():
        r.put("scripts/install on arm64: installs, both units start", False, f"no wheels in {wheels}")
        return
    guest.copy_in(wheels, "/tmp/install-wheels", timeout=300)
    out = guest.run("""set -e
systemctl disable --now doorstation-supervisor doorstation-api doorstation-rtsp 2>&1
rm -f /etc/systemd/system/doorstation-supervisor.service /etc/systemd/system/doorstation-api.service \
  /etc/systemd/system/doorstation-rtsp.service /etc/default/doorstation
mkdir -p /root/src && tar -C /opt/doorstation --exclude=./.venv -cf - . | tar -C /root/src -xf -
rm -rf /opt/doorstation /var/lib/doorstation && userdel doorstation && systemctl daemon-reload
DOORSTATION_INSTALL_WHEELS=/tmp/install-wheels timeout 1200 /root/src/scripts/install 2>&1 | tail -n 12
sleep 10; systemctl is-active doorstation-supervisor doorstation-api""", timeout=1500)
    text = out.stdout + out.stderr
    r.put("scripts/install on arm64: installs, both units start",
          out.returncode == 0 and text.rstrip().endswith("active\nactive") and "password:" in text, text)


def main(argv: list[str]) -> int:
    image, work = Path(argv[0]), Path(argv[1])
    wheels = Path(argv[2]) if len(argv) > 2 else work / "test-wheels"
    work.mkdir(parents=True, exist_ok=True)
    r = Results(work / "results.json")
    sh("ip", "link", "set", "lo", "up")
    sh("ip", "addr", "add", f"{GUEST}/32", "dev", "lo")
    sh("ip", "addr", "add", f"{HOST_ALIAS}/32", "dev", "lo")
    sh("nft", "add", "table", "ip", "arm64lane")
    sh("nft", "add", "chain", "ip", "arm64lane", "out", "{ type nat hook output priority -100; }")
    sh("nft", "add", "rule", "ip", "arm64lane", "out", "ip", "daddr", "127.0.0.1", "meta", "l4proto", "udp",
       "dnat", "to", HOST_ALIAS)
    sh("nft", "add", "chain", "ip", "arm64lane", "post", "{ type nat hook postrouting priority 100; }")
    sh("nft", "add", "rule", "ip", "arm64lane", "post", "ip", "saddr", GUEST, "ip", "daddr", GUEST,
       "meta", "l4proto", "udp", "snat", "to", HOST_ALIAS)
    password = secrets.token_urlsafe(15)
    disk, kernel, initrd = prepare(image, work, password)
    started = time.monotonic()
    qemu = start_qemu(disk, kernel, initrd, work)
    guest = Guest(work)
    try:
        up = wait_for_ssh(guest, qemu, started + BOOT_TIMEOUT)
        r.put("boots; SSH with the key from doorstation.txt", up, f"{time.monotonic() - started:.0f} s to SSH")
        if not up:
            return 1
        out = guest.run("systemctl is-system-running --wait", timeout=300)
        r.put("systemd reaches running", out.stdout.strip() == "running",
              out.stdout + guest.run("systemctl --failed --no-legend").stdout)
        r.put("boot time", True, f"{time.monotonic() - started:.0f} s from qemu start to a running system")
        check_units(guest, r)
        check_firstboot(guest, r, password)
        check_api(r, password)
        if os.environ.get("DOORSTATION_ARM64_DEBUG") == "1":     # the supervisor's debug log
            guest.run("mkdir -p /etc/systemd/system/doorstation-supervisor.service.d; printf "
                      "'[Service]\\nEnvironment=DOORSTATION_LOG_LEVEL=DEBUG\\n' "
                      "> /etc/systemd/system/doorstation-supervisor.service.d/debug.conf; "
                      "systemctl daemon-reload; systemctl restart doorstation-supervisor; sleep 20", timeout=90)
        check_sip(guest, r, password, work)
        if os.environ.get("DOORSTATION_ARM64_QUICK") != "1":     # quick: boot, API and SIP only
            check_unit_tests(guest, r, wheels)
        journal = guest.run("journalctl -b --no-pager -o short-monotonic | tail -300", timeout=60).stdout
        (work / "journal.txt").write_text(journal)
        if os.environ.get("DOORSTATION_ARM64_QUICK") != "1":
            check_install(guest, r, image.parent / "wheels-aarch64")
        guest.run("systemctl poweroff", timeout=20)
        qemu.wait(90)
    finally:
        if qemu.poll() is None:
            qemu.terminate()
            try:
                qemu.wait(10)
            except subprocess.TimeoutExpired:
                qemu.kill()
        shutil.rmtree(work / "baresip", ignore_errors=True)
        disk.unlink(missing_ok=True)
    return 0 if all(v["ok"] for v in r.data.values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
