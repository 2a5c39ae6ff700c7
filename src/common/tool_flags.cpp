#include "excel/common/tool_flags.h"

#include <gflags/gflags.h>

#include <cstdlib>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "excel/build_config.h"

namespace excel {
namespace {

// The concern a flag belongs to, from its prefix ("train_batch" -> "train").
std::string group_of(const std::string& name) {
  static const char* kGroups[] = {"data", "model", "train", "eval", "ckpt", "cache", "comm", "metrics", "fault"};
  for (const char* g : kGroups) {
    const std::string p = std::string(g) + "_";
    if (name.compare(0, p.size(), p) == 0) return g;
  }
  return "general";
}

void print_help(const char* usage) {
  std::vector<gflags::CommandLineFlagInfo> all;
  gflags::GetAllFlags(&all);
  std::map<std::string, std::vector<const gflags::CommandLineFlagInfo*>> groups;
  const std::string ours = EXCEL_SOURCE_DIR;
  for (const auto& f : all)
    if (f.filename.compare(0, ours.size(), ours) == 0) groups[group_of(f.name)].push_back(&f);
  std::cout << usage << "\n";
  for (const char* g : {"general", "data", "model", "train", "eval", "ckpt", "cache", "comm", "metrics", "fault"}) {
    auto it = groups.find(g);
    if (it == groups.end()) continue;
    std::cout << "\n" << g << ":\n";
    for (const auto* f : it->second) {
      std::string def = f->type == "string" ? "\"" + f->default_value + "\"" : f->default_value;
      std::cout << "  --" << f->name << " (" << f->type << ", default " << def << ")\n      " << f->description << "\n";
    }
  }
  std::cout << "\nAny flag can also come from --flagfile=FILE (configs/). --helpfull lists every library's flags.\n";
}

}  // namespace

void parse_tool_flags(int* argc, char*** argv, const char* usage) {
  gflags::SetUsageMessage(usage);
  gflags::ParseCommandLineNonHelpFlags(argc, argv, true);
  std::string help, helpshort;
  gflags::GetCommandLineOption("help", &help);
  gflags::GetCommandLineOption("helpshort", &helpshort);
  if (help == "true" || helpshort == "true") {
    print_help(usage);
    std::exit(0);
  }
  gflags::HandleCommandLineHelpFlags();
}

}  // namespace excel
