"""pcapng (placeholder until the block reader lands)."""
MAGICS: dict[bytes, object] = {}


class PcapngFormat:  # pragma: no cover
    name = "pcapng"
