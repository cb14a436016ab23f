//! File names that are not UTF-8, carried losslessly in `String`s.
//!
//! Linux names are bytes, and Docker keeps them as bytes end to end (a context file or a
//! RUN output named `caf\xe9` lands in the layer under exactly that name). kiln's context,
//! COPY and layer code works on slash-separated strings, so names cross into it through
//! [`encode`] and back out to the filesystem or a tar header through [`decode`]:
//!
//! - a byte that is not part of valid UTF-8 becomes one code point of [`ESCAPES`] (the last
//!   256 code points of plane 16, private use), `U+10FF00 + byte`;
//! - a real character from that range is escaped the same way, byte by byte, so that the
//!   two functions are exact inverses for every byte string.
//!
//! Names that are valid UTF-8 without such characters (all but a vanishing few) pass through
//! both functions borrowed and unchanged, so dockerignore patterns, cache keys and error
//! messages see them as before. A `?` in a pattern matches one escaped byte, as Go's
//! `filepath.Match` matches one byte of invalid UTF-8.

use std::borrow::Cow;
use std::ffi::OsStr;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

/// The code points that stand for single bytes.
pub const ESCAPES: std::ops::RangeInclusive<u32> = 0x10_FF00..=0x10_FFFF;

/// The UTF-8 lead byte of U+100000..U+10FFFF, which holds [`ESCAPES`]: a string without it
/// has no escapes (the fast path).
const ESCAPE_LEAD: u8 = 0xF4;

/// A file name (or slash-separated path) as kiln's string form.
pub fn encode(name: &OsStr) -> Cow<'_, str> {
    encode_bytes(name.as_bytes())
}

/// [`encode`] for raw bytes (tar headers).
pub fn encode_bytes(bytes: &[u8]) -> Cow<'_, str> {
    if !bytes.contains(&ESCAPE_LEAD) {
        if let Ok(s) = std::str::from_utf8(bytes) {
            return Cow::Borrowed(s);
        }
    }
    let mut out = String::with_capacity(bytes.len() + 8);
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if ESCAPES.contains(&(c as u32)) {
                let mut buf = [0u8; 4];
                c.encode_utf8(&mut buf)
                    .bytes()
                    .for_each(|b| out.push(escape(b)));
            } else {
                out.push(c);
            }
        }
        chunk.invalid().iter().for_each(|&b| out.push(escape(b)));
    }
    Cow::Owned(out)
}

/// The bytes a string from [`encode`] stands for.
pub fn decode(name: &str) -> Cow<'_, [u8]> {
    if !name.as_bytes().contains(&ESCAPE_LEAD) {
        return Cow::Borrowed(name.as_bytes());
    }
    let mut out = Vec::with_capacity(name.len());
    for c in name.chars() {
        match (c as u32).checked_sub(*ESCAPES.start()) {
            Some(byte) if ESCAPES.contains(&(c as u32)) => out.push(byte as u8),
            _ => out.extend_from_slice(c.encode_utf8(&mut [0u8; 4]).as_bytes()),
        }
    }
    Cow::Owned(out)
}

/// [`decode`] as a path, to open or stat the file a string names.
pub fn decode_path(name: &str) -> Cow<'_, Path> {
    match decode(name) {
        Cow::Borrowed(b) => Cow::Borrowed(Path::new(OsStr::from_bytes(b))),
        Cow::Owned(v) => Cow::Owned(std::ffi::OsString::from_vec(v).into()),
    }
}

fn escape(byte: u8) -> char {
    char::from_u32(ESCAPES.start() + byte as u32).expect("plane 16 code points are chars")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(bytes: &[u8]) {
        let s = encode_bytes(bytes);
        assert_eq!(&*decode(&s), bytes, "{s:?}");
        assert_eq!(decode_path(&s).as_os_str().as_bytes(), bytes);
    }

    #[test]
    fn utf8_names_pass_through_borrowed() {
        for name in ["", "a/b.txt", "café/naïve", "日本語", "emoji-🦀"] {
            assert!(matches!(encode_bytes(name.as_bytes()), Cow::Borrowed(s) if s == name));
            assert!(matches!(decode(name), Cow::Borrowed(b) if b == name.as_bytes()));
        }
    }

    #[test]
    fn every_byte_string_round_trips() {
        // Invalid bytes alone, in valid text, truncated sequences, and the escape range
        // itself written as real characters (which must not decode as escapes).
        let real_escape = "\u{10FF41}";
        let cases: Vec<Vec<u8>> = vec![
            b"caf\xe9".to_vec(),
            b"\xff\xfe/\x80".to_vec(),
            b"ok-\xe6\x97".to_vec(),
            b"\xf4\x8f\xbd".to_vec(),
            real_escape.as_bytes().to_vec(),
            format!("x{real_escape}y\u{10FFFF}").into_bytes(),
            (0..=255u8).collect(),
        ];
        for c in &cases {
            round_trip(c);
        }
        // Every two-byte string: exhaustive over the interesting lead bytes.
        for a in [0x00, 0x41, 0x7f, 0x80, 0xc3, 0xe6, 0xf4, 0xff] {
            for b in 0..=255u8 {
                round_trip(&[a, b]);
            }
        }
    }

    #[test]
    fn invalid_bytes_become_one_char_each() {
        let s = encode_bytes(b"a\xffb");
        assert_eq!(s.chars().count(), 3);
        assert!(s.starts_with('a') && s.ends_with('b'));
        // A real escape-range character is distinct from the byte it would stand for.
        assert_ne!(encode_bytes("\u{10FFFF}".as_bytes()), encode_bytes(b"\xff"));
    }
}
