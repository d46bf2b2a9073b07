# Shared set-up for scripts/run and scripts/test: install what is missing, quietly when nothing is.
# Sourced, not executed. Uses $REPO.

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# ensure_debs PKG...: apt-get install the packages that are not installed yet.
ensure_debs() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "doorstation: installing Debian packages: ${missing[*]}"
  as_root apt-get update -q >/dev/null
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
}

# Packages the daemon needs to build and run its Python dependencies, pjsua2 included
# (scripts/build-pjsua2 compiles it from pjproject's sources, with IPv6).
runtime_debs() {
  echo python3 python3-venv python3-dev gcc libasound2-dev ca-certificates openssl \
    build-essential swig libssl-dev libsrtp2-dev libspeex-dev libspeexdsp-dev libgsm1-dev xz-utils curl
}

# ensure_venv EXTRAS: .venv with the project installed editable; reinstall only when pyproject
# changes (an install with the test extras also serves scripts/run). pip's output goes to a log
# that is shown only when it fails.
ensure_venv() {
  local extras=$1 venv=$REPO/.venv stamp hash log
  if [ ! -x "$venv/bin/python" ]; then
    echo "doorstation: creating $venv"
    python3 -m venv "$venv"
  fi
  hash="$(sha256sum "$REPO/pyproject.toml" | cut -d' ' -f1)"
  stamp="$venv/.doorstation-installed"
  case "$(cat "$stamp" 2>/dev/null)" in
    "$hash [test]") return 0 ;;
    "$hash ") [ -z "$extras" ] && return 0 ;;
  esac
  echo "doorstation: installing Python packages into $venv"
  log="$venv/pip-install.log"
  if ! { "$venv/bin/python" -m pip install --upgrade pip && "$venv/bin/python" -m pip install -e "$REPO$extras"; } >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "doorstation: pip install failed (full log: $log)" >&2
    return 1
  fi
  echo "$hash $extras" > "$stamp"
}

# ensure_pjsua2: the venv's pjsua2 is the one scripts/build-pjsua2 builds (cached after the first
# build); PyPI's pjsua2-python (no IPv6) is removed if an older set-up installed it.
ensure_pjsua2() {
  local venv=$REPO/.venv wheel stamp log
  wheel=$("$REPO/scripts/build-pjsua2" "$venv/bin/python")
  stamp="$venv/.doorstation-pjsua2"
  [ "$(cat "$stamp" 2>/dev/null)" = "$wheel" ] && return 0
  log="$venv/pip-install.log"
  if ! { "$venv/bin/python" -m pip uninstall -y pjsua2-python &&
         "$venv/bin/python" -m pip install --force-reinstall --no-deps "$wheel"; } >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "doorstation: installing $wheel failed (full log: $log)" >&2
    return 1
  fi
  echo "$wheel" > "$stamp"
}
