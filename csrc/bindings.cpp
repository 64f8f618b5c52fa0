// simplepose._C: thin pybind11 bindings over the grouping core (csrc/include/simplepose).
//
// Arrays are checked here (ndim, shape, dtype, C-contiguity) and rejected with ValueError
// stating expected vs actual; nothing is converted or copied behind the caller's back (the
// Python wrapper simplepose.grouping calls np.ascontiguousarray in plain sight). Heatmaps are
// taken as a generic py::array rather than py::array_t<float, c_style>().noconvert(), because
// the latter reports a dtype or layout mismatch as an anonymous TypeError ("incompatible
// function arguments") instead of saying what was wrong. Pointers and shapes are read with
// the GIL held, the core runs with the GIL released, outputs are built after it is back.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>

#include "simplepose/assembly.hpp"
#include "simplepose/decode.hpp"
#include "simplepose/part_scoring.hpp"
#include "simplepose/peaks.hpp"
#include "simplepose/types.hpp"

namespace py = pybind11;
using simplepose::kNumChannels;
using simplepose::kNumKeypoints;
using simplepose::kNumParts;

namespace {

// Messages are built with std::to_string and concatenation, never with iostreams: those go
// through the C++ runtime's locale, which breaks (cut messages, or a SIGSEGV) when _C carries
// a static C++ runtime and the process has loaded another one.
std::string shape_of(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) {
    if (i > 0) s += ", ";
    s += std::to_string(a.shape(i));
  }
  s += a.ndim() == 1 ? ",)" : ")";
  return s;
}

std::string dtype_of(const py::array& a) { return py::str(a.dtype()).cast<std::string>(); }

template <typename T>
void check_array(const py::array& a, const char* name, const char* expected_dtype) {
  if (!a.dtype().is(py::dtype::of<T>())) {
    throw std::invalid_argument(std::string(name) + " must have dtype " + expected_dtype +
                                ", got " + dtype_of(a));
  }
  if (!(a.flags() & py::array::c_style)) {
    throw std::invalid_argument(std::string(name) +
                                " must be C-contiguous, got a non-contiguous array of shape " +
                                shape_of(a) + " (use np.ascontiguousarray)");
  }
}

simplepose::HeatmapView heatmap_view(const py::array& heatmaps) {
  if (heatmaps.ndim() != 3 || heatmaps.shape(0) != kNumChannels) {
    throw std::invalid_argument("heatmaps must have shape (50, H, W), got " + shape_of(heatmaps));
  }
  if (heatmaps.shape(1) < 1 || heatmaps.shape(2) < 1 ||
      heatmaps.shape(1) > std::numeric_limits<int>::max() / 4 ||
      heatmaps.shape(2) > std::numeric_limits<int>::max() / 4) {
    throw std::invalid_argument("heatmaps must have 1 <= H, W < 2^29, got " + shape_of(heatmaps));
  }
  check_array<float>(heatmaps, "heatmaps", "float32");
  simplepose::HeatmapView view;
  view.data = static_cast<const float*>(heatmaps.data());
  view.channels = static_cast<int>(heatmaps.shape(0));
  view.height = static_cast<int>(heatmaps.shape(1));
  view.width = static_cast<int>(heatmaps.shape(2));
  return view;
}

