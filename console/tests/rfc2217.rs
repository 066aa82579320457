//! `rfc2217://` against a real ser2net: the serial device is one end of a
//! pty pair made by socat, the test holds the other end as "the board".
//! ser2net publishes the device with its `telnet(rfc2217)` accepter, as a
//! lab's exporter does. Checked: the line settings lmx asks for are the
//! ones ser2net puts on the device (read back with `stty`), every byte
//! value crosses both ways (0xFF is telnet's IAC and must be escaped, CR
//! must not be stuffed once binary is agreed), a BREAK request keeps the
//! connection, and a raw-TCP port (no telnet) is refused with a message
//! that says what to use instead.
//!
//! Needs `ser2net` and `socat` (`scripts/deps.sh test`).

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lmx_console::serial::SerialConfig;
use lmx_console::transport::Endpoint;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn need(tool: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false)
        || Path::new("/usr/sbin").join(tool).is_file();
    assert!(found, "{tool} is missing: run scripts/deps.sh test");
}

/// Kills the child on drop (the test's servers never outlive it).
struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let t = Instant::now();
    while !ok() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "{what} never came up"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A pty pair (device side `a` for ser2net, board side `b`) and ser2net
/// publishing `a` on a port, with `accepter` (`telnet(rfc2217)` or raw).
struct Lab {
    _dir: tempfile::TempDir,
    device: PathBuf,
    board: PathBuf,
    port: u16,
    _ser2net: Kill,
    _socat: Kill,
}

