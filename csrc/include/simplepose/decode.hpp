// The whole decode: peaks -> part scores -> assembly.
#pragma once

#include <vector>

#include "simplepose/types.hpp"

namespace simplepose {

// Output of decode: people with their 18 keypoints in grid cells.
struct DecodeResult {
  Peaks peaks;
  Connections connections;
  Assembly assembly;
  std::vector<float> keypoints;  // (P, 18, 3) [x, y, score], grid cells; unfound = 0, 0, 0
};

// Runs find_peaks, score_parts and assemble. heatmaps: (50, H, W) view. out: overwritten
// (its buffers are reused, so a caller decoding a stream can keep one DecodeResult).
void decode(const HeatmapView& heatmaps, const DecodeParams& params, DecodeResult* out);

}  // namespace simplepose
