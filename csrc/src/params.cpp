#include <cmath>
#include <stdexcept>
#include <string>

#include "simplepose/types.hpp"

namespace simplepose {

namespace {

void require(bool ok, const std::string& message) {
  if (!ok) throw std::invalid_argument(message);
}

}  // namespace

void validate(const DecodeParams& p) {
  require(std::isfinite(p.peak_threshold),
          "peak_threshold must be finite, got " + std::to_string(p.peak_threshold));
  require(p.max_peaks >= 1, "max_peaks must be >= 1, got " + std::to_string(p.max_peaks));
  require(std::isfinite(p.part_threshold),
          "part_threshold must be finite, got " + std::to_string(p.part_threshold));
  require(p.connect_ratio >= 0.0 && p.connect_ratio <= 1.0,
          "connect_ratio must be in [0, 1], got " + std::to_string(p.connect_ratio));
  require(p.max_samples >= 2 && p.max_samples <= kMaxSamplesLimit,
          "max_samples must be in [2, 256], got " + std::to_string(p.max_samples));
  require(p.grid_stride > 0.0 && std::isfinite(p.grid_stride),
          "grid_stride must be > 0, got " + std::to_string(p.grid_stride));
  require(std::isfinite(p.prior_height),
          "prior_height must be finite, got " + std::to_string(p.prior_height));
  require(p.len_rate > 0.0, "len_rate must be > 0, got " + std::to_string(p.len_rate));
  require(std::isfinite(p.connection_tolerance),
          "connection_tolerance must be finite, got " + std::to_string(p.connection_tolerance));
  require(p.min_keypoints >= 1 && p.min_keypoints <= kNumKeypoints,
          "min_keypoints must be in [1, 18], got " + std::to_string(p.min_keypoints));
  require(std::isfinite(p.min_mean_score),
          "min_mean_score must be finite, got " + std::to_string(p.min_mean_score));
  require(p.person_score == PersonScore::kAuthors || p.person_score == PersonScore::kMean,
          "person_score must be 0 (authors) or 1 (mean), got " +
              std::to_string(static_cast<int>(p.person_score)));
}

}  // namespace simplepose
