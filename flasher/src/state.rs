//! What the flash holds after a failed step, and how to get back.
//!
//! A failure message that only says "cp.b failed" leaves the user guessing
//! whether the board still boots. [`FlashState::after`] maps the phase
//! that failed to the state of the flash; [`FlashState::explain`] says it
//! in words with the recovery.

use crate::plan::{FlashPlan, Phase, Span};

/// The flash after a step failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlashState {
    /// Nothing was erased or written.
    Untouched,
    /// The erase may have run: part or all of the region is erased.
    PartlyErased,
    /// Erased, and the write may have stopped midway.
    PartlyWritten,
    /// Written, but the read-back does not match the image.
    Mismatch,
}

impl FlashState {
    /// The state after a failure in `phase`.
    pub fn after(phase: Phase) -> FlashState {
        match phase {
            Phase::Probe | Phase::Backup | Phase::Load | Phase::Prepare => FlashState::Untouched,
            Phase::Erase => FlashState::PartlyErased,
            Phase::Write => FlashState::PartlyWritten,
            Phase::ReadBack | Phase::Verify => FlashState::Mismatch,
        }
    }

    /// The state and the way back, in sentences.
    pub fn explain(self, plan: &FlashPlan, backup_saved: Option<&str>) -> String {
        let region = match (&plan.erase, &plan.volume) {
            (Some(e), _) => format!("{} of partition {}", Span(*e), plan.partition.name),
            (None, Some(v)) => format!("UBI volume {v} in partition {}", plan.partition.name),
            (None, None) => format!("partition {}", plan.partition.name),
        };
        let protected = &plan.protected;
        let safe = if protected.is_empty() {
            String::new()
        } else {
            format!(
                " The protected partitions ({}) were never addressed, so U-Boot still starts and reaches its prompt.",
                protected.join(", ")
            )
        };
        let restore = match backup_saved {
            Some(f) => format!(" The old contents are saved in {f}; write them back with `lmx flash --board {} --image {f} --partition {}`.", plan.board, plan.partition.name),
            None => String::new(),
        };
        match self {
            FlashState::Untouched => format!(
                "Flash state: untouched. Nothing was erased or written; {region} still holds what it held before."
            ),
            FlashState::PartlyErased => format!(
                "Flash state: {region} is partly or wholly erased; its old contents are gone and the board will not boot from it.{safe} Recover by running lmx flash again (the same command), which erases and writes the whole region anew.{restore}"
            ),
            FlashState::PartlyWritten => format!(
                "Flash state: {region} is erased and only partly written; the board will not boot from it.{safe} Recover by running lmx flash again; if the same step fails again, the chip may be worn out or write-protected (check the write-protect pin or `protect` state).{restore}"
            ),
            FlashState::Mismatch => format!(
                "Flash state: {region} was written but does not read back as the image: do not boot from it.{safe} Run lmx flash again; a second mismatch means the flash is write-protected, failing, or the board file's geometry (erase block, usable area) is wrong.{restore}"
            ),
        }
    }
}
