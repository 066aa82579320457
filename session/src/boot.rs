//! Executing a [`BootPlan`] on a board: the loop that joins the U-Boot
//! driver (`lmx-console`) and the TFTP server's events.
//!
//! Every step is a U-Boot command sent through [`UBootShell`]; a load is
//! accepted only when `${filesize}` and `crc32 ADDR ${filesize}` match the
//! plan, and the boot command is sent only after every load was accepted.
//! While a `tftpboot` runs, the server's events drive the reporter's
//! progress and a watchdog: no request from the board within the timeout
//! stops the run with a hint, instead of U-Boot's endless `T T T`. After
//! the boot command, [`BootWatch`] reads the console until the kernel
//! banner and the userland marker. Failures are [`StepFailure`]s.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use lmx_boards::Board;
use lmx_builder::caps;
use lmx_builder::plan::{BootPlan, BootVia, LoadCheck, LoadStep, Step, UnpackStep, BOOT_VAR};
use lmx_console::{Transport, UBootShell};
use lmx_flasher::output;
use lmx_tftpd::Event;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use crate::failure::StepFailure;

/// What `bootm` prints once a legacy uImage's data CRC matched (mainline
/// `boot/image-legacy.c`-era `image_get_kernel`; `gl-inet/uboot-source-for_mtk
/// common/cmd_bootm.c` l.320-327): the proof of a load that carries no
/// `crc32` check ([`LoadCheck::BootmDataCrc`]).
pub const BOOTM_VERIFIED: &str = "Verifying Checksum ... OK";
use crate::report::{Event as Happened, LoadProof, Reporter};
use crate::watch::{self, BootWatch, Phase, WatchError};

/// Network settings given to U-Boot before the first load.
#[derive(Debug, Clone)]
pub struct NetSetup {
    /// `ipaddr`.
    pub board_ip: Ipv4Addr,
    /// `serverip`.
    pub server_ip: Ipv4Addr,
    /// `tftpblocksize`, when the board says.
    pub blocksize: Option<u32>,
    /// `tftpwindowsize`, when the board says (1 = lock-step).
    pub windowsize: Option<u32>,
}

impl NetSetup {
    /// The variables, in order.
    pub fn vars(&self) -> Vec<(&'static str, String)> {
        let mut v = vec![
            ("ipaddr", self.board_ip.to_string()),
            ("serverip", self.server_ip.to_string()),
        ];
        if let Some(b) = self.blocksize {
            v.push(("tftpblocksize", b.to_string()));
        }
        if let Some(w) = self.windowsize {
            v.push(("tftpwindowsize", w.to_string()));
        }
        v
    }
}

/// Limits and texts of a run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Time for the first TFTP request of a load, and for the kernel banner.
    pub timeout: Duration,
    /// Time to reach the U-Boot prompt.
    pub attach_timeout: Duration,
    /// Userland marker.
    pub marker: String,
    /// Time from the kernel banner to the marker.
    pub marker_timeout: Duration,
    /// Before each load, ask U-Boot for the `crc32` of the planned region
    /// at the planned size and skip the load when it already holds the
    /// planned bytes (a re-run into a board reset without power loss,
    /// e.g. `--watch`). Never for a first boot after power-on, whose RAM
    /// holds whatever it holds; only where the board has `crc32`.
    pub verify_in_place: bool,
    /// The user watches the boot (the reporter shows the console): read
    /// the marker's line to its end before reporting, so the shown text
    /// does not run into lmx's next line.
    pub show_boot: bool,
    /// Where lmx listens (for hints).
    pub listen: String,
}

/// Step timings, in order.
#[derive(Debug, Default, Clone)]
pub struct Timings(pub Vec<(String, Duration)>);

impl Timings {
    /// Records a step.
    pub fn add(&mut self, step: impl Into<String>, d: Duration) {
        self.0.push((step.into(), d));
    }

    /// The table printed at the end.
    pub fn table(&self) -> String {
        let w = self.0.iter().map(|(s, _)| s.len()).max().unwrap_or(0);
        let mut out = String::from("step timings:\n");
        for (s, d) in &self.0 {
            out.push_str(&format!("  {s:<w$}  {:>8.3} s\n", d.as_secs_f64()));
        }
        out
    }
}

