"""The TWS API protocol, sans-IO: bytes in, messages out, and back, with no sockets inside.

`wire` frames and unframes (the ``API\\0`` opening, length-prefixed NUL-separated fields) and builds
the few messages every user needs; `orders` reads a client's placeOrder field by field. The
simulator, the health probe and the firewall each drive them with their own I/O. Standard library
only: the simulator's and the firewall's images have nothing else.
"""
