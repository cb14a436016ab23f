//! Times nothing itself: runs one of the primitives kiln applies to every layer byte over a
//! file, exactly as layers use them, so `bench/run --only primitives` can time it against
//! openssl, pigz and zstd.
//!
//! ```text
//! primitives sha256|gzip|zstd FILE   ->  "<op> <bytes in> <bytes out> <sha256 hex or ->"
//! primitives gen FILE MIB            ->  MIB MiB of test data, half text, half noise
//! ```

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::process::ExitCode;

use builder::layer::pgzip::ParallelGzip;
use builder::layer::writer::{zstd_encoder, GZIP_LEVEL};
use registry::DigestHasher;

const MIB: usize = 1 << 20;

/// Where compressed bytes go: counted, then dropped, so no file I/O is timed.
#[derive(Default)]
struct Counter(u64);

impl Write for Counter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Feeds `path` to `sink` in 1 MiB reads (the layer writer's buffer size); returns bytes read.
fn pump(path: &str, sink: &mut impl Write) -> io::Result<u64> {
    let mut file = File::open(path)?;
    let mut buf = vec![0u8; MIB];
    let mut total = 0u64;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        sink.write_all(&buf[..n])?;
        total += n as u64;
    }
}

fn run(op: &str, path: &str) -> io::Result<String> {
    match op {
        "sha256" => {
            let mut hasher = DigestHasher::sha256();
            let n = pump(path, &mut hasher)?;
            Ok(format!("sha256 {n} 32 {}", hasher.finish().hex()))
        }
        "gzip" => {
            let mut gz = ParallelGzip::new(Counter::default(), GZIP_LEVEL);
            let n = pump(path, &mut gz)?;
            Ok(format!("gzip {n} {} -", gz.finish()?.0))
        }
        "zstd" => {
            let mut zst = zstd_encoder(Counter::default())?;
            let n = pump(path, &mut zst)?;
            Ok(format!("zstd {n} {} -", zst.finish()?.0))
        }
        _ => Err(io::Error::other(format!("unknown operation {op:?}"))),
    }
}

/// splitmix64: a seeded, fast, portable generator (the data must be identical everywhere).
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

const WORDS: &[&str] = &[
    "alpha",
    "beta",
    "gamma",
    "delta",
    "layer",
    "image",
    "build",
    "cache",
    "digest",
    "manifest",
    "config",
    "registry",
    "blob",
    "push",
    "pull",
    "stage",
    "copy",
    "run",
    "env",
    "label",
    "workdir",
    "user",
    "volume",
    "expose",
    "entrypoint",
    "shell",
    "arg",
    "from",
    "target",
    "context",
    "snapshot",
    "overlay",
    "upper",
    "lower",
    "whiteout",
    "opaque",
    "tar",
    "gzip",
    "zstd",
    "sha256",
    "return",
    "struct",
    "impl",
    "match",
    "let",
    "mut",
    "fn",
    "pub",
    "use",
    "self",
    "error",
    "result",
    "option",
    "some",
    "none",
    "ok",
    "err",
    "vec",
    "string",
    "path",
    "file",
    "read",
    "write",
    "usr",
    "lib",
    "bin",
    "share",
    "doc",
    "locale",
    "include",
];

/// One MiB of words picked by the generator, ten to a line: compresses a few times over,
/// like the text and code in real layers.
fn text_chunk(rng: &mut SplitMix, out: &mut Vec<u8>) {
    let mut on_line = 0;
    while out.len() < MIB {
        let r = rng.next();
        out.extend_from_slice(WORDS[(r % WORDS.len() as u64) as usize].as_bytes());
        on_line += 1;
        out.push(if on_line % 10 == 0 { b'\n' } else { b' ' });
    }
    out.truncate(MIB);
}

/// One MiB straight from the generator: incompressible, like already-compressed assets.
fn noise_chunk(rng: &mut SplitMix, out: &mut Vec<u8>) {
    while out.len() < MIB {
        out.extend_from_slice(&rng.next().to_le_bytes());
    }
}

/// `mib` MiB alternating noise and text chunks, the same bytes on every machine.
fn generate(path: &str, mib: u64) -> io::Result<String> {
    let mut rng = SplitMix(0x6b69_6c6e); // "kiln"
    let mut out = BufWriter::with_capacity(MIB, File::create(path)?);
    let mut chunk = Vec::with_capacity(MIB + 16);
    for i in 0..mib {
        chunk.clear();
        if i % 2 == 0 {
            noise_chunk(&mut rng, &mut chunk);
        } else {
            text_chunk(&mut rng, &mut chunk);
        }
        out.write_all(&chunk)?;
    }
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(format!("gen {} {path}", mib * MIB as u64))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.as_slice() {
        [op, file, mib] if op == "gen" => match mib.parse() {
            Ok(mib) => generate(file, mib),
            Err(_) => Err(io::Error::other(format!(
                "MIB must be a number, not {mib:?}"
            ))),
        },
        [op, file] => run(op, file),
        _ => Err(io::Error::other(
            "usage: primitives sha256|gzip|zstd FILE | primitives gen FILE MIB",
        )),
    };
    match result {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("primitives: {e}");
            ExitCode::FAILURE
        }
    }
}
