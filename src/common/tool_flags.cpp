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

// Whether a flag was defined in this project's sources. The file name is absolute, or relative
// to the build folder when the compiler ran with relative paths (ccache's base_dir does that);
// LibTorch's and glog's flags come from their own trees (c10/, src/logging.cc).
bool defined_here(const std::string& filename) {
  const std::string root = EXCEL_SOURCE_DIR;
  if (filename.compare(0, root.size(), root) == 0) return true;
  if (filename.empty() || filename[0] == '/') return false;
  std::string rel = filename;
  while (rel.compare(0, 3, "../") == 0 || rel.compare(0, 2, "./") == 0) rel.erase(0, rel[0] == '.' && rel[1] == '/' ? 2 : 3);
  for (const char* dir : {"src/apps/", "bench/", "data_tools/"})
    if (rel.compare(0, std::string(dir).size(), dir) == 0) return true;
  return false;
}

void print_help(const char* usage) {
  std::vector<gflags::CommandLineFlagInfo> all;
  gflags::GetAllFlags(&all);
  std::map<std::string, std::vector<const gflags::CommandLineFlagInfo*>> groups;
  for (const auto& f : all)
    if (defined_here(f.filename)) groups[group_of(f.name)].push_back(&f);
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
