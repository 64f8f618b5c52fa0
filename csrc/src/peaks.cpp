#include "simplepose/peaks.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "common.hpp"

namespace simplepose {

namespace {

using detail::finite_or_zero;

constexpr int kChunk = 16;  // cells tested at once in the threshold scan

// Whether any of `values[0..n)` is >= threshold; a full chunk takes the fixed-trip-count
// loop that GCC and Clang vectorise.
inline bool any_at_least(const float* values, int n, float threshold) {
  int any = 0;
  if (n == kChunk) {
    for (int i = 0; i < kChunk; ++i) any |= static_cast<int>(values[i] >= threshold);
  } else {
    for (int i = 0; i < n; ++i) any |= static_cast<int>(values[i] >= threshold);
  }
  return any != 0;
}

struct Candidate {
  float value;
  std::int64_t index;  // raster index y * W + x
};

// Network outputs can be <= 0 (linear head); the floor keeps the logarithm finite.
inline double log_value(float v) {
  constexpr double kFloor = 1e-12;
  return std::log(std::max(static_cast<double>(v), kFloor));
}

// Sub-pixel offset along one axis: a parabola through the logarithms of (previous, centre,
// next) on each of the (up to) three lines through the peak's 3 x 3 neighbourhood, fitted
// jointly (sums of first and second differences, lines in ascending order). The logarithm
// of a Gaussian is a parabola, so this is exact for the training targets; using three lines
// instead of one averages noise (oracle benchmark: AP 0.844 -> 0.869 with noise, unchanged
// on perfect heatmaps). logs[line][position]; `lines` says which lines exist.
double log_parabola_offset(const double logs[3][3], const bool lines[3]) {
  double slope = 0.0;
  double curvature = 0.0;
  for (int i = 0; i < 3; ++i) {
    if (!lines[i]) continue;
    slope += logs[i][0] - logs[i][2];
    curvature += (logs[i][0] - logs[i][1]) + (logs[i][2] - logs[i][1]);
  }
  if (!(curvature < 0.0)) return 0.0;  // flat: no preferred direction
  const double offset = 0.5 * slope / curvature;
  return std::min(0.5, std::max(-0.5, offset));
}

}  // namespace

void find_peaks(const HeatmapView& hm, const DecodeParams& params, Peaks* out) {
  out->clear();
  const int h = hm.height;
  const int w = hm.width;
  const float threshold = static_cast<float>(params.peak_threshold);
  std::vector<Candidate> candidates;  // one buffer per call, reused across channels
  for (int k = 0; k < kNumKeypoints; ++k) {
    out->offsets[k] = out->size();
    const float* map = hm.channel(kKeypointChannelOffset + k);  // (H, W)
    candidates.clear();
    for (int y = 0; y < h; ++y) {
      const float* row = map + static_cast<std::int64_t>(y) * w;
      const float* above = y > 0 ? row - w : nullptr;
      const float* below = y + 1 < h ? row + w : nullptr;
      for (int chunk = 0; chunk < w; chunk += kChunk) {
        const int chunk_end = std::min(w, chunk + kChunk);
        // Most cells are below the threshold: test a chunk at once with a branch-free loop
        // the compiler vectorises (NaN compares false; +Inf is handled below). Skipping is
        // only valid for a positive threshold, since non-finite values count as 0.
        if (threshold > 0.0f && !any_at_least(row + chunk, chunk_end - chunk, threshold)) continue;
        for (int x = chunk; x < chunk_end; ++x) {
          const float v = finite_or_zero(row[x]);
          if (!(v >= threshold)) continue;
          // Earlier neighbours (row above, left) must be strictly lower, later ones not
          // higher: a plateau yields only its first cell in raster order. Left and right
          // are tested first: they reject most cells of a blob, cheaply.
          if (x > 0 && !(v > finite_or_zero(row[x - 1]))) continue;
          if (x + 1 < w && !(v >= finite_or_zero(row[x + 1]))) continue;
          bool peak = true;
          if (above) {
            for (int dx = -1; dx <= 1 && peak; ++dx) {
              const int nx = x + dx;
              if (nx >= 0 && nx < w) peak = v > finite_or_zero(above[nx]);
            }
          }
          if (peak && below) {
            for (int dx = -1; dx <= 1 && peak; ++dx) {
              const int nx = x + dx;
              if (nx >= 0 && nx < w) peak = v >= finite_or_zero(below[nx]);
            }
          }
          if (peak) candidates.push_back({v, static_cast<std::int64_t>(y) * w + x});
        }
      }
    }
    // Highest first, ties by raster index; keep at most max_peaks.
    const auto higher = [](const Candidate& a, const Candidate& b) {
      return a.value != b.value ? a.value > b.value : a.index < b.index;
    };
    const std::size_t keep = std::min<std::size_t>(candidates.size(), params.max_peaks);
    std::partial_sort(candidates.begin(), candidates.begin() + keep, candidates.end(), higher);
    for (std::size_t i = 0; i < keep; ++i) {
      const int y = static_cast<int>(candidates[i].index / w);
      const int x = static_cast<int>(candidates[i].index % w);
      double ox = 0.0;
      double oy = 0.0;
      const bool refine_x = params.refine && x > 0 && x + 1 < w;
      const bool refine_y = params.refine && y > 0 && y + 1 < h;
      if (refine_x || refine_y) {
        // Log values of the 3 x 3 neighbourhood, computed once for both axes; by_row[r][c]
        // holds row y + r - 1, column x + c - 1 (cells outside the grid are never read).
        const bool rows[3] = {y > 0, true, y + 1 < h};
        const bool columns[3] = {x > 0, true, x + 1 < w};
        double by_row[3][3] = {};
        double by_column[3][3] = {};
        for (int r = 0; r < 3; ++r) {
          for (int c = 0; c < 3; ++c) {
            if (!rows[r] || !columns[c]) continue;
            const float v = map[static_cast<std::int64_t>(y + r - 1) * w + (x + c - 1)];
            by_row[r][c] = by_column[c][r] = log_value(finite_or_zero(v));
          }
        }
        if (refine_x) ox = log_parabola_offset(by_row, rows);
        if (refine_y) oy = log_parabola_offset(by_column, columns);
      }
      out->x.push_back(x + ox);
      out->y.push_back(y + oy);
      out->score.push_back(candidates[i].value);
    }
  }
  out->offsets[kNumKeypoints] = out->size();
}

}  // namespace simplepose
