"""BLE transport on BlueZ: central with bleak, peripheral and adapter on dbus-fast."""
