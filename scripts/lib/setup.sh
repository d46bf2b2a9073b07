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

# Packages the daemon needs to build and run its Python dependencies.
runtime_debs() {
  local debs=(python3 python3-venv python3-dev gcc libasound2-dev ca-certificates openssl)
  if [ "$(uname -m)" != "x86_64" ]; then
    # No pjsua2-python wheel outside x86_64: pip builds pjproject from source.
    debs+=(git swig build-essential libssl-dev)
  fi
  echo "${debs[@]}"
}

# ensure_venv EXTRAS: .venv with the project installed editable; reinstall only when pyproject changes.
ensure_venv() {
  local extras=$1 venv=$REPO/.venv stamp want
  if [ ! -x "$venv/bin/python" ]; then
    echo "doorstation: creating $venv"
    python3 -m venv "$venv"
  fi
  want="$(sha256sum "$REPO/pyproject.toml" | cut -d' ' -f1)-$extras"
  stamp="$venv/.doorstation-installed"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "doorstation: installing Python packages into $venv"
    "$venv/bin/python" -m pip install -q --upgrade pip >/dev/null
    "$venv/bin/python" -m pip install -q -e "$REPO$extras"
    echo "$want" > "$stamp"
  fi
}
