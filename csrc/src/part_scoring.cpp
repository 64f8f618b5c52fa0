#include "simplepose/part_scoring.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <numeric>
#include <vector>

#include "common.hpp"

namespace simplepose {

namespace {

using detail::finite_or_zero;

constexpr double kMinLength = 1e-6;  // grid cells; shorter pairs are skipped (zero length)

// A part's support mask (see SupportMask) costs ~1 instruction per grid cell and saves a few
// hundred per rejected pair; it is built when the part has at least one pair per this many
// cells (callgrind on the crowd sweep of benchmarks/bench_grouping.py).
constexpr std::int64_t kCellsPerPair = 512;

// Lazy evaluation (see score_parts) pays when far more pairs pass the support bound than can
// be kept: ranking them by an upper bound costs ~2/5 of evaluating them, and typically only
// 1.5-2 evaluations per kept connection remain (80-person oracle crowd: 13.4 k survivors,
// 2.5 k evaluations). Below this many survivors per possible connection all are evaluated.
constexpr int kLazySurvivorsPerConnection = 4;

// Bilinear sample of one (H, W) map at grid point (x, y); the point is clamped to the grid.
// The expression order is fixed (and mirrored in reference.py) so both give the same bits.
inline double bilinear(const float* map, int h, int w, double x, double y) {
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

// The largest corner of the interpolation cell of bilinear(map, h, w, x, y): a sample is a
// convex combination of its corners, so this bounds it, up to rounding (see
// PartScorer::bound for the margin).
inline float largest_corner(const float* map, int h, int w, double x, double y) {
  x = std::min(std::max(x, 0.0), static_cast<double>(w - 1));
  y = std::min(std::max(y, 0.0), static_cast<double>(h - 1));
  const int x0 = static_cast<int>(x);
  const int y0 = static_cast<int>(y);
  const int x1 = std::min(x0 + 1, w - 1);
  const int y1 = std::min(y0 + 1, h - 1);
  const float* r0 = map + static_cast<std::int64_t>(y0) * w;
  const float* r1 = map + static_cast<std::int64_t>(y1) * w;
  return std::max(std::max(r0[x0], r0[x1]), std::max(r1[x0], r1[x1]));
}

// Whether every value of the (H, W) map lies in [-1, FLT_MAX] (no NaN, no infinity), which
// the lazy bound needs. Branch-free, so the compiler vectorises it.
bool bounded_map(const float* map, std::int64_t size) {
  int bad = 0;
  for (std::int64_t i = 0; i < size; ++i) {
    bad |= static_cast<int>(!(map[i] >= -1.0f)) | static_cast<int>(!(map[i] <= 3.0e38f));
  }
  return bad == 0;
}

// Which interpolation cells of one part map can give a sample above the threshold (> 0).
//
// A bilinear sample is a convex combination of its cell's four corners, so it exceeds the
// threshold only if a corner does (up to rounding: corners are compared with a float `floor`
// a relative 1e-9 below the threshold, far more than the few 2^-53 roundings of bilinear()).
// NaN and +Inf corners are marked (conservatively); -Inf counts as 0 in bilinear(), and 0 is
// below a positive threshold. Byte y * W + x is 1 when the cell whose top-left corner is
// (x, y) (other corners min(x + 1, W - 1), min(y + 1, H - 1), as bilinear() takes them) has
// such a corner. Built with SSE2 compares and packs (~1 instruction per cell).
class SupportMask {
 public:
  void build(const float* map, int h, int w, double threshold) {
    h_ = h;
    w_ = w;
    small_ = static_cast<std::int64_t>(h) * w < (std::int64_t{1} << 31);
    cells_.resize(static_cast<std::size_t>(h) * w);
    row_.resize(static_cast<std::size_t>(w) + 1);
    const float floor = corner_floor(threshold);
    std::uint8_t* row = row_.data();
    for (int y = 0; y < h; ++y) {
      const float* values = map + static_cast<std::int64_t>(y) * w;
      int x = 0;
#if SIMPLEPOSE_SSE2
      const __m128 f = _mm_set1_ps(floor);
      const __m128i one = _mm_set1_epi8(1);
      for (; x + 16 <= w; x += 16) {
        const __m128i a = _mm_castps_si128(_mm_cmpnle_ps(_mm_loadu_ps(values + x), f));
        const __m128i b = _mm_castps_si128(_mm_cmpnle_ps(_mm_loadu_ps(values + x + 4), f));
        const __m128i c = _mm_castps_si128(_mm_cmpnle_ps(_mm_loadu_ps(values + x + 8), f));
        const __m128i d = _mm_castps_si128(_mm_cmpnle_ps(_mm_loadu_ps(values + x + 12), f));
        const __m128i bytes = _mm_packs_epi16(_mm_packs_epi32(a, b), _mm_packs_epi32(c, d));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(row + x), _mm_and_si128(bytes, one));
      }
#endif
      for (; x < w; ++x) row[x] = static_cast<std::uint8_t>(!(values[x] <= floor));
      row[w] = 0;  // past the last column bilinear() takes the column itself
      or_bytes(row, row + 1, cells_.data() + static_cast<std::size_t>(y) * w, w);
    }
    // ... and rows y, y + 1 (the last row takes itself).
    for (int y = 0; y + 1 < h; ++y) {
      std::uint8_t* out = cells_.data() + static_cast<std::size_t>(y) * w;
      or_bytes(out, out + w, out, w);
    }
  }

  // Failing samples of the segment (ax, ay) + t (dx, dy), t = fractions[0..n), counted in
  // that order until more than `allowed` (the count returned then exceeds `allowed`). Both
  // endpoints must be inside the grid: every sample then truncates to the cell bilinear()
  // clamps to (coordinates in (-1, W) truncate like clamped ones). `fractions` must be
  // readable 3 entries past n (padding).
  int failures_inside(double ax, double ay, double dx, double dy, const double* fractions, int n,
                      int allowed) const {
    const std::uint8_t* cells = cells_.data();
    int failures = 0;
#if SIMPLEPOSE_SSE2
    if (small_) {
      // Four samples per step; the cell index y * W + x is formed in double (exact below
      // 2^53) so SSE2 needs no 32-bit multiply.
      const __m128d vax = _mm_set1_pd(ax);
      const __m128d vay = _mm_set1_pd(ay);
      const __m128d vdx = _mm_set1_pd(dx);
      const __m128d vdy = _mm_set1_pd(dy);
      const __m128d vw = _mm_set1_pd(static_cast<double>(w_));
      alignas(16) std::int32_t index[4];
      for (int i = 0; i < n; i += 4) {
        const __m128d t0 = _mm_loadu_pd(fractions + i);
        const __m128d t1 = _mm_loadu_pd(fractions + i + 2);
        const __m128d x0 = truncated(_mm_add_pd(vax, _mm_mul_pd(t0, vdx)));
        const __m128d x1 = truncated(_mm_add_pd(vax, _mm_mul_pd(t1, vdx)));
        const __m128d y0 = truncated(_mm_add_pd(vay, _mm_mul_pd(t0, vdy)));
        const __m128d y1 = truncated(_mm_add_pd(vay, _mm_mul_pd(t1, vdy)));
        const __m128i i0 = _mm_cvttpd_epi32(_mm_add_pd(_mm_mul_pd(y0, vw), x0));
        const __m128i i1 = _mm_cvttpd_epi32(_mm_add_pd(_mm_mul_pd(y1, vw), x1));
        _mm_store_si128(reinterpret_cast<__m128i*>(index), _mm_unpacklo_epi64(i0, i1));
        if (n - i >= 4) {
          failures += (cells[index[0]] == 0) + (cells[index[1]] == 0) + (cells[index[2]] == 0) +
                      (cells[index[3]] == 0);
        } else {
          for (int l = 0; l < n - i; ++l) failures += cells[index[l]] == 0;
        }
        if (failures > allowed) break;
      }
      return failures;
    }
#endif
    for (int i = 0; i < n && failures <= allowed; ++i) {
      const int cx = static_cast<int>(ax + fractions[i] * dx);
      const int cy = static_cast<int>(ay + fractions[i] * dy);
      failures += cells[static_cast<std::size_t>(cy) * w_ + cx] == 0;
    }
    return failures;
  }

  // As failures_inside, for any finite endpoints (samples clamped to the grid first).
  int failures_clamped(double ax, double ay, double dx, double dy, const double* fractions,
                       int n, int allowed) const {
    const double x_max = static_cast<double>(w_ - 1);
    const double y_max = static_cast<double>(h_ - 1);
    int failures = 0;
    for (int i = 0; i < n && failures <= allowed; ++i) {
      const double x = std::min(std::max(ax + fractions[i] * dx, 0.0), x_max);
      const double y = std::min(std::max(ay + fractions[i] * dy, 0.0), y_max);
      const std::size_t cell = static_cast<std::size_t>(static_cast<int>(y)) * w_;
      failures += cells_[cell + static_cast<int>(x)] == 0;
    }
    return failures;
  }

 private:
  // out[i] = a[i] | b[i] for i < n (out may be a).
  static void or_bytes(const std::uint8_t* a, const std::uint8_t* b, std::uint8_t* out, int n) {
    int i = 0;
#if SIMPLEPOSE_SSE2
    for (; i + 16 <= n; i += 16) {
      const __m128i va = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a + i));
      const __m128i vb = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + i));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), _mm_or_si128(va, vb));
    }
