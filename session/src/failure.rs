//! One diagnostic for every step that fails on a board.
//!
//! A boot and a flash fail the same way from a user's point of view: a
//! step (a load, an erase, the boot), the U-Boot command it ran, what was
//! expected against what was seen, the console's last lines, and what to
//! try. A flash failure adds what the flash holds now; a boot never
//! touches flash, so it has no such line.

use lmx_console::{ShellError, Tail};

/// A failed step, told so that a person can act on it.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("{step} failed: {reason}\n  command: {command}{tail}{state}")]
#[diagnostic(code(lmx::step_failed), help("{hint}"))]
pub struct StepFailure {
    /// The step, e.g. `load rootfs.squashfs` or `erase (firmware)`.
    pub step: String,
    /// The U-Boot command that was running.
    pub command: String,
    /// What was expected and what was seen.
    pub reason: String,
    /// The console's last lines (nothing when `reason` already has them).
    pub tail: TailText,
    /// What the flash holds now and how to recover (flash steps only).
    pub state: StateText,
    /// What to try.
    pub hint: String,
}

/// Console lines for a [`StepFailure`] (nothing when empty).
#[derive(Debug, Default, Clone)]
pub struct TailText(pub Option<Tail>);

impl std::fmt::Display for TailText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some(t) => write!(f, "{t}"),
            None => Ok(()),
        }
    }
}

/// The flash state line of a [`StepFailure`] (nothing for a boot).
#[derive(Debug, Default, Clone)]
pub struct StateText(pub Option<String>);

impl std::fmt::Display for StateText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some(s) => write!(f, "\n{s}"),
            None => Ok(()),
        }
    }
}

impl StepFailure {
    /// A failure with everything but the console lines and flash state.
    pub fn new(
        step: impl Into<String>,
        command: impl Into<String>,
        reason: impl Into<String>,
        hint: impl Into<String>,
    ) -> StepFailure {
        StepFailure {
            step: step.into(),
            command: command.into(),
            reason: reason.into(),
            tail: TailText(None),
            state: StateText(None),
            hint: hint.into(),
        }
    }

    /// The console driver's error for `command`, with its own help line.
    pub fn shell(step: &str, command: &str, e: ShellError) -> StepFailure {
        let hint = miette::Diagnostic::help(&e)
            .map(|h| h.to_string())
            .unwrap_or_else(|| "look at the console lines above".into());
        StepFailure::new(step, command, e.to_string(), hint)
    }

    /// With the console's last lines.
    pub fn with_tail(mut self, tail: Tail) -> StepFailure {
        self.tail = TailText(Some(tail));
        self
    }

    /// With what the flash holds now.
    pub fn with_state(mut self, state: impl Into<String>) -> StepFailure {
        self.state = StateText(Some(state.into()));
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_and_flash_failures_render_alike() {
        let boot = StepFailure::new(
            "load Image",
            "tftpboot 0x40400000 Image",
            "crc32 mismatch",
            "retry",
        )
        .with_tail(Tail(vec!["=> ".into()]));
        assert_eq!(
            boot.to_string(),
            "load Image failed: crc32 mismatch\n  command: tftpboot 0x40400000 Image\n  last console lines:\n  | => "
        );
        let flash = StepFailure::new("erase (firmware)", "erase 0 1", "status 1", "check WP")
            .with_state("Flash state: erased.");
        assert!(flash.to_string().ends_with("\nFlash state: erased."));
        assert_eq!(
            miette::Diagnostic::help(&flash).unwrap().to_string(),
            "check WP"
        );
    }
}
