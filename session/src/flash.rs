//! Executing a [`FlashPlan`] on a board: each step's command, its check,
//! the backup, the boot environment, and booting from flash afterwards.
//!
//! The plan (`lmx-flasher`) has already refused everything unsafe; this
//! is the loop that sends its commands through [`UBootShell`] and holds
//! U-Boot to each step's [`Check`]: `${filesize}` after the load, the
//! `crc32` of the RAM copy before anything is erased, bad blocks
//! reported, the read-back `crc32` after the write. Every failure is a
//! [`StepFailure`] that says what the flash holds now ([`FlashState`]).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use lmx_console::{Dialect, Transport, UBootShell};
use lmx_flasher::output;
use lmx_flasher::plan::{Check, FlashPlan, Phase, Step};
use lmx_flasher::state::FlashState;
use tokio::io::AsyncWriteExt;

use crate::boot::NetSetup;
use crate::failure::StepFailure;
use crate::report::Reporter;
use crate::watch::{self, BootWatch, Phase as WatchPhase};

/// A failure before anything was erased or written.
pub fn fail_untouched(
    plan: &FlashPlan,
    step: &str,
    command: &str,
    reason: String,
    hint: &str,
) -> StepFailure {
    StepFailure::new(step, command, reason, hint)
        .with_state(FlashState::Untouched.explain(plan, None))
}

/// Time for a command over `bytes` of flash: generous, the console driver
/// reports a board that went silent long before.
fn budget(bytes: u64) -> Duration {
    Duration::from_secs(60) + Duration::from_secs_f64(bytes as f64 / (32.0 * 1024.0))
}

/// The last few non-empty lines of a command's output, on one line.
fn last_lines(text: &str) -> String {
    let v: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    v[v.len().saturating_sub(4)..].join(" | ")
}

/// Runs a flash plan's steps on one board.
pub struct FlashExecutor<T: Transport, R: Reporter> {
    shell: UBootShell<T>,
    upload_dir: PathBuf,
    backup_path: Option<PathBuf>,
    backup_saved: Option<String>,
    recorded_crc: Option<u32>,
    /// Bad blocks U-Boot skipped, by flash offset.
    pub bad_blocks: Vec<u64>,
    verify_only: bool,
    report: R,
}

impl<T: Transport, R: Reporter> FlashExecutor<T, R> {
    /// An executor over `shell`. Uploads (a `tftpput` backup) arrive in
    /// `upload_dir`; a backup is saved to `backup_path`. With
    /// `verify_only` only reads happen, and failures say the flash is
    /// unchanged.
    pub fn new(
        shell: UBootShell<T>,
        upload_dir: PathBuf,
        backup_path: Option<PathBuf>,
        verify_only: bool,
        report: R,
    ) -> Self {
        FlashExecutor {
            shell,
            upload_dir,
            backup_path,
            backup_saved: None,
            recorded_crc: None,
            bad_blocks: Vec::new(),
            verify_only,
            report,
        }
    }

    /// The shell.
    pub fn shell_mut(&mut self) -> &mut UBootShell<T> {
        &mut self.shell
    }

    /// The reporter.
    pub fn reporter_mut(&mut self) -> &mut R {
        &mut self.report
    }

    /// Stops autoboot and reaches the prompt (see
    /// [`crate::BootRunner::attach`] for `at_power_on`).
    pub async fn attach(&mut self, plan: &FlashPlan, at_power_on: bool) -> Result<(), StepFailure> {
        self.report
            .say("==> waiting for U-Boot (stopping autoboot)");
        let t = Duration::from_secs(30);
        let r = if at_power_on {
            self.shell.attach_at_power_on(t).await
        } else {
            self.shell.attach(t).await
        };
        r.map_err(|e| {
            fail_untouched(
                plan,
                "reaching the U-Boot prompt",
                "(attach)",
                e.to_string(),
                "check the console port and that the board is powered",
            )
        })
    }

