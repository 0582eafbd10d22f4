#!/bin/sh
# Runs once inside the flashed image booted under QEMU (make image-wear), then powers off:
# the node on its stand-ins, settled after first boot; bench/image_wear_guest.py counts the
# bytes written to the card idle ("before": the image as built), then again after the changes
# under test were put in place in this boot (/boot/firmware/wear-after/, if any: files copied over
# the installed ones, a script run), then per 1,000 envelopes relayed and per 1,000 texts. The
# idle windows are traced (bench/image_wear_trace.py): which tasks and files wrote, in RESULT.
set -u
say() { echo "PIGEON-IMAGE-WEAR: $*" > /dev/console; }
. /boot/firmware/guest-emulation.sh
say "BOOTED uptime=$(cut -d' ' -f1 /proc/uptime)"
sed -i -f /boot/firmware/stand-ins.sed /etc/pigeon/node.toml
systemctl restart --no-block pigeon-node.service
node_active
say "SERVICE $(systemctl show -p ActiveState --value pigeon-node.service)"
# First boot's one-off work (growing the root, host keys, the node's keys) is not idle wear.
while [ ! -e /var/lib/pigeon/.firstboot-done ]; do sleep 5; done
idle_s=$(sed -n 's/.*pigeon.idle_s=\([0-9]*\).*/\1/p' /proc/cmdline)
py=/opt/pigeon/venv/bin/python
measure() {  # measure LABEL ARGS...
    label=$1 && shift
    sleep "${PIGEON_WEAR_SETTLE_S:-90}"
    say "MOUNT $(findmnt -n -o OPTIONS /)"
    $py /boot/firmware/image_wear_guest.py --data-dir /var/lib/pigeon/wear "$@" \
        > /tmp/wear.json 2> /tmp/wear.err
    say "RESULT $label $(tail -1 /tmp/wear.json)"
    tail -3 /tmp/wear.err > /dev/console
}
measure before --idle-s "$idle_s" --idle-only --trace /boot/firmware/wear-trace-before.txt
after=/boot/firmware/wear-after
if [ -d "$after" ]; then
    site=$($py -c 'import pigeon, os; print(os.path.dirname(pigeon.__file__))')
    (cd "$after/pigeon" 2>/dev/null && find . -name '*.py' -exec cp {} "$site/{}" \;)
    [ -f "$after/apply.sh" ] && sh "$after/apply.sh"
    systemctl restart --no-block pigeon-node.service
    node_active
    say "AFTER applied, node $(systemctl show -p ActiveState --value pigeon-node.service)"
    measure after --idle-s "$idle_s" --trace /boot/firmware/wear-trace-after.txt
else
    measure after --idle-s 0
fi
say "DONE"
