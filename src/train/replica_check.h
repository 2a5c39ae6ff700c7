// Start of a data-parallel run: every rank must hold the same model structure and run the same
// configuration (checked before anything is broadcast, so a mismatch is an error naming the
// ranks instead of a hang or a corrupt broadcast); then rank 0's weights are broadcast and a
// checksum of every rank's weights is compared.
#pragma once
#include <cstdint>
#include <string>

namespace excel::model {
class Heads;
}
namespace excel::comm {
class Communicator;
}

namespace excel::train {

// config_fingerprint: a hash of the settings every rank must share (seed, batch, schedule, ...).
void broadcast_and_check_replicas(model::Heads& heads, comm::Communicator& comm, uint64_t config_fingerprint);

// FNV-1a over a string (for fingerprints).
uint64_t fingerprint(const std::string& s);

}  // namespace excel::train