#endif
    for (; i < n; ++i) out[i] = a[i] | b[i];
  }

#if SIMPLEPOSE_SSE2
  // Truncation toward zero of two doubles in (-2^31, 2^31), as double.
  static __m128d truncated(__m128d v) { return _mm_cvtepi32_pd(_mm_cvttpd_epi32(v)); }
#endif

  static float corner_floor(double threshold) {
    const double low = threshold - threshold * 1e-9;
    float f = static_cast<float>(low);
    if (static_cast<double>(f) > low) f = std::nextafter(f, -std::numeric_limits<float>::infinity());
    return f;
  }

  int h_ = 0;
  int w_ = 0;
  bool small_ = true;  // H * W < 2^31: cell indices fit in int32
  std::vector<std::uint8_t> cells_;
  std::vector<std::uint8_t> row_;
};

// Sample tables for every n in [2, max_samples], flattened: n's entries start at n (n - 1) / 2.
//
// The visiting order is centre first, then outwards (ties: lower index first): a wrong
// pair's segment crosses background in its middle, while its ends sit on the peaks' own
// limbs, so centre-out rejects after the fewest reads (6.6 vs 7.8 samples per pair for a
// golden-ratio order and more for the natural order, on a 20-person oracle crowd; the same
// holds for the support bound on an 80-person crowd, 9.4 vs 10.9). The result does not
// depend on the order.
struct SampleTables {
  explicit SampleTables(int max_samples, double connect_ratio)
      : max_failures(max_samples + 1, 0) {
    const std::size_t size = static_cast<std::size_t>(max_samples) * (max_samples + 1) / 2;
    order.assign(size, 0);
    fraction.assign(size + 3, 0.0);  // 3 entries of padding (SupportMask::failures_inside)
    for (int n = 2; n <= max_samples; ++n) {
      const std::size_t start = static_cast<std::size_t>(n) * (n - 1) / 2;
      int* o = order.data() + start;
      std::iota(o, o + n, 0);
      std::stable_sort(o, o + n, [n](int p, int q) {
        return std::abs(2 * p - (n - 1)) < std::abs(2 * q - (n - 1));
      });
      for (int i = 0; i < n; ++i) {
        fraction[start + i] = static_cast<double>(o[i]) / static_cast<double>(n - 1);
      }
      // passed >= ratio * n  <=>  failures <= n - ceil(ratio * n)
      max_failures[n] = n - static_cast<int>(std::ceil(connect_ratio * n));
    }
  }

