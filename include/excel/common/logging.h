// glog set-up shared by every executable: rank-prefixed lines on stderr.
#pragma once

namespace excel {

// Initialises glog for argv0 with "rankN" in every line's prefix; `rank` < 0 reads it from the
// launcher environment.
void init_logging(const char* argv0, int rank = -1);

}  // namespace excel
