//! Go's `time.ParseDuration` syntax (`300ms`, `1m30s`, `1.5h`), as HEALTHCHECK flags use it.

use super::error::ParseErrorKind;

/// Parses a Go duration into nanoseconds. Negative durations are returned as negative values.
pub(crate) fn parse_go_duration(value: &str) -> Result<i128, ParseErrorKind> {
    let invalid = || ParseErrorKind::Duration {
        value: value.to_string(),
        reason: "invalid duration",
    };
    let (negative, mut s) = match value.as_bytes().first() {
        Some(b'-') => (true, &value[1..]),
        Some(b'+') => (false, &value[1..]),
        _ => (false, value),
    };
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut total: i128 = 0;
    while !s.is_empty() {
        let int_len = s.bytes().take_while(u8::is_ascii_digit).count();
        let int_part = &s[..int_len];
        s = &s[int_len..];
        let mut frac_part = "";
        if let Some(rest) = s.strip_prefix('.') {
            let frac_len = rest.bytes().take_while(u8::is_ascii_digit).count();
            frac_part = &rest[..frac_len];
            s = &rest[frac_len..];
        }
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(invalid());
        }
        let unit_len = s
            .char_indices()
            .find(|(_, c)| *c == '.' || c.is_ascii_digit())
            .map_or(s.len(), |(i, _)| i);
        let unit = &s[..unit_len];
        s = &s[unit_len..];
        if unit.is_empty() {
            return Err(ParseErrorKind::Duration {
                value: value.to_string(),
                reason: "missing unit in duration",
            });
        }
        let scale: i128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => {
                return Err(ParseErrorKind::DurationUnit {
                    value: value.to_string(),
                    unit: unit.to_string(),
                })
            }
        };
        let int: i128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| invalid())?
        };
        let mut frac_ns: i128 = 0;
        let mut div: i128 = 1;
        for d in frac_part.bytes().take(30) {
            frac_ns = frac_ns * 10 + i128::from(d - b'0');
            div *= 10;
        }
        total += int * scale + frac_ns * scale / div;
        if total > i128::from(i64::MAX) {
            return Err(invalid());
        }
    }
    Ok(if negative { -total } else { total })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("30s").unwrap(), 30_000_000_000);
        assert_eq!(parse_go_duration("1m30s").unwrap(), 90_000_000_000);
        assert_eq!(parse_go_duration("1.5h").unwrap(), 5_400_000_000_000);
        assert_eq!(parse_go_duration("300ms").unwrap(), 300_000_000);
        assert_eq!(parse_go_duration("2us").unwrap(), 2_000);
        assert_eq!(parse_go_duration(".5s").unwrap(), 500_000_000);
        assert_eq!(parse_go_duration("0").unwrap(), 0);
        assert_eq!(parse_go_duration("-1s").unwrap(), -1_000_000_000);
    }

    #[test]
    fn bad_durations() {
        let msg = |s| parse_go_duration(s).unwrap_err().to_string();
        assert_eq!(msg("abc"), "time: invalid duration \"abc\"");
        assert_eq!(msg("10"), "time: missing unit in duration \"10\"");
        assert_eq!(msg("10x"), "time: unknown unit \"x\" in duration \"10x\"");
        assert_eq!(msg(""), "time: invalid duration \"\"");
        assert_eq!(msg("."), "time: invalid duration \".\"");
    }
}
