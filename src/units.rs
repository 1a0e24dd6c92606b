//! Physical quantities with their units, and the one place they are formatted for people.
//!
//! Memory follows nvidia-smi: 1 MiB = 1024 × 1024 bytes and 1 GiB = 1024 MiB.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A number of bytes.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Bytes(pub u64);

/// Bytes in one mebibyte.
pub const MIB: u64 = 1024 * 1024;
/// Bytes in one gibibyte.
pub const GIB: u64 = 1024 * MIB;

impl Bytes {
    /// A byte count from whole mebibytes; saturates (figures from preset files and logs are
    /// untrusted, and must neither wrap nor panic).
    pub const fn from_mib(mib: u64) -> Self {
        Bytes(mib.saturating_mul(MIB))
    }

    /// Whole mebibytes, rounded to the nearest as nvidia-smi does (seen on an H100:
    /// 11,291,918,336 bytes = 10,768.81 MiB printed as 10769 MiB).
    pub const fn whole_mib(self) -> u64 {
        self.0.saturating_add(MIB / 2) / MIB
    }

    /// Mebibytes as a float, for plotting.
    pub fn mib(self) -> f64 {
        self.0 as f64 / MIB as f64
    }

    /// Gibibytes as a float.
    pub fn gib(self) -> f64 {
        self.0 as f64 / GIB as f64
    }

    /// The difference, or zero when `other` is larger.
    pub fn saturating_sub(self, other: Bytes) -> Bytes {
        Bytes(self.0.saturating_sub(other.0))
    }
}

/// The unit people chose to read memory in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum MemoryUnit {
    /// Mebibytes, as nvidia-smi prints them.
    #[default]
    MiB,
    /// Gibibytes.
    GiB,
}

impl MemoryUnit {
    /// Both units, for pickers.
    pub const ALL: [MemoryUnit; 2] = [MemoryUnit::MiB, MemoryUnit::GiB];

    /// The unit's symbol.
    pub fn symbol(self) -> &'static str {
        match self {
            MemoryUnit::MiB => "MiB",
            MemoryUnit::GiB => "GiB",
        }
    }

    /// A value in MiB converted to this unit (history stores MiB).
    pub fn from_mib(self, mib: f64) -> f64 {
        match self {
            MemoryUnit::MiB => mib,
            MemoryUnit::GiB => mib / 1024.0,
        }
    }

    /// "12,345 MiB" or "12.1 GiB".
    pub fn format(self, bytes: Bytes) -> String {
        self.format_mib(bytes.mib())
    }

    /// Formats a value given in MiB.
    pub fn format_mib(self, mib: f64) -> String {
        match self {
            MemoryUnit::MiB => format!("{} MiB", group_thousands(mib.round() as u64)),
            MemoryUnit::GiB => format!("{:.1} GiB", mib / 1024.0),
        }
    }
}

/// "used / total" in the chosen unit with the other unit beside it, so nobody has to convert.
pub fn format_used_total(used: Bytes, total: Bytes, unit: MemoryUnit) -> String {
    let mib = format!(
        "{} / {} MiB",
        group_thousands(used.whole_mib()),
        group_thousands(total.whole_mib())
    );
    let gib = format!("{:.1} / {:.1} GiB", used.gib(), total.gib());
    match unit {
        MemoryUnit::MiB => format!("{mib}  ({gib})"),
        MemoryUnit::GiB => format!("{gib}  ({mib})"),
    }
}

/// "1 event", "1,250 events": a count with its noun in the right number.
pub fn count(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", group_thousands(n), if n == 1 { one } else { many })
}

/// 1234567 → "1,234,567".
pub fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A temperature in degrees Celsius.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Celsius(pub f32);

impl fmt::Display for Celsius {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.0} °C", self.0)
    }
}

/// Electrical power in watts.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Watts(pub f32);

impl fmt::Display for Watts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.0} W", self.0)
    }
}

/// A percentage, 0–100.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Percent(pub f32);

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.0} %", self.0)
    }
}

/// A clock frequency in megahertz.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MegaHertz(pub u32);

impl fmt::Display for MegaHertz {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} MHz", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mib_rounds_to_nearest_like_nvidia_smi() {
        assert_eq!(Bytes(11_291_918_336).whole_mib(), 10_769);
        assert_eq!(Bytes(MIB * 3 - 1).whole_mib(), 3);
        assert_eq!(Bytes(MIB * 3 + MIB / 2 - 1).whole_mib(), 3);
        assert_eq!(Bytes(0).whole_mib(), 0);
        assert_eq!(Bytes::from_mib(81_559).whole_mib(), 81_559);
    }

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(group_thousands(0), "0");
        assert_eq!(group_thousands(999), "999");
        assert_eq!(group_thousands(1_000), "1,000");
        assert_eq!(group_thousands(81_559), "81,559");
        assert_eq!(group_thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn used_total_shows_both_units() {
        let text = format_used_total(
            Bytes::from_mib(39_500),
            Bytes::from_mib(49_152),
            MemoryUnit::MiB,
        );
        assert_eq!(text, "39,500 / 49,152 MiB  (38.6 / 48.0 GiB)");
        let text = format_used_total(
            Bytes::from_mib(39_500),
            Bytes::from_mib(49_152),
            MemoryUnit::GiB,
        );
        assert_eq!(text, "38.6 / 48.0 GiB  (39,500 / 49,152 MiB)");
    }
}
