#!/usr/bin/env bash
# Stage 1 of the SD-card image: a Debian bookworm arm64 root filesystem from Debian's archive
# only (main + non-free-firmware), built on any host through qemu-user binfmt. Needs root.
# The result is cached as a tarball keyed by this script, so a rebuild skips this stage.
# Usage: image/build-rootfs.sh CACHE_DIR  -> prints the tarball path on its last line.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=$(mkdir -p "$1" && cd "$1" && pwd)
key=$(sha256sum "$0" | cut -c1-12)
tarball="$cache/rootfs-bookworm-arm64-$key.tar"
if [[ -f "$tarball" ]]; then
    echo "cached: $tarball"
    echo "$tarball"
    exit 0
fi

[[ $EUID -eq 0 ]] || { echo "building the image needs root (chroot, device nodes)" >&2; exit 1; }
if [[ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]]; then
    [[ -e /proc/sys/fs/binfmt_misc/register ]] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
    update-binfmts --enable qemu-aarch64
fi

packages=(
    # boot: Debian's Pi firmware writes config.txt and cmdline.txt itself from /etc/default
    raspi-firmware linux-image-arm64 initramfs-tools
    firmware-brcm80211 bluez-firmware wireless-regdb
    systemd-sysv udev dbus kmod ifupdown- netbase
    bluez avahi-daemon libnss-mdns network-manager wpasupplicant
    openssh-server systemd-timesyncd unattended-upgrades apt-listchanges-
    cloud-guest-utils e2fsprogs dosfstools fdisk parted
    i2c-tools python3 python3-venv python3-rpi.gpio python3-smbus2
    sudo less nano ca-certificates iproute2 iputils-ping rfkill
)

# update-initramfs would run for every kernel-related package under emulation; divert it
# during installation and run it once at the end (halves the build time).
echo "== mmdebstrap bookworm arm64 (10-20 minutes under emulation)"
mmdebstrap --architectures=arm64 --variant=minbase --format=tar \
    --components="main non-free-firmware" \
    --include="$(IFS=,; echo "${packages[*]}")" \
    --essential-hook='chroot "$1" dpkg-divert --local --rename --add /usr/sbin/update-initramfs' \
    --essential-hook='printf "#!/bin/sh\nexit 0\n" > "$1/usr/sbin/update-initramfs"; chmod +x "$1/usr/sbin/update-initramfs"' \
    --customize-hook='rm "$1/usr/sbin/update-initramfs"; chroot "$1" dpkg-divert --local --rename --remove /usr/sbin/update-initramfs' \
    --customize-hook='printf "ROOTPART=LABEL=pigeonroot\nCMA=64M\nCONSOLES=\"ttyS1,115200 tty0\"\n" > "$1/etc/default/raspi-firmware"' \
    --customize-hook='chroot "$1" update-initramfs -c -k all' \
    --customize-hook='rm -f "$1"/etc/ssh/ssh_host_*' \
    bookworm "$tarball.partial" "deb http://deb.debian.org/debian bookworm main non-free-firmware" \
    "deb http://deb.debian.org/debian bookworm-updates main non-free-firmware" \
    "deb http://deb.debian.org/debian-security bookworm-security main non-free-firmware"
mv "$tarball.partial" "$tarball"
echo "$tarball"
