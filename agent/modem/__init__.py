"""The cellular modem: pure AT parsing, vendor dialects and a pyserial driver.

Pure (no I/O, raise only ``AtError``): ``at_lines`` (one line: decoding,
final codes, URC shapes, answer prefixes), ``at_parser`` (one command's
transcript), ``identity`` (IMEI, ICCID, IMSI, ATI, registration, operator,
``+CSQ``), ``usage`` (vendor data counters and signal reports), ``vendors``
(the profile table). With I/O: ``driver`` talks to a real serial port
without blocking the event loop, its blocking exchanges in ``line_sync``;
``conflicts`` finds ModemManager or any other program holding the port.
"""
