# Helpers for building arm64 (Raspberry Pi 4) artefacts on an amd64 Debian machine: host tools,
# binfmt for qemu-user, and the amd64+arm64 cross build root. Sourced by scripts/build-pjsua2
# (--cross), scripts/build-image and scripts/test-arm64. Needs root for everything but the cache key.

DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
ARM64_SUITE=bookworm

arm64_log() { echo "${ARM64_LOG_TAG:-arm64}: $*" >&2; }

# arm64_cache: the cache root (~/.cache/doorstation unless DOORSTATION_CACHE says otherwise).
arm64_cache() {
  local c=${DOORSTATION_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/doorstation}
  mkdir -p "$c" && echo "$c"
}

# arm64_host_tools PKG...: apt-get install what is missing on the build machine (a fresh Debian).
arm64_host_tools() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  arm64_log "installing ${missing[*]}"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
}

# arm64_binfmt: let this kernel run aarch64 binaries through qemu-user-static. Nothing registers it
# for us when systemd is not PID 1 (containers, CI runners), so mount binfmt_misc and enable it.
arm64_binfmt() {
  arm64_host_tools qemu-user-static binfmt-support
  if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  fi
  [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || update-binfmts --enable qemu-aarch64 >/dev/null
  grep -q '^flags:.*F' /proc/sys/fs/binfmt_misc/qemu-aarch64 ||
    arm64_log "warning: qemu-aarch64 binfmt registered without the F flag; chroots may not find the interpreter"
}

# Packages of the cross build root: the amd64 compiler and build Python, the arm64 libraries.
# libpython3.11-dev:arm64, not python3-dev:arm64 (that one replaces the build machine's python3).
ARM64_CROSSROOT_PKGS="crossbuild-essential-arm64 make swig xz-utils ca-certificates python3 python3-pip
python3-setuptools python3-wheel python3-venv libpython3.11-dev:arm64 libssl-dev:arm64 libsrtp2-dev:arm64
libspeex-dev:arm64 libspeexdsp-dev:arm64 libgsm1-dev:arm64 libasound2-dev:arm64"

# arm64_crossroot: print the directory of the amd64+arm64 build root, made once per package list
# with mmdebstrap (about a minute) and kept in the cache.
arm64_crossroot() {
  local cache key dir
  cache=$(arm64_cache)
  key=$(echo "$ARM64_SUITE $ARM64_CROSSROOT_PKGS" | sha256sum | cut -c1-12)
  dir=$cache/crossroot-$key
  if [ ! -e "$dir/.complete" ]; then
    arm64_host_tools mmdebstrap
    rm -rf "$dir" "$dir.tmp"
    arm64_log "making the amd64+arm64 cross build root (once, about a minute)"
    mmdebstrap --quiet --variant=apt --architectures=amd64,arm64 \
      --include="$(echo $ARM64_CROSSROOT_PKGS | tr ' ' ,)" \
      "$ARM64_SUITE" "$dir.tmp" "$DEBIAN_MIRROR" >&2
    touch "$dir.tmp/.complete"
    mv "$dir.tmp" "$dir"
  fi
  echo "$dir"
}

# arm64_in_root DIR CMD...: run CMD with bash in the root DIR, with /proc and /dev bound for the
# duration (unmounted again whatever happens).
arm64_in_root() {
  local root=$1; shift
  mount -t proc proc "$root/proc"
  mount --rbind /dev "$root/dev"; mount --make-rslave "$root/dev"
  local rc=0
  chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C.UTF-8 \
    /bin/bash -c "$*" || rc=$?
  umount -R "$root/dev" || umount -l "$root/dev"
  umount "$root/proc" || umount -l "$root/proc"
  return $rc
}
