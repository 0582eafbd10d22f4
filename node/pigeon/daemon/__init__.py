"""The node daemon: the composition root that builds and runs everything from config.

`pigeon node` is `command`; `node.Node(config, NodeEnvironment(...)).run(stop) -> exit status`
is the whole node (the demo runs several in one process). Parts: `mesh_driver` (router and
transport), `endpoint` (the messenger on the mesh), `relay_bridge` (internet mailbox relays),
`oled_loop` (screens and buttons), `panel` and `status` (the web room's ports), `supervisor`
(restarts with backoff), `sdnotify` (systemd), `first_boot` and `node_messenger` (the vault's
passphrase on an appliance), `spool_sync` (the router's state on disk), `demo` (`pigeon demo`).
"""
