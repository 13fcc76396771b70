//! The one way the library writes sizes for people: decimal units as Docker prints them.
//!
//! `docker images` shows `354MB`, `5.99MB`, `1.08GB`: powers of 1000 (`kB`, `MB`, `GB`),
//! three significant digits. Every size the library prints (size reports, clean-up plans
//! and summaries, build cache usage, charts) goes through [`human_bytes`], so a figure in a
//! report reads the same as the figure `docker images` or `docker system df` shows for the
//! same bytes (with a space before the unit). Byte counts themselves are always kept
//! exact; this is only their text.

use anyhow::Context;

const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];

/// Bytes as short text in decimal units with three significant digits, like `docker
/// images` prints them: `999 B`, `1 kB`, `5.99 MB`, `354 MB`, `1.08 GB`.
pub fn human_bytes(bytes: u64) -> String {
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        return format!("{bytes} B");
    }
    let decimals = if value >= 100.0 {
        0
    } else if value >= 10.0 {
        1
    } else {
        2
    };
    let mut text = format!("{value:.decimals$}");
    // 999.6 kB rounds to 1000: that is 1 MB (Docker itself would print `1e+03kB`).
    if text.parse::<f64>().is_ok_and(|v| v >= 1000.0) && unit + 1 < UNITS.len() {
        text = "1".to_string();
        unit += 1;
    }
    if text.contains('.') {
        text = text.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    format!("{text} {}", UNITS[unit])
}

/// A change in bytes with its sign: `+1.2 MB`, `-350 kB`, `+0 B`.
pub(crate) fn human_delta(delta: i64) -> String {
    let sign = if delta < 0 { "-" } else { "+" };
    format!("{sign}{}", human_bytes(delta.unsigned_abs()))
}

/// Parses a size as the docker CLI prints it (`0B`, `61.44kB`, `3.05MB`, `1.2 GB`,
/// `112.6MB (52%)`, `93.34MB*`, `2GiB`) into bytes. Decimal units are powers of 1000,
/// `KiB`/`MiB`/... powers of 1024.
pub fn parse_docker_size(text: &str) -> anyhow::Result<u64> {
    let t = text
        .split('(')
        .next()
        .unwrap_or(text)
        .trim()
        .trim_end_matches('*')
        .trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number
        .parse()
        .with_context(|| format!("`{text}` is not a size"))?;
    let factor: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" | "k" => 1e3,
        "mb" | "m" => 1e6,
        "gb" | "g" => 1e9,
        "tb" | "t" => 1e12,
        "pb" | "p" => 1e15,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "tib" => 1024f64.powi(4),
        _ => anyhow::bail!("`{text}` has an unknown size unit `{unit}`"),
    };
    Ok((value * factor).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_significant_digits_in_decimal_units_like_docker_images() {
        // Figures `docker images` printed on the project's engine for the same bytes.
        assert_eq!(human_bytes(353_682_475), "354 MB"); // 354MB
        assert_eq!(human_bytes(5_991_701), "5.99 MB"); // 5.99MB
        assert_eq!(human_bytes(66_069_698), "66.1 MB"); // 66.1MB
        assert_eq!(human_bytes(528_377_842), "528 MB"); // 528MB
        assert_eq!(human_bytes(1_081_566_271), "1.08 GB");
        assert_eq!(human_bytes(3_680_000_000), "3.68 GB");
    }

    #[test]
    fn edges() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(1_000), "1 kB");
        assert_eq!(human_bytes(1_500), "1.5 kB");
        assert_eq!(human_bytes(1_234_567), "1.23 MB");
        assert_eq!(human_bytes(1_500_000_000), "1.5 GB");
        assert_eq!(human_bytes(10_000_000), "10 MB");
        assert_eq!(human_bytes(99_960_000), "100 MB");
        assert_eq!(human_bytes(999_600), "1 MB");
        assert_eq!(human_bytes(999_400), "999 kB");
        assert_eq!(human_bytes(u64::MAX), "18.4 EB");
        // Binary multiples are not special: 1 GiB is 1.07 GB, as Docker prints it.
        assert_eq!(human_bytes(1 << 30), "1.07 GB");
    }

    #[test]
    fn deltas_carry_their_sign() {
        assert_eq!(human_delta(1_200_000), "+1.2 MB");
        assert_eq!(human_delta(-350_000), "-350 kB");
        assert_eq!(human_delta(0), "+0 B");
    }
}
