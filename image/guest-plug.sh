#!/bin/sh
# Runs at every boot of the pulled-plug test (make image-pulled-plugs) inside the flashed image:
# says how the root file system came up, waits for the node to report READY by itself, prints
# the ledger of stored texts and envelopes (bench/image_plug_guest.py check: texts read back
# through the node's web API, envelopes from the neighbourhood mailbox's store), then starts
# that mailbox (`pigeon relay` on loopback) and sends traffic through the node's own interfaces
# until the host kills the machine; with pigeon.final on the command line it powers off.
# The first boot also pairs a browser with the node and adds the contact the texts go to.
set -u
say() { echo "PLUG: $*" > /dev/console; }
. /boot/firmware/guest-emulation.sh
say "BOOT uptime=$(cut -d' ' -f1 /proc/uptime)"
# fsck in the initramfs (fsck.repair=yes) and the journal replay at mount, as the kernel told it.
[ -f /run/initramfs/fsck.log ] && sed 's/^/PLUG: FSCK /' /run/initramfs/fsck.log > /dev/console
dmesg | grep -E 'EXT4-fs|recovery' | sed 's/^/PLUG: KERNEL /' > /dev/console
conf=/etc/pigeon/node.toml
py=/opt/pigeon/venv/bin/python
as_node() { runuser -u pigeon -- "$@"; }  # the node's user, as the node itself runs
guest() {  # its PLUG lines go to the console (only root may open it)
    as_node $py /boot/firmware/image_plug_guest.py "$@" > /dev/console 2> /tmp/plug.err ||
        tail -3 /tmp/plug.err > /dev/console
}
if ! grep -q '^kind = "sim"' "$conf"; then  # first boot: the node on its stand-ins from now on
    sed -i -f /boot/firmware/stand-ins.sed "$conf"
    systemctl stop pigeon-node.service
    install -d -o pigeon -g pigeon -m 0700 /var/lib/pigeon /var/lib/pigeon-plug
    guest pair  # a paired browser for the test, through the node's pairing code
    sync
    systemctl start --no-block pigeon-node.service
fi
node_active
say "NODE $(systemctl show -p ActiveState --value pigeon-node.service) uptime=$(cut -d' ' -f1 /proc/uptime)"
say "FAILED_UNITS [$(systemctl --failed --no-legend --plain | awk '{print $1}' | tr '\n' ' ')]"
guest setup  # the contact Robin, added through the page (first boot only)
guest check
if grep -qw pigeon.final /proc/cmdline; then
    say "FINAL"
    exit 0
fi
as_node /opt/pigeon/venv/bin/pigeon relay --listen 127.0.0.1:8765 --data /var/lib/pigeon-plug/relay \
    > /tmp/relay.log 2>&1 &
say "TRAFFIC uptime=$(cut -d' ' -f1 /proc/uptime)"
runuser -u pigeon -- $py /boot/firmware/image_plug_guest.py traffic \
    "$(cut -c1-8 /proc/sys/kernel/random/boot_id)" > /dev/console 2>&1
say "TRAFFIC ENDED: it runs until the host kills the machine; see the lines above"
