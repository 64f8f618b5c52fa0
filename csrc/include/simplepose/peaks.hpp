// Keypoint peaks: 3x3 non-maximum suppression, threshold, cap, sub-pixel refinement.
#pragma once

#include "simplepose/types.hpp"

namespace simplepose {

// Finds the keypoint peaks of the 18 keypoint channels (30..47) of `heatmaps`.
//
// A cell is a peak when its value is >= params.peak_threshold, strictly greater than its
// neighbours that come earlier in raster (row-major) order and >= the later ones, so a flat
// top yields exactly one peak (its first cell in raster order). Non-finite values count as 0.
// At most params.max_peaks peaks per channel are kept: the highest, ties by raster index.
// Refinement (params.refine) fits, per axis, one parabola through the logarithms of the
// values on the three lines of the peak's 3 x 3 neighbourhood (exact for a Gaussian, the
// shape of the training targets; three lines average noise). The offset is 0 on an axis
// where the peak's own neighbour is outside the grid, and clamped to [-0.5, 0.5].
//
// heatmaps: (50, H, W) view. out: overwritten; coordinates in grid cells.
void find_peaks(const HeatmapView& heatmaps, const DecodeParams& params, Peaks* out);

}  // namespace simplepose
