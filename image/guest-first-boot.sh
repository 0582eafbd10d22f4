#!/bin/sh
# Runs at every boot of the first-boot power-cut test (make image-first-boot-plugs) inside the
# flashed image: says how far the boot got (the first-boot service, the node), so the host
# knows where each kill landed; with pigeon.final on the command line it then checks the node
# came up by itself and powers off.
set -u
say() { echo "FIRSTBOOT: $*" > /dev/console; }
. /boot/firmware/guest-emulation.sh
up() { cut -d' ' -f1 /proc/uptime; }
say "BOOT uptime=$(up) root=$(findmnt -n -o OPTIONS / | cut -d, -f1)"
dmesg | grep -E 'EXT4-fs.*(recovery|error|orphan)' | sed 's/^/FIRSTBOOT: KERNEL /' > /dev/console
[ -f /run/initramfs/fsck.log ] && sed 's/^/FIRSTBOOT: FSCK /' /run/initramfs/fsck.log > /dev/console
firstboot=no node=no
while :; do
    if [ $firstboot = no ] && [ -e /var/lib/pigeon/.firstboot-done ]; then
        firstboot=yes && say "FIRSTBOOT_DONE uptime=$(up)"
    fi
    if [ $node = no ] && [ "$(systemctl show -p ActiveState --value pigeon-node.service)" = active ]; then
        node=yes && say "NODE_ACTIVE uptime=$(up)"
    fi
    [ $firstboot = yes ] && [ $node = yes ] && break
    grep -qw pigeon.final /proc/cmdline || { sleep 1; continue; }
    [ "$(cut -d. -f1 /proc/uptime)" -gt 1800 ] && break
    sleep 1
done
# Not the last boot: stay (the host kills the machine); ending would power it off.
grep -qw pigeon.final /proc/cmdline || exec sleep infinity
say "SERVICE $(systemctl show -p ActiveState --value pigeon-node.service) restarts=$(systemctl show -p NRestarts --value pigeon-node.service)"
say "STATUS $(systemctl show -p StatusText --value pigeon-node.service)"
if /opt/pigeon/venv/bin/pigeon selftest > /run/selftest.log 2>&1; then
    say "SELFTEST ok $(tail -1 /run/selftest.log)"
else
    say "SELFTEST failed $(tail -1 /run/selftest.log)"
fi
say "ROOT_MB $(df -m --output=size / | tail -1 | tr -d ' ')"
say "SSH_HOST_KEYS $(for k in /etc/ssh/ssh_host_*_key; do ssh-keygen -l -f "$k" > /dev/null 2>&1 && echo ok || echo "broken:$k"; done | sort | uniq -c | tr '\n' ' ')"
say "FAILED_UNITS [$(systemctl --failed --no-legend --plain | awk '{print $1}' | tr '\n' ' ')]"
journalctl -u pigeon-node.service -o cat --no-pager | tail -5 | sed 's/^/FIRSTBOOT: JOURNAL /' > /dev/console
say "FINAL"
