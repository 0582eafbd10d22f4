"""The local web page: pairing, chat, contacts, status and settings over aiohttp."""
