#include "simplepose/peaks.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "common.hpp"

namespace simplepose {

namespace {

using detail::finite_or_zero;

using detail::lowest_bit;
using detail::mask_at_least;

constexpr int kChunk = 32;  // cells tested at once in the threshold scan (bits of a mask)

// Clears the bits of `mask` (bit i: cell chunk + i of `row`, i < n) whose cell is not above
// its left neighbour and at least its right one (values as finite_or_zero; threshold > 0),
// four interior cells per step with SSE2. Inside a blob most cells fail this, so the exact
// test below sees about one cell per blob row. Border groups keep their bits.
inline std::uint32_t horizontal_maxima(const float* row, int chunk, int n, int w,
                                       std::uint32_t mask) {
#if SIMPLEPOSE_SSE2
  const __m128 largest = _mm_set1_ps(std::numeric_limits<float>::max());
  // NaN and +Inf -> 0 (-Inf stays, which compares as 0 does against a value above 0).
  const auto finite = [largest](__m128 v) { return _mm_and_ps(v, _mm_cmple_ps(v, largest)); };
  for (int g = 0; g < n; g += 4) {
    const std::uint32_t bits = (mask >> g) & 0xFu;
    const int x = chunk + g;
    if (bits == 0 || x < 1 || x + 4 >= w) continue;
    const __m128 v = finite(_mm_loadu_ps(row + x));
    const __m128 left = finite(_mm_loadu_ps(row + x - 1));
    const __m128 right = finite(_mm_loadu_ps(row + x + 1));
    const auto keep = static_cast<std::uint32_t>(
        _mm_movemask_ps(_mm_and_ps(_mm_cmpgt_ps(v, left), _mm_cmpge_ps(v, right))));
    mask &= ~((bits & ~keep) << g);
  }
#else
  (void)row;
  (void)chunk;
  (void)n;
  (void)w;
#endif
  return mask;
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
        const int chunk_size = std::min(w - chunk, kChunk);
        // Most cells are below the threshold: only the chunk's cells >= threshold are
        // visited (+Inf among them, counted as 0 below). Skipping needs a positive threshold,
        // since non-finite values count as 0.
        std::uint32_t todo = ~std::uint32_t{0} >> (32 - chunk_size);
        if (threshold > 0.0f) {
          todo = mask_at_least(row + chunk, chunk_size, threshold);
          if (todo != 0) todo = horizontal_maxima(row, chunk, chunk_size, w, todo);
        }
        while (todo != 0) {
          const int x = chunk + lowest_bit(todo);
          todo &= todo - 1;
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
