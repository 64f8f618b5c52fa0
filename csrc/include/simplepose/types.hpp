// Shared types of the grouping core: heatmap view, decode parameters, peaks, connections, poses.
//
// Coordinates in this core are heatmap-grid cells (x before y, cell centre = integer index);
// the Python wrapper maps them to network-input pixels. Nothing here allocates globally and
// nothing is static: every function is reentrant.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

namespace simplepose {

constexpr int kNumKeypoints = 18;  // network keypoints (COCO 17 + neck), authors' order
constexpr int kNumParts = 30;      // body parts, in grouping order
constexpr int kNumChannels = 50;   // 0-29 parts, 30-47 keypoints, 48 mask, 49 keypoint max
constexpr int kKeypointChannelOffset = 30;
constexpr int kMaxSamplesLimit = 256;  // upper bound of DecodeParams::max_samples

// The 30 body parts as (from, to) keypoint indices; must equal simplepose/skeleton.py PARTS
// (checked by tests/test_grouping.py through _C.PARTS).
constexpr std::array<std::array<int, 2>, kNumParts> kParts = {{
    {1, 0},   {1, 14}, {1, 15}, {1, 16}, {1, 17}, {0, 14}, {0, 15}, {14, 16}, {15, 17}, {1, 2},
    {2, 3},   {3, 4},  {1, 5},  {5, 6},  {6, 7},  {1, 8},  {8, 9},  {9, 10},  {1, 11},  {11, 12},
    {12, 13}, {0, 2},  {0, 5},  {2, 8},  {8, 12}, {5, 11}, {11, 9}, {16, 2},  {17, 5},  {8, 11},
}};

// Read-only view of C-contiguous float32 heatmaps.
struct HeatmapView {
  const float* data = nullptr;  // (channels, height, width), C-contiguous
  int channels = 0;
  int height = 0;
  int width = 0;

  const float* channel(int c) const { return data + static_cast<std::int64_t>(c) * height * width; }
};

enum class PersonScore : int {
  kAuthors = 0,  // 1 - 1 / total (the authors' evaluate.py)
  kMean = 1,     // total / count
};

// Every threshold of the decoder. Defaults equal DecodeConfig's (simplepose/config.py), which is
// where they are documented; the Python wrapper always passes them explicitly.
struct DecodeParams {
  double peak_threshold = 0.1;  // thre1: keypoint peaks must be >= this
  int max_peaks = 64;           // per keypoint channel, highest kept
  bool refine = true;           // sub-pixel refinement (3 x 3 log-parabola fit)
  double part_threshold = 0.1;  // thre2: a segment sample "passes" if > this
  double connect_ratio = 0.8;   // fraction of samples that must pass
  int max_samples = 20;         // mid_num
  double grid_stride = 4.0;     // network-input pixels per grid cell (4 / upsample)
  double prior_height = 0.0;    // distance-prior height in input pixels; <= 0: height * stride
  double len_rate = 16.0;       // limb length must be < len_rate * person's longest limb
  double connection_tolerance = 0.7;  // merge unless score < tolerance * lowest limb score
  bool attach_both_ends = true;       // also attach endpoint A to a person found through B
  bool exchange_partners = true;      // after the greedy matching, swap partners when better
  int min_keypoints = 2;              // persons with fewer keypoints are dropped
  double min_mean_score = 0.45;       // persons with total / count below this are dropped
  PersonScore person_score = PersonScore::kMean;
};

// Keypoint peaks of all 18 types, grouped by type: peaks of type k are
// [offsets[k], offsets[k + 1]); within a type, by score descending, ties by raster index.
struct Peaks {
  std::vector<double> x;      // (N,) grid x (column), refined
  std::vector<double> y;      // (N,) grid y (row), refined
  std::vector<double> score;  // (N,) heatmap value at the peak cell
  std::array<int, kNumKeypoints + 1> offsets{};

  int size() const { return static_cast<int>(x.size()); }
  void clear() {
    x.clear();
    y.clear();
    score.clear();
    offsets.fill(0);
  }
};

// Accepted connections, grouped by part in part order, each part's in rank order.
struct Connections {
  std::vector<int> part;      // (C,) part index 0..29
  std::vector<int> a;         // (C,) global peak id of the part's "from" keypoint
  std::vector<int> b;         // (C,) global peak id of the part's "to" keypoint
  std::vector<double> score;  // (C,) mean sample value + distance prior

  int size() const { return static_cast<int>(part.size()); }
  void clear() {
    part.clear();
    a.clear();
    b.clear();
    score.clear();
  }
};

// Assembled people, sorted by score descending (ties: creation order).
struct Assembly {
  std::vector<std::array<int, kNumKeypoints>> members;  // (P, 18) peak id or -1
  std::vector<double> score;                            // (P,) person score

  int size() const { return static_cast<int>(score.size()); }
  void clear() {
    members.clear();
    score.clear();
  }
};

// Throws std::invalid_argument when a parameter is out of range.
void validate(const DecodeParams& params);

}  // namespace simplepose
