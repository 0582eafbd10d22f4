#!/usr/bin/env bash
# Build the VM's btvirt (BlueZ's virtual controllers) from Debian bookworm's BlueZ 5.66 source
# with tests/bluez/btvirt-handles.patch, static, into $1. Two emulator faults, each of which
# real controllers never show, fed bluetoothd a connection it already had ("Device ... is
# already connected", "No matching connection for device") and once crashed it (SIGSEGV):
# - The two ends of a link could get different handles (each end took its own lowest free
#   one) while the peripheral's LE Connection Complete and all ACL data carry the central's:
#   any node that already held a link got the new one under a handle in use.
# - A controller reset (an adapter power cycle) dropped its links without the remote end ever
#   hearing of it; a real remote controller reports a supervision timeout (0x08).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$1
url=http://deb.debian.org/debian/pool/main/b/bluez/bluez_5.66.orig.tar.xz
sha256=a231fb9d151780edf6d2536c81914e2dbd3daa36b68f486badaf98a7f34021e4
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -c 'import sys, urllib.request; urllib.request.urlretrieve(sys.argv[1], sys.argv[2])' \
    "$url" "$work/bluez.tar.xz"
echo "$sha256  $work/bluez.tar.xz" | sha256sum --check --quiet
tar -xJf "$work/bluez.tar.xz" -C "$work"
cd "$work/bluez-5.66"
patch --quiet -p1 < "$here/btvirt-handles.patch"
# btvirt needs no configure step: only libc, BlueZ's own headers and a version.
echo '#define VERSION "5.66"' > config.h
mkdir -p lib/bluetooth && cp lib/*.h lib/bluetooth/
gcc -O2 -static -DHAVE_CONFIG_H -I. -Ilib -o "$out" \
    emulator/main.c emulator/serial.c emulator/server.c emulator/vhci.c emulator/btdev.c \
    emulator/bthost.c emulator/smp.c emulator/phy.c emulator/amp.c emulator/le.c \
    src/shared/queue.c src/shared/util.c src/shared/crypto.c src/shared/ecc.c \
    src/shared/ringbuf.c src/shared/io-mainloop.c src/shared/timeout-mainloop.c \
    src/shared/mainloop.c src/shared/mainloop-notify.c lib/bluetooth.c lib/hci.c
echo "btvirt built: $out"
