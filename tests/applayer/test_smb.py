"""SMB2 and SMB1 transactions (applayer/smb.py): trees, NTLMSSP, files, DCERPC over named
pipes, and the keywords and records on them."""

from __future__ import annotations

from pathlib import Path

from applayer_helpers import alerts, replay, tcp_session
from test_dcerpc import IFACE, bind, bind_ack, request, response

TYPES = "outputs.eve-log.types=[alert, flow, smb]"
SSN = 0x4000000001


def smb2(cmd: int, msg_id: int, body: bytes, *, resp: bool = False, tree: int = 0, status: int = 0) -> bytes:
    hdr = (b"\xfeSMB" + (64).to_bytes(2, "little") + b"\x00\x00" + status.to_bytes(4, "little")
           + cmd.to_bytes(2, "little") + b"\x01\x00" + (1 if resp else 0).to_bytes(4, "little") + bytes(4)
           + msg_id.to_bytes(8, "little") + bytes(4) + tree.to_bytes(4, "little") + SSN.to_bytes(8, "little")
           + bytes(16))
    msg = hdr + body
    return b"\x00" + len(msg).to_bytes(3, "big") + msg


def ntlm_auth(user: str, domain: str, host: str) -> bytes:
    fields = [domain.encode("utf-16-le"), user.encode("utf-16-le"), host.encode("utf-16-le")]
    off = 72
    head = b"NTLMSSP\x00" + (3).to_bytes(4, "little") + bytes(16)     # type, LM and NT responses (empty)
    tail = b""
    for f in fields:
        head += len(f).to_bytes(2, "little") + len(f).to_bytes(2, "little") + (off + len(tail)).to_bytes(4, "little")
        tail += f
    head += bytes(8) + (1).to_bytes(4, "little")           # session key (empty), flags: unicode
    head += bytes(72 - len(head))
    return head + tail


def session_setup(msg_id: int, blob: bytes) -> bytes:
    body = (25).to_bytes(2, "little") + bytes(10) + (64 + 24).to_bytes(2, "little") + len(blob).to_bytes(2, "little")
    body += bytes(8) + blob
    return smb2(1, msg_id, body)


def tree_connect(msg_id: int, path: str) -> bytes:
    p = path.encode("utf-16-le")
    return smb2(3, msg_id, (9).to_bytes(2, "little") + b"\x00\x00" + (72).to_bytes(2, "little")
                + len(p).to_bytes(2, "little") + p)


def tree_connect_resp(msg_id: int, tree: int, share_type: int) -> bytes:
    return smb2(3, msg_id, (16).to_bytes(2, "little") + bytes([share_type, 0]) + bytes(12), resp=True, tree=tree)


def create(msg_id: int, tree: int, name: str) -> bytes:
    n = name.encode("utf-16-le")
    body = (57).to_bytes(2, "little") + bytes(34) + (1).to_bytes(4, "little") + bytes(4)
    body += (64 + 56).to_bytes(2, "little") + len(n).to_bytes(2, "little") + bytes(8) + n
    return smb2(5, msg_id, body, tree=tree)


def create_resp(msg_id: int, tree: int, fid: bytes) -> bytes:
    return smb2(5, msg_id, (89).to_bytes(2, "little") + bytes(62) + fid + bytes(8), resp=True, tree=tree)


def write(msg_id: int, tree: int, fid: bytes, data: bytes, offset: int = 0) -> bytes:
    body = (49).to_bytes(2, "little") + (64 + 48).to_bytes(2, "little") + len(data).to_bytes(4, "little")
    body += offset.to_bytes(8, "little") + fid + bytes(16) + data
    return smb2(9, msg_id, body, tree=tree)


def write_resp(msg_id: int, tree: int, n: int) -> bytes:
    return smb2(9, msg_id, (17).to_bytes(2, "little") + b"\x00\x00" + n.to_bytes(4, "little") + bytes(8),
                resp=True, tree=tree)


def read(msg_id: int, tree: int, fid: bytes) -> bytes:
    return smb2(8, msg_id, (49).to_bytes(2, "little") + b"\x00\x00" + (4096).to_bytes(4, "little") + bytes(8) + fid
                + bytes(17), tree=tree)


def read_resp(msg_id: int, tree: int, data: bytes) -> bytes:
    return smb2(8, msg_id, (17).to_bytes(2, "little") + bytes([80, 0]) + len(data).to_bytes(4, "little") + bytes(8)
                + data, resp=True, tree=tree)


def ioctl(msg_id: int, tree: int, fid: bytes, data: bytes) -> bytes:
    body = (57).to_bytes(2, "little") + b"\x00\x00" + (0x0011C017).to_bytes(4, "little") + fid
    body += (64 + 56).to_bytes(4, "little") + len(data).to_bytes(4, "little") + bytes(24) + data
    return smb2(11, msg_id, body, tree=tree)


def ioctl_resp(msg_id: int, tree: int, fid: bytes, data: bytes) -> bytes:
    body = (49).to_bytes(2, "little") + b"\x00\x00" + (0x0011C017).to_bytes(4, "little") + fid
    body += (64 + 48).to_bytes(4, "little") + b"\x00" * 4 + (64 + 48).to_bytes(4, "little")
    body += len(data).to_bytes(4, "little") + bytes(8) + data
    return smb2(11, msg_id, body, resp=True, tree=tree)


def close(msg_id: int, tree: int, fid: bytes) -> bytes:
    return smb2(6, msg_id, (24).to_bytes(2, "little") + bytes(6) + fid, tree=tree)


