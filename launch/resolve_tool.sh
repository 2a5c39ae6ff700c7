# Sourced by the launchers: checks TOOL and sets BIN to its absolute path in ${BUILD_DIR:-build}/src/.
# Call from the repository root.
resolve_tool() {
  case "$1" in
    excel_precompute | excel_train | excel_eval | excel_cam_demo) ;;
    *) echo "$0: unknown tool '$1'" >&2; exit 2 ;;
  esac
  BIN="$(cd "${BUILD_DIR:-build}" && pwd)/src/$1"
  [ -x "$BIN" ] || { echo "$0: $BIN not built" >&2; exit 2; }
}
