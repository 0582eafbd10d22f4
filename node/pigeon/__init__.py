"""Pigeon Node: a neighbourhood relay and personal endpoint for an encrypted BLE mesh messenger."""

__version__ = "0.1.0"
