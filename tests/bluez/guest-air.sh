#!/bin/bash
# Inside the VM: the air one link's frames cost on a channel and over GATT (a hub dialed by three
# nodes), a step of guest-ble.sh, to iterate on it without the whole tier.
export PIGEON_VM_ONLY=air
exec /bin/bash /src/tests/bluez/guest-ble.sh
