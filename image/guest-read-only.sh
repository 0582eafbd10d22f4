#!/bin/sh
# Runs at each boot of the read-only card test (make image-read-only) inside the flashed image,
# then powers off. The phase comes from the kernel command line (pigeon.ro_phase=N):
# 1 (card writable): the node on its stand-ins, a paired browser and the contact Robin; texts
#   stored through the owner's API; then the card turns read-only under the running node
#   (sysrq's emergency remount, as ext4 does after write errors) and the owner's view is read:
#   the node must say so, keep running, refuse new texts and still show the stored ones.
# 2 (the card attached read-only, as a card that locked itself): the node must boot and say so,
#   show the stored texts and refuse new ones.
# 3 (card writable again): the node must say nothing is wrong, show every stored text once, and
#   store a new one.
set -u
say() { echo "CARD: $*" > /dev/console; }
. /boot/firmware/guest-emulation.sh
phase=$(sed -n 's/.*pigeon\.ro_phase=\([0-9]\).*/\1/p' /proc/cmdline)
say "BOOT phase=$phase uptime=$(cut -d' ' -f1 /proc/uptime) root=$(findmnt -n -o OPTIONS / | cut -d, -f1)"
conf=/etc/pigeon/node.toml
py=/opt/pigeon/venv/bin/python
guest() {  # the owner's side, as the node's user; its CARD lines go to the console
    script=$1 && shift
    runuser -u pigeon -- $py "/boot/firmware/$script" "$@" > /run/card-guest.out 2> /run/card-guest.err
    sed -n 's/^\(CARD\|PLUG\): /CARD: /p' /run/card-guest.out > /dev/console
    tail -3 /run/card-guest.err | sed 's/^/CARD: ERROR /' > /dev/console
}
node_facts() {
    say "NODE $(systemctl show -p ActiveState --value pigeon-node.service) restarts=$(systemctl show -p NRestarts --value pigeon-node.service)"
    say "STATUS $(systemctl show -p StatusText --value pigeon-node.service)"
}
if [ "$phase" = 1 ]; then
    sed -i -f /boot/firmware/stand-ins.sed "$conf"
    node_active
    systemctl stop pigeon-node.service
    install -d -o pigeon -g pigeon -m 0700 /var/lib/pigeon /var/lib/pigeon-plug
    runuser -u pigeon -- $py /boot/firmware/image_plug_guest.py pair
    sync
    systemctl start --no-block pigeon-node.service
fi
node_active
guest image_plug_guest.py setup
if [ "$phase" = 1 ]; then
    guest image_card_guest.py texts "ro$phase" 10
    guest image_card_guest.py card none 300
    sync
    echo u > /proc/sysrq-trigger  # every block-device file system read-only, open files or not
    say "LOCKED root=$(findmnt -n -o OPTIONS / | cut -d, -f1)"
    guest image_card_guest.py card read-only 300
    guest image_card_guest.py refused "ro$phase"
elif [ "$phase" = 2 ]; then
    guest image_card_guest.py card read-only 600
    guest image_card_guest.py refused "ro$phase"
else
    guest image_card_guest.py card none 600
    guest image_card_guest.py texts "ro$phase" 1
fi
guest image_card_guest.py have
node_facts
say "FAILED_UNITS [$(systemctl --failed --no-legend --plain | awk '{print $1}' | tr '\n' ' ')]"
journalctl -u pigeon-node.service -o cat --no-pager | grep -iE 'card|read-only|error' | tail -8 \
    | sed 's/^/CARD: JOURNAL /' > /dev/console
say "DONE phase=$phase"
