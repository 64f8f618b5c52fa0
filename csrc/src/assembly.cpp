#include "simplepose/assembly.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

namespace simplepose {

namespace {

struct Person {
  std::array<int, kNumKeypoints> slot;           // peak id or -1
  std::array<double, kNumKeypoints> limb_score;  // score of the connection that set the slot
  double total = 0.0;                            // sum of keypoint and connection scores
  int count = 0;                                 // keypoints held
  double longest = 0.0;                          // longest accepted limb, grid cells
};

double lowest_limb_score(const Person& p) {
  double lowest = std::numeric_limits<double>::infinity();
  for (int k = 0; k < kNumKeypoints; ++k) {
    if (p.slot[k] >= 0) lowest = std::min(lowest, p.limb_score[k]);
  }
  return lowest;
}

}  // namespace

void assemble(const Peaks& peaks, const Connections& connections, const DecodeParams& params,
              Assembly* out) {
  out->clear();
  // People in creation order; a merged-away person is marked dead instead of erased, so ids
  // stay valid and "person order" (the reference's list order) is id order.
  std::vector<Person> persons;
  std::vector<char> alive;
  persons.reserve(32);
  alive.reserve(32);
  // owner[peak] = the person holding the peak, or -1: a peak is in at most one person (in its
  // own type's slot), so the people holding A or B are found without a scan.
  std::vector<int> owner(peaks.size(), -1);
  for (int c = 0; c < connections.size(); ++c) {
    const int from = kParts[connections.part[c]][0];
    const int to = kParts[connections.part[c]][1];
    const int a = connections.a[c];
    const int b = connections.b[c];
    const double s = connections.score[c];
    const double dx = peaks.x[b] - peaks.x[a];
    const double dy = peaks.y[b] - peaks.y[a];
    const double length = std::sqrt(dx * dx + dy * dy);

    // The people holding A (at `from`) or B (at `to`), in person order: at most two.
    int found[2] = {owner[a], owner[b]};
    int num_found = 2;
    if (found[0] < 0 || found[0] == found[1]) {
      found[0] = found[1];
      num_found = found[0] < 0 ? 0 : 1;
    } else if (found[1] < 0) {
      num_found = 1;
    } else if (found[1] < found[0]) {
      std::swap(found[0], found[1]);
    }

    if (num_found == 1) {
      Person& p = persons[found[0]];
      const bool short_enough = length < params.len_rate * p.longest;
      if (p.slot[to] < 0) {
        if (short_enough) {
          p.slot[to] = b;
          owner[b] = found[0];
          p.limb_score[to] = s;
          p.count += 1;
          p.total += peaks.score[b] + s;
          p.longest = std::max(p.longest, length);
        }
      } else if (p.slot[to] != b) {
        if (s > p.limb_score[to] && short_enough) {
          p.total -= peaks.score[p.slot[to]] + p.limb_score[to];
          owner[p.slot[to]] = -1;
          p.slot[to] = b;
          owner[b] = found[0];
          p.limb_score[to] = s;
          p.total += peaks.score[b] + s;
          p.longest = std::max(p.longest, length);
        }
      } else {
        if (s >= p.limb_score[to]) {
          p.total += s - p.limb_score[to];
          p.limb_score[to] = s;
        }
        if (params.attach_both_ends && p.slot[from] < 0 && short_enough) {
          p.slot[from] = a;
          owner[a] = found[0];
          p.limb_score[from] = s;
          p.count += 1;
          p.total += peaks.score[a] + s;
          p.longest = std::max(p.longest, length);
        }
      }
    } else if (num_found == 2) {
      Person& p = persons[found[0]];
      Person& q = persons[found[1]];
      bool disjoint = true;
      for (int k = 0; k < kNumKeypoints && disjoint; ++k) {
        disjoint = !(p.slot[k] >= 0 && q.slot[k] >= 0);
      }
      if (!disjoint) continue;  // the authors' conflict branch is off (remove_recon = 0)
      const double lowest = std::min(lowest_limb_score(p), lowest_limb_score(q));
      if (s < params.connection_tolerance * lowest) continue;
      if (!(length < params.len_rate * std::max(p.longest, q.longest))) continue;
      for (int k = 0; k < kNumKeypoints; ++k) {
        if (q.slot[k] >= 0) {
          p.slot[k] = q.slot[k];
          owner[q.slot[k]] = found[0];
          p.limb_score[k] = q.limb_score[k];
        }
      }
      p.count += q.count;
      p.total += q.total + s;
      p.longest = std::max(std::max(p.longest, q.longest), length);
      alive[found[1]] = 0;
    } else {
      Person p;
      p.slot.fill(-1);
      p.limb_score.fill(0.0);
      p.slot[from] = a;
      p.slot[to] = b;
      p.limb_score[from] = s;
      p.limb_score[to] = s;
      p.count = 2;
      p.total = peaks.score[a] + peaks.score[b] + s;
      p.longest = length;
      owner[a] = owner[b] = static_cast<int>(persons.size());
      persons.push_back(p);
      alive.push_back(1);
    }
  }

  std::vector<int> kept;
  std::vector<double> scores;
  for (int j = 0; j < static_cast<int>(persons.size()); ++j) {
    const Person& p = persons[j];
    if (!alive[j]) continue;
    if (p.count < params.min_keypoints || p.total / p.count < params.min_mean_score) continue;
    kept.push_back(j);
    scores.push_back(params.person_score == PersonScore::kMean ? p.total / p.count
                                                               : 1.0 - 1.0 / p.total);
  }
  std::vector<int> order(kept.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int i, int j) { return scores[i] > scores[j]; });
  for (int i : order) {
    out->members.push_back(persons[kept[i]].slot);
    out->score.push_back(scores[i]);
  }
}

}  // namespace simplepose
