"""The blind mailbox relay server (`pigeon relay`)."""
