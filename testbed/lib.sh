# Shared by testbed/kernel.sh and testbed/uboot.sh (sourced, not run).
# The caller sets `what` (e.g. "kernel", "u-boot") before sourcing: it
# names the script in messages.

die() {
  echo "lmx testbed $what: $*" >&2
  exit 1
}

# scripts/test.sh --quick sets LMX_QUICK=1: its tier builds and boots no
# virtual board, so a test that gets here belongs to the QEMU tier.
if [ "${LMX_QUICK:-}" = 1 ]; then
  die "not run in the quick tier (LMX_QUICK=1, scripts/test.sh --quick): the test that asked for this $what belongs to the QEMU tier; add its file to QEMU_TIER in scripts/test.sh"
fi

# need_tools TOOL...: each must be on PATH.
need_tools() {
  local tool
  for tool; do
    command -v "$tool" >/dev/null ||
      die "$tool not found: run scripts/deps.sh virtual"
  done
}

# reuse_or_lock IMAGE: prints IMAGE and exits when it is already built;
# else takes the lock of its cache directory (fd 9, held until the script
# exits) and looks again. One build per key at a time: a second caller
# waits and then reuses the first one's result.
reuse_or_lock() {
  local image="$1" dir
  dir="$(dirname "$image")"
  if [ -s "$image" ]; then
    echo "$image"
    exit 0
  fi
  mkdir -p "$dir"
  exec 9>"$dir/.lock"
  flock 9
  if [ -s "$image" ]; then
    echo "$image"
    exit 0
  fi
}

# check_kept CONFIG: every option a fragment read on stdin sets must have
# survived into the final CONFIG, as written: a `CONFIG_X=VALUE` line must
# be there verbatim (=y, a number, a string), and an option a
# `# CONFIG_X is not set` line turns off must not be set to anything.
# olddefconfig drops an option silently when one of its dependencies is
# missing, and another option can `select` one the fragment turned off.
check_kept() {
  local config="$1" line name
  local dropped=()
  while IFS= read -r line; do
    case "$line" in
      CONFIG_*=*)
        grep -qxF -- "$line" "$config" || dropped+=("$line")
        ;;
      "# CONFIG_"*" is not set")
        name="${line#\# }"
        name="${name%% *}"
        if grep -q "^$name=" "$config"; then
          dropped+=("$(grep "^$name=" "$config") (the fragment turns it off)")
        fi
        ;;
    esac
  done
  if [ "${#dropped[@]}" -gt 0 ]; then
    die "options not as the fragment sets them in the final .config (missing dependencies, or selected by another option?): ${dropped[*]}"
  fi
}
