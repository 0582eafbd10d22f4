#!/usr/bin/env bash
# Sourced by the QEMU tests that run as root, on their copy of the card: emulation on a busy
# host can take longer than systemd's 90 s to find the boot partition, and a node left in
# emergency mode tests nothing. The copy's /etc/fstab waits up to 15 minutes for it instead.
# Usage: allow_slow_boot_partition DISK_IMAGE
SLOW_BOOT_PARTITION_SED='/PIGEONBOOT/ s/defaults,noatime\(,nofail\)\?/defaults,noatime,x-systemd.device-timeout=15min/'
allow_slow_boot_partition() {
    [[ $EUID -eq 0 ]] || return 0
    local mnt
    mnt=$(mktemp -d)
    mount -o loop,offset=$((260 * 1024 * 1024)) "$1" "$mnt"  # root after 4 MiB + 256 MiB FAT
    # Not nofail here: the test's own scripts are on that partition.
    sed -i "$SLOW_BOOT_PARTITION_SED" "$mnt/etc/fstab"
    umount "$mnt"
    rmdir "$mnt"
}
