#!/bin/sh
# Makes caps.tar: two files carrying a security.capability xattr (cap_net_raw, effective), as
# a PAX record, without needing CAP_SETFCAP. Run by the golden test in a scratch context copy.
set -e
python3 - <<'PY'
import io
import tarfile

# VFS_CAP_REVISION_2 | effective; permitted = CAP_NET_RAW (bit 13); inheritable = 0.
cap = bytes([1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
with tarfile.open("caps.tar", "w", format=tarfile.PAX_FORMAT) as t:
    for name in ("ping", "written"):
        body = b"#!/bin/sh\necho " + name.encode() + b"\n"
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime = len(body), 0o755, 1600000000
        info.pax_headers = {
            "SCHILY.xattr.security.capability": cap.decode("utf-8", "surrogateescape")
        }
        t.addfile(info, io.BytesIO(body))
PY
