#!/usr/bin/env bash
# Installs what the tests need beyond the build: a Python venv with the stock Triton HTTP client
# (the inference interoperability test drives the daemon with it), the CloudEvents SDK (the
# eventing tests send events with it) and `cryptography` (the mTLS test signs an expired
# certificate with it). Idempotent: does nothing when the venv already
# imports both. The venv lives outside the repository, at
# $OUTPOST_TEST_VENV (default ~/.cache/outpost-test-venv); the tests find it there.
set -euo pipefail

venv=${OUTPOST_TEST_VENV:-$HOME/.cache/outpost-test-venv}
python=${PYTHON:-python3}

if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import tritonclient.http, numpy, cryptography, cloudevents.http' 2>/dev/null; then
  echo "install-test-deps: tritonclient present in $venv"
  exit 0
fi

command -v "$python" >/dev/null 2>&1 || { echo "install-test-deps: $python not found; install python3" >&2; exit 1; }
if ! "$python" -m venv --help >/dev/null 2>&1 || ! "$python" -c 'import ensurepip' 2>/dev/null; then
  echo "install-test-deps: installing python3-venv"
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends python3-venv
fi
echo "install-test-deps: filling $venv with tritonclient[http], cloudevents and cryptography"
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check 'tritonclient[http]==2.73.0' 'numpy>=1.24' 'cryptography>=42' 'cloudevents==1.12.1'
"$venv/bin/python" -c 'import tritonclient.http' && echo "install-test-deps: done"