  std::vector<int> order;        // sample index s visited i-th
  std::vector<double> fraction;  // t = s / (n - 1) of the sample visited i-th
  std::vector<int> max_failures;  // by n: failing samples the ratio rule allows
};

// A candidate pair of one part. Ranked pairs are ordered by (key descending, index
// ascending): the stable sort by rank of the reference, when every key is an exact rank.
// Until a pair is evaluated (lazy ranking), key, score and weight hold upper bounds.
struct Pair {
  enum State : std::uint8_t { kUnknown, kAccepted, kRejected };
  double key;     // rank 0.5 score + 0.25 score_A + 0.25 score_B
  double score;   // mean sample value + distance prior
  double weight;  // score * max(score_A, 0) * max(score_B, 0): what exchanges maximise
  int a;          // local index among peaks of type `from`
  int b;          // local index among peaks of type `to`
  State state;
};

// A pair index with the key it was queued with.
struct Queued {
  double key;
  int index;
};

// Whether x comes before y in the ranking order (key descending, index ascending).
inline bool before(const Queued& x, const Queued& y) {
  return x.key > y.key || (x.key == y.key && x.index < y.index);
}

// Scores one part after another; holds the per-call tables and buffers (grown, never shrunk,
// so a call allocates only while its largest part is being seen).
class PartScorer {
 public:
  PartScorer(const HeatmapView& hm, const Peaks& peaks, const DecodeParams& params)
      : hm_(hm),
        peaks_(peaks),
        params_(params),
        tables_(params.max_samples, params.connect_ratio),
        values_(params.max_samples),
        prior_height_(params.prior_height > 0.0 ? params.prior_height
                                                : static_cast<double>(hm.height) * params.grid_stride) {
    // Peaks inside the grid: the support test can skip the clamp (failures_inside). Peaks
    // from find_peaks always are; peaks given through the bindings may not be.
    const double x_max = static_cast<double>(hm.width - 1);
    const double y_max = static_cast<double>(hm.height - 1);
    inside_.resize(peaks.size());
    for (int p = 0; p < peaks.size(); ++p) {
      inside_[p] = peaks.x[p] >= 0.0 && peaks.x[p] <= x_max && peaks.y[p] >= 0.0 &&
                   peaks.y[p] <= y_max;
    }
  }

