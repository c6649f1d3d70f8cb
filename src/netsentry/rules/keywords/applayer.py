"""App-layer buffers and other Suricata keywords we recognise but do not implement yet.

Registering them (instead of letting them fall through as "unknown keyword")
gives the rule author the precise reason, and gives `rules check` a summary
per missing feature. When an app-layer parser lands, its buffers move out of
these tables into a family module of their own.
"""

from __future__ import annotations

from netsentry.rules.errors import UnsupportedError
from netsentry.rules.registry import RuleBuilder, keyword

# Sticky buffers (Suricata 6/7 names and their legacy aliases).
STICKY_BUFFERS = (
    "http.uri", "http.uri.raw", "http.method", "http.request_line", "http.request_body",
    "http.response_body", "http.header", "http.header.raw", "http.header_names", "http.cookie",
    "http.user_agent", "http.host", "http.host.raw", "http.accept", "http.accept_enc",
    "http.accept_lang", "http.connection", "http.content_type", "http.content_len",
    "http.referer", "http.protocol", "http.start", "http.stat_code", "http.stat_msg",
    "http.response_line", "http.location", "http.server", "http.request_header",
    "http.response_header", "http2.header_name", "http2.header", "file.data", "file_data",
    "file.name", "dns.query", "dns_query", "dns.answer.name", "dns.queries.rrname",
    "tls.sni", "tls_sni", "tls.cert_subject", "tls_cert_subject", "tls.cert_issuer",
    "tls_cert_issuer", "tls.cert_serial", "tls_cert_serial", "tls.cert_fingerprint",
    "tls_cert_fingerprint", "tls.certs", "tls.subjectaltname", "tls.random", "tls.random_time",
    "tls.random_bytes", "ja3.hash", "ja3_hash", "ja3.string", "ja3_string", "ja3s.hash",
    "ja3s.string", "ja4.hash", "ssh.proto", "ssh_proto", "ssh.software", "ssh_software",
    "ssh.hassh", "ssh.hassh.server", "ssh.hassh.string", "ssh.hassh.server.string",
    "smb.named_pipe", "smb.share", "krb5.cname", "krb5.sname", "sip.method", "sip.uri",
    "sip.request_line", "sip.stat_code", "sip.stat_msg", "sip.response_line", "sip.protocol",
    "base64_data", "dce_stub_data", "smtp.helo", "smtp.mail_from", "smtp.rcpt_to",
    "ftp.command", "ftp.command_data", "quic.sni", "quic.ua", "quic.version", "quic.cyu.hash",
    "email.from", "email.subject", "email.to", "email.cc", "snmp.community", "snmp.usm",
    "mqtt.connect.clientid", "mqtt.publish.topic", "mqtt.publish.message", "rfb.name",
    "http.request_header", "dnp3_data", "tls.alpn", "http.response_body", "dns.response.rrname",
    "dns.answers.rrname", "dns.authorities.rrname", "dns.additionals.rrname", "ldap.request.dn",
    "ldap.responses.dn", "smtp.data", "pop3.command", "imap.command",
)

# Old-style content modifiers -> the buffer they move the previous content to.
CONTENT_MODIFIERS = {
    "http_uri": "http.uri", "http_raw_uri": "http.uri.raw", "http_method": "http.method",
    "http_header": "http.header", "http_raw_header": "http.header.raw",
    "http_cookie": "http.cookie", "http_raw_cookie": "http.cookie",
    "http_user_agent": "http.user_agent", "http_host": "http.host",
    "http_raw_host": "http.host.raw", "http_client_body": "http.request_body",
    "http_server_body": "http.response_body", "http_stat_code": "http.stat_code",
    "http_stat_msg": "http.stat_msg", "http_request_line": "http.request_line",
    "http_response_line": "http.response_line", "http_content_type": "http.content_type",
    "http_content_len": "http.content_len", "http_referer": "http.referer",
    "http_accept": "http.accept", "http_accept_enc": "http.accept_enc",
    "http_accept_lang": "http.accept_lang", "http_connection": "http.connection",
    "http_protocol": "http.protocol", "http_start": "http.start",
    "http_header_names": "http.header_names", "http_location": "http.location",
    "http_server": "http.server", "uricontent": "http.uri",
}

