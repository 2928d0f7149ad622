//! How much memory a computation may plan on, so that sizes declared by an
//! input or asked for by a user are refused before anything is allocated.

use crate::FsError;

/// Bytes the operating system says can be allocated without swapping
/// (`MemAvailable` of /proc/meminfo); `None` where that is unknown.
pub fn available_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    parse_meminfo(&text)
}

fn parse_meminfo(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// "4.0 TB", "22.3 GiB": sizes for messages.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Refuses a plan that needs `bytes` (None: more than a u64 counts) when
/// the machine has less available. `what` says what needs it, e.g.
/// "--cells 1000000000000 x --genes 5000".
pub fn check(bytes: Option<u64>, what: &str) -> Result<(), FsError> {
    let refuse = |available: u64| FsError::Memory {
        what: what.to_owned(),
        needed: bytes.map_or_else(|| "more than 16 EiB".to_owned(), human),
        available: human(available),
    };
    match (bytes, available_bytes()) {
        (Some(b), Some(available)) if b > available => Err(refuse(available)),
        (None, available) => Err(refuse(available.unwrap_or(0))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_is_read_in_kib() {
        let text = "MemTotal:       24000000 kB\nMemFree:  100 kB\nMemAvailable:   2048 kB\n";
        assert_eq!(parse_meminfo(text), Some(2 * 1024 * 1024));
        assert_eq!(parse_meminfo("MemTotal: 1 kB\n"), None);
    }

    #[test]
    fn absurd_plans_are_refused_and_small_ones_pass() {
        assert!(check(Some(1024), "a small plan").is_ok());
        if available_bytes().is_some() {
            let err = check(Some(u64::MAX / 2), "--cells 10^12").unwrap_err();
            assert!(err.is_bad_input());
            assert!(err.to_string().contains("available"), "{err}");
        }
        assert!(check(None, "overflowing").is_err());
    }

    #[test]
    fn sizes_read_naturally() {
        assert_eq!(human(512), "512 B");
        assert_eq!(human(4 << 40), "4.0 TiB");
    }
}
