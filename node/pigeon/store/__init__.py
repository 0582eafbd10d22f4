"""Encrypted storage on SQLCipher: the vault (owner data) and the spool (held envelopes).

Public API: `DataDir`, `open_spool` and `Spool` (with its batch operations), `VaultKeeper`
(initialise, unlock, lock, change the passphrase) and `Vault` with `VaultTransaction`, the
records in `vault_records`, and the errors in `errors`. sqlcipher3 is imported by `db` only.
"""
