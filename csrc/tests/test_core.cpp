// Minimal C++ tests of the grouping core (run by ctest; the full suite is in tests/*.py).
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "simplepose/decode.hpp"

namespace {

int failures = 0;

void expect(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "FAILED: %s\n", what);
    ++failures;
  }
}

// One person: neck at (10, 6), nose at (10, 2) on a 16 x 20 grid, part 0 (neck-nose) filled
// along the segment, Gaussian keypoints with sigma 2 cells centred between cells in x.
void test_one_pair() {
  const int h = 16, w = 20;
  std::vector<float> data(static_cast<std::size_t>(50) * h * w, 0.0f);
  auto at = [&](int c, int y, int x) -> float& { return data[(c * h + y) * w + x]; };
  const double nose_x = 10.25, nose_y = 2.0, neck_x = 10.25, neck_y = 6.0;
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      const double dn = (x - nose_x) * (x - nose_x) + (y - nose_y) * (y - nose_y);
      const double dk = (x - neck_x) * (x - neck_x) + (y - neck_y) * (y - neck_y);
      at(30 + 0, y, x) = static_cast<float>(std::exp(-dn / 8.0));
      at(30 + 1, y, x) = static_cast<float>(std::exp(-dk / 8.0));
      if (y >= 2 && y <= 6 && (x == 10 || x == 11)) at(0, y, x) = 0.9f;
    }
  }
  simplepose::HeatmapView view{data.data(), 50, h, w};
  simplepose::DecodeParams params;
  simplepose::DecodeResult result;
  simplepose::decode(view, params, &result);
  expect(result.peaks.size() == 2, "two peaks");
  expect(std::fabs(result.peaks.x[0] - nose_x) < 1e-6, "nose x refined exactly (log parabola)");
  expect(std::fabs(result.peaks.y[0] - nose_y) < 1e-6, "nose y refined exactly");
  expect(result.connections.size() == 1, "one connection");
  expect(result.assembly.size() == 1, "one person");
  if (result.assembly.size() == 1) {
    expect(result.assembly.members[0][0] == 0 && result.assembly.members[0][1] == 1,
           "person holds nose and neck");
  }
}

// Non-finite values are zeros; an all-NaN map has no peaks.
void test_non_finite() {
  const int h = 5, w = 7;
  std::vector<float> data(static_cast<std::size_t>(50) * h * w, std::nanf(""));
  simplepose::HeatmapView view{data.data(), 50, h, w};
  simplepose::DecodeResult result;
  simplepose::decode(view, simplepose::DecodeParams{}, &result);
  expect(result.peaks.size() == 0, "no peaks on NaN");
  expect(result.assembly.size() == 0, "no people on NaN");
}

}  // namespace

int main() {
  test_one_pair();
  test_non_finite();
  if (failures == 0) std::printf("all C++ core tests passed\n");
  return failures == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
