"""The owner's messaging endpoint: contacts, sessions, conversations, outbox and receipts."""
