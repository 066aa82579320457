//! `lmx serve`: the standalone TFTP server, with a progress bar per active
//! transfer (plain log lines when stdout is not a terminal) and a summary
//! of every transfer on exit.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use lmx_tftpd::event::{human_bytes, Direction, RefusalDigest, Totals};
use lmx_tftpd::options::{Limits, LimitsError, MAX_BLKSIZE};
use lmx_tftpd::policy::{parse_allow, PolicySpec};
use lmx_tftpd::{Event, Policy, Server, ServerConfig, Tally, TransferConfig, TransferSummary};
use miette::{miette, IntoDiagnostic, WrapErr};
use tokio::sync::mpsc;

/// Flags of `lmx serve`.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Directories to serve files from, searched in order.
    #[arg(value_name = "ROOT")]
    pub roots: Vec<PathBuf>,

    /// Serve one file under a name of your choice (repeatable), e.g.
    /// `--file uImage=result/uImage`. Links in PATH are followed.
    #[arg(long = "file", value_name = "NAME=PATH", value_parser = parse_named_file)]
    pub files: Vec<(String, PathBuf)>,

    /// Address to listen on (repeatable). The default `::` also accepts
    /// IPv4 clients on dual-stack hosts.
    #[arg(long, value_name = "ADDR", default_value = "::")]
    pub bind: Vec<IpAddr>,

    /// UDP port to listen on. Ports below 1024 need root or
    /// cap_net_bind_service.
    #[arg(long, short, default_value_t = 69)]
    pub port: u16,

    /// Only serve these clients (address or CIDR, repeatable).
    #[arg(long, value_name = "ADDR|CIDR", value_parser = parse_allow)]
    pub allow: Vec<ipnet::IpNet>,

    /// Follow symlinks whose target lies under DIR (e.g. /nix/store), in
    /// addition to the served roots (repeatable).
    #[arg(long, value_name = "DIR")]
    pub follow_symlinks_into: Vec<PathBuf>,

    /// Accept uploads (write requests) into DIR.
    #[arg(long, value_name = "DIR")]
    pub upload_dir: Option<PathBuf>,

    /// Let uploads replace existing files.
    #[arg(long, requires = "upload_dir")]
    pub overwrite: bool,

    /// Largest upload accepted (bytes; K, M, G suffixes allowed).
    #[arg(long, value_name = "SIZE", default_value = "1G", value_parser = lmx_boards::number::parse_size)]
    pub max_upload_size: u64,

    /// Largest block size agreed to (8..65464).
    #[arg(long, default_value_t = MAX_BLKSIZE, value_parser = clap::value_parser!(u16).range(8..=65464))]
    pub max_blksize: u16,

    /// Largest window agreed to (RFC 7440; 1..65535).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..))]
    pub max_windowsize: u16,

    /// Smallest client `timeout` option acknowledged (seconds).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..))]
    pub min_timeout: u8,

    /// Largest client `timeout` option acknowledged (seconds).
    #[arg(long, default_value_t = 255, value_parser = clap::value_parser!(u8).range(1..))]
    pub max_timeout: u8,

    /// Frames a client can hold unprocessed in its receive ring (0: no
    /// limit). Bursts and windows are kept within it: U-Boot's virtio-net
    /// holds 32 and stops receiving for good when a burst overflows it;
    /// boot loaders rarely hold more. Raise it (or 0) for PC clients with
    /// windows above 30.
    #[arg(long, value_name = "N", default_value_t = lmx_tftpd::transfer::DEFAULT_RX_FRAMES, value_parser = clap::value_parser!(u16).range(0..=65535))]
    pub client_rx_frames: u16,

    /// Most transfers at once. When all are taken, a transfer whose
    /// client has not answered its first packet for 250 ms is ended to
    /// make room; otherwise the request gets "server busy".
    #[arg(long, default_value_t = 64)]
    pub max_transfers: usize,

    /// Most transfers one client address may run at once (0: no limit),
    /// so that one host cannot take the slots others need.
    #[arg(long, value_name = "N", default_value_t = lmx_tftpd::server::DEFAULT_PER_CLIENT)]
    pub per_client: usize,

    /// Memory all transfers' buffers may reserve together (K, M, G
    /// suffixes). A transfer whose window does not fit gets a smaller one;
    /// see docs/serve.md for what each transfer costs.
    #[arg(long, value_name = "SIZE", default_value = "32M", value_parser = lmx_boards::number::parse_size)]
    pub memory_budget: u64,

    /// Drop a transfer whose client never answered its first packet after
    /// this many milliseconds (0: only after --give-up-after, like any
    /// other transfer). The first packet is repeated at 250, 750 and
    /// 1750 ms meanwhile.
    #[arg(long, value_name = "MILLISECONDS", default_value_t = lmx_tftpd::transfer::DEFAULT_HALF_OPEN.as_millis() as u64)]
    pub half_open_after: u64,

    /// Answer from port 69 itself instead of a new port per transfer
    /// (for firewalls that only pass the server port).
    #[arg(long)]
    pub single_port: bool,

    /// Longest a read transfer spins for the client's answer before it
    /// sleeps, in microseconds (0: never spin). Saves a wake-up per block
    /// for clients that answer fast (same host, fast LAN) at the cost of
    /// CPU time; slow clients are soon no longer spun for, and at most one
    /// transfer less than there are CPUs spins at a time.
    #[arg(long, value_name = "MICROSECONDS", default_value_t = lmx_tftpd::server::DEFAULT_BUSY_POLL.as_micros() as u64, value_parser = clap::value_parser!(u64).range(0..=10_000))]
    pub busy_poll: u64,

    /// Retransmissions without progress before a transfer may be abandoned.
    #[arg(long, default_value_t = 5)]
    pub retries: u32,

    /// Seconds without progress after which a transfer is abandoned.
    #[arg(long, default_value_t = 30)]
    pub give_up_after: u64,

    /// Exit after this many transfers have ended (for scripts).
    #[arg(long, value_name = "N")]
    pub exit_after: Option<u64>,
}