// Rebuilds Peaks from the (N, 3) float64 [x, y, score] array and (19,) int64 offsets that
// find_peaks returns, checking that they are consistent.
simplepose::Peaks peaks_from_arrays(const py::array& peaks, const py::array& offsets) {
  if (peaks.ndim() != 2 || peaks.shape(1) != 3) {
    throw std::invalid_argument("peaks must have shape (N, 3), got " + shape_of(peaks));
  }
  check_array<double>(peaks, "peaks", "float64");
  if (offsets.ndim() != 1 || offsets.shape(0) != kNumKeypoints + 1) {
    throw std::invalid_argument("offsets must have shape (19,), got " + shape_of(offsets));
  }
  check_array<std::int64_t>(offsets, "offsets", "int64");
  const auto* off = static_cast<const std::int64_t*>(offsets.data());
  const py::ssize_t n = peaks.shape(0);
  if (off[0] != 0 || off[kNumKeypoints] != n) {
    throw std::invalid_argument("offsets must start at 0 and end at N = " + std::to_string(n));
  }
  simplepose::Peaks out;
  for (int k = 0; k < kNumKeypoints; ++k) {
    if (off[k + 1] < off[k]) throw std::invalid_argument("offsets must be non-decreasing");
    out.offsets[k] = static_cast<int>(off[k]);
  }
  out.offsets[kNumKeypoints] = static_cast<int>(n);
  const auto* p = static_cast<const double*>(peaks.data());
  for (py::ssize_t i = 0; i < n; ++i) {
    if (!std::isfinite(p[3 * i]) || !std::isfinite(p[3 * i + 1]) || !std::isfinite(p[3 * i + 2])) {
      throw std::invalid_argument("peaks must be finite, row " + std::to_string(i) + " is not");
    }
    out.x.push_back(p[3 * i]);
    out.y.push_back(p[3 * i + 1]);
    out.score.push_back(p[3 * i + 2]);
  }
  return out;
}

simplepose::DecodeParams checked(const simplepose::DecodeParams& params) {
  simplepose::validate(params);
  return params;
}

py::tuple find_peaks(const py::array& heatmaps, const simplepose::DecodeParams& params) {
  const simplepose::HeatmapView view = heatmap_view(heatmaps);
  const simplepose::DecodeParams p = checked(params);
  simplepose::Peaks peaks;
  {
    py::gil_scoped_release release;
    simplepose::find_peaks(view, p, &peaks);
  }
  const py::ssize_t n = peaks.size();
  py::array_t<double> rows({n, static_cast<py::ssize_t>(3)});
  auto r = rows.mutable_unchecked<2>();
  for (py::ssize_t i = 0; i < n; ++i) {
    r(i, 0) = peaks.x[i];
    r(i, 1) = peaks.y[i];
    r(i, 2) = peaks.score[i];
  }
  py::array_t<std::int64_t> offsets(kNumKeypoints + 1);
  auto o = offsets.mutable_unchecked<1>();
  for (int k = 0; k <= kNumKeypoints; ++k) o(k) = peaks.offsets[k];
  return py::make_tuple(rows, offsets);
}

py::tuple score_parts(const py::array& heatmaps, const py::array& peaks_array,
                      const py::array& offsets, const simplepose::DecodeParams& params) {
  const simplepose::HeatmapView view = heatmap_view(heatmaps);
  const simplepose::DecodeParams p = checked(params);
  const simplepose::Peaks peaks = peaks_from_arrays(peaks_array, offsets);
  simplepose::Connections connections;
  {
    py::gil_scoped_release release;
    simplepose::score_parts(view, peaks, p, &connections);
  }
  const py::ssize_t c = connections.size();
  py::array_t<std::int32_t> parts(c);
  py::array_t<std::int32_t> pairs({c, static_cast<py::ssize_t>(2)});
  py::array_t<double> scores(c);
  auto pa = parts.mutable_unchecked<1>();
  auto pr = pairs.mutable_unchecked<2>();
  auto sc = scores.mutable_unchecked<1>();
  for (py::ssize_t i = 0; i < c; ++i) {
    pa(i) = connections.part[i];
    pr(i, 0) = connections.a[i];
    pr(i, 1) = connections.b[i];
    sc(i) = connections.score[i];
  }
  return py::make_tuple(parts, pairs, scores);
}

