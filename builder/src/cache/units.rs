//! Sizes and durations as docker's prune flags take and print them.
//!
//! - [`parse_size`]: docker's `RAMInBytes` (`--keep-storage 10GB`): binary multiples, the `b`
//!   and `i` optional, case-insensitive (`512mb`, `1.5g`, `2GiB`, `4096`).
//! - [`parse_duration`]: Go's `time.ParseDuration`, non-negative (`24h`, `30m`, `1h30m`, `1.5h`).
//! - [`human_size`]: docker's `HumanSize`: decimal units, 4 significant digits (`12.35MB`).

use std::time::Duration;

/// A size or duration that does not parse; the message names the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {value:?}: {reason}")]
pub struct UnitError {
    pub what: &'static str,
    pub value: String,
    pub reason: &'static str,
}

/// Parses a size in bytes as docker's `--keep-storage` does.
pub fn parse_size(value: &str) -> Result<u64, UnitError> {
    let bad = |reason| UnitError {
        what: "size",
        value: value.to_string(),
        reason,
    };
    let s = value.trim();
    let num_len = s
        .bytes()
        .take_while(|b| b.is_ascii_digit() || *b == b'.')
        .count();
    let (num, unit) = s.split_at(num_len);
    if num.is_empty() || num.starts_with('.') || num.ends_with('.') || num.matches('.').count() > 1
    {
        return Err(bad(
            "expected a number, then an optional unit (k, m, g, t, p)",
        ));
    }
    let unit = unit.strip_prefix(' ').unwrap_or(unit).to_ascii_lowercase();
    let mut rest = unit.as_str();
    let shift = match rest.chars().next() {
        Some('k') => 10,
        Some('m') => 20,
        Some('g') => 30,
        Some('t') => 40,
        Some('p') => 50,
        _ => 0,
    };
    if shift > 0 {
        rest = &rest[1..];
        rest = rest.strip_prefix('i').unwrap_or(rest);
    }
    if !matches!(rest, "" | "b") {
        return Err(bad("unknown unit"));
    }
    let multiplier = 1u64 << shift;
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    let int: u64 = int.parse().map_err(|_| bad("number too large"))?;
    let mut total = int
        .checked_mul(multiplier)
        .ok_or_else(|| bad("too large"))?;
    if !frac.is_empty() {
        let digits = &frac[..frac.len().min(18)];
        let f: u128 = digits.parse().map_err(|_| bad("bad fraction"))?;
        let scale = 10u128.pow(digits.len() as u32);
        // Truncated, as docker's int64(float * multiplier) does.
        let extra = (f * u128::from(multiplier) / scale) as u64;
        total = total.checked_add(extra).ok_or_else(|| bad("too large"))?;
    }
    Ok(total)
}

/// Parses a Go duration (`1h30m`, `90s`, `1.5h`, `0`). Negative durations are refused: an
/// `until` in the future means nothing.
pub fn parse_duration(value: &str) -> Result<Duration, UnitError> {
    let bad = |reason| UnitError {
        what: "duration",
        value: value.to_string(),
        reason,
    };
    let mut s = value.strip_prefix('+').unwrap_or(value);
    if s.starts_with('-') {
        return Err(bad("must not be negative"));
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err(bad("empty"));
    }
    let mut nanos: u128 = 0;
    while !s.is_empty() {
        let int_len = s.bytes().take_while(u8::is_ascii_digit).count();
        let (int, rest) = s.split_at(int_len);
        let (frac, rest) = match rest.strip_prefix('.') {
            Some(r) => r.split_at(r.bytes().take_while(u8::is_ascii_digit).count()),
            None => ("", rest),
        };
        if int.is_empty() && frac.is_empty() {
            return Err(bad("expected a number"));
        }
        let unit_len = rest
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (unit, rest) = rest.split_at(unit_len);
        let scale: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err(bad("missing unit (ns, us, ms, s, m, h)")),
            _ => return Err(bad("unknown unit (ns, us, ms, s, m, h)")),
        };
        let int: u128 = if int.is_empty() {
            0
        } else {
            int.parse().map_err(|_| bad("too large"))?
        };
        let digits = &frac[..frac.len().min(18)];
        let frac_part = if digits.is_empty() {
            0
        } else {
            let f: u128 = digits.parse().map_err(|_| bad("bad fraction"))?;
            f * scale / 10u128.pow(digits.len() as u32)
        };
        nanos = int
            .checked_mul(scale)
            .and_then(|n| n.checked_add(frac_part))
            .and_then(|n| n.checked_add(nanos))
            .filter(|n| *n <= i64::MAX as u128)
            .ok_or_else(|| bad("too large"))?;
        s = rest;
    }
    Ok(Duration::from_nanos(nanos as u64))
}