# Keywords with no buffer of their own: (value kind, reason category).
OTHER = {
    "urilen": "app-layer keyword", "dotprefix": "transform", "to_lowercase": "transform",
    "to_uppercase": "transform", "strip_whitespace": "transform", "compress_whitespace": "transform",
    "to_md5": "transform", "to_sha1": "transform", "to_sha256": "transform", "url_decode": "transform",
    "xor": "transform", "pcrexform": "transform", "header_lowercase": "transform",
    "strip_pseudo_headers": "transform", "from_base64": "transform", "luaxform": "transform",
    "app-layer-protocol": "app-layer keyword", "app-layer-event": "app-layer keyword",
    "tag": "keyword", "base64_decode": "keyword", "asn1": "keyword",
    "ftpbounce": "app-layer keyword", "tls.version": "app-layer keyword", "ssl_state": "app-layer keyword",
    "ssl_version": "app-layer keyword", "tls.store": "app-layer keyword", "tls.fingerprint": "app-layer keyword",
    "tls.subject": "app-layer keyword", "tls.issuerdn": "app-layer keyword",
    "ssh.protoversion": "app-layer keyword", "ssh.softwareversion": "app-layer keyword",
    "dns.opcode": "app-layer keyword", "filestore": "file keyword", "filename": "file keyword",
    "fileext": "file keyword", "filemagic": "file keyword", "filesize": "file keyword",
    "filemd5": "file keyword", "filesha1": "file keyword", "filesha256": "file keyword",
    "iprep": "keyword", "dataset": "keyword", "datarep": "keyword", "lua": "keyword",
    "luajit": "keyword", "geoip": "keyword", "replace": "keyword", "flowvar": "keyword", "pktvar": "keyword",
    "icmpv6.mtu": "keyword", "tcp.flags.ack": "keyword",
    "dce_iface": "app-layer keyword", "dce_opnum": "app-layer keyword", "krb5_msg_type": "app-layer keyword",
    "http.response_body.raw": "app-layer keyword", "requires": "keyword", "bypass": "keyword",
    "config": "keyword", "flow.age": "keyword",
    "template2": "keyword", "rpc": "keyword", "id_ext": "keyword", "http2.frametype": "app-layer keyword",
    "http2.errorcode": "app-layer keyword", "http2.settings": "app-layer keyword",
    "nfs_procedure": "app-layer keyword", "smb.ntlmssp_user": "app-layer keyword",
    "enip_command": "app-layer keyword", "modbus": "app-layer keyword", "dnp3_func": "app-layer keyword",
    "dnp3_ind": "app-layer keyword", "dnp3_obj": "app-layer keyword", "ike.exchtype": "app-layer keyword",
    "snmp.version": "app-layer keyword", "snmp.pdu_type": "app-layer keyword",
    "ssl.version": "app-layer keyword", "bsize.raw": "keyword", "uri": "keyword",
}


def _buffer(name: str):
    def setup(b: RuleBuilder, arg: str | None) -> None:
        b.buffer = name      # later payload keywords report the same reason, not a bogus one
        raise UnsupportedError(f"app-layer buffer '{name}' not supported yet",
                               category=f"app-layer buffer '{name}' not supported yet")
    return setup


def _modifier(name: str, buffer: str):
    def setup(b: RuleBuilder, arg: str | None) -> None:
        raise UnsupportedError(f"content modifier '{name}' (app-layer buffer '{buffer}') not supported yet",
                               category=f"app-layer buffer '{buffer}' not supported yet")
    return setup


def _other(name: str, kind: str):
    def setup(b: RuleBuilder, arg: str | None) -> None:
        raise UnsupportedError(f"{kind} '{name}' not supported yet",
                               category=f"{kind} '{name}' not supported yet")
    return setup


for _name in dict.fromkeys(STICKY_BUFFERS):
    keyword(_name, value="optional", help=f"{_name}; app-layer sticky buffer (not supported yet)")(_buffer(_name))
for _name, _buf in CONTENT_MODIFIERS.items():
    keyword(_name, value="optional", help=f"{_name}; content modifier (not supported yet)")(_modifier(_name, _buf))
for _name, _kind in OTHER.items():
    keyword(_name, value="optional", help=f"{_name} (not supported yet)")(_other(_name, _kind))
