"""Adapters: the protocol (base.py) and the built-in adapters, resolved by name or module:attr."""
