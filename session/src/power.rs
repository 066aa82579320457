//! Power control: a board with no working `reboot` (the seed's gl-ar750:
//! "halt and reboot don't work"), a `--watch` loop, `lmx flash --boot`
//! or a fresh `lmx tftpboot` need someone to cycle its power. In a lab
//! that is a command: `labgrid-client -p PLACE power cycle`, a PDUDaemon
//! call, a USB relay tool. [`Power`] runs it; [`cycle_and_attach`] runs
//! it while the console is already being read, so that a board whose
//! U-Boot looks for a key once, right after its banner (`bootdelay = 0`),
//! is caught on that one look.

use std::process::Stdio;
use std::time::Duration;

use lmx_console::{ShellError, Transport, UBootShell};
use tokio::io::AsyncReadExt;

/// How long a power command may take before it counts as hung.
pub const POWER_TIMEOUT: Duration = Duration::from_secs(60);

/// A board's power, switched by host commands (run with `sh -c`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Power {
    /// Switches the board off and on again (or resets it hard).
    pub cycle: String,
}

/// Why the power command failed.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum PowerError {
    /// It could not be started.
    #[error("power command `{command}` could not be started: {source}")]
    #[diagnostic(help("is the shell there? the command runs with `sh -c`"))]
    Spawn {
        /// The command.
        command: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// It exited with a failure.
    #[error("power command `{command}` failed ({status}){}", stderr_suffix(stderr))]
    #[diagnostic(help(
        "run the command by hand; for labgrid the place must be acquired (labgrid-client -p PLACE acquire)"
    ))]
    Failed {
        /// The command.
        command: String,
        /// Its exit status.
        status: String,
        /// The end of what it wrote to stderr.
        stderr: String,
    },
    /// It did not finish in time.
    #[error("power command `{command}` did not finish within {} s", POWER_TIMEOUT.as_secs())]
    #[diagnostic(help("the command must return once the power was cycled"))]
    Hung {
        /// The command.
        command: String,
    },
}

fn stderr_suffix(s: &str) -> String {
    if s.trim().is_empty() {
        String::new()
    } else {
        format!(": {}", s.trim())
    }
}

impl Power {
    /// A power switch driven by `cycle`.
    pub fn new(cycle: impl Into<String>) -> Power {
        Power {
            cycle: cycle.into(),
        }
    }

    /// Runs the cycle command to its end; its stdout is discarded, the
    /// last 512 bytes of its stderr go into a failure.
    pub async fn cycle(&self) -> Result<(), PowerError> {
        let command = self.cycle.clone();
        let mut child = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(&command)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| PowerError::Spawn {
                command: command.clone(),
                source,
            })?;
        let mut err = child.stderr.take().expect("piped");
        let run = async {
            let mut buf = Vec::new();
            let _ = err.read_to_end(&mut buf).await;
            (child.wait().await, buf)
        };
        let (status, buf) = tokio::time::timeout(POWER_TIMEOUT, run)
            .await
            .map_err(|_| PowerError::Hung {
                command: command.clone(),
            })?;
        let status = status.map_err(|source| PowerError::Spawn {
            command: command.clone(),
            source,
        })?;
        if status.success() {
            return Ok(());
        }
        let tail = &buf[buf.len().saturating_sub(512)..];
        Err(PowerError::Failed {
            command,
            status: status.to_string(),
            stderr: String::from_utf8_lossy(tail).into_owned(),
        })
    }
}

/// What [`cycle_and_attach`] can fail at.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum CycleError {
    /// The power command failed.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Power(#[from] PowerError),
    /// The board did not reach its prompt after the cycle.
    #[error("after the power cycle: {0}")]
    Attach(#[source] ShellError),
}

/// Cycles the board's power while the console is read from before the
/// command starts, and stops autoboot the way the board needs, as after a
/// power-on ([`UBootShell::attach_at_power_on`]). Returns at the prompt,
/// once the power command has finished too (its failure is reported even
/// when the board came up).
pub async fn cycle_and_attach<T: Transport>(
    shell: &mut UBootShell<T>,
    power: &Power,
    timeout: Duration,
) -> Result<(), CycleError> {
    let attach = shell.attach_at_power_on(timeout);
    tokio::pin!(attach);
    let cycle = power.cycle();
    tokio::pin!(cycle);
    let mut cycled = false;
    loop {
        tokio::select! {
            r = &mut attach => {
                if !cycled {
                    cycle.await?;
                }
                return r.map_err(CycleError::Attach);
            }
            p = &mut cycle, if !cycled => {
                p?;
                cycled = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_failing_command_names_its_status_and_stderr() {
        Power::new("true").cycle().await.unwrap();
        let e = Power::new("echo relay 3 not found >&2; exit 4")
            .cycle()
            .await
            .unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("exit status: 4"), "{msg}");
        assert!(msg.contains("relay 3 not found"), "{msg}");
        assert!(msg.contains("echo relay"), "{msg}");
    }
}
