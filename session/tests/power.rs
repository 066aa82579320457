//! `cycle_and_attach` on the real U-Boot of the mt7622-like twin
//! (bootdelay 0: U-Boot looks for a key once, right after its banner),
//! with QEMU's monitor as the power switch (`system_reset`). The board
//! first sits at its prompt, where it prints nothing by itself; only the
//! power command can make it boot again, and the console, read from
//! before the command runs, must stop that boot on its one look.
//!
//! Needs QEMU and the twin's U-Boot (`testbed/uboot.sh mt7622`, built and
//! cached on first use) and socat. One VM at a time (the test bed's lock).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use lmx_boards::Catalog;
use lmx_console::UBootShell;
use lmx_session::power::{cycle_and_attach, CycleError, Power, PowerError};
use lmx_testbed::{Arch, Console, Firmware, Vm, VmConfig};

#[test]
fn a_power_cycle_is_caught_on_a_bootdelay_zero_board() {
    let _one = lmx_testbed::one_vm();
    let uboot = lmx_testbed::uboot_build("mt7622")
        .unwrap_or_else(|e| panic!("testbed/uboot.sh mt7622: {e}"));
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("console.sock");
    let monitor = dir.path().join("monitor.sock");
    let mut cfg = VmConfig::new(Arch::Aarch64, Console::Unix(sock.clone()));
    cfg.firmware = Firmware::Bios(uboot);
    cfg.monitor = Some(monitor.clone());
    let vm = Vm::start(&cfg).unwrap();
    let board = Catalog::builtin()
        .resolve("qemu-aarch64-mt7622")
        .unwrap()
        .board;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let io = tokio::net::UnixStream::connect(&sock).await.unwrap();
        let mut sh = UBootShell::for_board(io, &board).unwrap();
        let rx = Arc::new(Mutex::new(Vec::<u8>::new()));
        let log = rx.clone();
        sh.observe(move |t| {
            if let lmx_console::Traffic::Rx(b) = t {
                log.lock().unwrap().extend_from_slice(b);
            }
        });
        sh.attach_at_power_on(Duration::from_secs(60))
            .await
            .unwrap_or_else(|e| panic!("first attach: {e}\n{}", vm.stderr()));
        sh.setenv("lmxmark", "before").await.unwrap();
        let banners = |rx: &Arc<Mutex<Vec<u8>>>| {
            String::from_utf8_lossy(&rx.lock().unwrap())
                .matches("U-Boot 2023.01")
                .count()
        };
        assert_eq!(banners(&rx), 1);
        // Nothing happens at the prompt by itself.
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(banners(&rx), 1);

        let power = Power::new(format!(
            "echo system_reset | socat - UNIX-CONNECT:{}",
            monitor.display()
        ));
        cycle_and_attach(&mut sh, &power, Duration::from_secs(60))
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "after the cycle: {e}\n--- console ---\n{}\n{}",
                    String::from_utf8_lossy(&rx.lock().unwrap()),
                    vm.stderr()
                )
            });
        let text = String::from_utf8_lossy(&rx.lock().unwrap()).into_owned();
        assert_eq!(banners(&rx), 2, "one reboot, stopped:\n{text}");
        let after = &text[text.rfind("U-Boot 2023.01").unwrap()..];
        assert!(
            !after.contains("## Booting") && !after.contains("resetting"),
            "{after}"
        );
        // A fresh U-Boot: the variable set before the cycle is gone.
        assert_eq!(sh.printenv("lmxmark").await.unwrap(), None);

        // A power command that fails is reported as such, with its stderr.
        let bad = Power::new("echo 'place lab-3 is not acquired' >&2; exit 1");
        match cycle_and_attach(&mut sh, &bad, Duration::from_secs(10)).await {
            Err(CycleError::Power(PowerError::Failed { stderr, .. })) => {
                assert!(stderr.contains("not acquired"), "{stderr}");
            }
            other => panic!("{other:?}"),
        }
    });
    drop(vm);
}
