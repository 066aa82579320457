//! Finding the serial port a board is on.
//!
//! Most people have one USB serial adapter plugged in; lmx should not
//! make them type its name. [`list_ports`] reads what `serialport`
//! finds in sysfs (USB VID/PID, serial number, product) and links each
//! port to its stable `/dev/serial/by-id/` name; [`choose`] picks the
//! single known adapter (CP210x, CH340, FTDI, PL2303) or returns the
//! candidates for the caller to ask about or list in an error.

use std::path::{Path, PathBuf};

/// USB-to-UART bridges people use on router consoles: (VID, PID, name).
pub const KNOWN_ADAPTERS: &[(u16, u16, &str)] = &[
    (0x10c4, 0xea60, "Silicon Labs CP210x"),
    (0x10c4, 0xea70, "Silicon Labs CP2105"),
    (0x10c4, 0xea71, "Silicon Labs CP2108"),
    (0x1a86, 0x7523, "WCH CH340"),
    (0x1a86, 0x5523, "WCH CH341"),
    (0x1a86, 0x55d4, "WCH CH9102"),
    (0x0403, 0x6001, "FTDI FT232R"),
    (0x0403, 0x6010, "FTDI FT2232"),
    (0x0403, 0x6011, "FTDI FT4232"),
    (0x0403, 0x6014, "FTDI FT232H"),
    (0x0403, 0x6015, "FTDI FT230X"),
    (0x067b, 0x2303, "Prolific PL2303"),
    (0x067b, 0x23a3, "Prolific PL2303GS"),
];

/// USB facts of a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsbInfo {
    /// Vendor ID.
    pub vid: u16,
    /// Product ID.
    pub pid: u16,
    /// Serial number, if the adapter has one.
    pub serial: Option<String>,
    /// Manufacturer string.
    pub manufacturer: Option<String>,
    /// Product string.
    pub product: Option<String>,
}

/// One serial port on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortInfo {
    /// Device node, e.g. `/dev/ttyUSB0`.
    pub path: PathBuf,
    /// Its stable `/dev/serial/by-id/...` name, when udev made one.
    pub by_id: Option<PathBuf>,
    /// USB facts, for USB adapters.
    pub usb: Option<UsbInfo>,
    /// The known adapter this is, if any.
    pub known: Option<&'static str>,
}

impl PortInfo {
    /// One line for lists: path, VID:PID, product, serial.
    pub fn display_name(&self) -> String {
        let mut s = self.path.display().to_string();
        if let Some(u) = &self.usb {
            s.push_str(&format!(" [{:04x}:{:04x}", u.vid, u.pid));
            if let Some(p) = u.product.as_ref().or(self.known.map(String::from).as_ref()) {
                s.push_str(&format!(" {p}"));
            }
            if let Some(sn) = &u.serial {
                s.push_str(&format!(" serial {sn}"));
            }
            s.push(']');
        }
        s
    }

    /// The path to open: the by-id name when there is one (stable across replugging).
    pub fn best_path(&self) -> &Path {
        self.by_id.as_deref().unwrap_or(&self.path)
    }
}

/// The known adapter with this VID/PID.
pub fn known_adapter(vid: u16, pid: u16) -> Option<&'static str> {
    KNOWN_ADAPTERS
        .iter()
        .find(|(v, p, _)| *v == vid && *p == pid)
        .map(|(_, _, n)| *n)
}

/// Serial ports with USB facts, sorted by path. Legacy `ttyS*` ports
/// without a device behind them are left out.
pub fn list_ports() -> Vec<PortInfo> {
    let by_id: Vec<(PathBuf, PathBuf)> = std::fs::read_dir("/dev/serial/by-id")
        .map(|d| {
            d.flatten()
                .filter_map(|e| {
                    let link = e.path();
                    std::fs::canonicalize(&link).ok().map(|t| (t, link))
                })
                .collect()
        })
        .unwrap_or_default();
    let mut out: Vec<PortInfo> = serialport::available_ports()
        .unwrap_or_default()
        .into_iter()
        .map(|p| {
            let path = PathBuf::from(&p.port_name);
            let usb = match p.port_type {
                serialport::SerialPortType::UsbPort(u) => Some(UsbInfo {
                    vid: u.vid,
                    pid: u.pid,
                    serial: u.serial_number,
                    manufacturer: u.manufacturer,
                    product: u.product,
                }),
                _ => None,
            };
            let known = usb.as_ref().and_then(|u| known_adapter(u.vid, u.pid));
            let canon = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
            let by_id = by_id
                .iter()
                .find(|(t, _)| *t == canon)
                .map(|(_, l)| l.clone());
            PortInfo {
                path,
                by_id,
                usb,
                known,
            }
        })
        .collect();
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// What [`choose`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// Exactly one known adapter (or exactly one port at all).
    One(PortInfo),
    /// Several candidates: ask, or list them in an error.
    Several(Vec<PortInfo>),
    /// No ports at all.
    None,
}

/// Picks the port when the choice is obvious.
pub fn choose(ports: &[PortInfo]) -> Choice {
    let known: Vec<&PortInfo> = ports.iter().filter(|p| p.known.is_some()).collect();
    match (known.len(), ports.len()) {
        (1, _) => Choice::One(known[0].clone()),
        (0, 0) => Choice::None,
        (0, 1) if ports[0].usb.is_some() => Choice::One(ports[0].clone()),
        _ => Choice::Several(ports.to_vec()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(path: &str, vid: u16, pid: u16) -> PortInfo {
        PortInfo {
            path: path.into(),
            by_id: None,
            usb: Some(UsbInfo {
                vid,
                pid,
                serial: Some("0001".into()),
                manufacturer: None,
                product: None,
            }),
            known: known_adapter(vid, pid),
        }
    }

    #[test]
    fn one_known_adapter_wins() {
        let ports = [
            port("/dev/ttyACM0", 0x2341, 0x0043),
            port("/dev/ttyUSB0", 0x10c4, 0xea60),
        ];
        assert_eq!(choose(&ports), Choice::One(ports[1].clone()));
        assert!(ports[1]
            .display_name()
            .contains("10c4:ea60 Silicon Labs CP210x"));
    }

    #[test]
    fn two_known_adapters_are_a_question() {
        let ports = [
            port("/dev/ttyUSB0", 0x1a86, 0x7523),
            port("/dev/ttyUSB1", 0x0403, 0x6001),
        ];
        assert!(matches!(choose(&ports), Choice::Several(v) if v.len() == 2));
        assert_eq!(choose(&[]), Choice::None);
    }
}
