#!/usr/bin/env bash
# make image-wear: SD-card wear of the built image, measured inside it under QEMU virt from the
# guest's own block counters (bench/image_wear_guest.py): bytes written per idle hour (an idle
# window of PIGEON_WEAR_IDLE_S seconds, scaled), first as built ("before"), then in the same boot
# after the worktree's versions of PIGEON_WEAR_AFTER (files under node/, default the spool sync
# that stopped rewriting an unchanged seen-cache) and image/wear-after.sh, if present, were put in
# place ("after"), with bytes per 1,000 envelopes relayed and per 1,000 texts. Both idle windows
# are traced in the guest (bench/image_wear_trace.py; raw traces to build/image-wear-trace-*.txt).
# Records bench/results/image.json `wear_before` and `wear_after` (PIGEON_WEAR_RECORD sets the
# prefix). The image itself is not modified.
# Usage: image/wear.sh [IMAGE]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$repo/pyproject.toml" | head -1)
image=${1:-$repo/build/pigeon-node-$version-arm64.img}
idle_s=${PIGEON_WEAR_IDLE_S:-600}
after=${PIGEON_WEAR_AFTER:-pigeon/daemon/spool_sync.py}
record=${PIGEON_WEAR_RECORD:-wear}  # results sections ${record}_before and ${record}_after
[[ -f "$image" ]] || { echo "no image at $image: run make image first"; exit 1; }
work=$(mktemp -d) && trap 'kill $qemu 2>/dev/null || true; rm -rf "$work"' EXIT
qemu=
source "$here/emulation-card.sh"
emulation_card "$image" "$work" +512M
mcopy -i "$boot" "$here/guest-wear.sh" ::pigeon-image-wear.sh
mcopy -i "$boot" "$repo/bench/image_wear_guest.py" ::image_wear_guest.py
mcopy -i "$boot" "$repo/bench/image_wear_trace.py" ::image_wear_trace.py
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
for label in before after; do  # the idle windows' raw traces, if the guest kernel gave them
    mcopy -o -i "$boot" "::wear-trace-$label.txt" "$repo/build/image-wear-trace-$label.txt" 2>/dev/null || true
done
grep -a "PIGEON-IMAGE-WEAR" "$work/console.log" | tr -d '\r'
n=0
for label in before after; do
    n=$((n + 1))  # the guest says MOUNT before each window, in this order
    mount_options=$(grep -a "PIGEON-IMAGE-WEAR: MOUNT" "$work/console.log" | tr -d '\r' | sed 's/.*MOUNT //' | sed -n "${n}p")
    result=$(grep -a "PIGEON-IMAGE-WEAR: RESULT $label {" "$work/console.log" | tr -d '\r' | sed "s/.*RESULT $label //")
    [[ -n "$result" ]] || { echo "no $label figures: see build/image-wear-console.log"; exit 1; }
    python3 "$repo/bench/image_record.py" "${record}_$label" "figures=$result" "root_mount=$mount_options" \
        "idle_window_s=$idle_s" "measured=$(date -u +%FT%TZ)"
done
python3 "$repo/bench/image_record.py" "${record}_after" "changed=$after"
