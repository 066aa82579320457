//! How the binary shows a session: step lines on stderr, a progress bar
//! per TFTP transfer (hidden when stderr is not a terminal), and the
//! board's console on stdout when the user asked to watch the boot.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use lmx_session::report::Event;
use lmx_session::Reporter;

/// The terminal [`Reporter`].
pub struct TermReporter {
    show_console: bool,
    quiet_bars: bool,
    bar: Option<ProgressBar>,
}

impl TermReporter {
    /// Copies the console to stdout after boot and reset commands when
    /// `show_console`.
    pub fn new(show_console: bool) -> TermReporter {
        TermReporter {
            show_console,
            quiet_bars: !std::io::IsTerminal::is_terminal(&std::io::stderr()),
            bar: None,
        }
    }
}

impl Reporter for TermReporter {
    fn say(&mut self, line: &str) {
        match &self.bar {
            Some(b) => b.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        }
    }

    fn transfer_start(&mut self, file: &str, size: u64) {
        let bar = ProgressBar::with_draw_target(
            Some(size),
            if self.quiet_bars {
                ProgressDrawTarget::hidden()
            } else {
                ProgressDrawTarget::stderr()
            },
        );
        bar.set_style(
            ProgressStyle::with_template(
                "    {msg:<20} [{bar:30}] {bytes:>10}/{total_bytes:<10} {bytes_per_sec:>12} {eta:>4}",
            )
            .expect("static template")
            .progress_chars("=> "),
        );
        bar.set_message(file.to_string());
        self.bar = Some(bar);
    }

    fn transfer_progress(&mut self, bytes: u64) {
        if let Some(b) = &self.bar {
            b.set_position(bytes);
        }
    }

    fn transfer_end(&mut self, ok: bool) {
        if let Some(b) = self.bar.take() {
            if ok {
                b.finish_and_clear();
            } else {
                b.abandon();
            }
        }
    }

    fn console(&mut self, bytes: &[u8]) {
        if self.show_console {
            use std::io::Write;
            let mut out = std::io::stdout();
            let _ = out.write_all(bytes);
            let _ = out.flush();
        }
    }
}

/// Machine-readable output (`--json`): one JSON object per line on
/// stdout, each with `schema` ([`JSON_SCHEMA`]), `event` and `t` (seconds
/// since the command started). The human step lines still go to stderr.
/// The events and their fields are documented in docs/json.md.
#[derive(Debug, Clone, Copy)]
pub struct JsonLines {
    start: std::time::Instant,
}

/// The version of the `--json` event schema. A change that removes or
/// renames a field or an event, or changes a field's meaning, gets a new
/// number; new events and new fields do not.
pub const JSON_SCHEMA: &str = "lmx.events/1";

impl JsonLines {
    /// Times events from `start`.
    pub fn new(start: std::time::Instant) -> JsonLines {
        JsonLines { start }
    }

    /// Prints one event: `fields` (an object) with `schema`, `event` and
    /// `t` added in front.
    pub fn emit(&self, event: &str, fields: serde_json::Value) {
        use std::io::Write;
        let mut obj = serde_json::Map::new();
        obj.insert("schema".into(), JSON_SCHEMA.into());
        obj.insert("event".into(), event.into());
        let t = (self.start.elapsed().as_secs_f64() * 1000.0).round() / 1000.0;
        obj.insert("t".into(), t.into());
        if let serde_json::Value::Object(m) = fields {
            obj.extend(m);
        }
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", serde_json::Value::Object(obj));
        let _ = out.flush();
    }

    /// A step failure as a `failure` event: the step, the command, what
    /// was expected and seen, what to do, the console's last lines and,
    /// for flash steps, what the flash holds now.
    pub fn failure(&self, f: &lmx_session::StepFailure) {
        self.emit(
            "failure",
            serde_json::json!({
                "step": f.step,
                "command": f.command,
                "reason": f.reason,
                "hint": f.hint,
                "console_tail": f.tail.0.as_ref().map(|t| t.0.clone()).unwrap_or_default(),
                "flash_state": f.state.0,
            }),
        );
    }

    /// Any other error that ends the command, as an `error` event.
    pub fn error(&self, e: &miette::Report) {
        self.emit(
            "error",
            serde_json::json!({
                "message": e.to_string(),
                "help": e.help().map(|h| h.to_string()),
            }),
        );
    }
}

/// The [`Reporter`] of `--json`: the session's events as JSON lines on
/// stdout, its human lines on stderr (as [`TermReporter`] without the
/// console; progress bars only on a terminal).
pub struct JsonReporter {
    out: JsonLines,
    human: TermReporter,
}

impl JsonReporter {
    /// Events to `out`.
    pub fn new(out: JsonLines) -> JsonReporter {
        JsonReporter {
            out,
            human: TermReporter::new(false),
        }
    }
}

impl Reporter for JsonReporter {
    fn say(&mut self, line: &str) {
        self.human.say(line);
    }

    fn transfer_start(&mut self, file: &str, size: u64) {
        self.out.emit(
            "transfer-started",
            serde_json::json!({ "file": file, "size": size }),
        );
        self.human.transfer_start(file, size);
    }

    fn transfer_progress(&mut self, bytes: u64) {
        self.human.transfer_progress(bytes);
    }

    fn transfer_end(&mut self, ok: bool) {
        self.human.transfer_end(ok);
    }

    fn event(&mut self, event: &Event) {
        let (name, fields) = match event {
            Event::AtPrompt { seconds } => ("at-prompt", serde_json::json!({ "seconds": seconds })),
            Event::StepDone { step, seconds } => (
                "step-done",
                serde_json::json!({ "step": step, "seconds": seconds }),
            ),
            Event::Loaded {
                file,
                addr,
                size,
                crc32,
                proof,
                seconds,
            } => (
                "loaded",
                serde_json::json!({
                    "file": file,
                    "addr": format!("{addr:#x}"),
                    "size": size,
                    "crc32": format!("{crc32:08x}"),
                    "proof": proof.as_str(),
                    "seconds": seconds,
                }),
            ),
            Event::BootmVerified => ("bootm-verified", serde_json::json!({})),
            Event::KernelStarted { seconds } => {
                ("kernel-started", serde_json::json!({ "seconds": seconds }))
            }
            Event::Userland { marker, seconds } => (
                "userland",
                serde_json::json!({ "marker": marker, "seconds": seconds }),
            ),
        };
        self.out.emit(name, fields);
    }
}
