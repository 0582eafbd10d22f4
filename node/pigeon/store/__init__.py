"""Encrypted storage on SQLCipher: the vault (owner data) and the spool (held envelopes)."""
