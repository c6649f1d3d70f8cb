"""Decoders: raw frames to `Packet` records plus decoder events."""