py::tuple assemble(const py::array& peaks_array, const py::array& offsets, const py::array& parts,
                   const py::array& pairs, const py::array& scores,
                   const simplepose::DecodeParams& params) {
  const simplepose::DecodeParams p = checked(params);
  const simplepose::Peaks peaks = peaks_from_arrays(peaks_array, offsets);
  if (parts.ndim() != 1) {
    throw std::invalid_argument("parts must have shape (C,), got " + shape_of(parts));
  }
  const py::ssize_t c = parts.shape(0);
  if (pairs.ndim() != 2 || pairs.shape(0) != c || pairs.shape(1) != 2) {
    throw std::invalid_argument("pairs must have shape (" + std::to_string(c) + ", 2), got " +
                                shape_of(pairs));
  }
  if (scores.ndim() != 1 || scores.shape(0) != c) {
    throw std::invalid_argument("scores must have shape (" + std::to_string(c) + ",), got " +
                                shape_of(scores));
  }
  check_array<std::int32_t>(parts, "parts", "int32");
  check_array<std::int32_t>(pairs, "pairs", "int32");
  check_array<double>(scores, "scores", "float64");
  const auto* pa = static_cast<const std::int32_t*>(parts.data());
  const auto* pr = static_cast<const std::int32_t*>(pairs.data());
  const auto* sc = static_cast<const double*>(scores.data());
  simplepose::Connections connections;
  for (py::ssize_t i = 0; i < c; ++i) {
    const int part = pa[i];
    if (part < 0 || part >= kNumParts) {
      throw std::invalid_argument("parts must be in [0, 30), row " + std::to_string(i) + " is " +
                                  std::to_string(part));
    }
    for (int e = 0; e < 2; ++e) {
      const int type = simplepose::kParts[part][e];
      const int id = pr[2 * i + e];
      if (id < peaks.offsets[type] || id >= peaks.offsets[type + 1]) {
        throw std::invalid_argument("pairs row " + std::to_string(i) + " holds peak " +
                                    std::to_string(id) + ", which is not of keypoint type " +
                                    std::to_string(type));
      }
    }
    if (!std::isfinite(sc[i])) {
      throw std::invalid_argument("scores must be finite, row " + std::to_string(i) + " is not");
    }
    connections.part.push_back(part);
    connections.a.push_back(pr[2 * i]);
    connections.b.push_back(pr[2 * i + 1]);
    connections.score.push_back(sc[i]);
  }
  simplepose::Assembly people;
  {
    py::gil_scoped_release release;
    simplepose::assemble(peaks, connections, p, &people);
  }
  const py::ssize_t n = people.size();
  py::array_t<std::int32_t> members({n, static_cast<py::ssize_t>(kNumKeypoints)});
  py::array_t<double> person_scores(n);
  auto m = members.mutable_unchecked<2>();
  auto s = person_scores.mutable_unchecked<1>();
  for (py::ssize_t i = 0; i < n; ++i) {
    for (int k = 0; k < kNumKeypoints; ++k) m(i, k) = people.members[i][k];
    s(i) = people.score[i];
  }
  return py::make_tuple(members, person_scores);
}

