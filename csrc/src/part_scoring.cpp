#include "simplepose/part_scoring.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <numeric>
#include <vector>

#include "common.hpp"

// AVX2 kernels (gathers, four doubles per instruction) for x86 CPUs that have it, chosen at
// run time; every other build and CPU takes the SSE2 / scalar code. Both give the same bits.
#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#include <immintrin.h>
#define SIMPLEPOSE_AVX2 1
#define SIMPLEPOSE_TARGET_AVX2 __attribute__((target("avx2,popcnt")))
#else
#define SIMPLEPOSE_AVX2 0
#endif

namespace simplepose {

namespace {

using detail::finite_or_zero;

constexpr double kMinLength = 1e-6;  // grid cells; shorter pairs are skipped (zero length)

// A part's support mask (see SupportMask) costs ~1 instruction per grid cell and saves a few
// hundred per rejected pair; it is built when the part has at least one pair per this many
// cells (callgrind on the crowd sweep of benchmarks/bench_grouping.py).
constexpr std::int64_t kCellsPerPair = 512;

// Lazy ranking (see part_scoring.hpp) pays when far more pairs pass the support bound than
// can be kept: bounding a pair's rank reads one float per sample, and only ~1.5-2 pairs per
// kept connection are then sampled in full (80-person oracle crowd: 13.4 k pairs past the
// bound, 3.8 k sampled). With fewer survivors per possible connection, all are sampled
// (2, 4 and 8 here measured within noise of each other on the crowd sweep).
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

// The largest corner of every interpolation cell: out[y * W + x] = max of the corners (x or
// min(x + 1, W - 1), y or min(y + 1, H - 1)) that bilinear() reads for a sample in that cell,
// so it bounds the sample (a convex combination of them) up to rounding (see
// PartScorer::bound for the margin). The map must be bounded_map(); SSE2, four cells per
// instruction.
void build_block_max(const float* map, int h, int w, float* out) {
  for (int y = 0; y < h; ++y) {
    const float* v = map + static_cast<std::int64_t>(y) * w;
    float* o = out + static_cast<std::int64_t>(y) * w;
    int x = 0;
#if SIMPLEPOSE_SSE2
    for (; x + 5 <= w; x += 4) {
      _mm_storeu_ps(o + x, _mm_max_ps(_mm_loadu_ps(v + x), _mm_loadu_ps(v + x + 1)));
    }
#endif
    for (; x + 1 < w; ++x) o[x] = std::max(v[x], v[x + 1]);
    o[w - 1] = v[w - 1];
  }
  for (int y = 0; y + 1 < h; ++y) {
    float* o = out + static_cast<std::int64_t>(y) * w;
    const float* next = o + w;
    int x = 0;
#if SIMPLEPOSE_SSE2
    for (; x + 4 <= w; x += 4) {
      _mm_storeu_ps(o + x, _mm_max_ps(_mm_loadu_ps(o + x), _mm_loadu_ps(next + x)));
    }
#endif
    for (; x < w; ++x) o[x] = std::max(o[x], next[x]);
  }
}

// block_max[cell of bilinear(x, y)] (same clamping and truncation).
inline float block_bound(const float* block_max, int h, int w, double x, double y) {
  x = std::min(std::max(x, 0.0), static_cast<double>(w - 1));
  y = std::min(std::max(y, 0.0), static_cast<double>(h - 1));
  return block_max[static_cast<std::int64_t>(static_cast<int>(y)) * w + static_cast<int>(x)];
}

// Whether every value of the (H, W) map lies in [-1, 3e38] (no NaN, no infinity), which the
// lazy bound needs.
bool bounded_map(const float* map, std::int64_t size) {
  std::int64_t i = 0;
#if SIMPLEPOSE_SSE2
  const __m128 low = _mm_set1_ps(-1.0f);
  __m128 bad = _mm_setzero_ps();
  __m128 largest = low;
  for (; i + 4 <= size; i += 4) {
    const __m128 v = _mm_loadu_ps(map + i);
    bad = _mm_or_ps(bad, _mm_cmpnge_ps(v, low));  // below -1, or NaN
    largest = _mm_max_ps(largest, v);
  }
  if (_mm_movemask_ps(_mm_or_ps(bad, _mm_cmpnle_ps(largest, _mm_set1_ps(3.0e38f)))) != 0) {
    return false;
  }
#endif
  for (; i < size; ++i) {
    if (!(map[i] >= -1.0f && map[i] <= 3.0e38f)) return false;
  }
  return true;
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
    cells_.resize(static_cast<std::size_t>(h) * w + 3);  // 3 bytes of padding (passes_avx2)
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
  // readable 1 entry past n (padding).
  int failures_inside(double ax, double ay, double dx, double dy, const double* fractions, int n,
                      int allowed) const {
    const std::uint8_t* cells = cells_.data();
    int failures = 0;
#if SIMPLEPOSE_SSE2
    if (small_) {
      // Two samples per step (SSE2 holds two doubles); the cell index y * W + x is formed in
      // double (exact below 2^53), so no 32-bit multiply is needed. The count is checked
      // once allowed + 1 samples are in, then after every step.
      const __m128d vax = _mm_set1_pd(ax);
      const __m128d vay = _mm_set1_pd(ay);
      const __m128d vdx = _mm_set1_pd(dx);
      const __m128d vdy = _mm_set1_pd(dy);
      const __m128d vw = _mm_set1_pd(static_cast<double>(w_));
      for (int i = 0; i < n; i += 2) {
        const __m128d t = _mm_loadu_pd(fractions + i);
        const __m128d x = truncated(_mm_add_pd(vax, _mm_mul_pd(t, vdx)));
        const __m128d y = truncated(_mm_add_pd(vay, _mm_mul_pd(t, vdy)));
        const __m128i index = _mm_cvttpd_epi32(_mm_add_pd(_mm_mul_pd(y, vw), x));
        failures += cells[_mm_cvtsi128_si32(index)] == 0;
        if (i + 1 < n) failures += cells[_mm_cvtsi128_si32(_mm_shuffle_epi32(index, 1))] == 0;
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

  const std::uint8_t* cells() const { return cells_.data(); }
  bool small() const { return small_; }

  // As failures_inside, for any finite endpoints (samples clamped to the grid first).
  int failures_clamped(double ax, double ay, double dx, double dy, const double* fractions, int n,
                       int allowed) const {
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
    if (static_cast<double>(f) > low)
      f = std::nextafter(f, -std::numeric_limits<float>::infinity());
    return f;
  }

  int h_ = 0;
  int w_ = 0;
  bool small_ = true;  // H * W < 2^31: cell indices fit in int32
  std::vector<std::uint8_t> cells_;
  std::vector<std::uint8_t> row_;
};

#if SIMPLEPOSE_AVX2
// Whether the AVX2 kernels may run: the CPU (and OS) support AVX2, and SIMPLEPOSE_NO_AVX2 is
// not set (a switch for tests, which compare both paths; results never depend on it).
bool use_avx2() {
  const char* off = std::getenv("SIMPLEPOSE_NO_AVX2");
  return __builtin_cpu_supports("avx2") && !(off != nullptr && off[0] != '\0' && off[0] != '0');
}

// Failing samples among the eight samples first..first + 7 of the segment (ax, ay) + t (dx, dy)
// (t = fractions of its n, lanes past n not counted): cell indices by 32-bit multiply, the
// mask bytes by one gather (4-byte reads: the mask has 3 bytes of padding).
SIMPLEPOSE_TARGET_AVX2 inline int failures8_avx2(const int* cells, __m256i vw, __m256d vax,
                                                 __m256d vay, double dx, double dy, const double* t,
                                                 int first, int n) {
  const __m256d vdx = _mm256_set1_pd(dx);
  const __m256d vdy = _mm256_set1_pd(dy);
  const __m256d t0 = _mm256_loadu_pd(t + first);
  const __m256d t1 = _mm256_loadu_pd(t + first + 4);
  const __m256i x =
      _mm256_set_m128i(_mm256_cvttpd_epi32(_mm256_add_pd(vax, _mm256_mul_pd(t1, vdx))),
                       _mm256_cvttpd_epi32(_mm256_add_pd(vax, _mm256_mul_pd(t0, vdx))));
  const __m256i y =
      _mm256_set_m128i(_mm256_cvttpd_epi32(_mm256_add_pd(vay, _mm256_mul_pd(t1, vdy))),
                       _mm256_cvttpd_epi32(_mm256_add_pd(vay, _mm256_mul_pd(t0, vdy))));
  const __m256i index = _mm256_add_epi32(_mm256_mullo_epi32(y, vw), x);
  const __m256i bytes =
      _mm256_and_si256(_mm256_i32gather_epi32(cells, index, 1), _mm256_set1_epi32(0xFF));
  const auto fail = static_cast<unsigned>(
      _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(bytes, _mm256_setzero_si256()))));
  const unsigned valid = n - first >= 8 ? 0xFFu : (1u << (n - first)) - 1u;
  return __builtin_popcount(fail & valid);
}

// SupportMask::failures_inside for the pairs (A, B_j) of one A, j < count, with ns[j] > 0
// (ns[j] = 0: skipped): pass[j] = 1 when at most allowed[ns[j]] of its samples fail. Breadth
// first: every pair's first eight samples, then the next eight of the pairs still open, and
// so on, with no branch on the data inside a round, so the gathers of successive pairs
// overlap instead of waiting on the previous pair's verdict. `fractions` must be readable 7
// entries past each table; failures, open: scratch of `count` ints.
SIMPLEPOSE_TARGET_AVX2 void passes_avx2(const std::uint8_t* cells, int w, double ax, double ay,
                                        const double* dxs, const double* dys, const int* ns,
                                        int count, const double* fractions, const int* allowed,
                                        int* failures, int* open, std::uint8_t* pass) {
  const __m256d vax = _mm256_set1_pd(ax);
  const __m256d vay = _mm256_set1_pd(ay);
  const __m256i vw = _mm256_set1_epi32(w);
  const int* base = reinterpret_cast<const int*>(cells);
  const auto table = [fractions](int n) {
    return fractions + static_cast<std::size_t>(n) * (n - 1) / 2;
  };
  int num_open = 0;
  for (int j = 0; j < count; ++j) {
    const int n = ns[j];
    if (n == 0) continue;
    const int f = failures8_avx2(base, vw, vax, vay, dxs[j], dys[j], table(n), 0, n);
    failures[j] = f;
    open[num_open] = j;
    num_open += static_cast<int>(n > 8 && f <= allowed[n]);
  }
  for (int first = 8; num_open > 0; first += 8) {
    int still_open = 0;
    for (int k = 0; k < num_open; ++k) {
      const int j = open[k];
      const int n = ns[j];
      const int f =
          failures[j] + failures8_avx2(base, vw, vax, vay, dxs[j], dys[j], table(n), first, n);
      failures[j] = f;
      open[still_open] = j;
      still_open += static_cast<int>(n > first + 8 && f <= allowed[n]);
    }
    num_open = still_open;
  }
  for (int j = 0; j < count; ++j) {
    if (ns[j] > 0) pass[j] = failures[j] <= allowed[ns[j]];
  }
}

// Four bilinear() samples at once, the same operations in the same order (so the same bits):
// values[k] for the points (ax, ay) + t[k] (dx, dy), k < 4. Corner reads are gathers; a
// non-finite result is left for the caller to recompute (bilinear() does the fallback).
// Needs H * W < 2^31. Returns the mask of non-finite results.
SIMPLEPOSE_TARGET_AVX2 int bilinear4_avx2(const float* map, int h, int w, __m256d vax, __m256d vay,
                                          __m256d vdx, __m256d vdy, const double* t,
                                          double* values) {
  const __m256d zero = _mm256_setzero_pd();
  const __m256d one = _mm256_set1_pd(1.0);
  const __m256d vt = _mm256_loadu_pd(t);
  // std::min(std::max(v, 0.0), v_max): max_pd(0, v) is (0 > v ? 0 : v), min_pd(v_max, v) is
  // (v_max < v ? v_max : v), exactly std::max / std::min's rules (NaN and -0 included).
  const __m256d x = _mm256_min_pd(_mm256_set1_pd(static_cast<double>(w - 1)),
                                  _mm256_max_pd(zero, _mm256_add_pd(vax, _mm256_mul_pd(vt, vdx))));
  const __m256d y = _mm256_min_pd(_mm256_set1_pd(static_cast<double>(h - 1)),
                                  _mm256_max_pd(zero, _mm256_add_pd(vay, _mm256_mul_pd(vt, vdy))));
  const __m128i x0 = _mm256_cvttpd_epi32(x);
  const __m128i y0 = _mm256_cvttpd_epi32(y);
  const __m128i x1 = _mm_min_epi32(_mm_add_epi32(x0, _mm_set1_epi32(1)), _mm_set1_epi32(w - 1));
  const __m128i y1 = _mm_min_epi32(_mm_add_epi32(y0, _mm_set1_epi32(1)), _mm_set1_epi32(h - 1));
  const __m256d fx = _mm256_sub_pd(x, _mm256_cvtepi32_pd(x0));
  const __m256d fy = _mm256_sub_pd(y, _mm256_cvtepi32_pd(y0));
  const __m128i vw = _mm_set1_epi32(w);
  const __m128i row0 = _mm_mullo_epi32(y0, vw);
  const __m128i row1 = _mm_mullo_epi32(y1, vw);
  const __m256d c00 = _mm256_cvtps_pd(_mm_i32gather_ps(map, _mm_add_epi32(row0, x0), 4));
  const __m256d c01 = _mm256_cvtps_pd(_mm_i32gather_ps(map, _mm_add_epi32(row0, x1), 4));
  const __m256d c10 = _mm256_cvtps_pd(_mm_i32gather_ps(map, _mm_add_epi32(row1, x0), 4));
  const __m256d c11 = _mm256_cvtps_pd(_mm_i32gather_ps(map, _mm_add_epi32(row1, x1), 4));
  const __m256d gx = _mm256_sub_pd(one, fx);
  const __m256d top = _mm256_add_pd(_mm256_mul_pd(gx, c00), _mm256_mul_pd(fx, c01));
  const __m256d bottom = _mm256_add_pd(_mm256_mul_pd(gx, c10), _mm256_mul_pd(fx, c11));
  const __m256d value =
      _mm256_add_pd(_mm256_mul_pd(_mm256_sub_pd(one, fy), top), _mm256_mul_pd(fy, bottom));
  _mm256_storeu_pd(values, value);
  // x - x is 0 for finite x, NaN otherwise.
  return _mm256_movemask_pd(_mm256_cmp_pd(_mm256_sub_pd(value, value), zero, _CMP_NEQ_UQ));
}

// The centre-out sampling of PartScorer::evaluate, four samples per step: writes values[s]
// (sample order) for the visited samples and returns the failures counted until more than
// `allowed` or all n. fractions/order: the tables of n, readable 3 entries past n.
SIMPLEPOSE_TARGET_AVX2 int sample_avx2(const float* map, int h, int w, double ax, double ay,
                                       double dx, double dy, const double* fractions,
                                       const int* order, int n, int allowed, double threshold,
                                       double* values) {
  const __m256d vax = _mm256_set1_pd(ax);
  const __m256d vay = _mm256_set1_pd(ay);
  const __m256d vdx = _mm256_set1_pd(dx);
  const __m256d vdy = _mm256_set1_pd(dy);
  alignas(32) double v[4];
  int failures = 0;
  for (int i = 0; i < n && failures <= allowed; i += 4) {
    const int bad = bilinear4_avx2(map, h, w, vax, vay, vdx, vdy, fractions + i, v);
    const int count = std::min(4, n - i);
    for (int k = 0; k < count; ++k) {
      if (bad & (1 << k)) {
        v[k] = bilinear(map, h, w, ax + fractions[i + k] * dx, ay + fractions[i + k] * dy);
      }
      values[order[i + k]] = v[k];
      failures += !(v[k] > threshold);
    }
  }
  return failures;
}

// The cells (truncated clamped coordinates, as bilinear() takes them) of the four points
// (ax, ay) + t[k] (dx, dy).
SIMPLEPOSE_TARGET_AVX2 inline void clamped_cells_avx2(__m256d vax, __m256d vay, __m256d vdx,
                                                      __m256d vdy, __m256d x_max, __m256d y_max,
                                                      const double* t, __m128i* x0, __m128i* y0) {
  const __m256d zero = _mm256_setzero_pd();
  const __m256d vt = _mm256_loadu_pd(t);
  *x0 = _mm256_cvttpd_epi32(
      _mm256_min_pd(x_max, _mm256_max_pd(zero, _mm256_add_pd(vax, _mm256_mul_pd(vt, vdx)))));
  *y0 = _mm256_cvttpd_epi32(
      _mm256_min_pd(y_max, _mm256_max_pd(zero, _mm256_add_pd(vay, _mm256_mul_pd(vt, vdy)))));
}

// Sum over the n points (ax, ay) + t (dx, dy) of block_bound() and of max(|that|, 1), for
// PartScorer::bound (an upper bound with a margin, so any summation order will do); eight
// points per step, one gather each. fractions must be readable 7 entries past n.
SIMPLEPOSE_TARGET_AVX2 void bound_sums_avx2(const float* block_max, int h, int w, double ax,
                                            double ay, double dx, double dy,
                                            const double* fractions, int n, double* sum,
                                            double* magnitude) {
  const __m256d vax = _mm256_set1_pd(ax);
  const __m256d vay = _mm256_set1_pd(ay);
  const __m256d vdx = _mm256_set1_pd(dx);
  const __m256d vdy = _mm256_set1_pd(dy);
  const __m256d zero = _mm256_setzero_pd();
  const __m256d x_max = _mm256_set1_pd(static_cast<double>(w - 1));
  const __m256d y_max = _mm256_set1_pd(static_cast<double>(h - 1));
  const __m256i vw = _mm256_set1_epi32(w);
  const __m256d ones = _mm256_set1_pd(1.0);
  const __m256d sign = _mm256_set1_pd(-0.0);
  const __m256d lane = _mm256_set_pd(3, 2, 1, 0);
  __m256d total = zero;
  __m256d size = zero;
  for (int i = 0; i < n; i += 8) {
    __m128i x0, y0, x1, y1;
    clamped_cells_avx2(vax, vay, vdx, vdy, x_max, y_max, fractions + i, &x0, &y0);
    clamped_cells_avx2(vax, vay, vdx, vdy, x_max, y_max, fractions + i + 4, &x1, &y1);
    const __m256i index = _mm256_add_epi32(_mm256_mullo_epi32(_mm256_set_m128i(y1, y0), vw),
                                           _mm256_set_m128i(x1, x0));
    const __m256 top = _mm256_i32gather_ps(block_max, index, 4);
    for (int half = 0; half < 2; ++half) {
      __m256d b =
          _mm256_cvtps_pd(half == 0 ? _mm256_castps256_ps128(top) : _mm256_extractf128_ps(top, 1));
      // lanes past n count as 0
      const __m256d keep =
          _mm256_cmp_pd(lane, _mm256_set1_pd(static_cast<double>(n - i - 4 * half)), _CMP_LT_OQ);
      b = _mm256_and_pd(b, keep);
      total = _mm256_add_pd(total, b);
      size =
          _mm256_add_pd(size, _mm256_and_pd(_mm256_max_pd(_mm256_andnot_pd(sign, b), ones), keep));
    }
  }
  alignas(32) double a[4];
  alignas(32) double m[4];
  _mm256_store_pd(a, total);
  _mm256_store_pd(m, size);
  *sum = (a[0] + a[1]) + (a[2] + a[3]);
  *magnitude = (m[0] + m[1]) + (m[2] + m[3]);
}
#endif

// dxs[j], dys[j] = B_j - A, lengths[j] = |B_j - A| for j < count (lengths readable and
// writable one entry past count); with SSE2 two pairs per instruction (the same IEEE
// operations: sqrt is correctly rounded either way).
void geometry(double ax, double ay, const double* bx, const double* by, int count, double* dxs,
              double* dys, double* lengths) {
  int j = 0;
#if SIMPLEPOSE_SSE2
  const __m128d vax = _mm_set1_pd(ax);
  const __m128d vay = _mm_set1_pd(ay);
  for (; j + 2 <= count; j += 2) {
    const __m128d dx = _mm_sub_pd(_mm_loadu_pd(bx + j), vax);
    const __m128d dy = _mm_sub_pd(_mm_loadu_pd(by + j), vay);
    _mm_storeu_pd(dxs + j, dx);
    _mm_storeu_pd(dys + j, dy);
    _mm_storeu_pd(lengths + j, _mm_sqrt_pd(_mm_add_pd(_mm_mul_pd(dx, dx), _mm_mul_pd(dy, dy))));
  }
#endif
  for (; j < count; ++j) {
    dxs[j] = bx[j] - ax;
    dys[j] = by[j] - ay;
    lengths[j] = std::sqrt(dxs[j] * dxs[j] + dys[j] * dys[j]);
  }
}

// Sample tables for every n in [2, max_samples], flattened: n's entries start at n (n - 1) / 2.
//
// The visiting order is centre first, then outwards (ties: lower index first): a wrong
// pair's segment crosses background in its middle, while its ends sit on the peaks' own
// limbs, so centre-out rejects after the fewest reads (6.6 vs 7.8 samples per pair for a
// golden-ratio order and more for the natural order, on a 20-person oracle crowd; the same
// holds for the support bound on an 80-person crowd, 9.4 vs 10.9). The result does not
// depend on the order.
struct SampleTables {
  explicit SampleTables(int max_samples, double connect_ratio) : max_failures(max_samples + 1, 0) {
    const std::size_t size = static_cast<std::size_t>(max_samples) * (max_samples + 1) / 2;
    order.assign(size, 0);
    fraction.assign(size + 7, 0.0);  // padding for reads past n (up to 8 at a time)
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

  std::vector<int> order;         // sample index s visited i-th
  std::vector<double> fraction;   // t = s / (n - 1) of the sample visited i-th
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

// The bits of `key` rounded up to a float (so still an upper bound), mapped so that unsigned
// order is float order: negative floats have all bits flipped, others the sign bit. Zero is
// made +0 (-0 and +0 are equal keys). float_of undoes it. Keys are never NaN.
inline std::uint32_t order_bits(double key) {
  float f = static_cast<float>(key);
  if (f == 0.0f) f = 0.0f;
  std::uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  std::uint32_t ordered = (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
  // Rounded down: the next float up (the next ordered code; below +Inf, as f is finite).
  if (static_cast<double>(f) < key) ++ordered;
  // -0 (reached from the largest negative float) is the key 0: give it +0's code.
  return ordered == 0x7FFFFFFFu ? 0x80000000u : ordered;
}

inline float float_of(std::uint32_t ordered) {
  const std::uint32_t bits = (ordered & 0x80000000u) ? (ordered & 0x7FFFFFFFu) : ~ordered;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

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
        prior_height_(params.prior_height > 0.0
                          ? params.prior_height
                          : static_cast<double>(hm.height) * params.grid_stride) {
    // Peaks inside the grid: the support test can skip the clamp (failures_inside). Peaks
    // from find_peaks always are; peaks given through the bindings may not be.
    const double x_max = static_cast<double>(hm.width - 1);
    const double y_max = static_cast<double>(hm.height - 1);
#if SIMPLEPOSE_AVX2
    avx2_ = use_avx2() && static_cast<std::int64_t>(hm.height) * hm.width < (std::int64_t{1} << 31);
#endif
    inside_.resize(peaks.size());
    for (int p = 0; p < peaks.size(); ++p) {
      inside_[p] =
          peaks.x[p] >= 0.0 && peaks.x[p] <= x_max && peaks.y[p] >= 0.0 && peaks.y[p] <= y_max;
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
  // lazy: some keys are bounds (see greedy()).
  void greedy(bool lazy);
  void exchange();
  bool accepted(int index) {
    Pair& p = pairs_[index];
    if (p.state == Pair::kUnknown) evaluate(&p);
    return p.state == Pair::kAccepted;
  }
  // exchange(): pair_weight_ after pair `index` may have been evaluated.
  void refresh_weight(std::size_t cell, int index) {
    const Pair& p = pairs_[index];
    if (p.state == Pair::kAccepted) pair_weight_[cell] = p.weight;
    if (p.state == Pair::kRejected) pair_weight_[cell] = std::numeric_limits<double>::quiet_NaN();
  }

  const HeatmapView& hm_;
  const Peaks& peaks_;
  const DecodeParams& params_;
  const SampleTables tables_;
  std::vector<double> values_;
  const double prior_height_;
  std::vector<char> inside_;
  bool avx2_ = false;  // the AVX2 kernels may run (and cell indices fit in int32)

  // The part being scored.
  const float* map_ = nullptr;
  int a_begin_ = 0;
  int b_begin_ = 0;
  int num_a_ = 0;
  int num_b_ = 0;
  SupportMask support_;
  std::vector<float> block_max_;  // build_block_max() of the part map (lazy parts)
  std::vector<double> dx_;        // (num_b) geometry of one A's pairs
  std::vector<double> dy_;
  std::vector<double> length_;      // grid cells (one entry of padding)
  std::vector<int> n_;              // samples of each pair
  std::vector<std::uint8_t> pass_;  // whether each pair passed the support bound
  std::vector<int> failures_;       // scratch of passes_avx2
  std::vector<int> open_;
  std::vector<Pair> pairs_;           // in (A, B) order: the index breaks rank ties
  std::vector<Queued> order_;         // pairs by their key when the greedy starts
  std::vector<std::uint64_t> codes_;  // packed (key, index) for sorting bounds
  std::vector<Queued> pending_;       // heap of pairs evaluated during the greedy (exact keys)
  std::vector<int> kept_;             // pair indices, greedy order
  std::vector<char> used_a_;
  std::vector<char> used_b_;
  std::vector<int> row_count_;         // pairs not rejected, per A
  std::vector<int> col_count_;         // pairs not rejected, per B
  std::vector<int> flexible_;          // positions in kept_ that can take part in an exchange
  std::vector<int> pair_index_;        // (A, B) -> index in pairs_ or -1
  std::vector<double> pair_weight_;    // (A, B) -> weight of the pair, NaN if none
  std::vector<std::size_t> flex_row_;  // exchange(): table row offset of each flexible A
  std::vector<int> flex_b_;            // exchange(): B of each flexible position
  std::vector<double> flex_weight_;    // exchange(): weight of each flexible kept pair
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
#if SIMPLEPOSE_AVX2
  if (avx2_ && inside_[a_begin_ + pair->a] && inside_[b_begin_ + pair->b]) {
    failures = sample_avx2(map_, h, w, ax, ay, dx, dy, fraction, order, n, allowed,
                           params_.part_threshold, values_.data());
  } else
#endif
  {
    for (int i = 0; i < n && failures <= allowed; ++i) {
      const double t = fraction[i];
      const double v = bilinear(map_, h, w, ax + t * dx, ay + t * dy);
      values_[order[i]] = v;
      failures += !(v > params_.part_threshold);
    }
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
  const float* block_max = block_max_.data();
#if SIMPLEPOSE_AVX2
  if (avx2_ && inside_[a_begin_ + pair->a] && inside_[b_begin_ + pair->b]) {
    bound_sums_avx2(block_max, hm_.height, hm_.width, ax, ay, dx, dy, fraction, n, &sum,
                    &magnitude);
  } else
#endif
  {
    for (int i = 0; i < n; ++i) {
      const double top = block_bound(block_max, hm_.height, hm_.width, ax + fraction[i] * dx,
                                     ay + fraction[i] * dy);
      sum += top;
      magnitude += std::max(std::abs(top), 1.0);
    }
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
void PartScorer::greedy(bool lazy) {
  order_.clear();
  if (lazy) {
    // Bounds may be loosened: each is rounded up to a float, and (float bits, index) packed
    // into one integer whose ascending order is the ranking order, which sorts several
    // times faster than (double, index) pairs.
    codes_.resize(pairs_.size());
    std::size_t count = 0;
    for (int i = 0; i < static_cast<int>(pairs_.size()); ++i) {
      codes_[count] =
          (std::uint64_t{~order_bits(pairs_[i].key)} << 32) | static_cast<std::uint32_t>(i);
      count += pairs_[i].state != Pair::kRejected;
    }
    codes_.resize(count);
    std::sort(codes_.begin(), codes_.end());
    order_.reserve(codes_.size());
    for (const std::uint64_t code : codes_) {
      const auto index = static_cast<int>(code & 0xFFFFFFFFu);
      order_.push_back(
          {static_cast<double>(float_of(~static_cast<std::uint32_t>(code >> 32))), index});
    }
  } else {
    for (int i = 0; i < static_cast<int>(pairs_.size()); ++i) {
      if (pairs_[i].state != Pair::kRejected) order_.push_back({pairs_[i].key, i});
    }
    std::sort(order_.begin(), order_.end(),
              [](const Queued& x, const Queued& y) { return before(x, y); });
  }
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
  // (A, B) -> pair index, and the pair's weight (NaN where there is no pair or it was
  // rejected: every comparison with it fails).
  const std::size_t cells = static_cast<std::size_t>(num_a_) * num_b_;
  pair_index_.assign(cells, -1);
  pair_weight_.assign(cells, std::numeric_limits<double>::quiet_NaN());
  for (int i = 0; i < static_cast<int>(pairs_.size()); ++i) {
    if (pairs_[i].state == Pair::kRejected) continue;
    const std::size_t cell = static_cast<std::size_t>(pairs_[i].a) * num_b_ + pairs_[i].b;
    pair_index_[cell] = i;
    pair_weight_[cell] = pairs_[i].weight;
  }
  int* kept = kept_.data();
  // Per flexible position: the offset of its A's row in those tables, its B (the only one of
  // the two that an exchange changes) and its kept pair's (exact) weight.
  flex_row_.resize(num_flexible);
  flex_b_.resize(num_flexible);
  flex_weight_.resize(num_flexible);
  for (int f = 0; f < num_flexible; ++f) {
    const Pair& p = pairs_[kept[flexible_[f]]];
    flex_row_[f] = static_cast<std::size_t>(p.a) * num_b_;
    flex_b_[f] = p.b;
    flex_weight_[f] = p.weight;
  }
  const double* weight = pair_weight_.data();
  const int max_passes = static_cast<int>(kept_.size());
  for (int pass = 0; pass < max_passes; ++pass) {
    bool changed = false;
    for (int fi = 0; fi < num_flexible; ++fi) {
      const double* row_i = weight + flex_row_[fi];
      for (int fj = fi + 1; fj < num_flexible; ++fj) {
        // Kept pairs are exact; a crossed pair not evaluated yet holds an upper bound of its
        // weight, so a failing test here fails for the exact weights too.
        const double kept_weight = flex_weight_[fi] + flex_weight_[fj];
        if (!(row_i[flex_b_[fj]] + weight[flex_row_[fj] + flex_b_[fi]] > kept_weight)) continue;
        const std::size_t cell_ij = flex_row_[fi] + flex_b_[fj];  // (A_i, B_j)
        const std::size_t cell_ji = flex_row_[fj] + flex_b_[fi];  // (A_j, B_i)
        const int ij = pair_index_[cell_ij];
        const int ji = pair_index_[cell_ji];
        const bool both = accepted(ij) && accepted(ji);
        refresh_weight(cell_ij, ij);
        refresh_weight(cell_ji, ji);
        if (both && pairs_[ij].weight + pairs_[ji].weight > kept_weight) {
          kept[flexible_[fi]] = ij;
          kept[flexible_[fj]] = ji;
          std::swap(flex_b_[fi], flex_b_[fj]);
          flex_weight_[fi] = pairs_[ij].weight;
          flex_weight_[fj] = pairs_[ji].weight;
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
  const bool masked =
      params_.part_threshold > 0.0 && static_cast<std::int64_t>(num_a_) * num_b_ * kCellsPerPair >=
                                          static_cast<std::int64_t>(h) * w;
  if (masked) support_.build(map_, h, w, params_.part_threshold);
  pairs_.clear();
  dx_.resize(num_b_);
  dy_.resize(num_b_);
  length_.resize(num_b_ + 1);
  n_.resize(num_b_);
  pass_.resize(num_b_);
  const double* bx = peaks_.x.data() + b_begin_;
  const double* by = peaks_.y.data() + b_begin_;
  for (int i = 0; i < num_a_; ++i) {
    const double ax = peaks_.x[a_begin_ + i];
    const double ay = peaks_.y[a_begin_ + i];
    const bool a_inside = inside_[a_begin_ + i];
    geometry(ax, ay, bx, by, num_b_, dx_.data(), dy_.data(), length_.data());
    if (!masked) {
      for (int j = 0; j < num_b_; ++j) {
        if (length_[j] < kMinLength) continue;
        Pair pair{0.0, 0.0, 0.0, i, j, Pair::kUnknown};
        if (evaluate(&pair)) pairs_.push_back(pair);
      }
      continue;
    }
    // Upper bound on the passing samples first: a sample whose interpolation cell has no
    // supporting corner fails; one byte read instead of four floats. n_[j]: samples of pair
    // j still to test with the fast kernel (0: skipped or done); pass_[j]: the verdict.
    const double stride = params_.grid_stride;
    const char* b_inside = inside_.data() + b_begin_;
    int outside = 0;  // pairs with an endpoint outside the grid: the clamped test below
    for (int j = 0; j < num_b_; ++j) {
      const bool ok = length_[j] >= kMinLength;
      n_[j] = ok ? sample_count(length_[j] * stride) : 0;
      pass_[j] = 0;
      outside += ok && !(a_inside && b_inside[j]);
    }
    if (outside > 0) {
      for (int j = 0; j < num_b_; ++j) {
        const int n = n_[j];
        if (n == 0 || (a_inside && b_inside[j])) continue;
        const double* fraction =
            tables_.fraction.data() + static_cast<std::size_t>(n) * (n - 1) / 2;
        const int allowed = tables_.max_failures[n];
        pass_[j] =
            support_.failures_clamped(ax, ay, dx_[j], dy_[j], fraction, n, allowed) <= allowed;
        n_[j] = 0;
      }
    }
#if SIMPLEPOSE_AVX2
    if (avx2_) {
      failures_.resize(num_b_);
      open_.resize(num_b_);
      passes_avx2(support_.cells(), w, ax, ay, dx_.data(), dy_.data(), n_.data(), num_b_,
                  tables_.fraction.data(), tables_.max_failures.data(), failures_.data(),
                  open_.data(), pass_.data());
    } else
#endif
    {
      for (int j = 0; j < num_b_; ++j) {
        const int n = n_[j];
        if (n == 0) continue;
        const double* fraction =
            tables_.fraction.data() + static_cast<std::size_t>(n) * (n - 1) / 2;
        const int allowed = tables_.max_failures[n];
        pass_[j] =
            support_.failures_inside(ax, ay, dx_[j], dy_[j], fraction, n, allowed) <= allowed;
      }
    }
    // The passing j, appended without a branch per pair (it would be unpredictable).
    const std::size_t size = pairs_.size();
    pairs_.resize(size + num_b_);
    Pair* out_pairs = pairs_.data() + size;
    int num_pass = 0;
    for (int j = 0; j < num_b_; ++j) {
      out_pairs[num_pass] = {0.0, 0.0, 0.0, i, j, Pair::kUnknown};
      num_pass += pass_[j];
    }
    pairs_.resize(size + num_pass);
  }
  bool lazy = false;
  if (masked) {
    lazy = static_cast<std::int64_t>(pairs_.size()) >
               static_cast<std::int64_t>(kLazySurvivorsPerConnection) * std::min(num_a_, num_b_) &&
           bounded_map(map_, static_cast<std::int64_t>(h) * w);
    if (lazy) {
      block_max_.resize(static_cast<std::size_t>(h) * w);
      build_block_max(map_, h, w, block_max_.data());
    }
    for (Pair& p : pairs_) {
      if (lazy) {
        bound(&p);
      } else {
        evaluate(&p);
      }
    }
  }
  greedy(lazy);
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
