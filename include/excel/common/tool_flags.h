// Command-line parsing shared by every executable: gflags with a usage line, and a --help that
// lists only this project's flags, grouped by concern (data_, model_, train_, ...), instead of
// gflags' default dump that starts with LibTorch's internal flags.
#pragma once

namespace excel {

// Parses the flags (removing them from argv). --help / --helpshort print `usage` and the tool's
// own flags and exit 0; the other gflags help flags (--helpfull, --version) behave as usual.
void parse_tool_flags(int* argc, char*** argv, const char* usage);

}  // namespace excel
