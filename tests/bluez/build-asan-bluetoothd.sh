#!/usr/bin/env bash
# Build bluetoothd from Debian bookworm's BlueZ 5.66 source with AddressSanitizer into $1, for
# diagnosing bluetoothd crashes in the VM tier: `BLUETOOTHD=$1 tests/bluez/run-vm.sh ...` runs it
# in place of the image's bluetoothd and leaves its reports in OUT/asan.PID. Not part of
# `make test-bluez`, which tests Debian's own binary. Needs the build tools below (root installs
# them). ASan also reports "attempting free on address which was not malloc()-ed" from glib's
# and libc's allocations made before it starts: noise; look for heap-use-after-free and friends.
set -euo pipefail
out=$(realpath -m "$1")
url=http://deb.debian.org/debian/pool/main/b/bluez/bluez_5.66.orig.tar.xz
sha256=a231fb9d151780edf6d2536c81914e2dbd3daa36b68f486badaf98a7f34021e4
if [[ $(id -u) -eq 0 ]]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q autoconf automake libtool pkg-config \
        gcc make libglib2.0-dev libdbus-1-dev libudev-dev xz-utils > /dev/null
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -c 'import sys, urllib.request; urllib.request.urlretrieve(sys.argv[1], sys.argv[2])' \
    "$url" "$work/bluez.tar.xz"
echo "$sha256  $work/bluez.tar.xz" | sha256sum --check --quiet
tar -xJf "$work/bluez.tar.xz" -C "$work"
cd "$work/bluez-5.66"
./bootstrap > /dev/null 2>&1
# The daemon's paths as Debian's, every optional part off, the LE GATT core kept.
./configure --prefix=/usr --sysconfdir=/etc --localstatedir=/var --libexecdir=/usr/libexec \
    --disable-obex --disable-cups --disable-mesh --disable-midi --disable-manpages \
    --disable-monitor --disable-client --disable-tools --disable-systemd --disable-udev \
    --disable-datafiles --disable-a2dp --disable-avrcp --disable-network --disable-hid \
    --disable-hog --disable-bap --disable-mcp --disable-vcp \
    CFLAGS="-g -O1 -fsanitize=address -fsanitize-recover=address -fno-omit-frame-pointer" \
    LDFLAGS="-fsanitize=address -static-libasan" > /dev/null
mkdir -p lib/bluetooth && cp lib/*.h lib/bluetooth/
make src/builtin.h > /dev/null
make -j"$(nproc)" src/bluetoothd > /dev/null
cp src/bluetoothd "$out"
echo "built $out"
