//! A QEMU `virt` machine running Debian's U-Boot, or a `malta` running the
//! MIPS twins' U-Boot: configuration, start, console endpoint, and a
//! guaranteed end.
//!
//! [`VmConfig::qemu_args`] is the whole command line, so it can be printed
//! and checked. [`Vm::start`] runs it with `PR_SET_PDEATHSIG = SIGKILL`, so
//! QEMU never outlives the thread that started it, and [`Vm`]'s `Drop`
//! kills it. Start a `Vm` from a thread that lives as long as the `Vm`
//! (the main thread, or the test's own thread): the death signal follows
//! the starting *thread*, not the process.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::console::ConsoleStream;
use crate::host::{find_qemu, uboot_firmware};
use crate::{Arch, Error, Result};

/// How U-Boot gets into the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Firmware {
    /// `-bios FILE`: QEMU loads the file into flash bank 0, read-only in
    /// effect (nothing persists, `saveenv` has nowhere to go).
    Bios(PathBuf),
    /// Both CFI flash banks backed by files (see [`Pflash::create`]):
    /// U-Boot runs from bank 0 and keeps its environment in bank 1, and
    /// writes persist in the files.
    Pflash(Pflash),
    /// malta's one 4 MiB flash backed by a file (see
    /// [`crate::malta::create_flash`]): U-Boot at offset 0 (word-swapped
    /// for little-endian), the environment at 0x3E0000.
    MaltaFlash(PathBuf),
}

/// The two 64 MiB CFI flash banks of the `virt` machine, as raw files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pflash {
    /// Bank 0 at 0x0: `u-boot.bin` at offset 0, erased (0xff) after it.
    pub flash0: PathBuf,
    /// Bank 1 at 0x4000000: the environment at its start
    /// (`CONFIG_ENV_ADDR=0x4000000`, `CONFIG_ENV_SIZE=0x40000`).
    pub flash1: PathBuf,
    /// Bank 0 read-only (`readonly=on`): a write-protected chip. U-Boot
    /// still runs from it; erases and writes do not stick.
    pub readonly0: bool,
}

impl Pflash {
    /// Size of each bank; QEMU wants the file to be exactly this long.
    pub const BANK_SIZE: u64 = 64 << 20;

    /// Creates `DIR/flash0.img` (U-Boot padded with 0xff to 64 MiB) and
    /// `DIR/flash1.img` (64 MiB of 0xff, erased NOR: U-Boot finds no valid
    /// environment and uses its default until `saveenv`).
    ///
    /// With `keep_existing`, files that already have the right size are
    /// left as they are, so an environment saved by an earlier run (or a
    /// firmware flashed into bank 0) persists.
    pub fn create(dir: &Path, uboot: &Path, keep_existing: bool) -> Result<Pflash> {
        std::fs::create_dir_all(dir).map_err(Error::io(format!("creating {}", dir.display())))?;
        let pflash = Pflash {
            flash0: dir.join("flash0.img"),
            flash1: dir.join("flash1.img"),
            readonly0: false,
        };
        let reusable = |p: &Path| {
            keep_existing
                && p.metadata()
                    .map(|m| m.len() == Self::BANK_SIZE)
                    .unwrap_or(false)
        };
        if !reusable(&pflash.flash0) {
            let image = std::fs::read(uboot).map_err(|e| Error::Missing {
                what: format!("U-Boot binary ({e})"),
                path: uboot.to_owned(),
                hint: "run `scripts/deps.sh virtual` (Debian package u-boot-qemu)".into(),
            })?;
            if image.len() as u64 > Self::BANK_SIZE {
                return Err(Error::Io {
                    context: format!("{} does not fit a 64 MiB flash bank", uboot.display()),
                    source: std::io::ErrorKind::InvalidInput.into(),
                });
            }
            write_erased(&pflash.flash0, &image)?;
        }
        if !reusable(&pflash.flash1) {
            write_erased(&pflash.flash1, &[])?;
        }
        Ok(pflash)
    }
}

/// Writes `head` followed by 0xff up to [`Pflash::BANK_SIZE`].
fn write_erased(path: &Path, head: &[u8]) -> Result<()> {
    let ctx = || format!("writing flash image {}", path.display());
    let mut f = File::create(path).map_err(Error::io(ctx()))?;
    f.write_all(head).map_err(Error::io(ctx()))?;
    let chunk = vec![0xffu8; 1 << 20];
    let mut left = Pflash::BANK_SIZE - head.len() as u64;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        f.write_all(&chunk[..n]).map_err(Error::io(ctx()))?;
        left -= n as u64;
    }
    f.sync_all().map_err(Error::io(ctx()))
}

