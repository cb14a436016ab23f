//! Tar header encoding: USTAR headers, with a PAX extended header in front when a name is
//! too long or not ASCII, a number does not fit, or there are xattrs (as Go's
//! `archive/tar` writes them, which is what Docker and BuildKit layers look like).

use std::collections::BTreeMap;

pub const BLOCK: usize = 512;

const NAME_LEN: usize = 100;
const PREFIX_LEN: usize = 155;
/// Largest value of an 8-byte octal field (7 digits).
const MAX_OCTAL_8: u64 = 0o7777777;
/// Largest value of a 12-byte octal field (11 digits).
const MAX_OCTAL_12: u64 = 0o77777777777;

/// The fields of one entry.
pub struct Fields<'a> {
    /// Relative path, with a trailing `/` for directories (raw bytes: names need not be
    /// UTF-8).
    pub name: &'a [u8],
    pub typeflag: u8,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub size: u64,
    pub mtime: i64,
    pub linkname: &'a [u8],
    pub devmajor: u32,
    pub devminor: u32,
    pub xattrs: &'a BTreeMap<String, Vec<u8>>,
}

/// Encodes the header blocks of an entry (a PAX header and its records when needed, then
/// the USTAR header) into `out`.
pub fn encode(f: &Fields<'_>, out: &mut Vec<u8>) {
    let mut pax: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let (name, prefix) = match split_ustar(f.name) {
        Some(np) => np,
        None => {
            pax.insert("path".into(), f.name.to_vec());
            (truncate_ascii(f.name, NAME_LEN), Vec::new())
        }
    };
    let linkname = if f.linkname.len() <= NAME_LEN && f.linkname.is_ascii() {
        f.linkname.to_vec()
    } else {
        pax.insert("linkpath".into(), f.linkname.to_vec());
        truncate_ascii(f.linkname, NAME_LEN)
    };
    let mut num = |key: &str, v: u64, max: u64| {
        if v > max {
            pax.insert(key.into(), v.to_string().into_bytes());
            0
        } else {
            v
        }
    };
    let uid = num("uid", f.uid, MAX_OCTAL_8);
    let gid = num("gid", f.gid, MAX_OCTAL_8);
    let size = num("size", f.size, MAX_OCTAL_12);
    let mtime = if f.mtime < 0 || f.mtime as u64 > MAX_OCTAL_12 {
        pax.insert("mtime".into(), f.mtime.to_string().into_bytes());
        0
    } else {
        f.mtime as u64
    };
    for (k, v) in f.xattrs {
        pax.insert(format!("SCHILY.xattr.{k}"), v.clone());
    }

    if !pax.is_empty() {
        let mut records = Vec::new();
        for (k, v) in &pax {
            record(k, v, &mut records);
        }
        let base = f.name.strip_suffix(b"/").unwrap_or(f.name);
        let (dir, file) = match base.iter().rposition(|&b| b == b'/') {
            Some(i) => (&base[..i], &base[i + 1..]),
            None => (&b""[..], base),
        };
        let mut pax_name = dir.to_vec();
        if !dir.is_empty() {
            pax_name.push(b'/');
        }
        pax_name.extend_from_slice(b"PaxHeaders.0/");
        pax_name.extend_from_slice(file);
        out.extend_from_slice(&ustar(
            &truncate_ascii(&pax_name, NAME_LEN),
            b"",
            b'x',
            0,
            0,
            0,
            records.len() as u64,
            0,
            b"",
            0,
            0,
        ));
        let padded = records.len().div_ceil(BLOCK) * BLOCK;
        records.resize(padded, 0);
        out.extend_from_slice(&records);
    }
    out.extend_from_slice(&ustar(
        &name,
        &prefix,
        f.typeflag,
        f.mode as u64 & 0o7777,
        uid,
        gid,
        size,
        mtime,
        &linkname,
        f.devmajor as u64,
        f.devminor as u64,
    ));
}

