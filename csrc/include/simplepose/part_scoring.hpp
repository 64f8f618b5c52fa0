// Body-part scoring: sample each part map along candidate segments, accept, rank, match.
#pragma once

#include "simplepose/types.hpp"

namespace simplepose {

// Scores every candidate pair of every part and keeps a one-to-one matching per part.
//
// For part k = (from, to) and each peak pair (A of type from, B of type to), in (A, B) id
// order: pairs closer than 1e-6 cells are skipped; n = clamp(floor(|AB| * grid_stride + 1.5),
// 2, max_samples) points t = i / (n - 1) along A..B are sampled from part map k by bilinear
// interpolation on the grid; score = mean + min(0.5 * prior_height / (|AB| * grid_stride) - 1, 0).
// A pair is accepted when (#samples > part_threshold) >= connect_ratio * n and score > 0.
// Accepted pairs are ranked by 0.5 score + 0.25 score_A + 0.25 score_B, descending (ties keep
// (A, B) id order, i.e. a stable sort), and kept greedily when neither endpoint was used by
// this part, up to min(#A, #B) connections.
//
// With params.exchange_partners, the greedy matching is then improved by exchanges: for kept
// connections i < j (in the current order), (A_i, B_i) and (A_j, B_j) become (A_i, B_j) and
// (A_j, B_i) when both of those were accepted and their weights sum to more, where a pair's
// weight is score * max(score_A, 0) * max(score_B, 0); passes over all i < j repeat until one
// makes no exchange (at most as many passes as kept connections). Finally the kept connections
// are stably sorted by rank, descending.
//
// The work, not the result, is pruned (the NumPy reference scores every pair in full and
// gives the same bits): with many pairs per grid cell, a support mask per part map (which
// interpolation cells have a corner above the threshold) bounds #passed from above, one
// byte per sample, and rejects most pairs before any interpolation; when far more pairs
// pass that bound than can be kept, they are ranked by an upper bound of their rank (the
// largest corner of each sample's cell) and sampled in full only when the greedy matching
// or an exchange reaches them. On x86 CPUs with AVX2 these steps use gathers (chosen at run
// time; SIMPLEPOSE_NO_AVX2=1 forces the portable SSE2 / scalar code, for tests).
//
// heatmaps: (50, H, W) view; peaks: from find_peaks (grid cells). out: overwritten.
void score_parts(const HeatmapView& heatmaps, const Peaks& peaks, const DecodeParams& params,
                 Connections* out);

}  // namespace simplepose
