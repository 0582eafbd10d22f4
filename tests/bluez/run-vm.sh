#!/usr/bin/env bash
# Boot the BlueZ test VM and run one guest script from this repo inside it.
# Usage: tests/bluez/run-vm.sh tests/bluez/guest-<name>.sh OUTDIR
# The repo is shared read-only at /src, OUTDIR read-write at /out. Exit status: the script's.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
CACHE=${CACHE:-$here/cache}
script=$1
out=$(mkdir -p "$2" && cd "$2" && pwd)
rm -f "$out/exit-status" "$out/guest.log" "$out/bluetoothd-under-test"
# BLUETOOTHD: a bluetoothd to run in place of the image's (build-asan-bluetoothd.sh), for
# diagnosing a crash; the guest picks it up from OUTDIR.
if [[ -n "${BLUETOOTHD:-}" ]]; then cp "$BLUETOOTHD" "$out/bluetoothd-under-test"; fi
# Nested KVM hangs on this kind of machine; software emulation boots in about 30 s.
timeout "${VM_TIMEOUT_S:-600}" qemu-system-x86_64 -machine q35 -accel tcg -cpu max -m 1024 -smp 2 \
    -nographic -no-reboot \
    -kernel "$CACHE/vmlinuz" -initrd "$CACHE/initrd.img" \
    -append "root=/dev/vda rw console=ttyS0 panic=-1 quiet init=/sbin/pigeon-test-init pigeon.test=$script" \
    -drive "file=$CACHE/root.img,format=raw,if=virtio,snapshot=on" \
    -virtfs "local,path=$repo,mount_tag=src,security_model=none,readonly=on" \
    -virtfs "local,path=$out,mount_tag=out,security_model=none" \
    -nic none > "$out/console.log" 2>&1 || true
if [[ ! -f "$out/exit-status" ]]; then
    echo "the VM did not finish its script; see $out/console.log" >&2
    exit 2
fi
exit "$(cat "$out/exit-status")"
