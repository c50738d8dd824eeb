#!/usr/bin/env bash
# Gathers extra seed inputs from the repository and ../shared/data into fuzz/seeds-extra/<target>/
# (git-ignored; `.ci/fuzz` adds them to the corpus when present): the RFC 4475 SIP torture
# messages, the SIPp scenarios' messages and SDP bodies, the RTP/RTCP datagrams of the SIPp
# pcaps, the repository's flows and test lead files. Sources that are absent are skipped.
# Usage: bash fuzz/seed-extra.sh [SHARED_DATA_DIR]   (default ../shared/data)
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${1:-../shared/data}
OUT=fuzz/seeds-extra
rm -rf "$OUT"
mkdir -p "$OUT"/{sip_message,sdp,rtp_rtcp,flow_yaml,lead_csv,admin_json}
python3 - "$SHARED" "$OUT" <<'PY'
import glob, os, re, struct, sys

shared, out = sys.argv[1], sys.argv[2]
count = {}

def put(target, name, data):
    if isinstance(data, str):
        data = data.encode()
    if not data or len(data) > 65536:
        return
    path = os.path.join(out, target, re.sub(r"[^A-Za-z0-9_.-]", "_", name))
    with open(path, "wb") as f:
        f.write(data)
    count[target] = count.get(target, 0) + 1

def body_of(msg):
    for sep in (b"\r\n\r\n", b"\n\n"):
        i = msg.find(sep)
        if i >= 0:
            return msg[i + len(sep):]
    return b""

# RFC 4475 torture messages, and their SDP bodies.
for path in sorted(glob.glob(os.path.join(shared, "sip/rfc4475/dat/*.dat"))):
    data = open(path, "rb").read()
    put("sip_message", "rfc4475_" + os.path.basename(path), data)
    body = body_of(data)
    if body.startswith(b"v=0"):
        put("sdp", "rfc4475_" + os.path.basename(path), body)

# SIPp scenarios: the messages they send, placeholders filled in.
fill = {
    "service": "callbot", "remote_ip": "192.0.2.1", "remote_port": "5060",
    "local_ip": "192.0.2.10", "local_port": "5062", "transport": "UDP",
    "call_number": "1", "call_id": "1-123@192.0.2.10", "media_ip": "192.0.2.10",
    "media_port": "40000", "media_ip_type": "4", "local_ip_type": "4", "pid": "123", "cseq": "1",
    "branch": "z9hG4bK-123-1-0", "len": "0",
}
for path in sorted(glob.glob(os.path.join(shared, "sipp/scenarios/*.xml"))):
    text = open(path, encoding="utf-8", errors="replace").read()
    for i, m in enumerate(re.findall(r"<send[^>]*>\s*<!\[CDATA\[(.*?)\]\]>", text, re.S)):
        lines = [l.strip() for l in m.strip("\n").split("\n")]
        msg = "\r\n".join(lines).strip() + "\r\n"
        msg = re.sub(r"\[last_([A-Za-z-]+):?\]",
                     lambda mm: {"Via": "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1",
                                 "From": "From: <sip:a@192.0.2.1>;tag=1",
                                 "To": "To: <sip:b@192.0.2.10>",
                                 "Call-ID": "Call-ID: 1@192.0.2.1",
                                 "CSeq": "CSeq: 1 INVITE"}.get(mm.group(1), ""), msg)
        msg = re.sub(r"\[([a-z_]+)[^\]]*\]", lambda mm: fill.get(mm.group(1), "x"), msg)
        head, sep, body = msg.partition("\r\n\r\n")
        if sep:
            head = re.sub(r"Content-Length: *\d+", "Content-Length: %d" % len(body), head)
            msg = head + sep + body
        else:
            msg = msg + "\r\n"
        put("sip_message", "sipp_%s_%d" % (os.path.basename(path), i), msg)
        if body.startswith("v=0"):
            put("sdp", "sipp_%s_%d" % (os.path.basename(path), i), body)

# pcaps: UDP payloads as the rtp_rtcp target's input (2-byte length, datagram), 64 at most.
def udp_payloads(path):
    data = open(path, "rb").read()
    if len(data) < 24:
        return []
    magic = data[:4]
    endian = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    at, res = 24, []
    while at + 16 <= len(data):
        _, _, incl, _ = struct.unpack(endian + "IIII", data[at:at + 16])
        frame = data[at + 16:at + 16 + incl]
        at += 16 + incl
        off = {1: 14, 113: 16, 0: 4, 101: 0}.get(linktype)
        if off is None or len(frame) < off + 28:
            continue
        if linktype == 1 and frame[12:14] == b"\x81\x00":
            off += 4
        ip = frame[off:]
        if ip[0] >> 4 == 4 and ip[9] == 17:
            udp = ip[(ip[0] & 15) * 4:]
        elif ip[0] >> 4 == 6 and ip[6] == 17:
            udp = ip[40:]
        else:
            continue
        res.append(udp[8:])
    return res

for path in sorted(glob.glob(os.path.join(shared, "sipp/scenarios/pcap/*.pcap"))):
    payloads = udp_payloads(path)[:64]
    if payloads:
        put("rtp_rtcp", "pcap_" + os.path.basename(path),
            b"".join(struct.pack("!H", len(p)) + p for p in payloads))

# The repository's flows (not conversation tests) and test lead files.
for pattern in ("dialog-flows/flows/*.yaml", "examples/**/*.yaml", "bot-runtime/benches/flows/*.yaml"):
    for path in sorted(glob.glob(pattern, recursive=True)):
        if not path.endswith(".test.yaml"):
            put("flow_yaml", path.replace("/", "_"), open(path, "rb").read())
for path in sorted(glob.glob("bot-runtime/tests/data/leads/*.csv")):
    put("lead_csv", os.path.basename(path), b"\x00" + open(path, "rb").read())

print("seeds:", ", ".join("%s %d" % kv for kv in sorted(count.items())))
PY
