//! The user namespace this process runs in, read from `/proc/self/{uid,gid}_map`.
//!
//! Rootless kiln runs inside a user namespace where the caller is 0 and the subordinate ids
//! follow (see `crate::sandbox::userns`). There, chown works for exactly the ids the
//! namespace maps, and overlayfs keeps its own xattrs in `user.overlay.*` (mount option
//! `userxattr`) because `trusted.*` needs privilege over the initial namespace.

use std::sync::OnceLock;

use super::unpack::{IdMap, IdRange};

/// Parses the lines of a `uid_map`/`gid_map` file (`inside outside count`).
pub fn parse_proc_map(text: &str) -> Vec<IdRange> {
    text.lines()
        .filter_map(|line| {
            let mut it = line.split_whitespace().map(|w| w.parse::<u32>());
            match (it.next(), it.next(), it.next()) {
                (Some(Ok(container)), Some(Ok(host)), Some(Ok(size))) => Some(IdRange {
                    container,
                    host,
                    size,
                }),
                _ => None,
            }
        })
        .collect()
}

/// Whether `ranges` is the identity map of the initial user namespace.
pub fn is_initial(ranges: &[IdRange]) -> bool {
    matches!(
        ranges,
        [IdRange {
            container: 0,
            host: 0,
            size: u32::MAX
        }]
    )
}

/// The ids that exist in this process's user namespace, as an identity [`IdMap`] (chown
/// takes namespace ids), or `None` in the initial namespace where every id exists.
pub fn current() -> Option<&'static IdMap> {
    static CURRENT: OnceLock<Option<IdMap>> = OnceLock::new();
    CURRENT
        .get_or_init(|| {
            let read = |p: &str| parse_proc_map(&std::fs::read_to_string(p).unwrap_or_default());
            let uids = read("/proc/self/uid_map");
            let gids = read("/proc/self/gid_map");
            if uids.is_empty() || is_initial(&uids) {
                return None;
            }
            let identity = |r: Vec<IdRange>| -> Vec<IdRange> {
                r.into_iter()
                    .map(|r| IdRange {
                        host: r.container,
                        ..r
                    })
                    .collect()
            };
            Some(IdMap {
                uids: identity(uids),
                gids: identity(gids),
            })
        })
        .as_ref()
}

/// Whether this process runs in a user namespace other than the initial one.
pub fn in_user_namespace() -> bool {
    current().is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_namespace_map_is_recognised() {
        let r = parse_proc_map("         0          0 4294967295\n");
        assert!(is_initial(&r));
    }

    #[test]
    fn rootless_map_has_the_caller_then_the_subordinate_range() {
        let r = parse_proc_map("0 1001 1\n1 100000 65536\n");
        assert!(!is_initial(&r));
        assert_eq!(
            r,
            vec![
                IdRange {
                    container: 0,
                    host: 1001,
                    size: 1
                },
                IdRange {
                    container: 1,
                    host: 100000,
                    size: 65536
                }
            ]
        );
    }

    #[test]
    fn malformed_lines_are_skipped() {
        assert!(parse_proc_map("x y z\n1 2\n").is_empty());
    }
}