/// Formats bytes as docker's `units.HumanSize`: decimal units (`kB`, `MB`, ...) and at most
/// four significant digits (`0B`, `999B`, `1.5kB`, `12.35MB`).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut value = bytes as f64;
    let mut i = 0;
    while value >= 1000.0 && i < UNITS.len() - 1 {
        value /= 1000.0;
        i += 1;
    }
    format!("{}{}", format_g4(value), UNITS[i])
}

/// Go's `%.4g` for values in [0, 1000] (what `human_size` produces).
fn format_g4(value: f64) -> String {
    if value == 0.0 {
        return "0".to_string();
    }
    let digits_before = (value.abs().log10().floor() as i32 + 1).max(1);
    let decimals = (4 - digits_before).max(0) as usize;
    let s = format!("{value:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_like_docker_ram_in_bytes() {
        for (input, want) in [
            ("0", 0),
            ("4096", 4096),
            ("10b", 10),
            ("1k", 1024),
            ("1KB", 1024),
            ("1kib", 1024),
            ("512MB", 512 << 20),
            ("512 mb", 512 << 20),
            ("10GB", 10 << 30),
            ("1.5gb", 3 << 29),
            ("2GiB", 2 << 30),
            ("1t", 1 << 40),
            ("1.25k", 1280),
        ] {
            assert_eq!(parse_size(input), Ok(want), "{input}");
        }
        for bad in [
            "",
            "GB",
            "-1",
            "1.2.3GB",
            ".5g",
            "5.g",
            "10XB",
            "10gbb",
            "1e3",
            "10 GB extra",
        ] {
            assert!(parse_size(bad).is_err(), "{bad:?} should be rejected");
        }
        let err = parse_size("10XB").unwrap_err().to_string();
        assert_eq!(err, r#"invalid size "10XB": unknown unit"#);
        assert!(
            parse_size("99999999999999p").is_err(),
            "overflow is an error"
        );
    }

    #[test]
    fn durations_parse_like_go() {
        let h = 3600;
        for (input, secs) in [
            ("0", 0),
            ("24h", 24 * h),
            ("30m", 1800),
            ("1h30m", h + 1800),
            ("1.5h", h + 1800),
            ("90s", 90),
            ("+2m", 120),
            ("1h0m1s", h + 1),
        ] {
            assert_eq!(
                parse_duration(input),
                Ok(Duration::from_secs(secs)),
                "{input}"
            );
        }
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5us"), Ok(Duration::from_nanos(1500)));
        for bad in [
            "",
            "24",
            "1d",
            "h",
            "-1h",
            "1h-5m",
            ".h",
            "1..5h",
            "9999999999h",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be rejected");
        }
        assert_eq!(
            parse_duration("24").unwrap_err().to_string(),
            r#"invalid duration "24": missing unit (ns, us, ms, s, m, h)"#
        );
    }

    #[test]
    fn human_size_matches_docker() {
        for (bytes, want) in [
            (0, "0B"),
            (999, "999B"),
            (1000, "1kB"),
            (1500, "1.5kB"),
            (12_345_678, "12.35MB"),
            (12_300_000, "12.3MB"),
            (999_999, "1000kB"),
            (5 * 1000u64.pow(3), "5GB"),
            (123_456_789_012, "123.5GB"),
        ] {
            assert_eq!(human_size(bytes), want, "{bytes}");
        }
    }
}