/// Where the board's first serial port (the PL011, `ttyAMA0`) goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Console {
    /// `-serial unix:PATH,server=on,wait=on`: QEMU listens on `PATH` and
    /// does not start the CPU before a client connects, so no output is lost.
    Unix(PathBuf),
    /// `-serial pty`: a real `/dev/pts/N`, opened like a USB serial adapter.
    /// Output before the pty is opened is dropped by QEMU.
    Pty,
}

/// A tap link to the host side of a private network namespace (see
/// [`crate::enter_private_netns`]): a `virtio-net-pci` NIC on the tap
/// (`virt`), a `pcnet` (malta).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tap {
    /// The tap device's name (it must already exist, e.g. `tap0`).
    pub name: String,
}

/// Everything that decides a virtual board's QEMU command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmConfig {
    /// CPU architecture (selects the emulator and CPU model).
    pub arch: Arch,
    /// RAM in MiB (`-m`); U-Boot and the board files assume 512 on `virt`,
    /// 256 on malta.
    pub memory_mib: u32,
    /// How U-Boot is loaded.
    pub firmware: Firmware,
    /// Where the serial console goes.
    pub console: Console,
    /// The network link, or `None` for a machine without a NIC.
    pub network: Option<Tap>,
    /// The emulator; `None` finds it with [`find_qemu`].
    pub qemu: Option<PathBuf>,
    /// A unix socket for QEMU's human monitor, or `None` for none. Writing
    /// `system_reset` to it resets the machine as a power cycle would
    /// (RAM kept, as QEMU does): the test bed's power switch.
    pub monitor: Option<PathBuf>,
}

impl VmConfig {
    /// 512 MiB, Debian's U-Boot through `-bios`, no network. For the MIPS
    /// twins use [`VmConfig::malta`] (this gives a malta with 256 MiB and
    /// `-bios` of Debian's maltael U-Boot, which QEMU would word-swap).
    pub fn new(arch: Arch, console: Console) -> VmConfig {
        if arch.is_malta() {
            return VmConfig {
                arch,
                memory_mib: crate::malta::MEMORY_MIB,
                firmware: Firmware::Bios("/usr/lib/u-boot/maltael/u-boot.bin".into()),
                console,
                network: None,
                qemu: None,
                monitor: None,
            };
        }
        VmConfig {
            arch,
            memory_mib: 512,
            firmware: Firmware::Bios(
                Path::new("/usr/lib/u-boot")
                    .join(arch.uboot_build())
                    .join("u-boot.bin"),
            ),
            console,
            network: None,
            qemu: None,
            monitor: None,
        }
    }

    /// A MIPS twin: malta, 24Kc, 256 MiB, U-Boot from the flash image
    /// `flash` (made by [`crate::malta::create_flash`]), no network.
    pub fn malta(arch: Arch, console: Console, flash: PathBuf) -> VmConfig {
        VmConfig {
            firmware: Firmware::MaltaFlash(flash),
            ..VmConfig::new(arch, console)
        }
    }

    /// The machine options shared by the real run and [`dump_dtb`]: machine,
    /// CPU, memory and firmware (without firmware the PCIe window in the
    /// tree differs). `machine_extra` is appended to `-machine virt`.
    fn machine_args(&self, machine_extra: &str) -> Vec<OsString> {
        let mut a: Vec<OsString> = vec![
            "-machine".into(),
            format!("{}{machine_extra}", self.arch.machine()).into(),
            "-cpu".into(),
            self.arch.cpu().into(),
            "-m".into(),
            self.memory_mib.to_string().into(),
            // No default devices: no default NIC (it wants an option ROM
            // Debian ships separately), monitor, parallel port or disks.
            "-nodefaults".into(),
            "-display".into(),
            "none".into(),
        ];
        match &self.firmware {
            Firmware::Bios(p) => {
                a.push("-bios".into());
                a.push(p.clone().into());
            }
            Firmware::Pflash(f) => {
                for (i, file) in [&f.flash0, &f.flash1].into_iter().enumerate() {
                    let ro = if i == 0 && f.readonly0 {
                        "readonly=on,"
                    } else {
                        ""
                    };
                    let mut d = OsString::from(format!("if=pflash,format=raw,index={i},{ro}file="));
                    d.push(escape_commas(file));
                    a.push("-drive".into());
                    a.push(d);
                }
            }
            Firmware::MaltaFlash(file) => {
                let mut d = OsString::from("if=pflash,format=raw,file=");
                d.push(escape_commas(file));
                a.push("-drive".into());
                a.push(d);
            }
        }
        a
    }

