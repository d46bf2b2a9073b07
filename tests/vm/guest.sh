#!/bin/sh
# Runs as root INSIDE the VM lane (see scripts/vmlane): real gpio-sim and snd-aloop devices, then
# pytest on tests/vm/ with env vars that tell the tests where the devices are.
#   usage (from the repo root, in the guest): sh tests/vm/guest.sh [pytest args...]
#                                            sh tests/vm/guest.sh --run CMD [args...]   (e.g. bench/vm.py)
# Results: $VMLANE_OUT/junit.xml and $VMLANE_OUT/guest.log; exit code = pytest's.
set -eu
REPO=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${VMLANE_OUT:-/tmp}
PY=$REPO/.venv/bin/python; [ -x "$PY" ] || PY=python3
exec >"$OUT/guest.log" 2>&1
echo "guest: kernel $(uname -r), up $(cut -d' ' -f1 /proc/uptime) s"

modprobe gpio-sim
modprobe snd-aloop
mountpoint -q /sys/kernel/config || mount -t configfs configfs /sys/kernel/config
ip link set lo up 2>/dev/null || busybox ip link set lo up   # iproute2 may be missing on a minimal host

# one simulated chip with our line names; the contract tests look lines up by these names
CFG=/sys/kernel/config/gpio-sim/doorstation
mkdir "$CFG" "$CFG/bank0"
echo doorstation-sim > "$CFG/bank0/label"
i=0
for name in CALL_BUTTON CALL_LED DOOR_LOCK DOOR_CONTACT SPARE4 SPARE5 SPARE6 SPARE7; do
  mkdir "$CFG/bank0/line$i"; echo "$name" > "$CFG/bank0/line$i/name"; i=$((i + 1))
done
echo $i > "$CFG/bank0/num_lines"
echo 1 > "$CFG/live"
CHIP=$(cat "$CFG/bank0/chip_name")
DEV=$(cat "$CFG/dev_name")
export DOORSTATION_GPIOSIM_CHIP=/dev/$CHIP
export DOORSTATION_GPIOSIM_SYSFS=/sys/devices/platform/$DEV/$CHIP
export DOORSTATION_GPIOSIM_LABEL=doorstation-sim
# snd-aloop: what is played on device 0 is captured on device 1 of the same substream
export DOORSTATION_ALSA_PLAYBACK=hw:Loopback,0,0
export DOORSTATION_ALSA_CAPTURE=hw:Loopback,1,0
echo "guest: gpio-sim $DOORSTATION_GPIOSIM_CHIP ($DOORSTATION_GPIOSIM_SYSFS); $(head -1 /proc/asound/cards)"

cd "$REPO"
set +e
if [ "${1:-}" = "--run" ]; then
  shift
  "$@"
  rc=$?
  echo "guest: $* rc=$rc, up $(cut -d' ' -f1 /proc/uptime) s"
  exit $rc
fi
"$PY" -m pytest -p no:cacheprovider -q -rA --junitxml="$OUT/junit.xml" tests/vm "$@"
rc=$?
echo "guest: pytest rc=$rc, up $(cut -d' ' -f1 /proc/uptime) s"
exit $rc