F1, F2 = bytes(range(16)), bytes(range(16, 32))
FILE = b"hello, this is the file content"
SESSION = [
    (True, smb2(0, 0, (36).to_bytes(2, "little") + (1).to_bytes(2, "little") + bytes(32) + (0x0210).to_bytes(2, "little"))),
    (False, smb2(0, 0, (65).to_bytes(2, "little") + b"\x00\x00" + (0x0210).to_bytes(2, "little") + bytes(58), resp=True)),
    (True, session_setup(1, b"\xa1\x81\x00" + ntlm_auth("alice", "CORP", "WS01"))),
    (False, smb2(1, 1, (9).to_bytes(2, "little") + bytes(6), resp=True)),
    (True, tree_connect(2, "\\\\srv\\data")), (False, tree_connect_resp(2, 1, 1)),
    (True, tree_connect(3, "\\\\srv\\IPC$")), (False, tree_connect_resp(3, 2, 2)),
    (True, create(4, 1, "doc.txt")), (False, create_resp(4, 1, F1)),
    (True, write(5, 1, F1, FILE)), (False, write_resp(5, 1, len(FILE))),
    (True, close(6, 1, F1)), (False, smb2(6, 6, (60).to_bytes(2, "little") + bytes(58), resp=True, tree=1)),
    (True, create(7, 2, "svcctl")), (False, create_resp(7, 2, F2)),
    (True, write(8, 2, F2, bind(2, [(0, IFACE, 2, 0)]))), (False, write_resp(8, 2, 72)),
    (True, read(9, 2, F2)), (False, read_resp(9, 2, bind_ack(2, [0]))),
    (True, ioctl(10, 2, F2, request(3, 0, 15, b"OPENSCMANAGER"))),
    (False, ioctl_resp(10, 2, F2, response(3, b"handle"))),
]


def run(tmp_path: Path, rules: str) -> list[dict]:
    pcap = tcp_session(tmp_path / "smb.pcap", SESSION, sport=40445, dport=445)
    return replay(tmp_path, pcap, rules, TYPES)


def test_smb2_keywords(tmp_path: Path):
    rules = "\n".join([
        'alert smb any any -> any any (smb.share; content:"data"; sid:1;)',
        'alert smb any any -> any any (smb.share; content:"IPC$"; sid:11;)',      # a pipe is no share
        'alert smb any any -> any any (smb_named_pipe; content:"IPC$"; sid:2;)',
        'alert smb any any -> any any (smb.ntlmssp_user; content:"alice"; sid:3;)',
        'alert smb any any -> any any (smb.ntlmssp_domain; content:"CORP"; sid:4;)',
        'alert smb any any -> any any (file.data; content:"file content"; sid:5;)',
        'alert smb any any -> any any (smb.version:1; sid:6;)',
        f'alert smb any any -> any any (flow:to_server; dcerpc.iface:{IFACE}; dcerpc.opnum:15; sid:7;)',
        'alert dcerpc any any -> any any (flow:to_server; dcerpc.opnum:15; sid:8;)',
        'alert tcp any any -> any any (flow:to_server; dce_stub_data; content:"OPENSCMANAGER"; sid:9;)',
        'alert tcp any any -> any any (flow:to_client; dcerpc.stub_data; content:"handle"; sid:10;)',
    ]) + "\n"
    recs = run(tmp_path, rules)
    for sid in (1, 2, 3, 4, 5, 7, 8, 9, 10):
        assert len(alerts(recs, sid)) == 1, sid
    assert not alerts(recs, 6) and not alerts(recs, 11)
    a = alerts(recs, 5)[0]
    assert a["files"][0]["filename"] == "doc.txt" and a["files"][0]["size"] == len(FILE)
    d = alerts(recs, 7)[0]["smb"]["dcerpc"]
    assert d["opnum"] == 15 and d["interfaces"][0]["uuid"] == IFACE


def test_smb_records(tmp_path: Path):
    recs = [r["smb"] for r in run(tmp_path, "") if r["event_type"] == "smb"]
    by_cmd: dict[str, list[dict]] = {}
    for r in recs:
        by_cmd.setdefault(r["command"], []).append(r)
    trees = by_cmd["SMB2_COMMAND_TREE_CONNECT"]
    assert [(t["share"], t["share_type"]) for t in trees] == [("\\\\srv\\data", "FILE"), ("\\\\srv\\IPC$", "PIPE")]
    ss = by_cmd["SMB2_COMMAND_SESSION_SETUP"][0]
    assert ss["ntlmssp"] == {"domain": "CORP", "user": "alice", "host": "WS01"}
    assert [c["filename"] for c in by_cmd["SMB2_COMMAND_CREATE"]] == ["doc.txt", "svcctl"]
    calls = [r["dcerpc"] for r in recs if "dcerpc" in r]
    assert [(c["request"], c["response"]) for c in calls] == [("BIND", "BINDACK"), ("REQUEST", "RESPONSE")]


def test_garbage_is_no_crash(tmp_path: Path):
    junk = b"\x00\x00\x00\x50\xfeSMB" + bytes(40) + b"\xff" * 36
    pcap = tcp_session(tmp_path / "j.pcap", [(True, SESSION[0][1]), (True, junk), (False, junk[:30])],
                       sport=40446, dport=445)
    recs = replay(tmp_path, pcap, 'alert smb any any -> any any (smb.share; content:"x"; sid:1;)\n', TYPES)
    assert [r["app_proto"] for r in recs if r["event_type"] == "flow"] == ["smb"]