    /// The complete QEMU arguments (without the binary) of a run.
    pub fn qemu_args(&self) -> Vec<OsString> {
        let mut a = self.machine_args("");
        a.push("-monitor".into());
        a.push(match &self.monitor {
            Some(p) => {
                let mut s = OsString::from("unix:");
                s.push(escape_commas(p));
                s.push(",server=on,wait=off");
                s
            }
            None => "none".into(),
        });
        a.push("-serial".into());
        a.push(match &self.console {
            Console::Unix(p) => {
                let mut s = OsString::from("unix:");
                s.push(escape_commas(p));
                s.push(",server=on,wait=on");
                s
            }
            Console::Pty => "pty".into(),
        });
        if let Some(tap) = &self.network {
            a.push("-netdev".into());
            a.push(format!("tap,id=n0,ifname={},script=no,downscript=no", tap.name).into());
            // romfile= (empty): U-Boot has its own NIC drivers, and the
            // PXE option ROM lives in a package the board does not need.
            let nic = if self.arch.is_malta() {
                "pcnet"
            } else {
                "virtio-net-pci"
            };
            a.push("-device".into());
            a.push(format!("{nic},netdev=n0,romfile=").into());
        }
        a
    }

    fn qemu_binary(&self) -> Result<PathBuf> {
        match &self.qemu {
            Some(p) => Ok(p.clone()),
            None => find_qemu(self.arch),
        }
    }

    /// Checks the firmware files exist before QEMU is started, so the error
    /// names the package instead of QEMU's "could not load" line.
    fn check_firmware(&self) -> Result<()> {
        match &self.firmware {
            Firmware::Bios(p) if !p.is_file() => {
                if !self.arch.is_malta() {
                    uboot_firmware(self.arch)?;
                }
                Err(Error::Missing {
                    what: "the -bios firmware".into(),
                    path: p.clone(),
                    hint: "pass an existing U-Boot binary".into(),
                })
            }
            Firmware::Pflash(f) => {
                for p in [&f.flash0, &f.flash1] {
                    if !p.is_file() {
                        return Err(Error::Missing {
                            what: "a pflash image".into(),
                            path: p.clone(),
                            hint: "create both banks with Pflash::create".into(),
                        });
                    }
                }
                Ok(())
            }
            Firmware::MaltaFlash(p) if !p.is_file() => Err(Error::Missing {
                what: "the malta flash image".into(),
                path: p.clone(),
                hint: "create it with lmx_testbed::malta::create_flash".into(),
            }),
            _ => Ok(()),
        }
    }
}

/// QEMU's option parser splits on commas; a literal comma is doubled.
fn escape_commas(p: &Path) -> OsString {
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    let mut out = Vec::new();
    for &b in p.as_os_str().as_bytes() {
        out.push(b);
        if b == b',' {
            out.push(b',');
        }
    }
    OsString::from_vec(out)
}

/// [`dump_dtb`]'s tree for `cfg`, dumped once and kept in the cache
/// (`cache_root()/dtb/KEY/virt.dtb`), keyed by the QEMU binary (path,
/// size, modification time) and the machine options. QEMU fills
/// `/chosen/rng-seed` and `kaslr-seed` with new random bytes on every
/// dump, so the cached copy also makes a plan's DTB, and the plan,
/// the same from run to run.
pub fn dump_dtb_cached(cfg: &VmConfig) -> Result<PathBuf> {
    cfg.check_firmware()?;
    let qemu = cfg.qemu_binary()?;
    let meta = std::fs::metadata(&qemu)
        .map_err(crate::Error::io(format!("reading {}", qemu.display())))?;
    let stamp = format!(
        "{} {} {:?}",
        qemu.display(),
        meta.len(),
        meta.modified().ok()
    );
    let args = format!("{:?}", cfg.machine_args(""));
    crate::host::cached_file(
        "dtb",
        "virt.dtb",
        &[stamp.as_bytes(), args.as_bytes()],
        |tmp| dump_dtb(cfg, tmp).map(|_| ()),
    )
}