  void score_part(int part, Connections* out);

 private:
  int sample_count(double length_px) const {
    // clamp(floor(length_px + 1.5), 2, max_samples) without calling floor: truncation is
    // floor for positive values, and floor(v) >= m <=> v >= m for an integer m.
    const double reach = length_px + 1.5;
    return reach >= params_.max_samples ? params_.max_samples
                                        : std::max(static_cast<int>(reach), 2);
  }
  // The rank and the weight of pair (a, b) with the given score.
  void set_score(Pair* pair, double score) const {
    const double score_a = peaks_.score[a_begin_ + pair->a];
    const double score_b = peaks_.score[b_begin_ + pair->b];
    pair->score = score;
    pair->key = 0.5 * score + 0.25 * score_a + 0.25 * score_b;
    pair->weight = score * std::max(score_a, 0.0) * std::max(score_b, 0.0);
  }
  // Samples pair (a, b) (centre-out, stopping once the ratio rule fails) and fills its state,
  // score, weight and key. Returns whether it was accepted.
  bool evaluate(Pair* pair);
  // Sets pair's key, score and weight to upper bounds of what evaluate() would give (or
  // rejects it when its score cannot be positive).
  void bound(Pair* pair) const;
  void greedy();
  void exchange();
  bool accepted(int index) {
    Pair& p = pairs_[index];
    if (p.state == Pair::kUnknown) evaluate(&p);
    return p.state == Pair::kAccepted;
  }

  const HeatmapView& hm_;
  const Peaks& peaks_;
  const DecodeParams& params_;
  const SampleTables tables_;
  std::vector<double> values_;
  const double prior_height_;
  std::vector<char> inside_;

