#include "simplepose/decode.hpp"

#include "simplepose/assembly.hpp"
#include "simplepose/part_scoring.hpp"
#include "simplepose/peaks.hpp"

namespace simplepose {

void decode(const HeatmapView& heatmaps, const DecodeParams& params, DecodeResult* out) {
  find_peaks(heatmaps, params, &out->peaks);
  score_parts(heatmaps, out->peaks, params, &out->connections);
  assemble(out->peaks, out->connections, params, &out->assembly);
  const Assembly& people = out->assembly;
  out->keypoints.assign(static_cast<std::size_t>(people.size()) * kNumKeypoints * 3, 0.0f);
  for (int p = 0; p < people.size(); ++p) {
    for (int k = 0; k < kNumKeypoints; ++k) {
      const int id = people.members[p][k];
      if (id < 0) continue;
      float* row = &out->keypoints[(static_cast<std::size_t>(p) * kNumKeypoints + k) * 3];
      row[0] = static_cast<float>(out->peaks.x[id]);
      row[1] = static_cast<float>(out->peaks.y[id]);
      row[2] = static_cast<float>(out->peaks.score[id]);
    }
  }
}

}  // namespace simplepose
