#!/usr/bin/env bash
# Installs edgesep with its test tools and the Debian packages its device tests use.
# torch 2.14.1 + torchvision 0.29.1 are pinned together: they work with each other on this CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  need=""
  for tool in sshd:openssh-server ssh:openssh-client adb:adb qemu-aarch64-static:qemu-user-static debootstrap:debootstrap; do
    command -v "${tool%%:*}" >/dev/null 2>&1 || [ -x "/usr/sbin/${tool%%:*}" ] || need="$need ${tool##*:}"
  done
  if [ -n "$need" ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need
  fi
fi
python -m pip install -q "torch==2.14.1" "torchvision==0.29.1"
python -m pip install -q -e ".[test]"
