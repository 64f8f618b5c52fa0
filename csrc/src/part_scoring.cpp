#include "simplepose/part_scoring.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <numeric>
#include <vector>

#include "common.hpp"

namespace simplepose {

namespace {

using detail::finite_or_zero;

constexpr double kMinLength = 1e-6;  // grid cells; shorter pairs are skipped (zero length)

struct Candidate {
  double rank;
  double score;
  int a;  // local index among peaks of type `from`
  int b;  // local index among peaks of type `to`
};

// Bilinear sample of one (H, W) map at grid point (x, y); the point is clamped to the grid.
// The expression order is fixed (and mirrored in reference.py) so both give the same bits.
double bilinear(const float* map, int h, int w, double x, double y) {
  x = std::min(std::max(x, 0.0), static_cast<double>(w - 1));
  y = std::min(std::max(y, 0.0), static_cast<double>(h - 1));
  const int x0 = static_cast<int>(x);  // x, y >= 0 here: truncation is floor
  const int y0 = static_cast<int>(y);
  const int x1 = std::min(x0 + 1, w - 1);
  const int y1 = std::min(y0 + 1, h - 1);
  const double fx = x - x0;
  const double fy = y - y0;
  const float* r0 = map + static_cast<std::int64_t>(y0) * w;
  const float* r1 = map + static_cast<std::int64_t>(y1) * w;
  const double top = (1.0 - fx) * r0[x0] + fx * r0[x1];
  const double bottom = (1.0 - fx) * r1[x0] + fx * r1[x1];
  const double value = (1.0 - fy) * top + fy * bottom;
  // In double, a float32 corner can only make the result non-finite by being non-finite
  // itself (even with weight 0: 0 * Inf is NaN), so one test here replaces four per sample;
  // the rare non-finite case is recomputed with those corners as 0, as the reference does.
  if (std::isfinite(value)) return value;
  const double top0 = (1.0 - fx) * finite_or_zero(r0[x0]) + fx * finite_or_zero(r0[x1]);
  const double bottom0 = (1.0 - fx) * finite_or_zero(r1[x0]) + fx * finite_or_zero(r1[x1]);
  return (1.0 - fy) * top0 + fy * bottom0;
}

// Visiting order of the n samples of a segment for every n in [2, max_samples], flattened:
// order n starts at n (n - 1) / 2. Centre first, then outwards (ties: lower index first): a
// wrong pair's segment crosses background in its middle, while its ends sit on the peaks'
// own limbs, so centre-out rejects after the fewest reads (6.6 vs 7.8 samples per pair for
// a golden-ratio order and more for the natural order, on a 20-person oracle crowd). The
// result does not depend on the order. `fractions` receives t = s / (n - 1) of each visited
// sample s at the same positions (a table, so the inner loop does not divide).
std::vector<int> spread_orders(int max_samples, std::vector<double>* fractions) {
  std::vector<int> orders(static_cast<std::size_t>(max_samples) * (max_samples + 1) / 2, 0);
  fractions->assign(orders.size(), 0.0);
  for (int n = 2; n <= max_samples; ++n) {
    const std::size_t start = static_cast<std::size_t>(n) * (n - 1) / 2;
    int* order = orders.data() + start;
    std::iota(order, order + n, 0);
    std::stable_sort(order, order + n, [n](int p, int q) {
      return std::abs(2 * p - (n - 1)) < std::abs(2 * q - (n - 1));
    });
    double* t = fractions->data() + start;
    for (int i = 0; i < n; ++i) t[i] = static_cast<double>(order[i]) / static_cast<double>(n - 1);
  }
  return orders;
}

}  // namespace

void score_parts(const HeatmapView& hm, const Peaks& peaks, const DecodeParams& params,
                 Connections* out) {
  out->clear();
  const int h = hm.height;
  const int w = hm.width;
  const double stride = params.grid_stride;
  const double prior_height =
      params.prior_height > 0.0 ? params.prior_height : static_cast<double>(h) * stride;
  std::vector<Candidate> candidates;  // buffers reused across parts
  std::vector<char> used_a;
  std::vector<char> used_b;
  std::vector<double> values(params.max_samples);
  std::vector<double> fractions;
  const std::vector<int> orders = spread_orders(params.max_samples, &fractions);
  for (int part = 0; part < kNumParts; ++part) {
    const int from = kParts[part][0];
    const int to = kParts[part][1];
    const int a_begin = peaks.offsets[from];
    const int b_begin = peaks.offsets[to];
    const int num_a = peaks.offsets[from + 1] - a_begin;
    const int num_b = peaks.offsets[to + 1] - b_begin;
    if (num_a == 0 || num_b == 0) continue;
    const float* map = hm.channel(part);  // (H, W)
    candidates.clear();
    for (int i = 0; i < num_a; ++i) {
      const double ax = peaks.x[a_begin + i];
      const double ay = peaks.y[a_begin + i];
      for (int j = 0; j < num_b; ++j) {
        const double dx = peaks.x[b_begin + j] - ax;
        const double dy = peaks.y[b_begin + j] - ay;
        const double length = std::sqrt(dx * dx + dy * dy);  // grid cells
        if (length < kMinLength) continue;
        const double length_px = length * stride;
        const int n = static_cast<int>(std::min(std::max(std::floor(length_px + 1.5), 2.0),
                                                static_cast<double>(params.max_samples)));
        const double needed = params.connect_ratio * n;
        const std::size_t start = static_cast<std::size_t>(n) * (n - 1) / 2;
        const int* order = orders.data() + start;
        const double* fraction = fractions.data() + start;
        int passed = 0;
        bool hopeless = false;
        for (int i_s = 0; i_s < n; ++i_s) {
          const int s = order[i_s];
          const double t = fraction[i_s];
          const double v = bilinear(map, h, w, ax + t * dx, ay + t * dy);
          values[s] = v;
          if (v > params.part_threshold) ++passed;
          // Early exit: even if every remaining sample passed, the ratio rule would fail.
          if (passed + (n - 1 - i_s) < needed) {
            hopeless = true;
            break;
          }
        }
        if (hopeless || !(passed >= needed)) continue;
        double sum = 0.0;  // in sample order, as the reference sums
        for (int s = 0; s < n; ++s) sum += values[s];
        const double prior = std::min(0.5 * prior_height / length_px - 1.0, 0.0);
        const double score = sum / n + prior;
        if (!(score > 0.0)) continue;
        const double rank =
            0.5 * score + 0.25 * peaks.score[a_begin + i] + 0.25 * peaks.score[b_begin + j];
        candidates.push_back({rank, score, i, j});
      }
    }
    // Stable: equal ranks keep (A, B) enumeration order, the documented tie rule.
    std::stable_sort(candidates.begin(), candidates.end(),
                     [](const Candidate& p, const Candidate& q) { return p.rank > q.rank; });
    used_a.assign(num_a, 0);
    used_b.assign(num_b, 0);
    const int limit = std::min(num_a, num_b);
    int kept = 0;
    for (const Candidate& c : candidates) {
      if (kept == limit) break;
      if (used_a[c.a] || used_b[c.b]) continue;
      used_a[c.a] = 1;
      used_b[c.b] = 1;
      out->part.push_back(part);
      out->a.push_back(a_begin + c.a);
      out->b.push_back(b_begin + c.b);
      out->score.push_back(c.score);
      ++kept;
    }
  }
}

}  // namespace simplepose