/// Parses `Bytes transferred = 823296 (c9000 hex)`, the last line of a
/// TFTP load.
pub fn bytes_transferred(text: &str) -> Option<u64> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("Bytes transferred = "))
        .filter_map(|v| v.split_whitespace().next()?.parse().ok())
        .next_back()
}

/// Drives one plan on one board.
pub struct BootRunner<T: Transport, R: Reporter> {
    shell: UBootShell<T>,
    events: mpsc::UnboundedReceiver<Event>,
    opts: RunOptions,
    net: NetSetup,
    files: Vec<(String, PathBuf)>,
    report: R,
    /// Step timings so far.
    pub timings: Timings,
}

impl<T: Transport, R: Reporter> BootRunner<T, R> {
    /// A runner over `shell`, fed by the TFTP server's `events`, serving
    /// `files` (TFTP name, path), telling `report` what it does.
    pub fn new(
        shell: UBootShell<T>,
        events: mpsc::UnboundedReceiver<Event>,
        opts: RunOptions,
        net: NetSetup,
        files: Vec<(String, PathBuf)>,
        report: R,
    ) -> Self {
        BootRunner {
            shell,
            events,
            opts,
            net,
            files,
            report,
            timings: Timings::default(),
        }
    }

    /// The shell (e.g. for the interactive console afterwards).
    pub fn shell_mut(&mut self) -> &mut UBootShell<T> {
        &mut self.shell
    }

    /// Turns [`RunOptions::verify_in_place`] on or off for the next runs
    /// (on for `--watch`'s re-runs after a warm reset).
    pub fn set_verify_in_place(&mut self, on: bool) {
        self.opts.verify_in_place = on;
    }

    /// The shell, for what follows the run (the interactive console).
    pub fn into_shell(self) -> UBootShell<T> {
        self.shell
    }

    /// The reporter.
    pub fn reporter_mut(&mut self) -> &mut R {
        &mut self.report
    }

    /// Records a finished step in the timing table and reports it.
    fn step_done(&mut self, step: impl Into<String>, d: Duration) {
        let step = step.into();
        self.report.event(&Happened::StepDone {
            step: step.clone(),
            seconds: d.as_secs_f64(),
        });
        self.timings.add(step, d);
    }

    fn say(&mut self, line: &str) {
        self.report.say(line);
    }

    /// Stops autoboot and reaches the prompt. `at_power_on`: the board was
    /// just powered on (a VM lmx started), so stay silent until it prints
    /// anything; a key sent before U-Boot listens is lost, and then it
    /// ignores the countdown keys and boots through.
    pub async fn attach(&mut self, since: Instant, at_power_on: bool) -> Result<(), StepFailure> {
        self.say("==> waiting for U-Boot (stopping autoboot)");
        let t = self.opts.attach_timeout;
        let r = if at_power_on {
            self.shell.attach_at_power_on(t).await
        } else {
            self.shell.attach(t).await
        };
        r.map_err(|e| StepFailure::shell("reaching the U-Boot prompt", "(attach)", e))?;
        let d = since.elapsed();
        self.say(&format!(
            "    at the U-Boot prompt after {:.3} s",
            d.as_secs_f64()
        ));
        self.report.event(&Happened::AtPrompt {
            seconds: d.as_secs_f64(),
        });
        self.step_done("console open to U-Boot prompt", d);
        Ok(())
    }

