#!/usr/bin/env bash
# Sets up a Debian or Ubuntu host for nsmatrix, as root or as a user with sudo (the root part then goes through
# sudo): installs systemd-nspawn, the image builders and the tools the tests use (xmllint for JUnit schema checks,
# chromium for the HTML report screenshot), builds nsmatrix (npm ci, as the user who owns the checkout), and puts
# an `nsmatrix` command on PATH (/usr/local/bin/nsmatrix) that runs this checkout, through sudo for the commands
# that start containers when its user is not root.
#
# Environment: NSMATRIX_BIN_DIR (where the command goes; default /usr/local/bin), NSMATRIX_SKIP_APT=1 (packages
# are there already), NSMATRIX_SKIP_BUILD=1 (dist/ is there already).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin_dir=${NSMATRIX_BIN_DIR:-/usr/local/bin}
node_bin=${NSMATRIX_NODE:-$(command -v node || true)}

build() {
  [ "${NSMATRIX_SKIP_BUILD:-}" = 1 ] && return 0
  # Dependencies already installed from this lock file are kept (CI's .ci/run runs npm ci itself right after);
  # the build always runs, so a checkout updated since the last setup never runs an older dist/.
  if [ -f "$repo/node_modules/.package-lock.json" ] && [ "$repo/node_modules/.package-lock.json" -nt "$repo/package-lock.json" ]; then
    (cd "$repo" && npm run --silent build)
    return 0
  fi
  (cd "$repo" && npm ci --no-audit --no-fund)
}

if [ "$(id -u)" != 0 ]; then
  if ! command -v sudo >/dev/null; then
    echo "setup-host.sh: run as root (this user is not root and there is no sudo)" >&2
    exit 2
  fi
  # The system part as root; the build as this user, so that the checkout stays theirs.
  sudo env "NSMATRIX_NODE=$node_bin" "NSMATRIX_BIN_DIR=$bin_dir" "NSMATRIX_SKIP_APT=${NSMATRIX_SKIP_APT:-}" NSMATRIX_SKIP_BUILD=1 bash "$repo/scripts/setup-host.sh"
  build
  echo "setup-host.sh: nsmatrix built; run it as nsmatrix (containers go through sudo)"
  exit 0
fi

if [ "${NSMATRIX_SKIP_APT:-}" != 1 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends \
    systemd-container mmdebstrap debootstrap ca-certificates util-linux \
    btrfs-progs xz-utils zstd libxml2-utils skopeo umoci docker-registry \
    qemu-user-static binfmt-support arch-test \
    chromium fonts-dejavu-core >/dev/null
  # Foreign architectures (the arch axis) run through qemu's binfmt_misc entries: where no systemd-binfmt
  # registers them (containers, minimal VMs), mount binfmt_misc and let binfmt-support register them.
  if [ ! -e /proc/sys/fs/binfmt_misc/status ]; then mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null || true; fi
  if command -v update-binfmts >/dev/null; then update-binfmts --enable >/dev/null 2>&1 || true; fi
fi
if [ -z "$node_bin" ]; then
  echo "setup-host.sh: node is not installed (nsmatrix needs Node >= 20.19)" >&2
  exit 2
fi
"$node_bin" -e 'const [a,b]=process.versions.node.split(".").map(Number); if (a<20 || (a===20 && b<19)) { console.error("nsmatrix needs Node >= 20.19, found " + process.version); process.exit(2) }'

# The command on PATH. Its first lines name the program it runs: nsmatrix prints `nsmatrix` in rerun commands
# only when the nsmatrix on PATH runs this very checkout.
quote() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }
mkdir -p "$bin_dir"
tmp=$(mktemp "$bin_dir/.nsmatrix.XXXXXX")
cat >"$tmp" <<WRAPPER
#!/bin/sh
# nsmatrix-wrapper: $repo/dist/src/cli/main.js
# Installed by $repo/scripts/setup-host.sh. Starting containers needs root: as another user, the commands that
# do (run, shell, images, gc) go through sudo.
main=$(quote "$repo/dist/src/cli/main.js")
node=$(quote "$node_bin")
# Node would parse the certificates NODE_EXTRA_CA_CERTS names before running anything (~40 ms); nsmatrix loads them
# only for its https downloads (src/cli/bin.ts).
if [ -n "\${NODE_EXTRA_CA_CERTS:-}" ]; then
  NSMATRIX_EXTRA_CA_CERTS=\$NODE_EXTRA_CA_CERTS
  export NSMATRIX_EXTRA_CA_CERTS
  unset NODE_EXTRA_CA_CERTS
fi
if [ "\$(id -u)" != 0 ]; then
  case "\${1:-}" in run|shell|images|gc) exec sudo "\$node" "\$main" "\$@" ;; esac
fi
exec "\$node" "\$main" "\$@"
WRAPPER
chmod 755 "$tmp"
mv -f "$tmp" "$bin_dir/nsmatrix"
build
echo "setup-host.sh: host ready ($(systemd-nspawn --version 2>/dev/null | head -1 || echo 'systemd-nspawn missing')); nsmatrix is $bin_dir/nsmatrix"
