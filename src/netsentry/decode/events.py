"""Decoder event names, exactly as Suricata spells them (``decode-events.c``).

Rules match them with ``decode-event:<name>``; stats count them as
``decoder.event.<name>``. Only the names some netsentry decoder can raise are
listed; the checksum names are netsentry's own (Suricata exposes bad
checksums through the ``ipv4-csum``/``tcpv4-csum`` keywords, not events), so
they follow the same ``<proto>.<what>`` pattern without clashing.
"""

# link layer
ETHERNET_PKT_TOO_SMALL = "ethernet.pkt_too_small"
VLAN_HEADER_TOO_SMALL = "vlan.header_too_small"
VLAN_UNKNOWN_TYPE = "vlan.unknown_type"
VLAN_TOO_MANY_LAYERS = "vlan.too_many_layers"
SLL_PKT_TOO_SMALL = "sll.pkt_too_small"
CHDLC_PKT_TOO_SMALL = "chdlc.pkt_too_small"
LTNULL_PKT_TOO_SMALL = "ltnull.pkt_too_small"
LTNULL_UNSUPPORTED_TYPE = "ltnull.unsupported_type"
IPRAW_INVALID_IPV = "ipraw.invalid_ip_version"

# IPv4
IPV4_PKT_TOO_SMALL = "ipv4.pkt_too_small"
IPV4_HLEN_TOO_SMALL = "ipv4.hlen_too_small"
IPV4_IPLEN_SMALLER_THAN_HLEN = "ipv4.iplen_smaller_than_hlen"
IPV4_TRUNC_PKT = "ipv4.trunc_pkt"
IPV4_OPT_INVALID_LEN = "ipv4.opt_invalid_len"
IPV4_OPT_MALFORMED = "ipv4.opt_malformed"
IPV4_OPT_DUPLICATE = "ipv4.opt_duplicate"
IPV4_OPT_UNKNOWN = "ipv4.opt_unknown"
IPV4_WRONG_IP_VER = "ipv4.wrong_ip_version"
IPV4_WITH_ICMPV6 = "ipv4.icmpv6"

# IPv6
IPV6_PKT_TOO_SMALL = "ipv6.pkt_too_small"
IPV6_TRUNC_PKT = "ipv6.trunc_pkt"
IPV6_TRUNC_EXTHDR = "ipv6.trunc_exthdr"
IPV6_EXTHDR_DUPL_FH = "ipv6.exthdr_dupl_fh"
IPV6_EXTHDR_USELESS_FH = "ipv6.exthdr_useless_fh"
IPV6_EXTHDR_DUPL_RH = "ipv6.exthdr_dupl_rh"
IPV6_EXTHDR_DUPL_HH = "ipv6.exthdr_dupl_hh"
IPV6_EXTHDR_DUPL_DH = "ipv6.exthdr_dupl_dh"
IPV6_EXTHDR_DUPL_AH = "ipv6.exthdr_dupl_ah"
IPV6_EXTHDR_DUPL_EH = "ipv6.exthdr_dupl_eh"
IPV6_EXTHDR_INVALID_OPTLEN = "ipv6.exthdr_invalid_optlen"
IPV6_WRONG_IP_VER = "ipv6.wrong_ip_version"
IPV6_HOPOPTS_UNKNOWN_OPT = "ipv6.hopopts_unknown_opt"
IPV6_HOPOPTS_ONLY_PADDING = "ipv6.hopopts_only_padding"
IPV6_DSTOPTS_UNKNOWN_OPT = "ipv6.dstopts_unknown_opt"
IPV6_DSTOPTS_ONLY_PADDING = "ipv6.dstopts_only_padding"
IPV6_RH_TYPE_0 = "ipv6.rh_type_0"
IPV6_ZERO_LEN_PADN = "ipv6.zero_len_padn"
IPV6_FH_NON_ZERO_RES_FIELD = "ipv6.fh_non_zero_reserved_field"
IPV6_DATA_AFTER_NONE_HEADER = "ipv6.data_after_none_header"
IPV6_WITH_ICMPV4 = "ipv6.icmpv4"
IPV4_IN_IPV6_PKT_TOO_SMALL = "ipv6.ipv4_in_ipv6_too_small"
IPV4_IN_IPV6_WRONG_IP_VER = "ipv6.ipv4_in_ipv6_wrong_version"
IPV6_IN_IPV6_PKT_TOO_SMALL = "ipv6.ipv6_in_ipv6_too_small"
IPV6_IN_IPV6_WRONG_IP_VER = "ipv6.ipv6_in_ipv6_wrong_version"