    /// Cycles the board's power with `power` while the console is read,
    /// and stops autoboot as at power-on ([`crate::power::cycle_and_attach`]):
    /// for a board without a working `reboot`, or one whose U-Boot looks
    /// for a key only once (`bootdelay = 0`).
    pub async fn attach_after_power_cycle(
        &mut self,
        power: &crate::power::Power,
    ) -> Result<(), StepFailure> {
        self.say(&format!("==> power cycle: {}", power.cycle));
        self.say("==> waiting for U-Boot (stopping autoboot)");
        let since = Instant::now();
        crate::power::cycle_and_attach(&mut self.shell, power, self.opts.attach_timeout)
            .await
            .map_err(|e| match e {
                crate::power::CycleError::Power(p) => StepFailure::new(
                    "power cycle",
                    power.cycle.clone(),
                    p.to_string(),
                    "run the command by hand: it must switch the board off and on and return (for labgrid, acquire the place first: labgrid-client -p PLACE acquire)",
                ),
                crate::power::CycleError::Attach(s) => {
                    StepFailure::shell("reaching the U-Boot prompt", "(attach after the power cycle)", s)
                }
            })?;
        let d = since.elapsed();
        self.say(&format!(
            "    at the U-Boot prompt {:.3} s after the power cycle began",
            d.as_secs_f64()
        ));
        self.report.event(&Happened::AtPrompt {
            seconds: d.as_secs_f64(),
        });
        self.step_done("power cycle to U-Boot prompt", d);
        Ok(())
    }

    /// Asks U-Boot what it can unpack (`help`) when `plan` needs LZMA or
    /// `lzmadec` and the board file does not say whether this U-Boot has
    /// them; refuses the plan before any load when it cannot be done
    /// (see `lmx_builder::caps`). Does nothing when the board file knows.
    pub async fn check_caps(&mut self, board: &Board, plan: &BootPlan) -> Result<(), StepFailure> {
        let kernel_head = plan
            .loads()
            .find(|l| l.artifact == "kernel")
            .and_then(|l| self.files.iter().find(|(name, _)| *name == l.file))
            .and_then(|(_, path)| {
                let mut head = vec![0u8; lmx_builder::uimage::HEADER_LEN];
                let mut f = std::fs::File::open(path).ok()?;
                std::io::Read::read_exact(&mut f, &mut head).ok()?;
                Some(head)
            });
        let needs = caps::Needs::of_plan(plan, kernel_head.as_deref());
        if !caps::probe_wanted(board, needs) {
            return Ok(());
        }
        self.say("==> what this U-Boot can unpack (help)");
        let out = self
            .shell
            .exec("help", Duration::from_secs(10))
            .await
            .map_err(|e| StepFailure::shell("asking U-Boot for its commands", "help", e))?;
        let fail = |reason: String, hint: &str| {
            StepFailure::new("U-Boot capabilities", "help", reason, hint)
        };
        let commands = caps::Commands::from_help(&out.text).map_err(|e| {
            fail(
                e.to_string(),
                "set uboot.lzma / uboot.lzmadec in the board file to skip this question",
            )
        })?;
        let notes = caps::check(board, Some(&commands), needs).map_err(|e| {
            fail(
                e.to_string(),
                "nothing was loaded; record the answer as uboot.lzma / uboot.lzmadec in the board file",
            )
        })?;
        for n in notes {
            self.say(&format!("    note: {n}"));
        }
        Ok(())
    }

