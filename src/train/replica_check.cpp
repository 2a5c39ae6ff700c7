#include "replica_check.h"

#include <glog/logging.h>
#include <torch/torch.h>
#include <zlib.h>

#include "excel/comm/communicator.h"
#include "excel/common/errors.h"
#include "excel/model/heads.h"

namespace excel::train {
namespace {

// One row per rank, filled by its owner and summed over ranks: every rank sees every row.
at::Tensor gather_rows(const std::vector<int64_t>& mine, comm::Communicator& comm) {
  at::Tensor t = torch::zeros({comm.size(), static_cast<int64_t>(mine.size())}, torch::kLong);
  for (size_t k = 0; k < mine.size(); ++k) t[comm.rank()][static_cast<int64_t>(k)] = mine[k];
  comm.all_reduce_sum(t);
  return t;
}

std::string differing_ranks(const at::Tensor& rows) {
  std::string out;
  for (int64_t r = 1; r < rows.size(0); ++r)
    if (!torch::equal(rows[r], rows[0])) out += (out.empty() ? "" : ", ") + std::to_string(r);
  return out;
}

}  // namespace

uint64_t fingerprint(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

void broadcast_and_check_replicas(model::Heads& heads, comm::Communicator& comm, uint64_t config_fingerprint) {
  std::string shapes;
  int64_t numel = 0;
  for (const auto& n : heads.names()) {
    shapes += n;
    for (int64_t d : heads.param(n).sizes()) shapes += "," + std::to_string(d);
    shapes += ";";
    numel += heads.param(n).numel();
  }
  // Low 40 bits: each rank's row is summed over ranks (gather_rows) in int64, which cannot
  // overflow below 2^23 ranks; a mismatch still shows in 40 bits with near certainty.
  const int64_t mask = (int64_t{1} << 40) - 1;
  at::Tensor rows =
      gather_rows({static_cast<int64_t>(heads.names().size()), numel, static_cast<int64_t>(fingerprint(shapes)) & mask,
                   static_cast<int64_t>(config_fingerprint) & mask},
                  comm);
  const std::string bad = differing_ranks(rows);
  if (!bad.empty())
    throw ConfigError("rank(s) " + bad +
                      " differ from rank 0 in model structure or training configuration "
                      "(parameters, shapes, seed, batch or schedule): every rank must run the same flags");

  torch::NoGradGuard ng;
  uLong crc = crc32(0L, Z_NULL, 0);
  for (const auto& n : heads.names()) {
    at::Tensor p = heads.param(n).detach().contiguous();
    comm.broadcast(p, 0);
    heads.param(n).copy_(p);
    at::Tensor c = heads.param(n).detach().to(at::kCPU).contiguous();  // the CRC reads host bytes
    crc = crc32(crc, static_cast<const Bytef*>(c.data_ptr()), static_cast<uInt>(c.numel() * c.element_size()));
  }
  rows = gather_rows({static_cast<int64_t>(crc)}, comm);
  const std::string differ = differing_ranks(rows);
  if (!differ.empty())
    throw ConfigError("after the broadcast, the weights of rank(s) " + differ + " differ from rank 0's");
  LOG(INFO) << "replicas checked: " << heads.names().size() << " parameters (" << numel << " values), crc32 "
            << std::hex << crc << std::dec << " on all " << comm.size() << " ranks";
}

}  // namespace excel::train
