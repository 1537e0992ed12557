# Sourced (not run), from the repository root, by the scripts that build and run megaqa
# on this machine: one persistent target dir (a cold Burn build is ~16 min), a runtime
# dir for wgpu, the release binary as $M, and the checks on ../shared's files.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/megaqa/target}"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp/megaqa-xdg}"
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
shared=../shared
M="$CARGO_TARGET_DIR/release/megaqa"

# need_shared PATH...: each path under ../shared exists, or the script stops saying which.
need_shared() {
  local f
  for f in "$@"; do
    [ -f "$shared/$f" ] || { echo "missing $shared/$f (this script needs it)" >&2; exit 1; }
  done
}

# build_megaqa: the release CLI as $M (quick when nothing changed).
build_megaqa() {
  cargo build --release -q -p megaqa-cli
}