    /// Runs every step of `plan` up to and including the boot command, then
    /// waits for the kernel banner and the userland marker.
    pub async fn run(&mut self, plan: &BootPlan) -> Result<(), StepFailure> {
        let at_prompt = Instant::now();
        let t = Instant::now();
        self.say("==> network settings");
        let vars = self.net.vars();
        for (name, value) in &vars {
            let cmd = format!("setenv {name} {value}");
            self.shell
                .setenv_checked(name, value)
                .await
                .map_err(|e| StepFailure::shell("network settings", &cmd, e))?;
            self.say(&format!("    {cmd}"));
        }
        self.step_done("network settings", t.elapsed());
        if plan.loads().any(|l| l.check == LoadCheck::SizeOnly) {
            self.say("WARNING: --no-verify: every load is checked by its size only; a corrupted byte would reach the kernel");
        }
        let bootm_checks = plan.loads().any(|l| l.check == LoadCheck::BootmDataCrc);
        let sent: Vec<&str> = vars.iter().map(|(n, _)| *n).collect();
        for step in &plan.steps {
            match step {
                // The run's network settings, just sent, win over a plan's
                // own (a saved plan may carry other addresses).
                Step::Setenv { name, .. } if sent.contains(&name.as_str()) => {}
                Step::Setenv {
                    name,
                    value,
                    commands,
                } => {
                    let t = Instant::now();
                    for c in commands {
                        self.shell
                            .run(c, Duration::from_secs(5))
                            .await
                            .map_err(|e| StepFailure::shell(&format!("setenv {name}"), c, e))?;
                    }
                    // Without `$?` a setenv that went wrong may print
                    // nothing: read the value back and compare.
                    if self.shell.machine().dialect().needs_readback() {
                        self.shell.verify_env(name, value).await.map_err(|e| {
                            StepFailure::shell(
                                &format!("setenv {name}"),
                                &format!("printenv {name}"),
                                e,
                            )
                        })?;
                    }
                    self.say(&format!("==> setenv {name} ({} line(s))", commands.len()));
                    self.step_done(format!("setenv {name}"), t.elapsed());
                }
                Step::Load(l) => {
                    if !self.in_place(l).await? {
                        self.load(l).await?
                    }
                }
                Step::Unpack(u) => self.unpack(u).await?,
                Step::Boot { command } => {
                    self.boot(command, plan.boot_via, bootm_checks, at_prompt)
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// With [`RunOptions::verify_in_place`]: whether the board's RAM
    /// already holds `l`'s bytes at its address (then the load is skipped
    /// and reported as verified in place). The same proof a load gets:
    /// U-Boot's `crc32` over exactly the planned region equals the plan's.
    async fn in_place(&mut self, l: &LoadStep) -> Result<bool, StepFailure> {
        use lmx_boards::Availability;
        let dialect = self.shell.machine().dialect();
        if !self.opts.verify_in_place
            || l.check != LoadCheck::Crc32
            || dialect.inventory.availability("crc32") == Availability::Absent
        {
            return Ok(false);
        }
        let t = Instant::now();
        let cmd = format!("crc32 {:#x} {:#x}", l.addr, l.size);
        let out = self
            .shell
            .run(&cmd, Duration::from_secs(30))
            .await
            .map_err(|e| StepFailure::shell(&format!("check {} in place", l.file), &cmd, e))?;
        if output::crc32(&out.text) != Some(l.crc32) {
            return Ok(false);
        }
        self.say(&format!(
            "==> {}: already at {:#x} (crc32 {:08x} over {} bytes matches): verified in place, not loaded",
            l.file, l.addr, l.crc32, l.size
        ));
        self.report.event(&Happened::Loaded {
            file: l.file.clone(),
            addr: l.addr,
            size: l.size,
            crc32: l.crc32,
            proof: LoadProof::InPlace,
            seconds: 0.0,
        });
        self.step_done(format!("verify {} in place", l.file), t.elapsed());
        Ok(true)
    }

    fn host_hint(&self) -> String {
        format!(
            "no TFTP request from {} within {} s: check the cable, the host firewall for UDP 69, and serverip (U-Boot was told {}; lmx listens on {})",
            self.net.board_ip,
            self.opts.timeout.as_secs(),
            self.net.server_ip,
            self.opts.listen
        )
    }

    async fn load(&mut self, l: &LoadStep) -> Result<(), StepFailure> {
        let step = format!("load {}", l.file);
        let cmd = l.command();
        self.say(&format!(
            "==> {cmd}  ({} bytes, crc32 {:08x})",
            l.size, l.crc32
        ));
        while self.events.try_recv().is_ok() {}
        let t = Instant::now();
        // Generous: the watchdog below catches a silent board early.
        let limit = self.opts.timeout
            + Duration::from_secs(30)
            + Duration::from_secs_f64(l.size as f64 / (256.0 * 1024.0));
        let board = IpAddr::V4(self.net.board_ip);
        let mut started = false;
        let mut refused: Option<String> = None;
        let mut server_error: Option<String> = None;
        let mut in_transfer = false;
        // Whether lmx's server saw this file's transfer complete.
        let mut served = false;
        let deadline = tokio::time::Instant::now() + self.opts.timeout;
        let result = {
            let exec = self.shell.exec(&cmd, limit);
            tokio::pin!(exec);
            loop {
                tokio::select! {
                    r = &mut exec => break Some(r),
                    ev = self.events.recv() => match ev {
                        Some(Event::Started(info)) if info.client.ip() == board => {
                            started = true;
                            if info.file == l.file {
                                self.report.transfer_start(&l.file, info.size.unwrap_or(l.size));
                                in_transfer = true;
                                tracing::debug!(blksize = info.blksize, windowsize = info.windowsize, "transfer of {} started", info.file);
                            }
                        }
                        Some(Event::Progress { bytes, .. }) if in_transfer => {
                            self.report.transfer_progress(bytes);
                        }
                        Some(Event::Finished(s)) if s.info.client.ip() == board => {
                            served |= s.info.file == l.file;
                            if in_transfer { self.report.transfer_end(true); in_transfer = false; }
                            tracing::debug!(retransmits = s.retransmits, "transfer finished");
                        }
                        Some(Event::Failed(s)) if s.info.client.ip() == board => {
                            if in_transfer { self.report.transfer_end(false); in_transfer = false; }
                            server_error = s.error.clone();
                        }
                        Some(Event::Refused { client, file, reason, .. }) if client.ip() == board => {
                            started = true;
                            refused = Some(format!("lmx refused {file:?}: {reason}"));
                        }
                        _ => {}
                    },
                    _ = tokio::time::sleep_until(deadline), if !started => break None,
                }
            }
        };
        if in_transfer {
            self.report.transfer_end(true);
        }
        let out = match result {
            None => {
                // Stop U-Boot's retries so the board is left at a prompt.
                let _ = self.shell.transport_mut().write_all(&[0x03]).await;
                let _ = self.shell.transport_mut().flush().await;
                return Err(StepFailure::new(
                    step,
                    cmd,
                    format!(
                        "U-Boot did not ask for {} within {} s",
                        l.file,
                        self.opts.timeout.as_secs()
                    ),
                    self.host_hint(),
                )
                .with_tail(self.shell.machine().tail()));
            }
            Some(Err(e)) => return Err(StepFailure::shell(&step, &cmd, e)),
            Some(Ok(out)) => out,
        };
        if !out.success() {
            let mut reason = format!(
                "U-Boot reported {}",
                out.failure
                    .clone()
                    .or(out.status.map(|s| format!("status {s}")))
                    .unwrap_or_default()
            );
            if let Some(r) = refused.or(server_error) {
                reason.push_str(&format!("; {r}"));
            }
            let hint = if out.text.contains("reserved memory") {
                "the load address overlaps memory U-Boot reserved: check the board's ram section and the layout (lmx tftpboot --dry-run)".to_string()
            } else if out.text.contains("not found") || out.text.contains("File not found") {
                format!("lmx serves only the plan's files: {}", self.served_names())
            } else {
                self.host_hint()
            };
            return Err(
                StepFailure::new(step, cmd, reason, hint).with_tail(self.shell.machine().tail())
            );
        }
        if let Some(n) = bytes_transferred(&out.text) {
            if n != l.size {
                return Err(self.mismatch(
                    &step,
                    &cmd,
                    format!(
                        "U-Boot received {n} bytes of {}, the plan expects {}",
                        l.file, l.size
                    ),
                    l,
                ));
            }
        }
        let load_time = t.elapsed();
        let checked = match l.check {
            LoadCheck::Crc32 => self.verify(&step, l.addr, l.size, l.crc32, &l.file).await,
            LoadCheck::BootmDataCrc | LoadCheck::SizeOnly => self.verify_size(&step, l).await,
        };
        if let Err(failure) = checked {
            return Err(self.unless_never_served(failure, l, served, refused).await);
        }
        let total = t.elapsed();
        let rate = l.size as f64 / (1 << 20) as f64 / load_time.as_secs_f64().max(1e-6);
        self.say(&match l.check {
            LoadCheck::Crc32 => format!(
                "    ok: {} bytes in {:.3} s ({rate:.1} MiB/s), filesize and crc32 {:08x} match",
                l.size,
                load_time.as_secs_f64(),
                l.crc32
            ),
            LoadCheck::BootmDataCrc => format!(
                "    ok: {} bytes in {:.3} s ({rate:.1} MiB/s), filesize matches; its bytes are checked by bootm's data CRC before the kernel starts",
                l.size,
                load_time.as_secs_f64(),
            ),
            LoadCheck::SizeOnly => format!(
                "    loaded: {} bytes in {:.3} s ({rate:.1} MiB/s), filesize matches; CONTENT NOT VERIFIED (--no-verify)",
                l.size,
                load_time.as_secs_f64(),
            ),
        });
        self.report.event(&Happened::Loaded {
            file: l.file.clone(),
            addr: l.addr,
            size: l.size,
            crc32: l.crc32,
            proof: match l.check {
                LoadCheck::Crc32 => LoadProof::Crc32,
                LoadCheck::BootmDataCrc => LoadProof::BootmDataCrc,
                LoadCheck::SizeOnly => LoadProof::SizeOnly,
            },
            seconds: load_time.as_secs_f64(),
        });
        self.step_done(
            format!("load {} ({} bytes) + verify", l.file, l.size),
            total,
        );
        Ok(())
    }

    /// A load that did not verify, told accurately when lmx's server never
    /// completed the file's transfer: some vendor builds (GL.iNet's 1.1.4)
    /// print nothing at all on a TFTP error and return to the prompt, and
    /// `${filesize}` then still holds the previous load's size, which is
    /// not "the file changed after the plan was made". The server's last
    /// events may trail U-Boot's prompt, so they are read for a moment
    /// before deciding.
    async fn unless_never_served(
        &mut self,
        failure: StepFailure,
        l: &LoadStep,
        mut served: bool,
        refused: Option<String>,
    ) -> StepFailure {
        let board = IpAddr::V4(self.net.board_ip);
        let grace = tokio::time::Instant::now() + Duration::from_millis(500);
        while !served {
            tokio::select! {
                ev = self.events.recv() => match ev {
                    Some(Event::Finished(s)) if s.info.client.ip() == board && s.info.file == l.file => served = true,
                    Some(_) => {}
                    None => break,
                },
                _ = tokio::time::sleep_until(grace) => break,
            }
        }
        if served {
            return failure;
        }
        let why = refused.unwrap_or_else(|| {
            format!(
                "lmx's TFTP server saw no complete transfer of {} to {}",
                l.file, self.net.board_ip
            )
        });
        StepFailure::new(
            failure.step,
            l.command(),
            format!("U-Boot returned to its prompt, but {why}; ${{filesize}} is not this file's (not booting)"),
            format!(
                "U-Boot did not get the file although it printed no error (some vendor builds stay silent on a TFTP error): check serverip and the cable, and that the board asks for {} (lmx serves only {})",
                l.file,
                self.served_names()
            ),
        )
        .with_tail(self.shell.machine().tail())
    }

    fn served_names(&self) -> String {
        self.files
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn mismatch(&self, step: &str, cmd: &str, reason: String, l: &LoadStep) -> StepFailure {
        let path = self
            .files
            .iter()
            .find(|(n, _)| *n == l.file)
            .map(|(_, p)| p.display().to_string())
            .unwrap_or_else(|| l.file.clone());
        StepFailure::new(
            step,
            cmd,
            format!("{reason}; not booting"),
            format!(
                "{path} changed after the plan was made, or the transfer was corrupted: rebuild the plan (run without --manifest, or lmx build again) and retry"
            ),
        )
        .with_tail(self.shell.machine().tail())
    }

    /// `${filesize}` and `crc32 ADDR ${filesize}` against the plan.
    async fn verify(
        &mut self,
        step: &str,
        addr: u64,
        size: u64,
        crc: u32,
        file: &str,
    ) -> Result<(), StepFailure> {
        let l = LoadStep {
            artifact: String::new(),
            file: file.into(),
            addr,
            phys: addr,
            size,
            crc32: crc,
            check: LoadCheck::Crc32,
        };
        self.verify_size(step, &l).await?;
        let cmd = l.crc_command();
        let out = self
            .shell
            .run(&cmd, Duration::from_secs(30))
            .await
            .map_err(|e| StepFailure::shell(step, &cmd, e))?;
        match output::crc32(&out.text) {
            Some(c) if c == crc => Ok(()),
            Some(c) => Err(self.mismatch(
                step,
                &cmd,
                format!(
                    "crc32 mismatch for {file}: U-Boot computed {c:08x} over {size} bytes at {addr:#x}, the plan expects {crc:08x}"
                ),
                &l,
            )),
            None => Err(StepFailure::new(
                step,
                cmd,
                format!("no `==> CRC` line in the output: {:?}", out.text),
                "this U-Boot may lack the crc32 command (CONFIG_CMD_CRC32): if so, list it in the board file's uboot.commands.absent and lmx verifies through bootm's uImage data CRC instead",
            )
            .with_tail(self.shell.machine().tail())),
        }
    }

    /// `${filesize}` against the plan's size for `l`.
    async fn verify_size(&mut self, step: &str, l: &LoadStep) -> Result<(), StepFailure> {
        let fs = self
            .shell
            .printenv("filesize")
            .await
            .map_err(|e| StepFailure::shell(step, "printenv filesize", e))?;
        let got = fs
            .as_deref()
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok());
        if got != Some(l.size) {
            return Err(self.mismatch(
                step,
                "printenv filesize",
                format!(
                    "${{filesize}} is {} for {}, the plan expects {:x} ({} bytes)",
                    fs.as_deref().unwrap_or("unset"),
                    l.file,
                    l.size,
                    l.size
                ),
                l,
            ));
        }
        Ok(())
    }

    async fn unpack(&mut self, u: &UnpackStep) -> Result<(), StepFailure> {
        let step = format!("unpack {}", u.artifact);
        let cmd = u.command();
        self.say(&format!(
            "==> {cmd}  ({} bytes, crc32 {:08x})",
            u.size, u.crc32
        ));
        let t = Instant::now();
        self.shell
            .run(&cmd, Duration::from_secs(120))
            .await
            .map_err(|e| StepFailure::shell(&step, &cmd, e))?;
        let name = format!("{} (unpacked)", u.artifact);
        self.verify(&step, u.dst, u.size, u.crc32, &name).await?;
        self.say(&format!(
            "    ok: {} bytes unpacked in {:.3} s, crc32 matches",
            u.size,
            t.elapsed().as_secs_f64()
        ));
        self.step_done(format!("unpack {} + verify", u.artifact), t.elapsed());
        Ok(())
    }

    async fn boot(
        &mut self,
        command: &str,
        via: BootVia,
        bootm_checks: bool,
        at_prompt: Instant,
    ) -> Result<(), StepFailure> {
        let step = "boot";
        self.say(&format!("==> {command}"));
        let typed = match via {
            // The boot command never returns to the prompt, so it cannot
            // carry the driver's end marker: store it with a verified
            // setenv and start it with a short `run`.
            BootVia::Run => {
                self.shell
                    .setenv_checked(BOOT_VAR, command)
                    .await
                    .map_err(|e| StepFailure::shell(step, command, e))?;
                format!("run {BOOT_VAR}")
            }
            // No usable `run` (absent, or a trap): the command itself is
            // the last line typed.
            BootVia::Direct => command.to_string(),
        };
        // Typed without the driver (it never returns to the prompt): the
        // dialect checks it (traps, the line) and wraps it where the
        // prompt is restricted.
        let line = self
            .shell
            .machine()
            .dialect()
            .raw_line(&typed)
            .map_err(|r| {
                StepFailure::new(
                    step,
                    typed.clone(),
                    format!("refused before sending: {r}"),
                    "nothing was booted; the board file's [uboot] says why",
                )
            })?;
        let t = Instant::now();
        let io = self.shell.transport_mut();
        io.write_all(format!("{line}\r").as_bytes())
            .await
            .and(io.flush().await)
            .map_err(|e| {
                StepFailure::new(
                    step,
                    command,
                    format!("writing to the console: {e}"),
                    "was the adapter unplugged or the emulator stopped?",
                )
            })?;
        let failures = watch::failures(self.shell.machine().dialect(), Phase::Booting);
        let fail = |w: WatchError, waiting: &str, hint: &str| {
            StepFailure::new(
                step,
                command,
                format!("{} while waiting for {waiting}", w.what),
                hint,
            )
            .with_tail(w.tail)
        };
        let mut bw = BootWatch::new();
        let kernel_wait = self.opts.timeout.max(Duration::from_secs(30));
        if bootm_checks {
            // The loads were checked by size only so far: bootm's data CRC
            // over the whole kernel+rootfs file is the proof of their bytes,
            // and it must come before the kernel runs ("Bad Data CRC" is a
            // failure text: bootm then returns to the prompt).
            let io = self.shell.transport_mut();
            watch::until(
                &mut bw,
                io,
                &mut self.report,
                &[BOOTM_VERIFIED, "Starting kernel", "Linux version"],
                &failures,
                kernel_wait,
            )
            .await
            .map_err(|w| fail(w, "bootm's data CRC check (\"Verifying Checksum ... OK\")", "a Bad Data CRC means the bytes U-Boot holds are not the planned ones: retry; if it repeats, check the link (lmx serve's counters) and the RAM layout (--dry-run)"))?;
            if !bw.seen(BOOTM_VERIFIED) {
                return Err(StepFailure::new(
                    step,
                    command,
                    "the kernel started without bootm's data CRC check (no \"Verifying Checksum ... OK\"), so the loaded bytes were never verified",
                    "this U-Boot skipped the check although lmx set verify=y: boot with crc32 (a build that has it) or accept unverified loads explicitly with --no-verify",
                )
                .with_tail(bw.tail()));
            }
            self.report
                .say("    bootm verified the data CRC of every loaded byte");
            self.report.event(&Happened::BootmVerified);
        }
        let io = self.shell.transport_mut();
        watch::until(
            &mut bw,
            io,
            &mut self.report,
            &["Starting kernel", "Linux version"],
            &failures,
            kernel_wait,
        )
        .await
        .map_err(|w| fail(w, "the kernel to start", "check the boot command, the image format (lmx image info FILE) and the addresses (--dry-run)"))?;
        self.step_done("boot command to kernel start", t.elapsed());
        let k = Instant::now();
        self.report.event(&Happened::KernelStarted {
            seconds: t.elapsed().as_secs_f64(),
        });
        self.report.say("    kernel started");
        if !bw.seen("Linux version") {
            let io = self.shell.transport_mut();
            watch::until(
                &mut bw,
                io,
                &mut self.report,
                &["Linux version"],
                &failures,
                self.opts.timeout,
            )
            .await
            .map_err(|w| {
                fail(
                    w,
                    "the kernel banner (\"Linux version\")",
                    "the kernel printed nothing: check that it is built for this board and that console= names the board's serial port",
                )
            })?;
        }
        self.report.say("    kernel banner seen");
        let marker = self.opts.marker.clone();
        let io = self.shell.transport_mut();
        watch::until(
            &mut bw,
            io,
            &mut self.report,
            &[marker.as_str()],
            &failures,
            self.opts.marker_timeout,
        )
        .await
        .map_err(|w| {
            fail(
                w,
                &format!("the userland marker {marker:?}"),
                "if the kernel could not mount its root, check root= and the phram region (--dry-run); if init ran, check --marker",
            )
        })?;
        if self.opts.show_boot {
            let io = self.shell.transport_mut();
            watch::finish_line(&mut bw, io, &mut self.report, Duration::from_millis(300)).await;
        }
        self.report
            .say(&format!("    userland marker {marker:?} seen"));
        self.report.event(&Happened::Userland {
            marker: marker.clone(),
            seconds: at_prompt.elapsed().as_secs_f64(),
        });
        self.step_done("kernel start to userland marker", k.elapsed());
        self.step_done("U-Boot prompt to userland marker", at_prompt.elapsed());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_tftp_summary() {
        assert_eq!(
            bytes_transferred(
                "TFTP from server\n\t 5.4 MiB/s\nBytes transferred = 823296 (c9000 hex)"
            ),
            Some(823_296)
        );
        assert_eq!(bytes_transferred("T T T"), None);
    }

    #[test]
    fn net_setup_lists_board_values() {
        let n = NetSetup {
            board_ip: "192.168.77.2".parse().unwrap(),
            server_ip: "192.168.77.1".parse().unwrap(),
            blocksize: Some(1468),
            windowsize: None,
        };
        assert_eq!(
            n.vars(),
            vec![
                ("ipaddr", "192.168.77.2".to_string()),
                ("serverip", "192.168.77.1".to_string()),
                ("tftpblocksize", "1468".to_string())
            ]
        );
    }
}