    /// `help NAME` for each command; returns the missing ones.
    pub async fn probe(&mut self, names: &[String]) -> Result<Vec<String>, StepFailure> {
        let mut missing = Vec::new();
        for n in names {
            let cmd = format!("help {n}");
            let out = self
                .shell
                .exec(&cmd, Duration::from_secs(10))
                .await
                .map_err(|e| {
                    StepFailure::new(
                        "checking U-Boot's commands",
                        cmd.clone(),
                        e.to_string(),
                        "check the console",
                    )
                    .with_state("Flash state: untouched. Nothing was erased or written.")
                })?;
            // `help CMD` returns 1 even when CMD exists (cmd_usage), so only
            // the text counts.
            if out.text.contains("Unknown command 'help'") {
                self.report.say("note: this U-Boot has no help command; the plan's commands cannot be checked before they run");
                return Ok(Vec::new());
            }
            if output::unknown_command(&out.text) {
                missing.push(n.clone());
            }
        }
        Ok(missing)
    }

    /// Which commands this U-Boot has, decided before anything is
    /// erased: `help NAME` for each one `plan` needs, and `tftpput` for a
    /// backup. Without `tftpput` the backup goes over the console:
    /// `console_backup` plans that (it replaces `plan`; its error is the
    /// failure's reason). Fails if a command the plan needs is still
    /// missing; `mapped_base` (the board's memory-mapped flash, if any)
    /// turns a missing `sf` into the advice to write it mapped.
    pub async fn check_commands(
        &mut self,
        plan: &mut FlashPlan,
        mapped_base: Option<u64>,
        console_backup: impl FnOnce() -> Result<FlashPlan, String>,
    ) -> Result<(), StepFailure> {
        let backup = self.backup_path.is_some();
        let mut needed = plan.required_commands();
        if backup && !needed.iter().any(|c| c == "tftpput") {
            needed.push("tftpput".into());
        }
        let missing = self.probe(&needed).await?;
        if backup && missing.iter().any(|m| m == "tftpput") {
            self.report.say("note: this U-Boot has no tftpput (CONFIG_CMD_TFTPPUT): the backup is read with md.b over the console instead (slow)");
            *plan = console_backup().map_err(|reason| {
                fail_untouched(
                    plan,
                    "planning the console backup",
                    "",
                    reason,
                    "flash without --backup, or use a U-Boot with tftpput",
                )
            })?;
        }
        let required = plan.required_commands();
        let still: Vec<&str> = missing
            .iter()
            .filter(|m| required.contains(m))
            .map(String::as_str)
            .collect();
        if let Some(first) = still.first() {
            let names = still.join(", ");
            let hint = match mapped_base {
                Some(base) if still.contains(&"sf") => format!(
                    "this U-Boot has no sf, but the board maps the flash at {base:#x}: try --method mapped"
                ),
                _ => format!(
                    "this U-Boot was built without {names}; use a U-Boot that has it, or another --method"
                ),
            };
            return Err(fail_untouched(
                plan,
                "checking U-Boot's commands",
                &format!("help {first}"),
                format!("U-Boot lacks the command(s) {names}"),
                &hint,
            ));
        }
        self.report
            .say(&format!("    U-Boot has {}", required.join(", ")));
        Ok(())
    }

    /// Sends the network settings.
    pub async fn network(&mut self, plan: &FlashPlan, net: &NetSetup) -> Result<(), StepFailure> {
        self.report.say("==> network settings");
        for (name, value) in net.vars() {
            self.shell.setenv(name, &value).await.map_err(|e| {
                fail_untouched(
                    plan,
                    "network settings",
                    &format!("setenv {name} {value}"),
                    e.to_string(),
                    "check the board file's [uboot] section",
                )
            })?;
        }
        Ok(())
    }

