#!/usr/bin/env bash
# Install what the BlueZ VM rig needs on the host (Debian/Ubuntu), if it is missing:
# mmdebstrap and e2fsprogs to build the root filesystem, QEMU to boot it. Needs root.
set -euo pipefail
missing=()
command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
command -v mkfs.ext4 >/dev/null || missing+=(e2fsprogs)
if ((${#missing[@]})); then
    echo "== installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
