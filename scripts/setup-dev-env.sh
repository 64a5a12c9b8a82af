#!/usr/bin/env bash
# Sets up a fresh Debian machine (with Node.js 20) for tst-fly: the Debian packages the project and its tests need,
# then the npm dependencies (npm ci, which also builds the TypeScript). Safe to run again.
#
#   libca4.13.5      EPICS Channel Access client library (loaded through koffi)
#   python3-h5py     independent HDF5 reader the tests check our files with (also python3-numpy)
#   python3-pyepics  independent Channel Access client, the interop peer of the simulated IOC
#   hdf5-tools       h5dump, the second independent HDF5 reader
set -euo pipefail

cd "$(dirname "$0")/.."

PACKAGES=(libca4.13.5 python3-h5py python3-numpy python3-pyepics hdf5-tools)

if ! command -v node >/dev/null 2>&1; then
  echo "setup-dev-env: node is not on PATH; install Node.js 20 first" >&2
  exit 1
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  echo "setup-dev-env: Node.js $(node --version) is too old; tst-fly needs Node.js 20 or newer" >&2
  exit 1
fi

if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  SUDO=(sudo)
else
  echo "setup-dev-env: need root or sudo to install Debian packages: ${PACKAGES[*]}" >&2
  exit 1
fi

echo "setup-dev-env: apt-get update"
"${SUDO[@]}" apt-get update -qq
echo "setup-dev-env: apt-get install ${PACKAGES[*]}"
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null

echo "setup-dev-env: npm ci"
npm ci --no-audit --no-fund

echo "setup-dev-env: ready (node $(node --version))"
