"""BLE transport on BlueZ: central with bleak, peripheral and adapter on dbus-fast.

Importing this package imports neither bleak nor dbus-fast: `gatt`, `policy` and `errors` are
pure, and `adapter`, `peripheral`, `central` and `transport` import their libraries lazily, so
`import pigeon` works on a machine without BlueZ. The entry point is
`pigeon.transport.ble.transport.BleTransport`.
"""