# TCP / UDP
TCP_PKT_TOO_SMALL = "tcp.pkt_too_small"
TCP_HLEN_TOO_SMALL = "tcp.hlen_too_small"
TCP_OPT_INVALID_LEN = "tcp.opt_invalid_len"
TCP_OPT_DUPLICATE = "tcp.opt_duplicate"
UDP_PKT_TOO_SMALL = "udp.pkt_too_small"
UDP_HLEN_TOO_SMALL = "udp.hlen_too_small"
UDP_HLEN_INVALID = "udp.hlen_invalid"

# ICMP
ICMPV4_PKT_TOO_SMALL = "icmpv4.pkt_too_small"
ICMPV4_UNKNOWN_TYPE = "icmpv4.unknown_type"
ICMPV4_UNKNOWN_CODE = "icmpv4.unknown_code"
ICMPV4_IPV4_TRUNC_PKT = "icmpv4.ipv4_trunc_pkt"
ICMPV4_IPV4_UNKNOWN_VER = "icmpv4.ipv4_unknown_ver"
ICMPV6_UNKNOWN_TYPE = "icmpv6.unknown_type"
ICMPV6_UNKNOWN_CODE = "icmpv6.unknown_code"
ICMPV6_PKT_TOO_SMALL = "icmpv6.pkt_too_small"
ICMPV6_IPV6_UNKNOWN_VER = "icmpv6.ipv6_unknown_version"
ICMPV6_IPV6_TRUNC_PKT = "icmpv6.ipv6_trunc_pkt"
ICMPV6_MLD_MESSAGE_WITH_INVALID_HL = "icmpv6.mld_message_with_invalid_hl"
ICMPV6_UNASSIGNED_TYPE = "icmpv6.unassigned_type"
ICMPV6_EXPERIMENTATION_TYPE = "icmpv6.experimentation_type"

# GRE
GRE_PKT_TOO_SMALL = "gre.pkt_too_small"
GRE_WRONG_VERSION = "gre.wrong_version"
GRE_VERSION0_RECUR = "gre.version0_recur"
GRE_VERSION0_FLAGS = "gre.version0_flags"
GRE_VERSION0_HDR_TOO_BIG = "gre.version0_hdr_too_big"
GRE_VERSION1_CHKSUM = "gre.version1_chksum"
GRE_VERSION1_ROUTE = "gre.version1_route"
GRE_VERSION1_SSR = "gre.version1_ssr"
GRE_VERSION1_RECUR = "gre.version1_recur"
GRE_VERSION1_FLAGS = "gre.version1_flags"
GRE_VERSION1_NO_KEY = "gre.version1_no_key"
GRE_VERSION1_WRONG_PROTOCOL = "gre.version1_wrong_protocol"
GRE_VERSION1_HDR_TOO_BIG = "gre.version1_hdr_too_big"

# checksums (netsentry names; only with checksum validation on, i.e. -k all)
IPV4_CSUM_INVALID = "ipv4.csum_invalid"
TCP_CSUM_INVALID = "tcp.csum_invalid"
UDP_CSUM_INVALID = "udp.csum_invalid"
ICMPV4_CSUM_INVALID = "icmpv4.csum_invalid"
ICMPV6_CSUM_INVALID = "icmpv6.csum_invalid"

ALL: frozenset[str] = frozenset(v for k, v in dict(globals()).items() if k.isupper() and isinstance(v, str))
