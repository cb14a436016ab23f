#!/bin/sh
# Makes context files whose names are not UTF-8 (Linux names are bytes; git would keep them,
# but not every checkout tool does), and names.tar, an archive with such names for ADD.
set -e
python3 - <<'PY'
import io
import os
import tarfile

def name(raw):
    return raw.decode("utf-8", "surrogateescape")

with open(name(b"caf\xe9.txt"), "w") as f:
    f.write("latin-1 name\n")
os.mkdir(name(b"dir-\xff"))
with open(os.path.join(name(b"dir-\xff"), "inner"), "w") as f:
    f.write("inside\n")
os.symlink(name(b"caf\xe9.txt"), name(b"link-\xfe"))
with open(name(b"ignored-\xe9.log"), "w") as f:
    f.write("excluded by .dockerignore\n")

# USTAR keeps the raw bytes of short names (PAX would declare them UTF-8).
with tarfile.open("names.tar", "w", format=tarfile.USTAR_FORMAT) as t:
    def add(info, body=b""):
        info.mtime, info.uid, info.gid = 1600000000, 0, 0
        t.addfile(info, io.BytesIO(body) if body else None)
    d = tarfile.TarInfo(name(b"arch-\xe9"))
    d.type, d.mode = tarfile.DIRTYPE, 0o755
    add(d)
    f = tarfile.TarInfo(name(b"arch-\xe9/f\xf0"))
    f.mode, f.size = 0o644, 6
    add(f, b"body!\n")
    l = tarfile.TarInfo(name(b"arch-\xe9/to-f"))
    l.type, l.mode, l.linkname = tarfile.SYMTYPE, 0o777, name(b"f\xf0")
    add(l)
PY
printf '*.log\n' > .dockerignore
