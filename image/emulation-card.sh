#!/usr/bin/env bash
# Sourced by the QEMU tests of the image: each boots its own copy of the card.
# Usage: emulation_card IMAGE WORK SIZE   (SIZE as truncate takes it: +512M, or a whole size)
#   WORK/disk.img: a sparse copy of IMAGE resized to SIZE (a larger card: the first boot grows
#   the root into it), with the slow-boot allowance below; WORK/vmlinuz and WORK/initrd.img: the
#   image's own kernel and initrd, for QEMU to load; guest-emulation.sh and stand-ins.sed put
#   on the card's boot partition for the guest scripts. Sets `boot`, that partition for mcopy -i.
# sed_card_root DISK_IMAGE FILE SED_ARGS... (as root): sed -i SED_ARGS on FILE of its root.
# allow_slow_boot_partition DISK_IMAGE (as root): emulation on a busy host can take longer than
#   systemd's 90 s to find the boot partition, and a node left in emergency mode tests nothing;
#   the copy's /etc/fstab waits up to 15 minutes for it instead.
EMULATION_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SLOW_BOOT_PARTITION_SED='/PIGEONBOOT/ s/defaults,noatime\(,nofail\)\?/defaults,noatime,x-systemd.device-timeout=15min/'
sed_card_root() {
    local disk=$1 file=$2 mnt
    shift 2
    mnt=$(mktemp -d)
    mount -o loop,offset=$((260 * 1024 * 1024)) "$disk" "$mnt"  # root after 4 MiB + 256 MiB FAT
    sed -i "$@" "$mnt$file"
    umount "$mnt"
    rmdir "$mnt"
}
allow_slow_boot_partition() {
    [[ $EUID -eq 0 ]] || return 0
    # Not nofail here: the test's own scripts are on that partition.
    sed_card_root "$1" /etc/fstab "$SLOW_BOOT_PARTITION_SED"
}
emulation_card() {
    local kernel initrd
    cp --sparse=always "$1" "$2/disk.img"
    truncate -s "$3" "$2/disk.img"
    allow_slow_boot_partition "$2/disk.img"
    boot="$2/disk.img@@4M"  # the FAT partition starts at 4 MiB (image/genimage.cfg.in)
    kernel=$(mdir -b -i "$boot" :: | sed -n 's|^::/||p' | grep -m1 '^vmlinuz')
    initrd=$(mdir -b -i "$boot" :: | sed -n 's|^::/||p' | grep -m1 '^initrd')
    mcopy -i "$boot" "::$kernel" "$2/vmlinuz"
    mcopy -i "$boot" "::$initrd" "$2/initrd.img"
    mcopy -i "$boot" "$EMULATION_DIR/guest-emulation.sh" ::guest-emulation.sh
    mcopy -i "$boot" "$EMULATION_DIR/stand-ins.sed" ::stand-ins.sed
}
