#!/bin/bash
# Inside the VM: a pair of nodes, their goodput both ways on a channel and the rig's L2CAP capacity
# beside it (and the bluetoothd check), steps of guest-ble.sh,
# to iterate on it without the whole tier. The tier itself always runs guest-ble.sh.
export PIGEON_VM_ONLY=capacity
exec /bin/bash /src/tests/bluez/guest-ble.sh