  // The part being scored.
  const float* map_ = nullptr;
  int a_begin_ = 0;
  int b_begin_ = 0;
  int num_a_ = 0;
  int num_b_ = 0;
  SupportMask support_;
  std::vector<Pair> pairs_;      // in (A, B) order: the index breaks rank ties
  std::vector<Queued> order_;    // pairs by their key when the greedy starts
  std::vector<Queued> pending_;  // heap of pairs evaluated during the greedy (exact keys)
  std::vector<int> kept_;        // pair indices, greedy order
  std::vector<char> used_a_;
  std::vector<char> used_b_;
  std::vector<int> row_count_;   // pairs not rejected, per A
  std::vector<int> col_count_;   // pairs not rejected, per B
  std::vector<int> flexible_;    // positions in kept_ that can take part in an exchange
  std::vector<int> pair_index_;  // (A, B) -> index in pairs_ or -1
};

bool PartScorer::evaluate(Pair* pair) {
  const double ax = peaks_.x[a_begin_ + pair->a];
  const double ay = peaks_.y[a_begin_ + pair->a];
  const double dx = peaks_.x[b_begin_ + pair->b] - ax;
  const double dy = peaks_.y[b_begin_ + pair->b] - ay;
  const double length_px = std::sqrt(dx * dx + dy * dy) * params_.grid_stride;
  const int n = sample_count(length_px);
  const int allowed = tables_.max_failures[n];
  const std::size_t start = static_cast<std::size_t>(n) * (n - 1) / 2;
  const int* order = tables_.order.data() + start;
  const double* fraction = tables_.fraction.data() + start;
  const int h = hm_.height;
  const int w = hm_.width;
  int failures = 0;
  for (int i = 0; i < n && failures <= allowed; ++i) {
    const double t = fraction[i];
    const double v = bilinear(map_, h, w, ax + t * dx, ay + t * dy);
    values_[order[i]] = v;
    failures += !(v > params_.part_threshold);
  }
  pair->state = Pair::kRejected;
  if (failures > allowed) return false;
  double sum = 0.0;  // in sample order, as the reference sums
  for (int s = 0; s < n; ++s) sum += values_[s];
  const double prior = std::min(0.5 * prior_height_ / length_px - 1.0, 0.0);
  const double score = sum / n + prior;
  if (!(score > 0.0)) return false;
  pair->state = Pair::kAccepted;
  set_score(pair, score);
  return true;
}

void PartScorer::bound(Pair* pair) const {
  const double ax = peaks_.x[a_begin_ + pair->a];
  const double ay = peaks_.y[a_begin_ + pair->a];
  const double dx = peaks_.x[b_begin_ + pair->b] - ax;
  const double dy = peaks_.y[b_begin_ + pair->b] - ay;
  const double length_px = std::sqrt(dx * dx + dy * dy) * params_.grid_stride;
  const int n = sample_count(length_px);
  const double* fraction = tables_.fraction.data() + static_cast<std::size_t>(n) * (n - 1) / 2;
  double sum = 0.0;
  double magnitude = 0.0;
  for (int i = 0; i < n; ++i) {
    const double top = largest_corner(map_, hm_.height, hm_.width, ax + fraction[i] * dx,
                                      ay + fraction[i] * dy);
    sum += top;
    magnitude += std::max(std::abs(top), 1.0);
  }
  // Corners lie in [-1, 3e38] (bounded_map), so every corner, every sample and every partial
  // sum of evaluate() is within a few 2^-53 relative of `magnitude`: the margin covers the
  // rounding many times over. From there, the same operations as evaluate(); each is
  // monotone (the weight's factors are >= 0), so a larger sum gives larger or equal results.
  sum += 1e-9 * magnitude;
  const double prior = std::min(0.5 * prior_height_ / length_px - 1.0, 0.0);
  const double score = sum / n + prior;
  if (!(score > 0.0)) {
    pair->state = Pair::kRejected;
    return;
  }
  set_score(pair, score);
}

