// Small inline helpers shared by the core's .cpp files (not installed).
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__SSE2__) || defined(_M_X64) || (defined(_M_IX86_FP) && _M_IX86_FP >= 2)
#include <emmintrin.h>
#define SIMPLEPOSE_SSE2 1
#else
#define SIMPLEPOSE_SSE2 0
#endif

namespace simplepose {
namespace detail {

// Non-finite heatmap values (NaN, +-Inf) count as 0 everywhere in the decoder, so they can
// neither create peaks nor leak into coordinates.
inline float finite_or_zero(float v) { return std::isfinite(v) ? v : 0.0f; }

// Comparison masks over up to 32 consecutive floats: bit i describes values[i], i < n <= 32.
// With SSE2 (every x86-64 CPU) four values per compare; elsewhere a plain loop, same bits.

// Bit i set when values[i] >= threshold (NaN: not set). A full block of 32 with no such value
// (the common case when scanning for peaks) costs one movemask instead of eight.
inline std::uint32_t mask_at_least(const float* values, int n, float threshold) {
  int i = 0;
  std::uint32_t mask = 0;
#if SIMPLEPOSE_SSE2
  const __m128 t = _mm_set1_ps(threshold);
  if (n == 32) {
    __m128 ge[8];
    __m128 any = _mm_setzero_ps();
    for (int j = 0; j < 8; ++j) {
      ge[j] = _mm_cmpge_ps(_mm_loadu_ps(values + 4 * j), t);
      any = _mm_or_ps(any, ge[j]);
    }
    if (_mm_movemask_ps(any) == 0) return 0;
    for (int j = 0; j < 8; ++j)
      mask |= static_cast<std::uint32_t>(_mm_movemask_ps(ge[j])) << (4 * j);
    return mask;
  }
  for (; i + 4 <= n; i += 4) {
    const int bits = _mm_movemask_ps(_mm_cmpge_ps(_mm_loadu_ps(values + i), t));
    mask |= static_cast<std::uint32_t>(bits) << i;
  }
#endif
  for (; i < n; ++i) mask |= static_cast<std::uint32_t>(values[i] >= threshold) << i;
  return mask;
}

// Bit i set when !(values[i] <= threshold) (NaN: set).
inline std::uint32_t mask_not_at_most(const float* values, int n, float threshold) {
  int i = 0;
  std::uint32_t mask = 0;
#if SIMPLEPOSE_SSE2
  const __m128 t = _mm_set1_ps(threshold);
  for (; i + 4 <= n; i += 4) {
    const int bits = _mm_movemask_ps(_mm_cmpnle_ps(_mm_loadu_ps(values + i), t));
    mask |= static_cast<std::uint32_t>(bits) << i;
  }
#endif
  for (; i < n; ++i) mask |= static_cast<std::uint32_t>(!(values[i] <= threshold)) << i;
  return mask;
}

// Index of the lowest set bit of a non-zero mask.
inline int lowest_bit(std::uint32_t mask) {
#if defined(__GNUC__) || defined(__clang__)
  return __builtin_ctz(mask);
#else
  int i = 0;
  while (!(mask & 1u)) {
    mask >>= 1;
    ++i;
  }
  return i;
#endif
}

}  // namespace detail
}  // namespace simplepose