/// Writes the device tree QEMU generates for `cfg`'s machine to `out` and
/// returns `out`: the same machine, CPU, memory and firmware options as the
/// real run plus `-machine dumpdtb=FILE`, without console or network (they
/// do not change the tree; the network would need the tap to exist).
pub fn dump_dtb(cfg: &VmConfig, out: &Path) -> Result<PathBuf> {
    cfg.check_firmware()?;
    let qemu = cfg.qemu_binary()?;
    let escaped = escape_commas(out);
    let Some(escaped) = escaped.to_str() else {
        return Err(Error::Io {
            context: format!("DTB path {} is not UTF-8", out.display()),
            source: std::io::ErrorKind::InvalidInput.into(),
        });
    };
    let mut args = cfg.machine_args(&format!(",dumpdtb={escaped}"));
    args.extend([
        "-serial".into(),
        "null".into(),
        "-monitor".into(),
        "none".into(),
    ]);
    let res = Command::new(&qemu)
        .args(&args)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| Error::Spawn {
            program: qemu.display().to_string(),
            source,
        })?;
    if !res.status.success() || !out.is_file() {
        return Err(Error::CommandFailed {
            command: command_line(&qemu, &args),
            status: res.status,
            output: String::from_utf8_lossy(&res.stderr).trim().to_owned(),
        });
    }
    Ok(out.to_owned())
}

/// A shell-like rendering of a command, for messages.
fn command_line(program: &Path, args: &[OsString]) -> String {
    let mut s = program.display().to_string();
    for a in args {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Where to reach a running VM's console.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsoleEndpoint {
    /// A unix socket QEMU listens on (it waits for the first client).
    Unix(PathBuf),
    /// The pty QEMU allocated, e.g. `/dev/pts/3`.
    Pty(PathBuf),
}

/// A running virtual board. Dropping it kills QEMU.
pub struct Vm {
    child: Child,
    endpoint: ConsoleEndpoint,
    stderr: Arc<Mutex<String>>,
    command: String,
}

impl std::fmt::Debug for Vm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vm")
            .field("pid", &self.child.id())
            .field("endpoint", &self.endpoint)
            .finish()
    }
}

/// How long QEMU may take to create its console endpoint.
const START_TIMEOUT: Duration = Duration::from_secs(15);

