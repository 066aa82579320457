//! [`UBootShell`]: the typed, async face of the U-Boot driver.
//!
//! This is the thin executor around [`ShellMachine`]: it writes what the
//! machine wants sent, reads what the [`Transport`] delivers, sleeps until
//! the machine's next deadline, and turns outcomes into `Result`s. All
//! decisions stay in the machine; `lmx tftpboot` and `lmx flash` call
//! [`UBootShell::run`], [`UBootShell::setenv`] and
//! [`UBootShell::printenv`].

use std::time::{Duration, Instant};

use lmx_boards::Board;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::dialect::Dialect;
use crate::error::ShellError;
use crate::machine::{CommandOptions, CommandOutput, Outcome, Pacing, SendStats, ShellMachine};
use crate::printenv;
use crate::quote;
use crate::transport::Transport;

/// Bytes crossing the line, for `-v` traces and for mirroring to a terminal.
#[derive(Debug, Clone, Copy)]
pub enum Traffic<'a> {
    /// Received from the board.
    Rx(&'a [u8]),
    /// Sent to the board.
    Tx(&'a [u8]),
}

type Observer = Box<dyn FnMut(Traffic<'_>) + Send>;

/// Default time to reach a prompt when [`UBootShell::run`] has to attach first.
pub const DEFAULT_ATTACH_TIMEOUT: Duration = Duration::from_secs(30);

/// Drives U-Boot over a [`Transport`]: attach, run commands, read status.
pub struct UBootShell<T: Transport> {
    io: T,
    machine: ShellMachine,
    observer: Option<Observer>,
    attach_timeout: Duration,
}

impl<T: Transport> std::fmt::Debug for UBootShell<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UBootShell")
            .field("transport", &self.io.describe())
            .field("machine", &self.machine)
            .finish()
    }
}

impl<T: Transport> UBootShell<T> {
    /// A shell speaking `dialect` over `io`, with default [`Pacing`].
    pub fn new(io: T, dialect: Dialect) -> UBootShell<T> {
        UBootShell {
            io,
            machine: ShellMachine::new(dialect, Pacing::default()),
            observer: None,
            attach_timeout: DEFAULT_ATTACH_TIMEOUT,
        }
    }

    /// A shell for `board` (its `[uboot]` dialect and console baud).
    pub fn for_board(io: T, board: &Board) -> Result<UBootShell<T>, ShellError> {
        Ok(UBootShell::new(io, Dialect::from_board(board)?))
    }

    /// Replaces the pacing (chunk sizes, echo timeouts, retries).
    pub fn with_pacing(mut self, pacing: Pacing) -> UBootShell<T> {
        self.machine = ShellMachine::new(self.machine.dialect().clone(), pacing);
        self
    }

    /// How long [`run`](Self::run) may spend attaching when not at a prompt.
    pub fn set_attach_timeout(&mut self, timeout: Duration) {
        self.attach_timeout = timeout;
    }

    /// Calls `f` with every byte sent and received.
    pub fn observe(&mut self, f: impl FnMut(Traffic<'_>) + Send + 'static) {
        self.observer = Some(Box::new(f));
    }

    /// The sans-I/O machine (dialect, tail of the console, readiness).
    pub fn machine(&self) -> &ShellMachine {
        &self.machine
    }

    /// Typing counters: lines, chunks, mismatches, current chunk size.
    pub fn stats(&self) -> SendStats {
        self.machine.stats()
    }

    /// The transport, e.g. to send a BREAK.
    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.io
    }

    /// Gives the transport back.
    pub fn into_transport(self) -> T {
        self.io
    }

    /// Reaches a clean U-Boot prompt: stops autoboot if the board is
    /// booting, pokes with Ctrl-C if it is silent, then syncs with a
    /// marker. Fails with [`ShellError::NoPrompt`] showing what was seen.
    pub async fn attach(&mut self, timeout: Duration) -> Result<(), ShellError> {
        self.machine.attach(Instant::now(), timeout)?;
        match self.drive().await? {
            Outcome::Ready => Ok(()),
            Outcome::Failed(e) => Err(e),
            Outcome::Output(_) => unreachable!("attach yields Ready or Failed"),
        }
    }

    /// [`attach`](Self::attach) right after powering the board on (a
    /// virtual board lmx just started): nothing is sent before U-Boot's
    /// first output ([`ShellMachine::attach_at_power_on`]).
    pub async fn attach_at_power_on(&mut self, timeout: Duration) -> Result<(), ShellError> {
        self.machine.attach_at_power_on(Instant::now(), timeout)?;
        match self.drive().await? {
            Outcome::Ready => Ok(()),
            Outcome::Failed(e) => Err(e),
            Outcome::Output(_) => unreachable!("attach yields Ready or Failed"),
        }
    }

