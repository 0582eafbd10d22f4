# Sourced by the guest scripts of the QEMU tests: software emulation on a busy host runs the
# guest many times slower than a Pi, so the node's start and watchdog limits are raised for this
# boot only (a drop-in in /run); what is tested is unchanged.
mkdir -p /run/systemd/system/pigeon-node.service.d
printf '[Service]\nTimeoutStartSec=1800\nWatchdogSec=900\n' \
    > /run/systemd/system/pigeon-node.service.d/emulation.conf
systemctl daemon-reload
# node_active [SECONDS]: wait until pigeon-node.service is active, saying how it goes meanwhile.
node_active() {
    waited=0
    until [ "$(systemctl show -p ActiveState --value pigeon-node.service)" = active ]; do
        [ "$waited" -ge "${1:-1800}" ] && return 1
        [ $((waited % 60)) -eq 0 ] && echo "EMULATION: node $(systemctl show -p ActiveState,SubState,NRestarts --value pigeon-node.service | tr '\n' ' ') after ${waited}s" > /dev/console
        sleep 5 && waited=$((waited + 5))
    done
}
