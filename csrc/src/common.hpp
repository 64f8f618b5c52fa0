// Small inline helpers shared by the core's .cpp files (not installed).
#pragma once

#include <cmath>

namespace simplepose {
namespace detail {

// Non-finite heatmap values (NaN, +-Inf) count as 0 everywhere in the decoder, so they can
// neither create peaks nor leak into coordinates.
inline float finite_or_zero(float v) { return std::isfinite(v) ? v : 0.0f; }

}  // namespace detail
}  // namespace simplepose