    /// Runs `command` and returns its output and status without judging
    /// them (a non-zero `$?` or a failure text is in the output). Attaches
    /// first when the shell is not at a known prompt.
    pub async fn exec(
        &mut self,
        command: &str,
        timeout: Duration,
    ) -> Result<CommandOutput, ShellError> {
        self.exec_with(command, timeout, CommandOptions::default())
            .await
    }

    /// [`exec`](Self::exec) with options.
    pub async fn exec_with(
        &mut self,
        command: &str,
        timeout: Duration,
        mut opts: CommandOptions,
    ) -> Result<CommandOutput, ShellError> {
        // Refuse before anything is sent, attached or not.
        if let Err(reason) = self.machine.check(command) {
            return Err(ShellError::Refused {
                command: command.to_string(),
                reason,
            });
        }
        if command.split_whitespace().next() == Some("version") {
            opts.banner_expected = true;
        }
        if !self.machine.is_ready() {
            self.attach(self.attach_timeout).await?;
        }
        let started = Instant::now();
        let retypes = self.machine.stats().mismatches;
        self.machine.command(started, command, timeout, opts)?;
        let result = match self.drive().await? {
            Outcome::Output(o) => Ok(o),
            Outcome::Failed(e) => Err(e),
            Outcome::Ready => unreachable!("commands yield Output or Failed"),
        };
        // `lmx -v`: every command with its timing, retypes and result.
        let stats = self.machine.stats();
        match &result {
            Ok(o) => tracing::debug!(
                command,
                elapsed = ?started.elapsed(),
                retyped = stats.mismatches - retypes,
                window = stats.chunk,
                status = ?o.status,
                failure = ?o.failure,
                "u-boot"
            ),
            Err(e) => tracing::debug!(command, elapsed = ?started.elapsed(), error = %e, "u-boot"),
        }
        result
    }

    /// Runs `command`; a non-zero status or a failure text in the output
    /// (`## Error`, `Bad Data CRC`, the board's own list...) is an error.
    pub async fn run(
        &mut self,
        command: &str,
        timeout: Duration,
    ) -> Result<CommandOutput, ShellError> {
        let out = self.exec(command, timeout).await?;
        if out.success() {
            Ok(out)
        } else {
            Err(ShellError::Failed {
                command: command.to_string(),
                status: out.status,
                failure: out.failure.clone(),
                output: out.text,
                tail: self.machine.tail(),
            })
        }
    }

    /// `setenv NAME VALUE`, quoted for this dialect so the value arrives
    /// unchanged (or refused when this build cannot store it as is).
    pub async fn setenv(&mut self, name: &str, value: &str) -> Result<(), ShellError> {
        let line = quote::setenv_line(self.machine.dialect(), name, value)?;
        self.run(&line, Duration::from_secs(5)).await.map(|_| ())
    }

    /// Reads `name` back (`printenv NAME`) and fails with
    /// [`ShellError::EnvMismatch`] unless it holds exactly `expected`.
    /// On builds without `$?` ([`Dialect::needs_readback`]) this is the
    /// only way to know that a `setenv` stored what was sent: a simple
    /// parser cuts a line at `CONFIG_SYS_MAXARGS` words and stores the
    /// rest, and a line too long for the buffer loses its tail. Use it
    /// after the last of several `setenv` lines that build one value.
    pub async fn verify_env(&mut self, name: &str, expected: &str) -> Result<(), ShellError> {
        match self.printenv(name).await? {
            Some(v) if v == expected => Ok(()),
            got => Err(ShellError::EnvMismatch {
                name: name.to_string(),
                expected: expected.to_string(),
                got,
                tail: self.machine.tail(),
            }),
        }
    }

    /// [`setenv`](Self::setenv), then, on builds without `$?`,
    /// [`verify_env`](Self::verify_env): the value is known to be stored.
    pub async fn setenv_checked(&mut self, name: &str, value: &str) -> Result<(), ShellError> {
        self.setenv(name, value).await?;
        if self.machine.dialect().needs_readback() {
            self.verify_env(name, value).await?;
        }
        Ok(())
    }

    /// `printenv NAME`: the value, or `None` when it is not set.
    pub async fn printenv(&mut self, name: &str) -> Result<Option<String>, ShellError> {
        let line = quote::printenv_line(name)?;
        let out = self.exec(&line, Duration::from_secs(5)).await?;
        match printenv::parse_lookup(name, &out.text, out.status) {
            // Mainline prints one variable with `printf`, which cuts
            // `NAME=VALUE\n` at CONFIG_SYS_PBSIZE − 1 bytes, newline first
            // (`cmd/nvedit.c` env_print): the answer then runs into lmx's
            // marker. The whole listing is printed with `puts`, uncut, and
            // escaped as mainline escapes it.
            printenv::Lookup::Set(v) if out.unterminated => {
                let all = self.run("printenv", Duration::from_secs(10)).await?;
                let listing = printenv::parse_listing(&all.text);
                match listing.get(name).map(printenv::unescape_listing) {
                    Some(full) if full.starts_with(&v) => Ok(Some(full)),
                    other => Err(ShellError::Failed {
                        command: line,
                        status: out.status,
                        failure: Some(format!(
                            "U-Boot cut `printenv {name}` short ({} bytes, no newline), and its listing {}",
                            v.len(),
                            match other {
                                Some(_) => "holds a different value",
                                None => "does not show the variable",
                            }
                        )),
                        output: out.text,
                        tail: self.machine.tail(),
                    }),
                }
            }
            printenv::Lookup::Set(v) => Ok(Some(v)),
            printenv::Lookup::NotSet => Ok(None),
            printenv::Lookup::Unexpected => Err(ShellError::Failed {
                command: line,
                status: out.status,
                failure: out.failure,
                output: out.text,
                tail: self.machine.tail(),
            }),
        }
    }