fn parse_named_file(s: &str) -> Result<(String, PathBuf), String> {
    let (name, path) = s
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=PATH, got {s:?}"))?;
    if name.is_empty() || path.is_empty() {
        return Err(format!("expected NAME=PATH, got {s:?}"));
    }
    Ok((name.to_string(), PathBuf::from(path)))
}

/// Runs `lmx serve`.
pub fn run(args: ServeArgs) -> miette::Result<()> {
    let policy = Policy::new(PolicySpec {
        roots: args.roots.clone(),
        files: args.files.clone(),
        follow_symlinks_into: args.follow_symlinks_into.clone(),
        allow: args.allow.clone(),
        upload_dir: args.upload_dir.clone(),
        overwrite: args.overwrite,
    })
    .map_err(|e| miette!(help = "check the paths given to lmx serve", "{e}"))?;
    let limits = Limits {
        max_blksize: args.max_blksize,
        max_windowsize: args.max_windowsize,
        min_timeout: args.min_timeout,
        max_timeout: args.max_timeout,
        max_upload: args.max_upload_size,
    };
    // clap holds the rest to their ranges; this one spans two flags.
    if let Err(LimitsError::TimeoutRange { min, max }) = limits.check() {
        return Err(miette!(
            "--min-timeout {min} is larger than --max-timeout {max}"
        ));
    }
    let config = ServerConfig {
        bind: args
            .bind
            .iter()
            .map(|ip| SocketAddr::new(*ip, args.port))
            .collect(),
        limits,
        transfer: TransferConfig {
            max_retries: args.retries,
            give_up_after: Duration::from_secs(args.give_up_after),
            rx_frames: (args.client_rx_frames > 0).then_some(args.client_rx_frames),
            half_open: (args.half_open_after > 0)
                .then(|| Duration::from_millis(args.half_open_after)),
            ..TransferConfig::default()
        },
        max_transfers: args.max_transfers,
        per_client: args.per_client,
        memory_budget: usize::try_from(args.memory_budget).unwrap_or(usize::MAX),
        single_port: args.single_port,
        busy_poll: Duration::from_micros(args.busy_poll),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .into_diagnostic()
        .wrap_err("cannot start the async runtime")?;
    rt.block_on(serve(args, config, policy))
}

async fn serve(args: ServeArgs, config: ServerConfig, policy: Policy) -> miette::Result<()> {
    let server = Server::bind(config, policy)
        .await
        .map_err(|e| miette!("{e}"))?;
    let (tx, rx) = mpsc::unbounded_channel();
    let server = server.with_events(tx);
    let counters = server.counters();
    let addrs = server
        .local_addrs()
        .iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let mut what: Vec<String> = args.roots.iter().map(|r| r.display().to_string()).collect();
    what.extend(
        args.files
            .iter()
            .map(|(n, p)| format!("{n} -> {}", p.display())),
    );
    if let Some(u) = &args.upload_dir {
        what.push(format!("uploads into {}", u.display()));
    }
    println!(
        "lmx serve: listening on {addrs}; serving {}",
        what.join(", ")
    );
    if !args.allow.is_empty() {
        let list: Vec<String> = args.allow.iter().map(|n| n.to_string()).collect();
        println!("lmx serve: only clients in {}", list.join(", "));
    }

    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let ui = tokio::spawn(show_events(rx, args.exit_after, done_tx));
    let shutdown = async move {
        tokio::select! {
            _ = wait_for_signal() => {}
            _ = done_rx => {}
        }
    };
    let summaries = server.run(shutdown).await;
    ui.abort();
    print_summary(&summaries, &counters.tally());
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async {
            match term.as_mut() {
                Some(t) => { t.recv().await; }
                None => std::future::pending::<()>().await,
            }
        } => {}
    }
}

