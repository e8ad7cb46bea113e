#!/usr/bin/env bash
# deps.sh: installs what infd needs to build, test and benchmark, and nothing when it is
# all there (a check takes well under a second). Debian packages through apt-get (needs
# root, or sudo), Python test packages into the project's own .venv (git-ignored).
#   scripts/deps.sh          build + test dependencies
#   scripts/deps.sh bench    also what `make bench` needs
set -euo pipefail
cd "$(dirname "$0")/.."

debs=(gcc make pkg-config clang libclang-rt-14-dev
      libopenblas-openmp-dev libprotobuf-c-dev protobuf-c-compiler libonnx-dev libonnx-testdata
      libcmocka-dev libjansson-dev libmicrohttpd-dev libsystemd-dev systemd prometheus curl python3-venv)
if [ "${1:-}" = bench ]; then
    debs+=(python3-torch wrk nginx)
fi

missing=()
for p in "${debs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "deps: installing Debian packages: ${missing[*]}"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Debian's interpreter, so that Debian's python3-torch is visible to the bench scripts.
py=/usr/bin/python3
req=tests/requirements.txt
stamp=.venv/.requirements
if [ ! -x .venv/bin/python ] || ! cmp -s "$req" "$stamp"; then
    echo "deps: preparing .venv from $req"
    rm -rf .venv
    "$py" -m venv --system-site-packages .venv
    .venv/bin/pip install -q --disable-pip-version-check -r "$req"
    cp "$req" "$stamp"
fi