// The greedy one-to-one matching over pairs_ in (key descending, index ascending) order. A
// pair reached with a bound is evaluated when both its endpoints are still free and queued
// again with its exact rank (or dropped); an exact pair taken comes before every pair left,
// whose exact rank is at most its key, so exact pairs are taken in the reference's order.
// A pair reached with a bound whose endpoint is taken would be skipped by the reference too
// (the pair that took it came first), so it is never evaluated. Keys are never NaN.
void PartScorer::greedy() {
  order_.clear();
  for (int i = 0; i < static_cast<int>(pairs_.size()); ++i) {
    if (pairs_[i].state != Pair::kRejected) order_.push_back({pairs_[i].key, i});
  }
  std::sort(order_.begin(), order_.end(), before);
  // A max-heap of pending_ by the same order: "less" is "comes after".
  const auto after = [](const Queued& x, const Queued& y) { return before(y, x); };
  pending_.clear();
  used_a_.assign(num_a_, 0);
  used_b_.assign(num_b_, 0);
  kept_.clear();
  const int limit = std::min(num_a_, num_b_);
  std::size_t next = 0;
  while (static_cast<int>(kept_.size()) < limit) {
    int i;
    if (next < order_.size() && (pending_.empty() || before(order_[next], pending_.front()))) {
      i = order_[next++].index;
    } else if (!pending_.empty()) {
      std::pop_heap(pending_.begin(), pending_.end(), after);
      i = pending_.back().index;
      pending_.pop_back();
    } else {
      break;
    }
    Pair& p = pairs_[i];
    if (used_a_[p.a] || used_b_[p.b]) continue;
    if (p.state == Pair::kUnknown) {
      if (evaluate(&p)) {
        pending_.push_back({p.key, i});
        std::push_heap(pending_.begin(), pending_.end(), after);
      }
      continue;
    }
    used_a_[p.a] = 1;
    used_b_[p.b] = 1;
    kept_.push_back(i);
  }
}

// The exchange passes (see part_scoring.hpp) on kept_. An exchange of positions i and j needs
// accepted pairs (A_i, B_j) and (A_j, B_i), so only positions whose A and whose B have
// another pair that is not known to be rejected can take part; the loop runs over those
// positions only, in the same i < j order, which gives the same result. Crossed pairs not yet
// evaluated are evaluated when first needed.
void PartScorer::exchange() {
  row_count_.assign(num_a_, 0);
  col_count_.assign(num_b_, 0);
  for (const Pair& p : pairs_) {
    if (p.state == Pair::kRejected) continue;
    ++row_count_[p.a];
    ++col_count_[p.b];
  }
  flexible_.clear();
  for (int i = 0; i < static_cast<int>(kept_.size()); ++i) {
    const Pair& p = pairs_[kept_[i]];
    if (row_count_[p.a] >= 2 && col_count_[p.b] >= 2) flexible_.push_back(i);
  }
  const int num_flexible = static_cast<int>(flexible_.size());
  if (num_flexible < 2) return;
  pair_index_.assign(static_cast<std::size_t>(num_a_) * num_b_, -1);
  for (int i = 0; i < static_cast<int>(pairs_.size()); ++i) {
    if (pairs_[i].state == Pair::kRejected) continue;
    pair_index_[static_cast<std::size_t>(pairs_[i].a) * num_b_ + pairs_[i].b] = i;
  }
  int* kept = kept_.data();
  const int* index = pair_index_.data();
  const int max_passes = static_cast<int>(kept_.size());
  for (int pass = 0; pass < max_passes; ++pass) {
    bool changed = false;
    for (int fi = 0; fi < num_flexible; ++fi) {
      const int i = flexible_[fi];
      for (int fj = fi + 1; fj < num_flexible; ++fj) {
        const int j = flexible_[fj];
        const int ij = index[static_cast<std::size_t>(pairs_[kept[i]].a) * num_b_ + pairs_[kept[j]].b];
        if (ij < 0) continue;
        const int ji = index[static_cast<std::size_t>(pairs_[kept[j]].a) * num_b_ + pairs_[kept[i]].b];
        if (ji < 0) continue;
        // Kept pairs are exact; a crossed pair not evaluated yet holds an upper bound of its
        // weight, so a failing test here fails for the exact weights too.
        const double kept_weight = pairs_[kept[i]].weight + pairs_[kept[j]].weight;
        if (!(pairs_[ij].weight + pairs_[ji].weight > kept_weight)) continue;
        if (!accepted(ij) || !accepted(ji)) continue;
        if (pairs_[ij].weight + pairs_[ji].weight > kept_weight) {
          kept[i] = ij;
          kept[j] = ji;
          changed = true;
        }
      }
    }
    if (!changed) break;
  }
  // Back to rank order, stably (insertion sort: nearly sorted, and it does not allocate).
  for (int i = 1; i < static_cast<int>(kept_.size()); ++i) {
    const int moving = kept[i];
    int j = i;
    for (; j > 0 && pairs_[kept[j - 1]].key < pairs_[moving].key; --j) kept[j] = kept[j - 1];
    kept[j] = moving;
  }
}

