//! Parallel gzip: the stream is cut into fixed-size chunks, each compressed on a worker thread
//! into a complete gzip member, and the members are written in order. A gzip file may hold
//! several members (RFC 1952 §2.2) and every reader kiln's images meet (Go's `gzip.Reader`,
//! zlib's `gunzip`, flate2's `MultiGzDecoder`) reads them as one stream.
//!
//! Output is deterministic: the chunk size and level are fixed, and whether a chunk is stored
//! instead of deflated depends only on its bytes. A chunk whose sample does not compress
//! (already-compressed assets, random data) is stored, which costs a copy instead of a deflate
//! pass: the expensive half of building images with large binary files.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Uncompressed bytes per gzip member.
pub const CHUNK: usize = 1 << 20;
/// Bytes compressed to judge whether a chunk is worth deflating.
const SAMPLE: usize = 64 << 10;
/// A sample that shrinks by less than this (compressed / original) is stored.
const STORE_RATIO: f64 = 0.97;

type Job = (Vec<u8>, SyncSender<io::Result<Vec<u8>>>);

/// A `Write` that gzips on all cores.
pub struct ParallelGzip<W: Write> {
    inner: W,
    level: u32,
    buf: Vec<u8>,
    jobs: Option<SyncSender<Job>>,
    workers: Vec<JoinHandle<()>>,
    /// Compressed members not yet written, in stream order.
    pending: VecDeque<Receiver<io::Result<Vec<u8>>>>,
    max_pending: usize,
    /// Whether any byte was written (an empty stream still gets one empty member).
    touched: bool,
}

impl<W: Write> ParallelGzip<W> {
    pub fn new(inner: W, level: u32) -> Self {
        let threads = super::compression_workers();
        let (tx, rx) = mpsc::sync_channel::<Job>(threads * 2);
        let rx = Arc::new(Mutex::new(rx));
        let workers = (0..threads)
            .map(|_| {
                let rx = Arc::clone(&rx);
                std::thread::spawn(move || loop {
                    let job = rx.lock().map(|r| r.recv());
                    let Ok(Ok((chunk, reply))) = job else { break };
                    let _ = reply.send(compress_member(&chunk, level));
                })
            })
            .collect();
        ParallelGzip {
            inner,
            level,
            buf: Vec::with_capacity(CHUNK),
            jobs: Some(tx),
            workers,
            pending: VecDeque::new(),
            // Bounds memory: at most this many chunks in flight (plus one being filled).
            max_pending: threads * 2,
            touched: false,
        }
    }

    fn submit(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        let (reply_tx, reply_rx) = mpsc::sync_channel(1);
        let sent = self
            .jobs
            .as_ref()
            .is_some_and(|jobs| jobs.send((chunk, reply_tx)).is_ok());
        if !sent {
            return Err(io::Error::other("the compression workers stopped"));
        }
        self.pending.push_back(reply_rx);
        while self.pending.len() > self.max_pending {
            self.write_oldest()?;
        }
        Ok(())
    }

    fn write_oldest(&mut self) -> io::Result<()> {
        if let Some(rx) = self.pending.pop_front() {
            let member = rx
                .recv()
                .map_err(|_| io::Error::other("a compression worker stopped"))??;
            self.inner.write_all(&member)?;
        }
        Ok(())
    }

    /// Compresses what is left, writes every member in order and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.submit()?;
        while !self.pending.is_empty() {
            self.write_oldest()?;
        }
        self.jobs = None;
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        // An empty stream is still a valid gzip file: one empty member.
        if !self.touched {
            self.inner.write_all(&compress_member(&[], self.level)?)?;
        }
        self.inner.flush()?;
        Ok(self.inner)
    }
}

/// One complete gzip member for `chunk` (no name, mtime 0, OS unknown: no host noise).
fn compress_member(chunk: &[u8], level: u32) -> io::Result<Vec<u8>> {
    let level = if worth_deflating(chunk, level) {
        level
    } else {
        0
    };
    let mut enc = flate2::GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(
            Vec::with_capacity(chunk.len() / 2 + 64),
            flate2::Compression::new(level),
        );
    enc.write_all(chunk)?;
    enc.finish()
}

/// Whether deflate pays for `chunk`: a fast compression of a sample from its middle decides.
fn worth_deflating(chunk: &[u8], level: u32) -> bool {
    if level == 0 || chunk.len() < 2 * SAMPLE {
        return level != 0;
    }
    let start = (chunk.len() - SAMPLE) / 2;
    let sample = &chunk[start..start + SAMPLE];
    let mut enc =
        flate2::write::DeflateEncoder::new(Vec::with_capacity(SAMPLE), flate2::Compression::fast());
    if enc.write_all(sample).is_err() {
        return true;
    }
    match enc.finish() {
        Ok(out) => (out.len() as f64) < STORE_RATIO * SAMPLE as f64,
        Err(_) => true,
    }
}

impl<W: Write> Write for ParallelGzip<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.touched = true;
        let room = CHUNK - self.buf.len();
        let n = room.min(data.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == CHUNK {
            self.submit()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        // Members are written when complete; a partial chunk waits for more data or finish().
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn gunzip(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(data)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    fn pseudo_random(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    fn gzip(data: &[u8], writes: usize) -> Vec<u8> {
        let mut w = ParallelGzip::new(Vec::new(), 6);
        for part in data.chunks(data.len().div_ceil(writes).max(1)) {
            w.write_all(part).unwrap();
        }
        w.finish().unwrap()
    }

    #[test]
    fn round_trips_across_chunk_boundaries() {
        let mut data = b"text that compresses well ".repeat(100_000);
        data.extend(pseudo_random(3 * CHUNK + 17, 7));
        let out = gzip(&data, 13);
        assert_eq!(gunzip(&out), data);
        assert!(out.len() < data.len());
    }

    #[test]
    fn output_does_not_depend_on_write_sizes_or_threads() {
        let data = pseudo_random(5 * CHUNK / 2, 3);
        assert_eq!(gzip(&data, 1), gzip(&data, 97));
    }

    #[test]
    fn incompressible_chunks_are_stored_compressible_ones_deflated() {
        let random = pseudo_random(CHUNK, 11);
        assert!(!worth_deflating(&random, 6));
        assert!(worth_deflating(&vec![b'a'; CHUNK], 6));
        let out = gzip(&random, 1);
        // Stored: about the input size plus block and member headers, far below deflate's
        // cost on such data, and still a valid gzip stream.
        assert!(out.len() < random.len() + random.len() / 100);
        assert_eq!(gunzip(&out), random);
    }

    #[test]
    fn empty_input_is_a_valid_gzip_file() {
        let out = gzip(&[], 1);
        assert!(out.starts_with(&[0x1f, 0x8b]));
        assert!(gunzip(&out).is_empty());
    }
}