    /// `printenv`: every variable, with its exact value. The listing
    /// alone is ambiguous: mainline U-Boot escapes it (a newline in a
    /// value as `\` at the end of the line, a backslash as `\\`) while
    /// old builds print values raw, and a line of a value may look like
    /// `name=value`. So an entry that breaks the sorted order is kept only
    /// when `printenv NAME` finds it (else it is folded back into the
    /// value before it), and every value that holds a backslash or a
    /// newline is read again with `printenv NAME`, which prints it raw on
    /// every build.
    pub async fn printenv_all(&mut self) -> Result<printenv::Listing, ShellError> {
        let out = self.run("printenv", Duration::from_secs(10)).await?;
        let mut listing = printenv::parse_listing(&out.text);
        for i in listing.out_of_order.clone().into_iter().rev() {
            let name = listing.vars[i].0.clone();
            let real = match quote::printenv_line(&name) {
                Ok(_) => self.printenv(&name).await?.is_some(),
                Err(_) => false,
            };
            if !real {
                listing.merge_into_previous(i);
            }
        }
        for i in 0..listing.vars.len() {
            let (name, value) = &listing.vars[i];
            if !value.contains(['\\', '\n']) || quote::printenv_line(name).is_err() {
                continue;
            }
            let name = name.clone();
            if let Some(exact) = self.printenv(&name).await? {
                listing.vars[i].1 = exact;
            }
        }
        Ok(listing)
    }

    /// `saveenv`, judged by its output ([`printenv::judge_saveenv`]):
    /// `Ok` only when U-Boot said it saved. The verdict
    /// [`SaveVerdict::Unclear`](printenv::SaveVerdict::Unclear) is returned
    /// as is, with the output, for the caller to decide.
    pub async fn saveenv(
        &mut self,
        timeout: Duration,
    ) -> Result<(printenv::SaveVerdict, CommandOutput), ShellError> {
        let out = self.exec("saveenv", timeout).await?;
        let verdict = printenv::judge_saveenv(&out.text, out.status);
        if let printenv::SaveVerdict::Failed(line) = &verdict {
            return Err(ShellError::Failed {
                command: "saveenv".into(),
                status: out.status,
                failure: Some(line.clone()),
                output: out.text,
                tail: self.machine.tail(),
            });
        }
        Ok((verdict, out))
    }

    async fn drive(&mut self) -> Result<Outcome, ShellError> {
        let mut buf = vec![0u8; 4096];
        loop {
            let now = Instant::now();
            while let Some(bytes) = self.machine.poll_transmit(now) {
                if let Some(obs) = self.observer.as_mut() {
                    obs(Traffic::Tx(&bytes));
                }
                tracing::trace!(tx = %String::from_utf8_lossy(&bytes).escape_debug(), "console");
                let written = async {
                    self.io.write_all(&bytes).await?;
                    self.io.flush().await
                };
                if let Err(source) = written.await {
                    return Err(self.transport_error(source));
                }
            }
            if let Some(o) = self.machine.poll_outcome() {
                return Ok(o);
            }
            let deadline = self
                .machine
                .poll_deadline()
                .unwrap_or(now + Duration::from_secs(3600));
            tokio::select! {
                r = self.io.read(&mut buf) => match r {
                    Ok(0) => {
                        return Err(self.transport_error(std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            "the console closed",
                        )))
                    }
                    Ok(n) => {
                        if let Some(obs) = self.observer.as_mut() {
                            obs(Traffic::Rx(&buf[..n]));
                        }
                        self.machine.receive(Instant::now(), &buf[..n]);
                    }
                    Err(source) => return Err(self.transport_error(source)),
                },
                _ = tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)) => {
                    self.machine.handle_timeout(Instant::now());
                }
            }
        }
    }

    fn transport_error(&mut self, source: std::io::Error) -> ShellError {
        // Whatever was in progress is abandoned; the next call re-attaches.
        self.machine.abandon();
        ShellError::Transport {
            source,
            tail: self.machine.tail(),
        }
    }
}
