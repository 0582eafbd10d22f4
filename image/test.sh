#!/usr/bin/env bash
# make image-test: boot the built image's own kernel and root filesystem under
# qemu-system-aarch64 -M virt (software emulation), wait for pigeon-node.service to report
# READY, check `pigeon selftest`, fetch the web page through a forwarded loopback port, power
# off, and print the figures. The image itself is not modified (a sparse copy is booted).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$repo/pyproject.toml" | head -1)
image=${1:-$repo/build/pigeon-node-$version-arm64.img}
port=${PIGEON_TEST_PORT:-18443}
[[ -f "$image" ]] || { echo "no image at $image: run make image first"; exit 1; }
work=$(mktemp -d) && trap 'kill $qemu 2>/dev/null || true; rm -rf "$work"' EXIT
qemu=
cp --sparse=always "$image" "$work/disk.img"
truncate -s +512M "$work/disk.img"  # a larger "card": first boot must grow the root into it
boot="$work/disk.img@@4M"  # the FAT partition starts at 4 MiB (image/genimage.cfg.in)
kernel=$(mdir -b -i "$boot" :: | sed -n 's|^::/||p' | grep -m1 '^vmlinuz')
initrd=$(mdir -b -i "$boot" :: | sed -n 's|^::/||p' | grep -m1 '^initrd')
mcopy -i "$boot" "::$kernel" "$work/vmlinuz"
mcopy -i "$boot" "::$initrd" "$work/initrd.img"
mcopy -i "$boot" "$here/guest-test.sh" ::pigeon-image-test.sh

start=$(date +%s.%N)
# restrict=on: the guest reaches nothing but the forwarded port.
qemu-system-aarch64 -M virt -cpu cortex-a72 -smp 2 -m 1024 -nographic -no-reboot \
    -kernel "$work/vmlinuz" -initrd "$work/initrd.img" \
    -append "root=LABEL=pigeonroot rw console=ttyAMA0 panic=-1 systemd.wants=multi-user.target systemd.run=\"/bin/sh /boot/firmware/pigeon-image-test.sh\" systemd.run_success_action=poweroff systemd.run_failure_action=poweroff" \
    -drive "file=$work/disk.img,format=raw,if=virtio" \
    -nic "user,restrict=on,hostfwd=tcp:127.0.0.1:$port-:8443" > "$work/console.log" 2>&1 &
qemu=$!
page="not fetched"
while kill -0 "$qemu" 2>/dev/null; do
    if grep -q "PIGEON-IMAGE-TEST: READY" "$work/console.log" && [[ "$page" == "not fetched" ]]; then
        ready_wall=$(echo "$(date +%s.%N) - $start" | bc)
        page=$(curl -sk -o /dev/null -w '%{http_code} in %{time_total}s' "https://127.0.0.1:$port/" || echo failed)
    fi
    sleep 2
done
cp "$work/console.log" "$repo/build/image-test-console.log"
grep -a "PIGEON-IMAGE-TEST" "$work/console.log" | tr -d '\r'
line() { grep -a "PIGEON-IMAGE-TEST: $1" "$work/console.log" | tr -d '\r' | head -1; }
service=$(line SERVICE)
ready_us=$(sed -n 's/.*ready_us=\([0-9]*\).*/\1/p' <<< "$service")
start_us=$(sed -n 's/.*start_us=\([0-9]*\).*/\1/p' <<< "$service")
echo
echo "image:            $(du -h --apparent-size "$image" | cut -f1) raw, $(du -h "$image.xz" 2>/dev/null | cut -f1) xz"
echo "power-on to READY (guest clock): $(echo "scale=1; ${ready_us:-0} / 1000000" | bc) s"
echo "service start to READY:          $(echo "scale=1; (${ready_us:-0} - ${start_us:-0}) / 1000000" | bc) s"
echo "wall clock to READY (emulated):  ${ready_wall:-never} s"
echo "web page through forwarded port: $page"
host=$(line HOSTNAME | sed 's/.*HOSTNAME //')
node=$(line NODE | sed 's/.*NODE //')
failed=$(line FAILED_UNITS | sed 's/.*FAILED_UNITS //')
root_mb=$(line ROOT_MB | sed 's/.*ROOT_MB //')
image_root_mb=$(( ($(stat -c %s "$image") - 260 * 1024 * 1024) / 1024 / 1024 ))
echo "root file system after first boot: ${root_mb:-?} MB (root partition in the image: ${image_root_mb} MB)"
echo "host name / node name:           $host / $node"
echo "failed units:                    $failed"
grep -q "state=active" <<< "$service" && grep -aq "SELFTEST ok" "$work/console.log" \
    && [[ "$page" == 200* || "$page" == 30* ]] && [[ -n "$host" && "$host" == "$node" ]] \
    && [[ "$failed" == "[]" ]] && (( ${root_mb:-0} > image_root_mb ))
