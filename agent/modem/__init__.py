"""The cellular modem: a pure AT parser, identity parsers and a pyserial driver.

``at_parser`` and ``identity`` are pure (no I/O) and raise only ``AtError``;
``driver`` talks to a real serial port without blocking the event loop.
"""
