# Shared by the benchmark scripts (sourced, not run).

# Waits for, then holds until the script exits, the lock the end-to-end
# tests take: one VM at a time on this machine.
vm_lock() {
  exec 9>"${TMPDIR:-/tmp}/lmx-virtual-board.lock"
  flock 9
}

# tftpd-hpa conflicts with atftpd (both ship in.tftpd): unpacks it into
# DIR/hpa with `apt-get download` and sets HPA to its in.tftpd.
unpack_hpa() {
  (cd "$1" && apt-get download -qq tftpd-hpa >/dev/null 2>&1 && dpkg-deb -x tftpd-hpa_*.deb hpa)
  HPA="$1/hpa/usr/sbin/in.tftpd"
  [ -x "$HPA" ] || { echo "could not unpack tftpd-hpa (apt-get download tftpd-hpa)" >&2; exit 1; }
}
