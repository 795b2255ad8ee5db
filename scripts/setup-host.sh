#!/usr/bin/env bash
# Installs what nsmatrix needs on a Debian or Ubuntu host (run as root): systemd-nspawn, image builders,
# and the tools its tests use (xmllint for JUnit schema checks, chromium for the HTML report screenshot).
set -euo pipefail
if [ "$(id -u)" != 0 ]; then
  echo "setup-host.sh: run as root (sudo bash scripts/setup-host.sh)" >&2
  exit 2
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
  systemd-container mmdebstrap debootstrap ca-certificates util-linux \
  btrfs-progs xz-utils zstd libxml2-utils skopeo umoci docker-registry \
  chromium fonts-dejavu-core >/dev/null
node -e 'const [a,b]=process.versions.node.split(".").map(Number); if (a<20 || (a===20 && b<19)) { console.error("nsmatrix needs Node >= 20.19, found " + process.version); process.exit(2) }'
echo "setup-host.sh: host ready ($(systemd-nspawn --version | head -1))"
