//! Runs the UART simulator as a standalone relay, for trying lmx (or any
//! terminal program that speaks unix sockets) against a slow, lossy line:
//!
//! ```text
//! qemu-system-aarch64 ... -serial unix:/tmp/board.sock,server=on,wait=on &
//! cargo run -p lmx-console --example uart_sim -- /tmp/slow.sock /tmp/board.sock [BAUD] [FIFO] [NOISE]
//! lmx console --port unix:/tmp/slow.sock
//! ```
//!
//! Serves one client at a time; prints the line statistics when it leaves.

use lmx_console::sim::{SimConfig, UartSim};
use tokio::net::{UnixListener, UnixStream};

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        eprintln!("usage: uart_sim LISTEN_SOCKET TARGET_SOCKET [BAUD] [FIFO] [NOISE_TO_HOST]");
        std::process::exit(2);
    }
    let mut cfg = SimConfig::uart_115200_fifo16();
    if let Some(b) = args.get(2).and_then(|a| a.parse().ok()) {
        cfg.baud = b;
        cfg.target_cps = b / 10 * 9 / 10;
    }
    if let Some(f) = args.get(3).and_then(|a| a.parse().ok()) {
        cfg.fifo = f;
    }
    if let Some(n) = args.get(4).and_then(|a| a.parse().ok()) {
        cfg.noise_to_host = n;
    }
    let _ = std::fs::remove_file(&args[0]);
    let listener = UnixListener::bind(&args[0])?;
    let target = UnixStream::connect(&args[1]).await?;
    eprintln!("uart_sim: {cfg:?}; listening on {}", args[0]);
    let (client, _) = listener.accept().await?;
    let sim = UartSim::spawn(cfg, client, target);
    while !sim.is_finished() {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    eprintln!("uart_sim: {:?}", sim.stats());
    Ok(())
}