py::tuple decode(const py::array& heatmaps, const simplepose::DecodeParams& params) {
  const simplepose::HeatmapView view = heatmap_view(heatmaps);
  const simplepose::DecodeParams p = checked(params);
  simplepose::DecodeResult result;
  {
    py::gil_scoped_release release;
    simplepose::decode(view, p, &result);
  }
  const py::ssize_t n = result.assembly.size();
  py::array_t<float> keypoints(
      {n, static_cast<py::ssize_t>(kNumKeypoints), static_cast<py::ssize_t>(3)});
  py::array_t<float> scores(n);
  if (n > 0) {
    std::memcpy(keypoints.mutable_data(), result.keypoints.data(),
                result.keypoints.size() * sizeof(float));
  }
  auto s = scores.mutable_unchecked<1>();
  // Scores are sums in double; clamp before narrowing so huge (finite) inputs give finite
  // float32 scores rather than inf.
  constexpr double kMax = std::numeric_limits<float>::max();
  for (py::ssize_t i = 0; i < n; ++i) {
    s(i) = static_cast<float>(std::min(std::max(result.assembly.score[i], -kMax), kMax));
  }
  return py::make_tuple(keypoints, scores);
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "simplepose grouping core (C++17): peaks, part scoring, greedy assembly.";

  py::enum_<simplepose::PersonScore>(m, "PersonScore", "How a person's score is computed.")
      .value("AUTHORS", simplepose::PersonScore::kAuthors, "1 - 1 / total (the authors')")
      .value("MEAN", simplepose::PersonScore::kMean, "total / keypoint count");

  py::class_<simplepose::DecodeParams>(
      m, "DecodeParams",
      "Decoder thresholds in grid units (built from simplepose.config.DecodeConfig).")
      .def(py::init<>())
      .def_readwrite("peak_threshold", &simplepose::DecodeParams::peak_threshold)
      .def_readwrite("max_peaks", &simplepose::DecodeParams::max_peaks)
      .def_readwrite("refine", &simplepose::DecodeParams::refine)
      .def_readwrite("part_threshold", &simplepose::DecodeParams::part_threshold)
      .def_readwrite("connect_ratio", &simplepose::DecodeParams::connect_ratio)
      .def_readwrite("max_samples", &simplepose::DecodeParams::max_samples)
      .def_readwrite("grid_stride", &simplepose::DecodeParams::grid_stride)
      .def_readwrite("prior_height", &simplepose::DecodeParams::prior_height)
      .def_readwrite("len_rate", &simplepose::DecodeParams::len_rate)
      .def_readwrite("connection_tolerance", &simplepose::DecodeParams::connection_tolerance)
      .def_readwrite("attach_both_ends", &simplepose::DecodeParams::attach_both_ends)
      .def_readwrite("exchange_partners", &simplepose::DecodeParams::exchange_partners)
      .def_readwrite("min_keypoints", &simplepose::DecodeParams::min_keypoints)
      .def_readwrite("min_mean_score", &simplepose::DecodeParams::min_mean_score)
      .def_readwrite("person_score", &simplepose::DecodeParams::person_score)
      .def(
          "validate", [](const simplepose::DecodeParams& p) { simplepose::validate(p); },
          "Raise ValueError when a parameter is out of range.");

  py::tuple parts(kNumParts);
  for (int i = 0; i < kNumParts; ++i) {
    parts[i] = py::make_tuple(simplepose::kParts[i][0], simplepose::kParts[i][1]);
  }
  m.attr("PARTS") = parts;

  m.def("find_peaks", &find_peaks, py::arg("heatmaps").noconvert(), py::arg("params"),
        "Keypoint peaks of heatmaps (float32 (50, H, W), C-contiguous).\n\n"
        "Returns (peaks float64 (N, 3) [x, y, score] in grid cells, grouped by keypoint type,\n"
        "offsets int64 (19,): peaks of type k are rows offsets[k]:offsets[k + 1]).");
  m.def("score_parts", &score_parts, py::arg("heatmaps").noconvert(), py::arg("peaks").noconvert(),
        py::arg("offsets").noconvert(), py::arg("params"),
        "Accepted, one-to-one matched connections of the 30 parts, in part then rank order.\n\n"
        "Returns (parts int32 (C,), pairs int32 (C, 2) global peak ids [from, to],\n"
        "scores float64 (C,) mean sample value plus distance prior).");
  m.def("assemble", &assemble, py::arg("peaks").noconvert(), py::arg("offsets").noconvert(),
        py::arg("parts").noconvert(), py::arg("pairs").noconvert(), py::arg("scores").noconvert(),
        py::arg("params"),
        "Greedy assembly of connections into people.\n\n"
        "Returns (members int32 (P, 18) peak id per network keypoint or -1,\n"
        "scores float64 (P,)), sorted by score descending.");
  m.def("decode", &decode, py::arg("heatmaps").noconvert(), py::arg("params"),
        "Whole decode of heatmaps (float32 (50, H, W), C-contiguous).\n\n"
        "Returns (keypoints float32 (P, 18, 3) [x, y, score] in grid cells, network keypoint\n"
        "order, unfound = 0; scores float32 (P,)), sorted by score descending.");
}
