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
MPLS_HEADER_TOO_SMALL = "mpls.header_too_small"
MPLS_PKT_TOO_SMALL = "mpls.pkt_too_small"
MPLS_BAD_LABEL_ROUTER_ALERT = "mpls.bad_label_router_alert"
MPLS_BAD_LABEL_IMPLICIT_NULL = "mpls.bad_label_implicit_null"
MPLS_BAD_LABEL_RESERVED = "mpls.bad_label_reserved"
MPLS_UNKNOWN_PAYLOAD_TYPE = "mpls.unknown_payload_type"
NSH_HEADER_TOO_SMALL = "nsh.header_too_small"
NSH_UNSUPPORTED_VERSION = "nsh.unsupported_version"
NSH_BAD_HEADER_LENGTH = "nsh.bad_header_length"
NSH_RESERVED_TYPE = "nsh.reserved_type"
NSH_UNSUPPORTED_TYPE = "nsh.unsupported_type"
NSH_UNKNOWN_PAYLOAD = "nsh.unknown_payload"
PPPOE_PKT_TOO_SMALL = "pppoe.pkt_too_small"
PPPOE_WRONG_CODE = "pppoe.wrong_code"
PPPOE_MALFORMED_TAGS = "pppoe.malformed_tags"
PPP_PKT_TOO_SMALL = "ppp.pkt_too_small"
PPP_IPV4_PKT_TOO_SMALL = "ppp.ip4_pkt_too_small"
PPP_IPV6_PKT_TOO_SMALL = "ppp.ip6_pkt_too_small"
PPP_WRONG_TYPE = "ppp.wrong_type"
PPP_UNSUP_PROTO = "ppp.unsup_proto"

# IPv4
IPV4_PKT_TOO_SMALL = "ipv4.pkt_too_small"
IPV4_HLEN_TOO_SMALL = "ipv4.hlen_too_small"
IPV4_IPLEN_SMALLER_THAN_HLEN = "ipv4.iplen_smaller_than_hlen"
IPV4_TRUNC_PKT = "ipv4.trunc_pkt"
IPV4_OPT_INVALID_LEN = "ipv4.opt_invalid_len"
IPV4_OPT_MALFORMED = "ipv4.opt_malformed"
IPV4_OPT_DUPLICATE = "ipv4.opt_duplicate"
IPV4_OPT_UNKNOWN = "ipv4.opt_unknown"
IPV4_OPT_INVALID = "ipv4.opt_invalid"
IPV4_OPT_PAD_REQUIRED = "ipv4.opt_pad_required"
IPV4_OPT_EOL_REQUIRED = "ipv4.opt_eol_required"
IPV4_WRONG_IP_VER = "ipv4.wrong_ip_version"
IPV4_WITH_ICMPV6 = "ipv4.icmpv6"
IPV4_PROTO_UNKNOWN = "ipv4.unknown_protocol"

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
UDP_HLEN_INVALID = "udp.hlen_invalid"     # Suricata < 7.0.?; no longer raised (see udp.py)
UDP_LEN_INVALID = "udp.len_invalid"

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

# defragmentation (raised by stream/defrag.py on the fragment that shows the problem)
IPV4_FRAG_PKT_TOO_LARGE = "ipv4.frag_pkt_too_large"
IPV6_FRAG_PKT_TOO_LARGE = "ipv6.frag_pkt_too_large"
IPV4_FRAG_OVERLAP = "ipv4.frag_overlap"
IPV6_FRAG_OVERLAP = "ipv6.frag_overlap"
IPV6_FRAG_INVALID_LENGTH = "ipv6.frag_invalid_length"
IPV4_FRAG_IGNORED = "ipv4.frag_ignored"
IPV6_FRAG_IGNORED = "ipv6.frag_ignored"

# checksums (netsentry names; only with checksum validation on, i.e. -k all)
IPV4_CSUM_INVALID = "ipv4.csum_invalid"
TCP_CSUM_INVALID = "tcp.csum_invalid"
UDP_CSUM_INVALID = "udp.csum_invalid"
ICMPV4_CSUM_INVALID = "icmpv4.csum_invalid"
ICMPV6_CSUM_INVALID = "icmpv6.csum_invalid"

# SCTP (decode/sctp.py)
SCTP_PKT_TOO_SMALL = "sctp.pkt_too_small"
SCTP_CHUNK_TOO_SMALL = "sctp.chunk_too_small"
SCTP_CHUNK_LEN_INVALID = "sctp.chunk_len_invalid"
SCTP_INIT_CHUNK_BUNDLED = "sctp.init_chunk_bundled"
SCTP_INIT_WITH_NON_ZERO_VTAG = "sctp.init_with_non_zero_vtag"
SCTP_DATA_WITH_ZERO_VTAG = "sctp.data_with_zero_vtag"
SCTP_TOO_MANY_CHUNKS = "sctp.too_many_chunks"
SCTP_TOO_MANY_DATA_CHUNKS = "sctp.too_many_data_chunks"

# ERSPAN (decode/erspan.py)
ERSPAN_HEADER_TOO_SMALL = "erspan.header_too_small"
ERSPAN_UNSUPPORTED_VERSION = "erspan.unsupported_version"
ERSPAN_TOO_MANY_VLAN_LAYERS = "erspan.too_many_vlan_layers"
# UDP tunnels (decode/udptunnel.py)
VXLAN_UNKNOWN_PAYLOAD_TYPE = "vxlan.unknown_payload_type"
GENEVE_UNKNOWN_PAYLOAD_TYPE = "geneve.unknown_payload_type"

# ARP (decode/arp.py)
ARP_PKT_TOO_SMALL = "arp.pkt_too_small"
ARP_UNSUPPORTED_HARDWARE = "arp.unsupported_hardware"
ARP_UNSUPPORTED_PROTOCOL = "arp.unsupported_protocol"
ARP_INVALID_PKT = "arp.invalid_pkt"
ARP_INVALID_HARDWARE_SIZE = "arp.invalid_hardware_size"
ARP_INVALID_PROTOCOL_SIZE = "arp.invalid_protocol_size"
ARP_UNSUPPORTED_OPCODE = "arp.unsupported_opcode"

# IGMP (decode/igmp.py)
IGMP_PKT_TOO_SMALL = "igmp.pkt_too_small"
IGMP_V3_PKT_TOO_SMALL = "igmp.v3_pkt_too_small"
IGMP_MALFORMED = "igmp.malformed"

# every name above: computed last, so a decoder's names added at the end are in it too
ALL: frozenset[str] = frozenset(v for k, v in dict(globals()).items() if k.isupper() and isinstance(v, str))
