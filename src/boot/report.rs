//! How the binary shows a session: step lines on stderr, a progress bar
//! per TFTP transfer (hidden when stderr is not a terminal), and the
//! board's console on stdout when the user asked to watch the boot.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
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