/// A PAX record: `"<len> <key>=<value>\n"`, where `len` counts the whole record.
fn record(key: &str, value: &[u8], out: &mut Vec<u8>) {
    let base = key.len() + value.len() + 3;
    let mut len = base + base.to_string().len();
    if base + len.to_string().len() != len {
        len = base + len.to_string().len();
    }
    out.extend_from_slice(format!("{len} {key}=").as_bytes());
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// Splits a name into USTAR's name and prefix fields, if it can be stored there.
fn split_ustar(name: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    if !name.is_ascii() {
        return None;
    }
    if name.len() <= NAME_LEN {
        return Some((name.to_vec(), Vec::new()));
    }
    // The prefix must end at a slash; the name part must be non-empty.
    let bytes = name;
    let last = bytes.len() - 1;
    (1..last.min(PREFIX_LEN + 1))
        .rev()
        .filter(|&i| bytes[i] == b'/')
        .find(|&i| last - i < NAME_LEN + 1 && i <= PREFIX_LEN && last > i)
        .map(|i| (name[i + 1..].to_vec(), name[..i].to_vec()))
}

fn truncate_ascii(s: &[u8], max: usize) -> Vec<u8> {
    s.iter()
        .map(|&b| if b.is_ascii() { b } else { b'_' })
        .take(max)
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn ustar(
    name: &[u8],
    prefix: &[u8],
    typeflag: u8,
    mode: u64,
    uid: u64,
    gid: u64,
    size: u64,
    mtime: u64,
    linkname: &[u8],
    devmajor: u64,
    devminor: u64,
) -> [u8; BLOCK] {
    let mut h = [0u8; BLOCK];
    put_str(&mut h[0..100], name);
    put_octal(&mut h[100..108], mode);
    put_octal(&mut h[108..116], uid);
    put_octal(&mut h[116..124], gid);
    put_octal(&mut h[124..136], size);
    put_octal(&mut h[136..148], mtime);
    h[156] = typeflag;
    put_str(&mut h[157..257], linkname);
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    // uname/gname stay empty: layers carry numeric ids only.
    put_octal(&mut h[329..337], devmajor);
    put_octal(&mut h[337..345], devminor);
    put_str(&mut h[345..500], prefix);
    h[148..156].fill(b' ');
    let sum: u64 = h.iter().map(|&b| b as u64).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    h
}

fn put_str(field: &mut [u8], b: &[u8]) {
    field[..b.len()].copy_from_slice(b);
}

/// Zero-padded octal digits and a NUL, as Go writes them.
fn put_octal(field: &mut [u8], v: u64) {
    let digits = format!("{v:0width$o}", width = field.len() - 1);
    field[..digits.len()].copy_from_slice(digits.as_bytes());
    field[digits.len()] = 0;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_length_counts_itself() {
        for (k, v) in [
            ("path", "a".repeat(5)),
            ("path", "a".repeat(93)),
            ("path", "a".repeat(994)),
        ] {
            let mut out = Vec::new();
            record(k, v.as_bytes(), &mut out);
            let s = String::from_utf8(out).unwrap();
            let (len, _) = s.split_once(' ').unwrap();
            assert_eq!(len.parse::<usize>().unwrap(), s.len(), "{s:?}");
        }
    }

    #[test]
    fn ustar_split_uses_prefix_for_long_ascii_names() {
        let name = format!("{}/{}", "d".repeat(120), "f".repeat(90));
        let (n, p) = split_ustar(name.as_bytes()).unwrap();
        assert_eq!(n, "f".repeat(90).as_bytes());
        assert_eq!(p, "d".repeat(120).as_bytes());
        assert!(split_ustar("x".repeat(101).as_bytes()).is_none());
        assert!(split_ustar("caf\u{e9}".as_bytes()).is_none());
        assert!(split_ustar(b"caf\xe9").is_none());
    }
}
