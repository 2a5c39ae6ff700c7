// Recomputes the reference's stages from the inputs of a fixture file and writes them under the
// fixture's group/dataset names (text/, vision/, cam/, train/step<k>/, infer/, metrics/; each
// written where stage_dump.cpp and train_stages.cpp compute it). Each stage reads the fixture's
// reference values of earlier stages, so errors never compound.
#pragma once
#include <string>
#include <vector>

namespace excel::stages {

struct DumpOptions {
  std::string checkpoint;  // empty: the fixture's checkpoint_jit attribute, next to the fixture
  std::string input;       // fixture .h5
  std::string output;      // dump .h5 (written to a temporary name, then renamed)
  std::string bpe_path;    // BPE merge list
};

// Returns the list of stage groups written (e.g. {"text","vision","cam"}).
std::vector<std::string> dump_stages(const DumpOptions& opt);

// The reference data folder (../shared/data) or "" when absent.
std::string default_shared_dir();

}  // namespace excel::stages