impl Vm {
    /// Starts QEMU with `cfg` and waits until its console endpoint exists
    /// (the unix socket is listening, or the pty name was printed).
    ///
    /// With [`Console::Unix`] the CPU starts only when a client connects
    /// ([`Vm::open_console`]). Any stale socket at the path is removed.
    pub fn start(cfg: &VmConfig) -> Result<Vm> {
        cfg.check_firmware()?;
        let qemu = cfg.qemu_binary()?;
        let args = cfg.qemu_args();
        if let Console::Unix(p) = &cfg.console {
            match std::fs::remove_file(p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(Error::io(format!("removing stale socket {}", p.display()))(
                        e,
                    ))
                }
            }
        }
        let mut cmd = Command::new(&qemu);
        cmd.args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let parent = std::process::id() as libc::pid_t;
        // SAFETY: between fork and exec only async-signal-safe calls:
        // prctl, getppid and _exit.
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The parent may have died before prctl took effect.
                if libc::getppid() != parent {
                    libc::_exit(1);
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(|source| Error::Spawn {
            program: qemu.display().to_string(),
            source,
        })?;
        let stderr = Arc::new(Mutex::new(String::new()));
        let (pty_tx, pty_rx) = mpsc::channel();
        // QEMU prints the pty name on stdout and its errors on stderr.
        if let Some(pipe) = child.stdout.take() {
            let (buf, tx) = (stderr.clone(), pty_tx.clone());
            std::thread::spawn(move || collect_output(pipe, buf, tx));
        }
        if let Some(pipe) = child.stderr.take() {
            let buf = stderr.clone();
            std::thread::spawn(move || collect_output(pipe, buf, pty_tx));
        }
        let mut vm = Vm {
            child,
            endpoint: ConsoleEndpoint::Pty(PathBuf::new()),
            stderr,
            command: command_line(&qemu, &args),
        };
        let deadline = Instant::now() + START_TIMEOUT;
        vm.endpoint = match &cfg.console {
            Console::Unix(path) => {
                while !is_listening(path) {
                    vm.check_alive("its console socket")?;
                    if Instant::now() > deadline {
                        return Err(vm.start_timeout("the console socket"));
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                ConsoleEndpoint::Unix(path.clone())
            }
            Console::Pty => loop {
                match pty_rx.recv_timeout(Duration::from_millis(50)) {
                    Ok(p) => break ConsoleEndpoint::Pty(p),
                    Err(_) => {
                        vm.check_alive("the name of its pty")?;
                        if Instant::now() > deadline {
                            return Err(vm.start_timeout("the pty name"));
                        }
                    }
                }
            },
        };
        Ok(vm)
    }

    fn check_alive(&mut self, waiting_for: &str) -> Result<()> {
        if let Ok(Some(status)) = self.child.try_wait() {
            // Let the stderr reader catch up with QEMU's last words.
            std::thread::sleep(Duration::from_millis(100));
            return Err(Error::QemuExited {
                waiting_for: waiting_for.into(),
                status,
                stderr: format!("{}\n(command: {})", self.stderr().trim(), self.command),
            });
        }
        Ok(())
    }

    fn start_timeout(&self, what: &str) -> Error {
        Error::Timeout {
            what: format!("QEMU to create {what} (command: {})", self.command),
            secs: START_TIMEOUT.as_secs_f64(),
            tail: self.stderr(),
        }
    }

    /// The console endpoint.
    pub fn console(&self) -> &ConsoleEndpoint {
        &self.endpoint
    }

    /// Connects to the console. For a unix socket this lets the CPU start.
    pub fn open_console(&self) -> Result<ConsoleStream> {
        match &self.endpoint {
            ConsoleEndpoint::Unix(p) => ConsoleStream::connect_unix(p),
            ConsoleEndpoint::Pty(p) => ConsoleStream::open_tty(p),
        }
    }

    /// QEMU's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The QEMU command line that was run.
    pub fn command(&self) -> &str {
        &self.command
    }

    /// What QEMU has printed so far (stderr and stdout, by lines).
    pub fn stderr(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Waits up to `timeout` for QEMU to exit on its own (e.g. after
    /// `poweroff` or `reset` with `-no-reboot`). `None` when it is still
    /// running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<Option<ExitStatus>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self
                .child
                .try_wait()
                .map_err(Error::io("waiting for QEMU"))?
            {
                return Ok(Some(s));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills QEMU (SIGKILL) and reaps it. Also done on drop.
    pub fn kill(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        self.kill();
    }
}

/// True when something listens on the unix socket at `path`. QEMU binds
/// before it listens, so the file alone is not enough; a probe connection
/// is not possible either (the first client *is* the console), so the
/// socket is looked up in /proc/net/unix instead.
fn is_listening(path: &Path) -> bool {
    if !path.exists() {
        return false;
    }
    let Ok(text) = std::fs::read_to_string("/proc/net/unix") else {
        return true;
    };
    let want = path.to_string_lossy();
    // Fields: Num RefCount Protocol Flags Type St Inode Path; Flags
    // 00010000 is __SO_ACCEPTCON (listening).
    text.lines().skip(1).any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.len() >= 8 && f[7] == want && f[3] == "00010000"
    })
}

fn collect_output(pipe: impl Read, buf: Arc<Mutex<String>>, pty: mpsc::Sender<PathBuf>) {
    let reader = BufReader::new(pipe);
    for line in reader.lines() {
        let Ok(line) = line else { break };
        // "char device redirected to /dev/pts/3 (label serial0)"
        if let Some(rest) = line.strip_prefix("char device redirected to ") {
            if let Some(dev) = rest.split_whitespace().next() {
                let _ = pty.send(PathBuf::from(dev));
            }
        }
        if let Ok(mut b) = buf.lock() {
            b.push_str(&line);
            b.push('\n');
        }
    }
}

/// Opens an existing pflash image for reading at `offset` (e.g. the
/// environment at the start of bank 1) and returns `len` bytes.
pub fn read_flash(path: &Path, offset: u64, len: usize) -> Result<Vec<u8>> {
    let ctx = || format!("reading {}", path.display());
    let mut f = OpenOptions::new()
        .read(true)
        .open(path)
        .map_err(Error::io(ctx()))?;
    f.seek(SeekFrom::Start(offset)).map_err(Error::io(ctx()))?;
    let mut out = vec![0; len];
    f.read_exact(&mut out).map_err(Error::io(ctx()))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(a: &[OsString]) -> Vec<String> {
        a.iter().map(|s| s.to_string_lossy().into_owned()).collect()
    }

    #[test]
    fn command_line_for_bios_unix_console_and_tap() {
        let mut cfg = VmConfig::new(Arch::Aarch64, Console::Unix("/tmp/a,b.sock".into()));
        cfg.network = Some(Tap {
            name: "tap0".into(),
        });
        let a = strings(&cfg.qemu_args());
        let joined = a.join(" ");
        assert!(joined.starts_with("-machine virt -cpu cortex-a57 -m 512 -nodefaults"));
        assert!(joined.contains("-bios /usr/lib/u-boot/qemu_arm64/u-boot.bin"));
        assert!(joined.contains("-serial unix:/tmp/a,,b.sock,server=on,wait=on"));
        assert!(joined.contains("-netdev tap,id=n0,ifname=tap0,script=no,downscript=no"));
        assert!(joined.contains("-device virtio-net-pci,netdev=n0,romfile="));
    }

    #[test]
    fn command_line_for_pflash_and_pty() {
        let mut cfg = VmConfig::new(Arch::Armv7l, Console::Pty);
        cfg.firmware = Firmware::Pflash(Pflash {
            flash0: "/x/flash0.img".into(),
            flash1: "/x/flash1.img".into(),
            readonly0: false,
        });
        let a = strings(&cfg.qemu_args()).join(" ");
        assert!(a.contains("-cpu cortex-a15"));
        assert!(!a.contains("-bios"));
        assert!(a.contains("-drive if=pflash,format=raw,index=0,file=/x/flash0.img"));
        assert!(a.contains("-drive if=pflash,format=raw,index=1,file=/x/flash1.img"));
        assert!(a.contains("-serial pty"));
        assert!(!a.contains("netdev"));
    }

    #[test]
    fn command_line_for_malta() {
        let mut cfg = VmConfig::malta(Arch::Mips, Console::Pty, "/x/flash.img".into());
        cfg.network = Some(Tap {
            name: "tap0".into(),
        });
        let a = strings(&cfg.qemu_args()).join(" ");
        assert!(
            a.starts_with("-machine malta -cpu 24Kc -m 256 -nodefaults"),
            "{a}"
        );
        assert!(a.contains("-drive if=pflash,format=raw,file=/x/flash.img"));
        assert!(a.contains("-device pcnet,netdev=n0,romfile="));
        assert!(!a.contains("virtio") && !a.contains("-bios"), "{a}");
    }

    #[test]
    fn pflash_files_are_padded_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let uboot = dir.path().join("u-boot.bin");
        std::fs::write(&uboot, b"UBOOT").unwrap();
        let f = Pflash::create(&dir.path().join("fl"), &uboot, true).unwrap();
        assert_eq!(f.flash0.metadata().unwrap().len(), Pflash::BANK_SIZE);
        assert_eq!(read_flash(&f.flash0, 0, 6).unwrap(), b"UBOOT\xff");
        assert_eq!(read_flash(&f.flash1, 0, 2).unwrap(), [0xff, 0xff]);
        // A saved environment survives a second create with keep_existing.
        let mut data = std::fs::read(&f.flash1).unwrap();
        data[0] = 0x12;
        std::fs::write(&f.flash1, &data).unwrap();
        let g = Pflash::create(&dir.path().join("fl"), &uboot, true).unwrap();
        assert_eq!(read_flash(&g.flash1, 0, 1).unwrap(), [0x12]);
        let h = Pflash::create(&dir.path().join("fl"), &uboot, false).unwrap();
        assert_eq!(read_flash(&h.flash1, 0, 1).unwrap(), [0xff]);
    }

    #[test]
    fn pty_name_is_parsed_from_stderr() {
        let (tx, rx) = mpsc::channel();
        let buf = Arc::new(Mutex::new(String::new()));
        collect_output(
            &b"char device redirected to /dev/pts/7 (label serial0)\nother\n"[..],
            buf.clone(),
            tx,
        );
        assert_eq!(rx.recv().unwrap(), PathBuf::from("/dev/pts/7"));
        assert!(buf.lock().unwrap().contains("other"));
    }
}
