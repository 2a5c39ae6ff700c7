// The heads' weights in a training checkpoint: HDF5 group "params/" with the reference's names.
// train/checkpoint adds the optimizer state and the schedule position to the same file;
// evaluation reads only the weights, through this unit.
#pragma once
#include <string>

#include "excel/model/heads.h"

namespace excel::h5 {
class File;
}

namespace excel::model {

// The "format" attribute of a training checkpoint.
extern const char* const kTrainCheckpointFormat;

// Writes every parameter under params/<name>.
void write_heads_params(h5::File& f, const Heads& heads);
// Reads every parameter of `heads` from params/; FormatError naming `path` and a missing or
// mis-shaped tensor.
void read_heads_params(const h5::File& f, const std::string& path, Heads& heads);
// Opens a training checkpoint for reading: InputError when absent, FormatError when not one.
h5::File open_train_checkpoint(const std::string& path);

// The heads' sizes a checkpoint was written with (adapter width, decoder depth, classes, from its
// tensor shapes); the rest is taken from `base`.
HeadsConfig heads_config_from_checkpoint(const std::string& path, HeadsConfig base = {});
// Restores the heads' weights only (evaluation).
void load_heads(const std::string& path, Heads& heads);

}  // namespace excel::model
