//! The budget an image's size is judged against: which size, the target and the maximum,
//! and the outcome with its exit code.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::docker::image::ImageSizes;

/// Which of an image's two sizes a budget judges.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub(crate) enum SizeMeasure {
    /// The size on disk, as `docker images` shows it (the default: what people see and
    /// what the seed project's checklist reads). On the containerd image store that is the
    /// unpacked layers plus the compressed content the engine keeps beside them.
    #[default]
    Unpacked,
    /// The compressed size: what a registry stores and a push or pull transfers (on the
    /// containerd image store, what `docker image inspect --format {{.Size}}` reports).
    Compressed,
}

impl fmt::Display for SizeMeasure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SizeMeasure::Unpacked => "unpacked",
            SizeMeasure::Compressed => "compressed",
        })
    }
}

/// How an image's size compares with its budget: the library's one
/// [`Verdict`](crate::validate::Verdict), where not measured (a plan's placeholder answers)
/// is not checked.
pub(crate) use crate::validate::Verdict as SizeOutcome;

#[cfg(test)]
impl SizeOutcome {
    /// The process exit code for this outcome: 0 pass, 3 warn, 1 fail. Warn has its own
    /// code (not 2, which argument parsers use for usage errors) so CI can choose to let
    /// it through (`|| test $? -eq 3`).
    pub(crate) fn exit_code(self) -> i32 {
        match self {
            SizeOutcome::Pass => 0,
            SizeOutcome::Warn => 3,
            SizeOutcome::Fail | SizeOutcome::NotChecked => 1,
        }
    }
}

/// A size budget in bytes: warn above `target`, fail above `max`, judging the size
/// `measure` names (by default the unpacked size `docker images` shows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub(crate) struct SizeBudget {
    /// The size the image should stay under.
    pub(crate) target_bytes: u64,
    /// The size it must stay under.
    pub(crate) max_bytes: u64,
    /// Which size is judged.
    pub(crate) measure: SizeMeasure,
}

impl SizeBudget {
    /// Which size is judged.
    #[cfg(test)]
    pub(crate) fn measure(mut self, measure: SizeMeasure) -> SizeBudget {
        self.measure = measure;
        self
    }
}

impl Default for SizeBudget {
    /// The seed project's budget: target 1.5 GB, maximum 1.8 GB, of the unpacked size
    /// `docker images` shows.
    fn default() -> Self {
        SizeBudget::new(1_500_000_000, 1_800_000_000)
    }
}

impl SizeBudget {
    /// A budget of the unpacked size (what `docker images` shows).
    pub(crate) fn new(target_bytes: u64, max_bytes: u64) -> SizeBudget {
        SizeBudget {
            target_bytes,
            max_bytes,
            measure: SizeMeasure::Unpacked,
        }
    }

    /// The bytes this budget judges: the size its measure names. A compressed budget of
    /// an image whose compressed size is unknown (classic image store) judges the unpacked
    /// size, which is larger, so it never passes an image it should not.
    pub(crate) fn judged_bytes(&self, sizes: &ImageSizes) -> u64 {
        match self.measure {
            SizeMeasure::Unpacked => sizes.unpacked_bytes,
            SizeMeasure::Compressed => sizes.compressed_bytes.unwrap_or(sizes.unpacked_bytes),
        }
    }

    /// Pass at or under the target, warn up to the maximum, fail above it.
    pub(crate) fn check(&self, bytes: u64) -> SizeOutcome {
        if bytes <= self.target_bytes {
            SizeOutcome::Pass
        } else if bytes <= self.max_bytes {
            SizeOutcome::Warn
        } else {
            SizeOutcome::Fail
        }
    }
}