    /// Runs `steps` of `plan` in order. Ctrl-C ends lmx but not the
    /// command U-Boot is running: the failure then says what state that
    /// leaves the flash in.
    pub async fn execute(&mut self, plan: &FlashPlan, steps: &[Step]) -> Result<(), StepFailure> {
        let mut interrupt = tokio::signal::unix::signal(
            tokio::signal::unix::SignalKind::interrupt(),
        )
        .map_err(|e| {
            fail_untouched(
                plan,
                "installing the Ctrl-C handler",
                "",
                e.to_string(),
                "retry",
            )
        })?;
        for step in steps {
            tokio::select! {
                r = self.step(plan, step) => r?,
                _ = interrupt.recv() => {
                    let state = if self.verify_only {
                        "Flash state: unchanged by this run (--verify-only).".to_string()
                    } else {
                        FlashState::after(step.phase).explain(plan, self.backup_saved.as_deref())
                    };
                    return Err(StepFailure::new(
                        format!("{} ({})", step.phase.as_str(), step.what),
                        step.command.clone(),
                        "interrupted (Ctrl-C); U-Boot may still be running the command",
                        "wait for U-Boot's prompt on the console, then run lmx flash again",
                    )
                    .with_state(state));
                }
            }
        }
        Ok(())
    }

    fn failure(&self, plan: &FlashPlan, step: &Step, reason: String, hint: &str) -> StepFailure {
        let state = if self.verify_only {
            "Flash state: unchanged by this run (--verify-only erases and writes nothing); what the flash holds differs from the image. Flash it again without --verify-only.".to_string()
        } else {
            FlashState::after(step.phase).explain(plan, self.backup_saved.as_deref())
        };
        StepFailure::new(
            format!("{} ({})", step.phase.as_str(), step.what),
            step.command.clone(),
            reason,
            hint,
        )
        .with_tail(self.shell.machine().tail())
        .with_state(state)
    }

