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
  std::vector<Person> persons;
  persons.reserve(32);
  for (int c = 0; c < connections.size(); ++c) {
    const int from = kParts[connections.part[c]][0];
    const int to = kParts[connections.part[c]][1];
    const int a = connections.a[c];
    const int b = connections.b[c];
    const double s = connections.score[c];
    const double dx = peaks.x[b] - peaks.x[a];
    const double dy = peaks.y[b] - peaks.y[a];
    const double length = std::sqrt(dx * dx + dy * dy);

    // A peak belongs to at most one person, so at most two people can match.
    int found[2] = {-1, -1};
    int num_found = 0;
    for (int j = 0; j < static_cast<int>(persons.size()) && num_found < 2; ++j) {
      if (persons[j].slot[from] == a || persons[j].slot[to] == b) found[num_found++] = j;
    }

    if (num_found == 1) {
      Person& p = persons[found[0]];
      const bool short_enough = length < params.len_rate * p.longest;
      if (p.slot[to] < 0) {
        if (short_enough) {
          p.slot[to] = b;
          p.limb_score[to] = s;
          p.count += 1;
          p.total += peaks.score[b] + s;
          p.longest = std::max(p.longest, length);
        }
      } else if (p.slot[to] != b) {
        if (s > p.limb_score[to] && short_enough) {
          p.total -= peaks.score[p.slot[to]] + p.limb_score[to];
          p.slot[to] = b;
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
          p.limb_score[k] = q.limb_score[k];
        }
      }
      p.count += q.count;
      p.total += q.total + s;
      p.longest = std::max(std::max(p.longest, q.longest), length);
      persons.erase(persons.begin() + found[1]);
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
      persons.push_back(p);
    }
  }

  std::vector<int> kept;
  std::vector<double> scores;
  for (int j = 0; j < static_cast<int>(persons.size()); ++j) {
    const Person& p = persons[j];
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