async fn show_events(
    mut rx: mpsc::UnboundedReceiver<Event>,
    exit_after: Option<u64>,
    done: tokio::sync::oneshot::Sender<()>,
) {
    let tty = std::io::stdout().is_terminal();
    let mp = MultiProgress::with_draw_target(if tty {
        ProgressDrawTarget::stdout()
    } else {
        ProgressDrawTarget::hidden()
    });
    let style = ProgressStyle::with_template(
        "{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    let mut bars: HashMap<u64, ProgressBar> = HashMap::new();
    let mut ended = 0u64;
    let mut done = Some(done);
    let say = |mp: &MultiProgress, line: String| {
        if tty {
            let _ = mp.println(line);
        } else {
            println!("{line}");
        }
    };
    // Refusals are shown one a line up to a few a second; a flood's rest
    // is summed up once a second.
    let mut refusals = RefusalDigest::default();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let ev = tokio::select! {
            ev = rx.recv() => match ev {
                Some(ev) => ev,
                None => break,
            },
            _ = tick.tick() => {
                if let Some(line) = refusals.second_over() {
                    say(&mp, line);
                }
                continue;
            }
        };
        match ev {
            Event::Started(info) => {
                let dir = match info.direction {
                    Direction::Read => "->",
                    Direction::Write => "<-",
                };
                if tty {
                    let pb = mp.add(ProgressBar::new(info.size.unwrap_or(0)));
                    pb.set_style(style.clone());
                    pb.set_prefix(format!("{} {dir} {}", info.client, info.file));
                    bars.insert(info.id, pb);
                } else {
                    let size = info.size.map(human_bytes).unwrap_or_else(|| "?".into());
                    say(
                        &mp,
                        format!(
                            "start  {} {dir} {} ({size}, blksize {}, window {})",
                            info.client, info.file, info.blksize, info.windowsize
                        ),
                    );
                }
            }
            Event::Progress {
                id,
                bytes,
                retransmits,
                ..
            } => {
                if let Some(pb) = bars.get(&id) {
                    pb.set_position(bytes);
                    if retransmits > 0 {
                        pb.set_message(format!("{retransmits} retransmits"));
                    }
                }
            }
            Event::Finished(s) | Event::Failed(s) => {
                if let Some(pb) = bars.remove(&s.info.id) {
                    pb.finish_and_clear();
                    mp.remove(&pb);
                }
                let tag = if s.error.is_some() { "FAIL " } else { "done " };
                say(&mp, format!("{tag} {s}"));
                ended += 1;
            }
            Event::Refused {
                client,
                file,
                code,
                kind,
                reason,
            } => {
                if refusals.show(kind) {
                    say(
                        &mp,
                        format!(
                            "refused {client} {file}: {reason} (TFTP error {})",
                            code.as_u16()
                        ),
                    );
                }
                ended += 1;
            }
        }
        if exit_after.is_some_and(|n| ended >= n) {
            if let Some(d) = done.take() {
                let _ = d.send(());
            }
        }
    }
}

fn print_summary(summaries: &[TransferSummary], tally: &Tally) {
    if !tally.is_quiet() {
        println!("lmx serve: {tally}");
    }
    if summaries.is_empty() {
        println!("lmx serve: no transfers");
        return;
    }
    println!("lmx serve: {}", Totals::of(summaries));
    for s in summaries {
        let tag = if s.error.is_some() { "FAIL" } else { "ok  " };
        println!("  {tag} {s}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_files() {
        assert_eq!(
            parse_named_file("uImage=out/uImage").unwrap(),
            ("uImage".into(), PathBuf::from("out/uImage"))
        );
        assert!(parse_named_file("nopath").is_err());
        assert!(parse_named_file("=x").is_err());
    }
}