    /// Runs one step and holds U-Boot to its check.
    pub async fn step(&mut self, plan: &FlashPlan, step: &Step) -> Result<(), StepFailure> {
        self.report
            .say(&format!("==> [{}] {}", step.phase.as_str(), step.command));
        let t = Instant::now();
        let bytes = plan
            .erase
            .map(|e| e.size)
            .unwrap_or(plan.write_len)
            .max(plan.image.size);
        // md.b carries about four console bytes per flash byte through the
        // console driver: allow for about 8 KiB of flash per second.
        let limit = match &step.check {
            Check::Dump { size, .. } => {
                Duration::from_secs(60) + Duration::from_secs_f64(*size as f64 / 8192.0)
            }
            _ => budget(bytes),
        };
        let out = self.shell.exec(&step.command, limit).await.map_err(|e| {
            self.failure(
                plan,
                step,
                e.to_string(),
                "look at the console lines above; the board may have reset or the console was lost",
            )
        })?;
        let default_hint = match step.phase {
            Phase::Load => "check the network (ipaddr/serverip, cable, firewall for UDP 69)",
            Phase::Erase | Phase::Write => "the flash reported an error: it may be write-protected (protect off, WP pin) or failing",
            _ => "look at the console lines above",
        };
        match &step.check {
            Check::CreateIfMissing { create } => {
                if out.status.unwrap_or(0) != 0 || !out.success() {
                    self.report.say(&format!("    volume missing: {create}"));
                    let c = self
                        .shell
                        .exec(create, budget(bytes))
                        .await
                        .map_err(|e| self.failure(plan, step, e.to_string(), default_hint))?;
                    if !c.success() {
                        return Err(self.failure(
                            plan,
                            step,
                            format!("`{create}` failed: {}", c.text.trim()),
                            "the UBI partition may be full: ubi info l shows its free space",
                        ));
                    }
                }
                return Ok(());
            }
            _ if !out.success() => {
                let what = out
                    .failure
                    .clone()
                    .or(out.status.map(|s| format!("status {s}")))
                    .unwrap_or_default();
                let hint = if out.text.contains("not in flash")
                    || out.text.contains("Outside available Flash")
                {
                    "U-Boot does not address this flash range: the board file's flash.usable or partition map disagrees with what U-Boot sees (flinfo on the board shows its banks and sectors); fix the board file before retrying"
                } else {
                    default_hint
                };
                return Err(self.failure(
                    plan,
                    step,
                    format!("U-Boot reported {what}: {}", last_lines(&out.text)),
                    hint,
                ));
            }
            _ => {}
        }
        match &step.check {
            Check::Succeeds | Check::CreateIfMissing { .. } => {}
            Check::BadBlocks => {
                for b in output::bad_blocks(&out.text) {
                    self.report
                        .say(&format!("    U-Boot skipped a bad block at {b:#x}"));
                    if !self.bad_blocks.contains(&b) {
                        self.bad_blocks.push(b);
                    }
                }
            }
            Check::Loaded { size } => {
                let fs = self
                    .shell
                    .printenv("filesize")
                    .await
                    .map_err(|e| self.failure(plan, step, e.to_string(), default_hint))?;
                let got = fs
                    .as_deref()
                    .and_then(|v| u64::from_str_radix(v.trim(), 16).ok());
                if got != Some(*size) {
                    return Err(self.failure(
                        plan,
                        step,
                        format!(
                            "${{filesize}} is {} after the load, the image has {size:#x} bytes",
                            fs.as_deref().unwrap_or("unset")
                        ),
                        "the transfer was cut short; retry",
                    ));
                }
            }
            Check::Crc32 { crc } => {
                let got = output::crc32(&out.text).ok_or_else(|| {
                    self.failure(
                        plan,
                        step,
                        format!("no `==> CRC` line in {:?}", out.text),
                        "this U-Boot may lack crc32 (CONFIG_CMD_CRC32)",
                    )
                })?;
                if got != *crc {
                    let (reason, hint) = if step.phase == Phase::Verify {
                        (
                            format!("verification failed: the flash reads back crc32 {got:08x} over {:#x} bytes, the image has {crc:08x}", plan.image.size),
                            "the flash did not keep what was written: write-protected, worn, or the board file's geometry is wrong (erase block, usable area)",
                        )
                    } else {
                        (
                            format!("the RAM copy has crc32 {got:08x}, the image {crc:08x}: the transfer was corrupted"),
                            "retry; if it repeats, check the RAM buffers (--load-addr) and the link",
                        )
                    };
                    return Err(self.failure(plan, step, reason, hint));
                }
                self.report.say(&format!("    crc32 {got:08x} matches"));
            }
            Check::RecordCrc => {
                let got = output::crc32(&out.text).ok_or_else(|| {
                    self.failure(
                        plan,
                        step,
                        format!("no `==> CRC` line in {:?}", out.text),
                        "this U-Boot may lack crc32",
                    )
                })?;
                self.recorded_crc = Some(got);
            }
            Check::Upload { file, size } => {
                let path = self.upload_dir.join(file);
                // The server renames the upload into place once its last
                // block is acknowledged, which can trail U-Boot's prompt.
                for _ in 0..40 {
                    if path.is_file() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                let bytes = std::fs::read(&path).map_err(|e| {
                    self.failure(
                        plan,
                        step,
                        format!("the upload {} did not arrive: {e}", path.display()),
                        "check that nothing blocks UDP from the board",
                    )
                })?;
                self.save_backup(plan, step, &bytes, *size)?;
            }
            Check::Dump {
                file: _,
                addr,
                size,
            } => {
                let bytes = output::md_dump(&out.text, *addr, *size)
                    .map_err(|e| self.failure(plan, step, e, "retry the backup"))?;
                self.save_backup(plan, step, &bytes, *size)?;
            }
        }
        self.report
            .say(&format!("    ok in {:.3} s", t.elapsed().as_secs_f64()));
        Ok(())
    }

    fn save_backup(
        &mut self,
        plan: &FlashPlan,
        step: &Step,
        bytes: &[u8],
        size: u64,
    ) -> Result<(), StepFailure> {
        let crc = crc32fast::hash(bytes);
        if bytes.len() as u64 != size || Some(crc) != self.recorded_crc {
            return Err(self.failure(
                plan,
                step,
                format!(
                    "the backup holds {:#x} bytes with crc32 {crc:08x}; U-Boot read {size:#x} bytes with crc32 {}",
                    bytes.len(),
                    self.recorded_crc.map(|c| format!("{c:08x}")).unwrap_or_else(|| "unknown".into())
                ),
                "retry; nothing was erased",
            ));
        }
        let Some(dest) = self.backup_path.clone() else {
            return Err(self.failure(
                plan,
                step,
                "the plan reads a backup but no backup file was named".into(),
                "give --backup FILE",
            ));
        };
        std::fs::write(&dest, bytes).map_err(|e| {
            self.failure(
                plan,
                step,
                format!("writing {}: {e}", dest.display()),
                "pick a writable --backup path",
            )
        })?;
        self.report.say(&format!(
            "    backup saved: {} ({size:#x} bytes, crc32 {crc:08x} matches the board's)",
            dest.display()
        ));
        self.backup_saved = Some(dest.display().to_string());
        Ok(())
    }

    /// Sets `bootcmd` and `bootargs` (those given) and saves the
    /// environment.
    pub async fn boot_env(
        &mut self,
        plan: &FlashPlan,
        bootcmd: Option<&str>,
        bootargs: Option<&str>,
    ) -> Result<(), StepFailure> {
        let vars: Vec<(&str, &str)> = [("bootcmd", bootcmd), ("bootargs", bootargs)]
            .into_iter()
            .filter_map(|(n, v)| v.map(|v| (n, v)))
            .collect();
        if vars.is_empty() {
            return Ok(());
        }
        let step = Step {
            phase: Phase::Verify,
            command: String::new(),
            check: Check::Succeeds,
            what: "boot environment".into(),
        };
        for (n, v) in vars {
            self.report.say(&format!("==> setenv {n} {v}"));
            self.shell.setenv(n, v).await.map_err(|e| {
                let mut s = step.clone();
                s.command = format!("setenv {n} ...");
                self.failure(
                    plan,
                    &s,
                    e.to_string(),
                    "the flash write itself is verified; set the variable by hand",
                )
            })?;
        }
        self.report.say("==> saveenv");
        let out = self
            .shell
            .exec("saveenv", Duration::from_secs(60))
            .await
            .map_err(|e| self.failure(plan, &step, e.to_string(), "run saveenv by hand"))?;
        if !out.success() || out.text.contains("FAILED") {
            let mut s = step.clone();
            s.command = "saveenv".into();
            return Err(self.failure(
                plan,
                &s,
                format!("saveenv failed: {}", last_lines(&out.text)),
                "the firmware is written and verified; the environment was not saved",
            ));
        }
        Ok(())
    }

    /// `reset`, then the console until `marker`'s line, which is returned.
    /// A U-Boot built without autoboot (the MIPS twins: no
    /// `CONFIG_AUTOBOOT`) comes back to its prompt without announcing
    /// one: it then gets `boot` (runs the saved `bootcmd`) once. A prompt
    /// after an autoboot countdown, or a second one, means `bootcmd` did
    /// not boot. The console is judged by [`BootWatch`] with the same
    /// failure texts as a RAM boot, U-Boot's own reset excepted until the
    /// kernel runs.
    pub async fn boot_from_flash(
        &mut self,
        marker: &str,
        timeout: Duration,
    ) -> Result<String, StepFailure> {
        self.report.say("==> reset (booting from flash)");
        let dialect = self.shell.machine().dialect().clone();
        let io = self.shell.transport_mut();
        let hint = "the flash was written and verified; check bootcmd/bootargs (root= must name the flash partition) with --dry-run and the console";
        let fail = |what: String, w: &BootWatch| {
            StepFailure::new("boot from flash", "reset", what, hint).with_tail(w.tail())
        };
        let mut w = BootWatch::new();
        let raw = |cmd: &str| {
            dialect
                .raw_line(cmd)
                .map(|l| format!("{l}\r"))
                .map_err(|r| format!("`{cmd}` refused before sending: {r}"))
        };
        let reset = raw("reset").map_err(|e| fail(e, &w))?;
        io.write_all(reset.as_bytes())
            .await
            .and(io.flush().await)
            .map_err(|e| fail(format!("writing to the console: {e}"), &w))?;
        let after_reset = watch::failures(&dialect, WatchPhase::AfterReset);
        let booting = watch::failures(&dialect, WatchPhase::Booting);
        let deadline = tokio::time::Instant::now() + timeout;
        let mut autoboot = false;
        let mut boot_sent = false;
        let mut scan_from = 0;
        let mut buf = vec![0u8; 4096];
        loop {
            if let Some(line) = w.line_with(marker) {
                return Ok(line);
            }
            // Once the kernel runs, a reset (in the text after its start)
            // is a failure again.
            let kernel_at = ["Starting kernel", "Linux version"]
                .iter()
                .filter_map(|k| w.text().find(k))
                .min();
            let found = match kernel_at {
                None => w.check(&[], &after_reset, 0),
                Some(at) => w
                    .check(&[], &after_reset, 0)
                    .or_else(|| w.check(&[], &booting, at)),
            };
            if let Some(watch::Seen::Failure(f)) = found {
                return Err(fail(format!("the console showed {f:?}"), &w));
            }
            // Autoboot ended at a prompt: bootcmd did not boot.
            if autoboot && prompt_after_autoboot(&dialect, w.text()) {
                return Err(fail(
                    "U-Boot came back to its prompt: bootcmd did not boot the kernel".into(),
                    &w,
                ));
            }
            // No autoboot: the new U-Boot's banner, then straight its prompt.
            if !autoboot
                && at_bare_prompt(
                    &dialect,
                    &w.text()[scan_from.min(w.text().len())..],
                    !boot_sent,
                )
            {
                if boot_sent {
                    return Err(fail(
                        "U-Boot came back to its prompt after `boot`: bootcmd did not boot the kernel".into(),
                        &w,
                    ));
                }
                self.report
                    .say("==> boot (this U-Boot has no autoboot: run the saved bootcmd)");
                let boot = raw("boot").map_err(|e| fail(e, &w))?;
                let io = self.shell.transport_mut();
                io.write_all(boot.as_bytes())
                    .await
                    .and(io.flush().await)
                    .map_err(|e| fail(format!("writing to the console: {e}"), &w))?;
                boot_sent = true;
                scan_from = w.text().len();
            }
            let io = self.shell.transport_mut();
            let n = tokio::select! {
                r = tokio::io::AsyncReadExt::read(io, &mut buf) => r.map_err(|e| fail(format!("reading the console failed: {e}"), &w))?,
                _ = tokio::time::sleep_until(deadline) => {
                    return Err(fail(format!("no userland marker {marker:?} within {} s", timeout.as_secs()), &w));
                }
            };
            if n == 0 {
                return Err(fail("the console closed".into(), &w));
            }
            self.report.console(&buf[..n]);
            w.feed(&buf[..n]);
            if dialect.autoboot.iter().any(|a| w.seen(a)) {
                autoboot = true;
            }
        }
    }
}

/// Whether a prompt line follows the last autoboot announcement in
/// `text`: the countdown ran out and `bootcmd` returned to the prompt.
fn prompt_after_autoboot(dialect: &Dialect, text: &str) -> bool {
    let Some(at) = dialect
        .autoboot
        .iter()
        .filter_map(|a| text.rfind(a.as_str()).map(|i| i + a.len()))
        .max()
    else {
        return false;
    };
    text[at..]
        .split('\n')
        .skip(1)
        .any(|l| dialect.is_prompt(l.trim_start_matches('\r')))
}

/// Whether the console `text` ends at a bare U-Boot prompt (its last,
/// unfinished line is exactly the prompt): a U-Boot without autoboot is
/// waiting. With `need_banner`, only a prompt after a U-Boot banner counts
/// (the one of the reset, not the line `reset` was typed on).
pub fn at_bare_prompt(dialect: &Dialect, text: &str, need_banner: bool) -> bool {
    let text = if need_banner {
        match text.find("U-Boot ") {
            Some(at) => &text[at..],
            None => return false,
        }
    } else {
        text
    };
    let last = text.rsplit('\n').next().unwrap_or(text);
    dialect.is_prompt(last.trim_start_matches('\r'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn malta() -> Dialect {
        let b = lmx_boards::Catalog::builtin()
            .resolve("qemu-mips")
            .unwrap()
            .board;
        Dialect::from_board(&b).unwrap()
    }

    #[test]
    fn a_prompt_after_the_countdown_means_bootcmd_returned() {
        let d = Dialect::mainline();
        let counting = "U-Boot 2023.01\r\nHit any key to stop autoboot:  1 ";
        assert!(!prompt_after_autoboot(&d, counting));
        assert!(!prompt_after_autoboot(
            &d,
            &format!("{counting}\u{8}\u{8}\u{8} 0 \r\n## Booting kernel from Legacy Image")
        ));
        assert!(prompt_after_autoboot(
            &d,
            &format!("{counting}\u{8}\u{8}\u{8} 0 \r\nWrong Image Format for bootm command\r\n=> ")
        ));
    }

    // The console of qemu-mips after `reset` (the test bed's U-Boot,
    // abridged): no autoboot, straight to the prompt.
    const MALTA_RESET: &str = "reset\r\nresetting ...\r\n\r\n\r\nU-Boot 2023.01 (Nov 28 2026 - 22:05:08 +0000)\r\n\r\nBoard: MIPS Malta CoreLV\r\nDRAM:  256 MiB\r\nFlash: 4 MiB\r\nNet:   pcnet#0\r\n";

    #[test]
    fn a_u_boot_without_autoboot_is_seen_at_its_prompt_after_the_banner() {
        let d = malta();
        assert!(!at_bare_prompt(&d, MALTA_RESET, true));
        assert!(at_bare_prompt(&d, &format!("{MALTA_RESET}malta # "), true));
        // The line `reset` was typed on is not the new U-Boot's prompt.
        assert!(!at_bare_prompt(
            &d,
            "malta # reset\r\nresetting ...\r\nmalta # ",
            true
        ));
        // A command being echoed is not a bare prompt.
        assert!(!at_bare_prompt(
            &d,
            &format!("{MALTA_RESET}malta # boot"),
            true
        ));
    }

    #[test]
    fn after_boot_only_a_new_prompt_counts() {
        let d = malta();
        assert!(!at_bare_prompt(&d, "", false));
        assert!(!at_bare_prompt(
            &d,
            "boot\r\n## Booting kernel from Legacy Image at be080000 ...\r\n",
            false
        ));
        assert!(at_bare_prompt(
            &d,
            "boot\r\nWrong Image Format for bootm command\r\nmalta # ",
            false
        ));
    }

    #[test]
    fn an_autoboot_countdown_is_not_a_prompt() {
        let d = Dialect::mainline();
        let text = "U-Boot 2023.01+dfsg-2+deb12u3 (Aug 1 2025)\r\n\r\nDRAM:  512 MiB\r\nHit any key to stop autoboot:  2 ";
        assert!(!at_bare_prompt(&d, text, true));
        assert!(at_bare_prompt(&d, &format!("{text}\r\n=> "), true));
    }
}
