// Greedy assembly of connections into people (the authors' assignment rules).
#pragma once

#include "simplepose/types.hpp"

namespace simplepose {

// Assembles people from connections, part by part in the given (part, rank) order.
//
// For each connection (A, B, s) with |AB| in grid cells, the people holding A at slot `from`
// or B at slot `to` are looked up (in person order; a peak is in at most one person):
//   one person:  slot `to` empty -> add B if |AB| < len_rate * longest limb;
//                slot `to` holds another peak -> replace it if s > its limb score and the
//                length test passes; slot `to` holds B -> raise its limb score if s >= it
//                (and, with attach_both_ends, add A when slot `from` is empty and the length
//                test passes);
//   two people:  if no slot is filled in both, merge the second into the first unless
//                s < connection_tolerance * min(lowest limb score of either) or
//                |AB| >= len_rate * max(longest limb of either); otherwise nothing;
//   none:        new person {A, B}, total = score_A + score_B + s.
// People with fewer than min_keypoints keypoints or total / count < min_mean_score are
// dropped; the rest are sorted by person score descending (stable: ties keep creation order).
//
// peaks: from find_peaks; connections: from score_parts. out: overwritten.
void assemble(const Peaks& peaks, const Connections& connections, const DecodeParams& params,
              Assembly* out);

}  // namespace simplepose
