#include "excel/common/tool_flags.h"

#include <arpa/inet.h>
#include <gflags/gflags.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "excel/build_config.h"
#include "excel/common/process.h"

// gflags ends the process through this pointer (exported by libgflags for its own tests) when a
// value does not parse or a flag is unknown; parse_tool_flags points it at exit(2) meanwhile.
namespace GFLAGS_NAMESPACE {
extern void (*gflags_exitfunc)(int);
}

namespace excel {
namespace {

const char* const kGroups[] = {"general", "data", "model",   "train", "eval", "ckpt",
                               "cache",   "comm", "metrics", "fault", "bank", "bench"};

// The concern a flag belongs to, from its prefix ("train_batch" -> "train").
std::string group_of(const std::string& name) {
  for (const char* g : kGroups) {
    const std::string p = std::string(g) + "_";
    if (name.compare(0, p.size(), p) == 0) return g;
  }
  return "general";
}

struct Rule {
  std::string flag, accepted;
  bool (*ok)();
};

std::vector<Rule>& rules() {
  static std::vector<Rule> r;  // filled during static initialisation, in any order
  return r;
}

std::string accepted_of(const std::string& flag) {
  std::string s;
  for (const Rule& r : rules())
    if (r.flag == flag) s += (s.empty() ? "" : "; ") + r.accepted;
  return s;
}

// Whether a flag was defined in this project's sources. Its file name is the compiler's __FILE__:
// absolute, or relative to the build tree when ccache's base_dir rewrote the path.
bool ours(const std::string& filename) {
  namespace fs = std::filesystem;
  auto under = [](const fs::path& p, const fs::path& dir) {
    const std::string a = p.lexically_normal().string(), b = (dir.lexically_normal() / "").string();
    return a.compare(0, b.size(), b) == 0;
  };
  const fs::path src = EXCEL_SOURCE_DIR, build = EXCEL_BUILD_DIR;
  const fs::path p = fs::path(filename).is_absolute() ? fs::path(filename) : build / filename;
  return under(p, src) && !under(p, build);
}

void print_help(const char* usage) {
  std::vector<gflags::CommandLineFlagInfo> all;
  gflags::GetAllFlags(&all);
  std::map<std::string, std::vector<const gflags::CommandLineFlagInfo*>> groups;
  for (const auto& f : all)
    if (ours(f.filename)) groups[group_of(f.name)].push_back(&f);
  std::cout << usage << "\n";
  for (const char* g : kGroups) {
    auto it = groups.find(g);
    if (it == groups.end()) continue;
    std::cout << "\n" << g << ":\n";
    for (const auto* f : it->second) {
      std::string def = f->type == "string" ? "\"" + f->default_value + "\"" : f->default_value;
      std::cout << "  --" << f->name << " (" << f->type << ", default " << def << ")\n      " << f->description << "\n";
      const std::string acc = accepted_of(f->name);
      if (!acc.empty()) std::cout << "      accepted: " << acc << "\n";
    }
  }
  std::cout << "\nAny flag can also come from --flagfile=FILE (configs/). --helpfull lists every library's flags.\n"
            << "Log lines go to stderr; glog's --log_dir=DIR writes them to files there as well (one set per rank).\n"
            << "Every flag of every tool: README.md, \"Flags\".\n";
}

// Every rule; one line per broken rule on stderr. Returns false if any is broken.
bool check_rules(const std::string& tool) {
  bool good = true;
  for (const Rule& r : rules()) {
    if (r.ok()) continue;
    gflags::CommandLineFlagInfo info;
    std::string value = "?";
    if (gflags::GetCommandLineFlagInfo(r.flag.c_str(), &info))
      value = info.type == "string" && info.current_value.empty() ? "\"\"" : info.current_value;
    std::cerr << tool << ": invalid --" << r.flag << "=" << value << " (accepted: " << r.accepted << ")" << std::endl;
    good = false;
  }
  return good;
}

[[noreturn]] void exit_usage_error(int) {
  std::exit(2);
}

}  // namespace

FlagRule::FlagRule(const char* flag, const char* accepted, bool (*ok)()) {
  rules().push_back({flag, accepted, ok});
}

bool flag_one_of(const std::string& value, std::initializer_list<const char*> accepted) {
  for (const char* a : accepted)
    if (value == a) return true;
  return false;
}

bool flag_int_list(const std::string& value, long long min) {
  if (value.empty()) return false;
  std::stringstream in(value);
  std::string tok;
  while (std::getline(in, tok, ',')) {
    char* end = nullptr;
    errno = 0;
    const long long v = std::strtoll(tok.c_str(), &end, 10);
    if (tok.empty() || *end != '\0' || errno != 0 || v < min) return false;
  }
  return value.back() != ',';
}

bool flag_ip_address(const std::string& value) {
  in_addr a{};
  in6_addr a6{};
  const bool bracketed = value.size() > 2 && value.front() == '[' && value.back() == ']';
  const std::string v6 = bracketed ? value.substr(1, value.size() - 2) : value;
  return (!bracketed && inet_pton(AF_INET, value.c_str(), &a) == 1) || inet_pton(AF_INET6, v6.c_str(), &a6) == 1;
}

bool flag_host_port(const std::string& value) {
  const size_t colon = value.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  const std::string port = value.substr(colon + 1);
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos) return false;
  const long p = std::strtol(port.c_str(), nullptr, 10);
  return p >= 1 && p <= 65535;
}

bool flag_finite(double v) {
  return std::isfinite(v);
}

void parse_tool_flags(int* argc, char*** argv, const char* usage) {
  gflags::SetUsageMessage(usage);
  // A value gflags cannot parse or an unknown flag is a usage error like a value out of range.
  auto* gflags_exit = GFLAGS_NAMESPACE::gflags_exitfunc;
  GFLAGS_NAMESPACE::gflags_exitfunc = &exit_usage_error;
  gflags::ParseCommandLineNonHelpFlags(argc, argv, true);
  GFLAGS_NAMESPACE::gflags_exitfunc = gflags_exit;
  std::string help, helpshort;
  gflags::GetCommandLineOption("help", &help);
  gflags::GetCommandLineOption("helpshort", &helpshort);
  if (help == "true" || helpshort == "true") {
    print_help(usage);
    std::exit(0);
  }
  gflags::HandleCommandLineHelpFlags();
  std::string tool = (*argv)[0];
  tool = tool.substr(tool.find_last_of('/') + 1);
  if (launcher_world_size() > 1) tool += " (rank " + std::to_string(launcher_rank()) + ")";
  if (!check_rules(tool)) std::exit(2);
}

}  // namespace excel
