"""netsim: a NAT traversal lab for WebRTC."""

__version__ = "0.1.0"
