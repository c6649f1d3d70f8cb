"""A pure install has no Cython at run time (it is a build and dev dependency):
every module of the compiled path must import and replay through
netsentry._cython_shim. capture/pcap.py's record class once evaluated
``cython.const[...]`` in its class body, which the shim lacked, so a replay
without Cython failed at import."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

CODE = r"""
import sys
sys.modules["cython"] = None          # `import cython` raises ImportError: the shim is used
import importlib, re
src = open(sys.argv[1], encoding="utf-8").read()
mods = re.findall(r'"src/(netsentry/[\w/]+)\.py"', src.split("COMPILED_MODULES", 1)[1].split("]", 1)[0])
for m in mods:
    mod = importlib.import_module(m.replace("/", "."))
    assert mod.__file__.endswith(".py"), mod.__file__
from netsentry.capture import open_capture
from netsentry.decode import Decoder
from netsentry.flow import FlowTable
decode = Decoder().decode
table = FlowTable({}, lambda flow: None)
n = flows = 0
for ts, data, wirelen, linktype in open_capture(sys.argv[2]):
    pkt = decode(data, linktype)
    pkt.ts = ts
    flows += table.update(pkt) is not None
    n += 1
print(len(mods), n, flows)
"""


def test_compiled_path_modules_import_and_run_without_cython() -> None:
    pcap = next(p for p in sorted((REPO / "pcaps").glob("*.pcap")))
    env = dict(os.environ, NETSENTRY_PURE="1")
    proc = subprocess.run([sys.executable, "-c", CODE, str(REPO / "setup.py"), str(pcap)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    n_mods, n_pkts, n_flows = map(int, proc.stdout.split())
    assert n_mods >= 20 and n_pkts > 0 and n_flows > 0