void PartScorer::score_part(int part, Connections* out) {
  const int from = kParts[part][0];
  const int to = kParts[part][1];
  a_begin_ = peaks_.offsets[from];
  b_begin_ = peaks_.offsets[to];
  num_a_ = peaks_.offsets[from + 1] - a_begin_;
  num_b_ = peaks_.offsets[to + 1] - b_begin_;
  if (num_a_ == 0 || num_b_ == 0) return;
  map_ = hm_.channel(part);  // (H, W)
  const int h = hm_.height;
  const int w = hm_.width;
  // The support bound needs a positive threshold (non-finite corners count as 0, which
  // must fail) and pays only with enough pairs.
  const bool masked = params_.part_threshold > 0.0 &&
                      static_cast<std::int64_t>(num_a_) * num_b_ * kCellsPerPair >=
                          static_cast<std::int64_t>(h) * w;
  if (masked) support_.build(map_, h, w, params_.part_threshold);
  pairs_.clear();
  for (int i = 0; i < num_a_; ++i) {
    const double ax = peaks_.x[a_begin_ + i];
    const double ay = peaks_.y[a_begin_ + i];
    const bool a_inside = inside_[a_begin_ + i];
    for (int j = 0; j < num_b_; ++j) {
      const double dx = peaks_.x[b_begin_ + j] - ax;
      const double dy = peaks_.y[b_begin_ + j] - ay;
      const double length = std::sqrt(dx * dx + dy * dy);  // grid cells
      if (length < kMinLength) continue;
      Pair pair{0.0, 0.0, 0.0, i, j, Pair::kUnknown};
      if (!masked) {
        if (evaluate(&pair)) pairs_.push_back(pair);
        continue;
      }
      // Upper bound on the passing samples first: a sample whose interpolation cell has no
      // supporting corner fails; one byte read instead of four floats.
      const int n = sample_count(length * params_.grid_stride);
      const int allowed = tables_.max_failures[n];
      const double* fraction = tables_.fraction.data() + static_cast<std::size_t>(n) * (n - 1) / 2;
      const int failures = a_inside && inside_[b_begin_ + j]
                               ? support_.failures_inside(ax, ay, dx, dy, fraction, n, allowed)
                               : support_.failures_clamped(ax, ay, dx, dy, fraction, n, allowed);
      if (failures <= allowed) pairs_.push_back(pair);
    }
  }
  if (masked) {
    const bool lazy = static_cast<std::int64_t>(pairs_.size()) >
                          static_cast<std::int64_t>(kLazySurvivorsPerConnection) *
                              std::min(num_a_, num_b_) &&
                      bounded_map(map_, static_cast<std::int64_t>(h) * w);
    for (Pair& p : pairs_) {
      if (lazy) {
        bound(&p);
      } else {
        evaluate(&p);
      }
    }
  }
  greedy();
  // An exchange needs two accepted pairs besides the two kept ones.
  if (params_.exchange_partners && pairs_.size() >= kept_.size() + 2) exchange();
  for (int i : kept_) {
    out->part.push_back(part);
    out->a.push_back(a_begin_ + pairs_[i].a);
    out->b.push_back(b_begin_ + pairs_[i].b);
    out->score.push_back(pairs_[i].score);
  }
}

}  // namespace

void score_parts(const HeatmapView& hm, const Peaks& peaks, const DecodeParams& params,
                 Connections* out) {
  out->clear();
  PartScorer scorer(hm, peaks, params);
  for (int part = 0; part < kNumParts; ++part) scorer.score_part(part, out);
}

}  // namespace simplepose
