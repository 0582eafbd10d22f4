#!/usr/bin/env bash
# Build the root filesystem of the BlueZ test VM (Debian bookworm amd64, Debian's own kernel,
# which has the hci_vhci module that this machine's kernel lacks) as an ext4 image, without
# mounting anything. Needs root. Output: $CACHE/root.img, $CACHE/vmlinuz, $CACHE/initrd.img.
# Python wheels are downloaded on the host so nothing inside the VM needs a network. bitchat-cli
# (PyPI, a pure-Python wheel; with prompt-toolkit and wcwidth) is the bitchat client the bitchat
# steps run against (tests/bluez/bitchat_client.py), never part of the node.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
CACHE=${CACHE:-$here/cache}
mkdir -p "$CACHE/wheels"
stamp="$CACHE/root.img.stamp"
inputs=$(cat "$0" "$repo/pyproject.toml" "$here/build-btvirt.sh" "$here/btvirt-handles.patch" |
    sha256sum | cut -c1-16)
if [[ -f "$stamp" && "$(cat "$stamp")" == "$inputs" && -f "$CACHE/root.img" ]]; then
    echo "rootfs up to date: $CACHE/root.img"
    exit 0
fi

echo "== downloading wheels for the guest (CPython 3.11, x86_64)"
"${PIP:-pip}" download --quiet --only-binary=:all: --python-version 3.11 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
    -d "$CACHE/wheels" bleak dbus-fast cryptography pynacl aiohttp bitchat-cli==0.2.3

echo "== btvirt with the rig's emulator fixes (tests/bluez/build-btvirt.sh)"
bash "$here/build-btvirt.sh" "$CACHE/btvirt"

rootdir=$(mktemp -d "$CACHE/rootfs.XXXXXX")
trap 'rm -rf "$rootdir"' EXIT
echo "== mmdebstrap (about 2 minutes)"
mmdebstrap --quiet --variant=minbase \
    --include=linux-image-amd64,initramfs-tools,kmod,udev,dbus,bluez,bluez-test-tools,python3,python3-venv,procps,iproute2 \
    --customize-hook='copy-in '"$CACHE/wheels"' /opt' \
    --customize-hook='chroot "$1" python3 -m venv /opt/venv' \
    --customize-hook='chroot "$1" /opt/venv/bin/pip install --quiet --no-index --find-links /opt/wheels bleak dbus-fast cryptography pynacl aiohttp bitchat-cli==0.2.3' \
    --customize-hook='echo "pigeon-bluez-vm" > "$1/etc/hostname"' \
    bookworm "$rootdir"

cp "$rootdir"/boot/vmlinuz-* "$CACHE/vmlinuz"
cp "$rootdir"/boot/initrd.img-* "$CACHE/initrd.img"
install -m 0755 "$here/guest-init.sh" "$rootdir/sbin/pigeon-test-init"
install -m 0755 "$CACHE/btvirt" "$rootdir/usr/local/bin/btvirt"
rm -f "$CACHE/root.img"
mkfs.ext4 -q -L pigeonroot -d "$rootdir" "$CACHE/root.img" 2G
echo "$inputs" > "$stamp"
echo "rootfs ready: $CACHE/root.img"