fn lab(accepter: &str) -> Lab {
    need("socat");
    need("ser2net");
    let dir = tempfile::tempdir().unwrap();
    let device = dir.path().join("a");
    let board = dir.path().join("b");
    let socat = Command::new("socat")
        .arg(format!("pty,raw,echo=0,link={}", device.display()))
        .arg(format!("pty,raw,echo=0,link={}", board.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("socat");
    let socat = Kill(socat);
    wait_for("socat's ptys", || device.exists() && board.exists());
    let port = free_port();
    let cfg = dir.path().join("ser2net.yaml");
    std::fs::write(
        &cfg,
        format!(
            "connection: &board\n  accepter: {accepter},127.0.0.1,{port}\n  connector: serialdev,{},9600n81,local\n  options:\n    kickolduser: true\n",
            device.display()
        ),
    )
    .unwrap();
    let ser2net = Command::new("ser2net")
        .arg("-n")
        .arg("-c")
        .arg(&cfg)
        .arg("-P")
        .arg(dir.path().join("ser2net.pid"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ser2net");
    let ser2net = Kill(ser2net);
    wait_for("ser2net's port", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    // That probe connection was a client too; let ser2net drop it.
    std::thread::sleep(Duration::from_millis(200));
    Lab {
        _dir: dir,
        device,
        board,
        port,
        _ser2net: ser2net,
        _socat: socat,
    }
}

fn stty(dev: &Path) -> String {
    let out = Command::new("stty")
        .arg("-F")
        .arg(dev)
        .arg("-a")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Opens the board side raw, non-blocking reads with a deadline.
fn board_side(path: &Path) -> std::fs::File {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let st = Command::new("stty")
        .arg("-F")
        .arg(path)
        .args(["raw", "-echo", "min", "0", "time", "1"])
        .status()
        .unwrap();
    assert!(st.success());
    f
}

fn read_exact_within(f: &mut std::fs::File, n: usize) -> Vec<u8> {
    let mut got = Vec::new();
    let t = Instant::now();
    let mut buf = [0u8; 1024];
    while got.len() < n && t.elapsed() < Duration::from_secs(10) {
        let k = f.read(&mut buf).unwrap_or(0);
        got.extend_from_slice(&buf[..k]);
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn line_settings_reach_the_device_and_every_byte_crosses_both_ways() {
    let lab = lab("telnet(rfc2217),tcp");
    let url = format!("rfc2217://127.0.0.1:{}", lab.port);
    let ep = Endpoint::parse(&url);
    assert_eq!(ep, Endpoint::Rfc2217(format!("127.0.0.1:{}", lab.port)));

    // 57600 is not ser2net's configured 9600: seen on the device, it came
    // from lmx's request, and ser2net confirmed it (connect checks the
    // answer). (A pty keeps the baud rate but forces 8 data bits and no
    // parity whatever is asked, Linux drivers/tty/pty.c pty_set_termios,
    // so framing cannot be read back here.)
    let cfg = SerialConfig {
        baud: 57_600,
        ..SerialConfig::default().with_framing("7E1").unwrap()
    };
    let t = ep.open(&cfg).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(t.describe(), url);
    let s = stty(&lab.device);
    assert!(s.contains("speed 57600 baud"), "{s}");
    drop(t);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut t = ep
        .open(&SerialConfig::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let s = stty(&lab.device);
    assert!(s.contains("speed 115200 baud") && s.contains(" cs8"), "{s}");

    let mut board = board_side(&lab.board);
    let all: Vec<u8> = (0..=255u8)
        .chain([0xff, 0xff, b'\r', 0, b'\r', b'\n'])
        .collect();

    // lmx → board.
    t.write_all(&all).await.unwrap();
    t.flush().await.unwrap();
    let got = tokio::task::block_in_place(|| read_exact_within(&mut board, all.len()));
    assert_eq!(got, all, "bytes from lmx arrived changed");

    // board → lmx.
    board.write_all(&all).unwrap();
    let mut got = vec![0u8; all.len()];
    tokio::time::timeout(Duration::from_secs(10), t.read_exact(&mut got))
        .await
        .expect("bytes from the board within 10 s")
        .unwrap();
    assert_eq!(got, all, "bytes from the board arrived changed");

    // A BREAK is a subnegotiation; the connection carries on after it.
    t.send_break().unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    t.write_all(b"after break\r").await.unwrap();
    t.flush().await.unwrap();
    let got = tokio::task::block_in_place(|| read_exact_within(&mut board, 12));
    assert_eq!(got, b"after break\r");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raw_tcp_port_is_refused_and_the_board_gets_no_negotiation_bytes() {
    let lab = lab("tcp");
    let mut board = board_side(&lab.board);
    let ep = Endpoint::parse(&format!("rfc2217:127.0.0.1:{}", lab.port));

    // A quiet board: the server says nothing, lmx probes once with
    // `IAC WILL COM-PORT` and gives up, naming tcp:.
    let e = ep
        .open(&SerialConfig::default())
        .await
        .expect_err("a raw port cannot negotiate");
    let msg = e.to_string();
    assert!(msg.contains("no telnet negotiation"), "{msg}");
    assert!(msg.contains("tcp:HOST:PORT"), "{msg}");
    let got = tokio::task::block_in_place(|| read_exact_within(&mut board, 4));
    assert_eq!(got, [0xff, 0xfb, 44], "only the probe may reach the board");

    // A talking board: its bytes come first, lmx sends nothing at all.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let talker = {
        let mut b = board.try_clone().unwrap();
        std::thread::spawn(move || {
            for _ in 0..30 {
                let _ = b.write_all(b"U-Boot 2023.01\r\n");
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let e = ep
        .open(&SerialConfig::default())
        .await
        .expect_err("a raw port cannot negotiate");
    let msg = e.to_string();
    assert!(msg.contains("raw TCP port; lmx sent nothing"), "{msg}");
    talker.join().unwrap();
    let got = tokio::task::block_in_place(|| read_exact_within(&mut board, 1));
    assert!(got.is_empty(), "lmx wrote {got:?} to a raw port");

    // The same port as tcp: works (raw bytes).
    let mut t = Endpoint::parse(&format!("tcp:127.0.0.1:{}", lab.port))
        .open(&SerialConfig::default())
        .await
        .unwrap();
    t.write_all(b"raw\r").await.unwrap();
    t.flush().await.unwrap();
    let got = tokio::task::block_in_place(|| read_exact_within(&mut board, 4));
    assert_eq!(got, b"raw\r");
}
