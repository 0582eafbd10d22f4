#!/usr/bin/env bash
# make image-wear: SD-card wear of the built image, measured inside it under QEMU virt from the
# guest's own block counters (bench/image_wear_guest.py): bytes written per idle hour (an idle
# window of PIGEON_WEAR_IDLE_S seconds, scaled), first as built ("before"), then in the same boot
# after the worktree's versions of PIGEON_WEAR_AFTER (files under node/, default the spool sync
# that stopped rewriting an unchanged seen-cache) and image/wear-after.sh, if present, were put in
# place ("after"), with bytes per 1,000 envelopes relayed and per 1,000 texts. Records
# bench/results/image.json `wear_before` and `wear_after`. The image itself is not modified.
# Usage: image/wear.sh [IMAGE]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$repo/pyproject.toml" | head -1)
image=${1:-$repo/build/pigeon-node-$version-arm64.img}
idle_s=${PIGEON_WEAR_IDLE_S:-600}
after=${PIGEON_WEAR_AFTER:-pigeon/daemon/spool_sync.py}
[[ -f "$image" ]] || { echo "no image at $image: run make image first"; exit 1; }
work=$(mktemp -d) && trap 'kill $qemu 2>/dev/null || true; rm -rf "$work"' EXIT
qemu=
cp --sparse=always "$image" "$work/disk.img"
truncate -s +512M "$work/disk.img"
source "$here/emulation-fstab.sh"
allow_slow_boot_partition "$work/disk.img"
boot="$work/disk.img@@4M"  # the FAT partition starts at 4 MiB (image/genimage.cfg.in)
kernel=$(mdir -b -i "$boot" :: | sed -n 's|^::/||p' | grep -m1 '^vmlinuz')
initrd=$(mdir -b -i "$boot" :: | sed -n 's|^::/||p' | grep -m1 '^initrd')
mcopy -i "$boot" "::$kernel" "$work/vmlinuz"
mcopy -i "$boot" "::$initrd" "$work/initrd.img"
mcopy -i "$boot" "$here/guest-wear.sh" ::pigeon-image-wear.sh
mcopy -i "$boot" "$here/guest-emulation.sh" ::guest-emulation.sh
mcopy -i "$boot" "$repo/bench/image_wear_guest.py" ::image_wear_guest.py
mkdir -p "$work/wear-after"
for file in $after; do
    mkdir -p "$work/wear-after/$(dirname "$file")"
    cp "$repo/node/$file" "$work/wear-after/$file"
done
[[ -f "$here/wear-after.sh" ]] && cp "$here/wear-after.sh" "$work/wear-after/apply.sh"
mcopy -s -i "$boot" "$work/wear-after" ::wear-after
# Emulation under load can take minutes to find the boot partition; a Pi takes a second.
run='systemd.default_timeout_start_sec=900 systemd.wants=multi-user.target systemd.run="/bin/sh /boot/firmware/pigeon-image-wear.sh" systemd.run_success_action=poweroff systemd.run_failure_action=poweroff panic=-1'
qemu-system-aarch64 -M virt -cpu cortex-a72 -smp 2 -m 1024 -nographic -no-reboot \
    -kernel "$work/vmlinuz" -initrd "$work/initrd.img" \
    -append "root=LABEL=pigeonroot rw console=ttyAMA0 pigeon.idle_s=$idle_s $run" \
    -drive "file=$work/disk.img,format=raw,if=virtio" -nic none \
    > "$work/console.log" 2>&1 < /dev/null &
qemu=$!
wait "$qemu" || true
cp "$work/console.log" "$repo/build/image-wear-console.log"
grep -a "PIGEON-IMAGE-WEAR" "$work/console.log" | tr -d '\r'
mount_options=$(grep -a "PIGEON-IMAGE-WEAR: MOUNT" "$work/console.log" | tr -d '\r' | sed 's/.*MOUNT //' | tail -1)
for label in before after; do
    result=$(grep -a "PIGEON-IMAGE-WEAR: RESULT $label {" "$work/console.log" | tr -d '\r' | sed "s/.*RESULT $label //")
    [[ -n "$result" ]] || { echo "no $label figures: see build/image-wear-console.log"; exit 1; }
    python3 "$repo/bench/image_record.py" "wear_$label" "figures=$result" "root_mount=$mount_options" \
        "idle_window_s=$idle_s" "measured=$(date -u +%FT%TZ)"
done
python3 "$repo/bench/image_record.py" wear_after "changed=$after"
