#!/bin/sh
# Regenerates this case's archives (deterministic: fixed mtimes and owners). Run by the golden
# test before each build, with the case's context/ as the working directory.
set -e
rm -rf src && mkdir -p src/tree/sub
printf 'one\n' > src/tree/one.txt
printf 'two\n' > src/tree/sub/two.txt
ln -sf one.txt src/tree/link
chmod 0750 src/tree/sub
tar_opts="--sort=name --mtime=@1600000000 --owner=1234 --group=5678 --numeric-owner -C src"
tar $tar_opts -cf plain.tar tree
tar $tar_opts -czf gzip.tar.gz tree
tar $tar_opts -cjf bzip2.tar.bz2 tree
tar $tar_opts -cJf xz.tar.xz tree
tar $tar_opts -cf - tree | zstd -q -c > zstd.tar.zst
printf 'not an archive\n' > notes.txt.gz
printf 'plain file\n' > file.txt
rm -rf src
