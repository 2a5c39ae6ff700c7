// Command-line parsing shared by every executable: gflags with a usage line, and a --help that
// lists only this project's flags, grouped by concern (data_, model_, train_, ...), instead of
// gflags' default dump that starts with LibTorch's internal flags; and the check of every flag's
// value right after parsing, before any file is written or MPI starts.
#pragma once
#include <initializer_list>
#include <string>

namespace excel {

// Parses the flags (removing them from argv). --help / --helpshort print `usage` and the tool's
// own flags and exit 0; the other gflags help flags (--helpfull, --version) behave as usual.
// Then every EXCEL_FLAG_RULE linked into the executable is checked: each rule a value breaks
// prints one line on stderr ("TOOL: invalid --FLAG=VALUE (accepted: RANGE)") and the process exits
// with status 2. A value gflags cannot parse (--train_batch=abc) or an unknown flag also exits 2.
// Under mpirun every rank runs this before MPI_Init with the same flags, so every rank exits on
// the same check and none waits in a collective.
void parse_tool_flags(int* argc, char*** argv, const char* usage);

// One accepted-value rule of a flag, registered at static initialisation (EXCEL_FLAG_RULE, next to
// the flag's DEFINE_ or in the tool that needs it) and checked by parse_tool_flags.
class FlagRule {
 public:
  FlagRule(const char* flag, const char* accepted, bool (*ok)());
};

// Helpers for rule conditions.
bool flag_one_of(const std::string& value, std::initializer_list<const char*> accepted);
// "320,224,384" -> true when every comma-separated entry is an integer >= min (and there is one).
bool flag_int_list(const std::string& value, long long min);
bool flag_ip_address(const std::string& value);  // IPv4 (dotted) or IPv6 literal, the latter bare or in [ ]
bool flag_host_port(const std::string& value);   // HOST:PORT with PORT in 1..65535
bool flag_finite(double v);

}  // namespace excel

#define EXCEL_FLAG_RULE_CAT2(a, b) a##b
#define EXCEL_FLAG_RULE_CAT(a, b) EXCEL_FLAG_RULE_CAT2(a, b)
// EXCEL_FLAG_RULE(flag, "accepted values, as the README's flag table shows them", condition):
// the condition (on FLAGS_flag and possibly other flags) must hold after parsing. The accepted
// text is printed by --help, in the error line, and copied into the README table by
// scripts/flag_table.py, so keep it a short literal.
#define EXCEL_FLAG_RULE(flag, accepted, ...)                                      \
  static const ::excel::FlagRule EXCEL_FLAG_RULE_CAT(excel_flag_rule_, __LINE__)( \
      #flag, accepted, [] { return static_cast<bool>(__VA_ARGS__); })
