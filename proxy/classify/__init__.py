"""The pure reply reader: bytes of a reply in, a verdict with its evidence out; no I/O."""
