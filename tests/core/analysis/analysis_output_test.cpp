// JSON, terminal summary and analysis.h5 of an AnalysisResult
// (core/analysis/analysis_report.h, analysis_h5.h; docs/report-format.md, docs/analysis.md).
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <hdf5.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "core/analysis/analysis.h"
#include "core/analysis/analysis_h5.h"
#include "core/analysis/analysis_report.h"

namespace jslds::analysis {
namespace {

const auto kF64 = torch::TensorOptions().dtype(torch::kFloat64);

/// The bistable network of known_systems_test: 2 stable fixed points and a saddle.
AnalysisResult bistable_result() {
  AnalysisInput in;
  in.set_map(tanh_map({torch::diag(torch::tensor({2.0, 0.5}, kF64)), torch::zeros({2}, kF64)}));
  torch::Tensor line = torch::linspace(-1.2, 1.2, 61, kF64);
  in.states_pn = torch::stack({line, torch::zeros_like(line)}, 1);
  in.expansion_points_pn = in.states_pn.clone();
  in.bin_ms = 20.0;
  AnalysisOptions o;
  o.n_inits = 128;
  o.init_noise = 0.05;
  o.max_points = 5;
  return run_analysis(in, o, /*seed=*/4);
}

/// Owns one hid_t in the test (closes it at scope exit).
struct H5Id {
  hid_t id;
  herr_t (*close)(hid_t);
  H5Id(hid_t i, herr_t (*c)(hid_t)) : id(i), close(c) {}
  H5Id(const H5Id&) = delete;
  H5Id& operator=(const H5Id&) = delete;
  ~H5Id() {
    if (id >= 0) close(id);
  }
};

std::pair<std::vector<hsize_t>, std::vector<double>> read_doubles(hid_t file, const char* path) {
  H5Id set(H5Dopen2(file, path, H5P_DEFAULT), H5Dclose);
  EXPECT_GE(set.id, 0) << path;
  H5Id space(H5Dget_space(set.id), H5Sclose);
  std::vector<hsize_t> dims(static_cast<size_t>(H5Sget_simple_extent_ndims(space.id)));
  H5Sget_simple_extent_dims(space.id, dims.data(), nullptr);
  std::vector<double> data(static_cast<size_t>(H5Sget_simple_extent_npoints(space.id)));
  if (!data.empty()) {
    EXPECT_GE(H5Dread(set.id, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, data.data()), 0);
  }
  return {dims, data};
}

double read_attribute(hid_t loc, const char* name) {
  H5Id attr(H5Aopen(loc, name, H5P_DEFAULT), H5Aclose);
  EXPECT_GE(attr.id, 0) << name;
  double v = std::numeric_limits<double>::quiet_NaN();
  H5Aread(attr.id, H5T_NATIVE_DOUBLE, &v);
  return v;
}

TEST(AnalysisJson, MatchesTheReportFormat) {
  AnalysisResult r = bistable_result();
  nlohmann::json j = analysis_to_json(r);
  ASSERT_TRUE(j.contains("summary") && j.contains("fixed_points") && j.contains("modes"));
  EXPECT_EQ(j["summary"]["n_stable"].get<double>(), 2.0);
  EXPECT_EQ(j["summary"]["n_saddle"].get<double>(), 1.0);
  const size_t n_points = r.expansion_points.size() + r.fixed_points.size();
  ASSERT_EQ(j["fixed_points"].size(), n_points);
  const auto& first_fixed = j["fixed_points"][r.expansion_points.size()];
  EXPECT_EQ(first_fixed["source"], "numerical");
  EXPECT_EQ(first_fixed["idx"].get<size_t>(), r.expansion_points.size());
  EXPECT_EQ(first_fixed["coords"].size(), 2u);
  EXPECT_EQ(j["fixed_points"][0]["source"], "expansion");
  for (const auto& fp : j["fixed_points"])
    for (const char* key : {"idx", "source", "q", "stability", "n_unstable", "max_abs_eig", "refined",
                            "coords"})
      EXPECT_TRUE(fp.contains(key)) << key;
  // The bistable network's three points are all refined by the Newton steps; expansion
  // points never are.
  for (size_t i = 0; i < j["fixed_points"].size(); ++i)
    EXPECT_EQ(j["fixed_points"][i]["refined"].get<bool>(), i >= r.expansion_points.size()) << i;
  // Two real modes per 2-D point.
  ASSERT_EQ(j["modes"].size(), 2 * n_points);
  for (const auto& m : j["modes"]) {
    for (const char* key : {"point_idx", "mode_idx", "eig_re", "eig_im", "abs", "freq_hz", "tau_s"})
      EXPECT_TRUE(m.contains(key)) << key;
    EXPECT_LT(m["point_idx"].get<size_t>(), n_points);
  }
  // Undefined summaries (no oscillation anywhere) are null, not NaN.
  EXPECT_TRUE(j["summary"]["dominant_freq_hz"].is_null());
}

TEST(AnalysisJson, InfiniteTimeConstantIsNull) {
  AnalysisResult r;
  r.latent_dim = 1;
  r.bin_ms = 10.0;
  PointAnalysis p;
  p.source = PointSource::kNumerical;
  p.coords = {0.0};
  p.eigenvalues = {{1.0, 0.0}};
  p.modes = modes_from_eigenvalues(p.eigenvalues, 0.01);
  p.max_abs_eig = 1.0;
  p.stability = classify(1.0);
  r.fixed_points.push_back(p);
  nlohmann::json j = analysis_to_json(r);
  EXPECT_EQ(j["fixed_points"][0]["stability"], "marginal");
  EXPECT_TRUE(j["modes"][0]["tau_s"].is_null());
  EXPECT_EQ(j["modes"][0]["abs"].get<double>(), 1.0);
}

TEST(AnalysisSummaryText, ListsClassesModesAndScores) {
  std::string text = format_analysis_summary(bistable_result());
  EXPECT_NE(text.find("Fixed points: 3 (2 stable, 0 marginal, 1 saddle"), std::string::npos) << text;
  EXPECT_NE(text.find("ring_score"), std::string::npos) << text;
  EXPECT_NE(text.find("saddle"), std::string::npos) << text;
}

TEST(AnalysisH5, WritesEveryDatasetAndTheSummariesAsAttributes) {
  AnalysisResult r = bistable_result();
  const auto dir = std::filesystem::temp_directory_path() /
                   ("jslds_analysis_h5_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto path = dir / "analysis.h5";
  write_analysis_h5(r, path);
  EXPECT_FALSE(std::filesystem::exists(dir / "analysis.h5.tmp"));
  {
    H5Id file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
    ASSERT_GE(file.id, 0);
    EXPECT_EQ(read_attribute(file.id, "n_stable"), 2.0);
    EXPECT_EQ(read_attribute(file.id, "ring_score"), r.summary.at("ring_score"));
    EXPECT_EQ(read_attribute(file.id, "bin_ms"), 20.0);

    const auto k = r.fixed_points.size();
    auto [cdims, coords] = read_doubles(file.id, "/fixed_points/coords");
    EXPECT_EQ(cdims, (std::vector<hsize_t>{k, 2}));
    EXPECT_EQ(coords[0], r.fixed_points[0].coords[0]);
    auto [edims, eig] = read_doubles(file.id, "/fixed_points/eigenvalues");
    EXPECT_EQ(edims, (std::vector<hsize_t>{k, 2, 2}));
    EXPECT_EQ(eig[0], r.fixed_points[0].eigenvalues[0].real());
    EXPECT_EQ(eig[1], r.fixed_points[0].eigenvalues[0].imag());
    auto [vdims, vec] = read_doubles(file.id, "/fixed_points/eigenvectors");
    EXPECT_EQ(vdims, (std::vector<hsize_t>{k, 2, 2, 2}));
    auto [qdims, q] = read_doubles(file.id, "/fixed_points/q");
    EXPECT_EQ(q[0], r.fixed_points[0].q);
    auto [xdims, xcoords] = read_doubles(file.id, "/expansion_points/coords");
    EXPECT_EQ(xdims, (std::vector<hsize_t>{r.expansion_points.size(), 2}));

    // The stability enum reads back as its member names.
    H5Id set(H5Dopen2(file.id, "/fixed_points/stability", H5P_DEFAULT), H5Dclose);
    H5Id type(H5Dget_type(set.id), H5Tclose);
    ASSERT_EQ(H5Tget_class(type.id), H5T_ENUM);
    std::vector<int8_t> codes(k);
    ASSERT_GE(H5Dread(set.id, type.id, H5S_ALL, H5S_ALL, H5P_DEFAULT, codes.data()), 0);
    for (size_t i = 0; i < k; ++i) {
      char name[32];
      ASSERT_GE(H5Tenum_nameof(type.id, &codes[i], name, sizeof name), 0);
      EXPECT_EQ(std::string(name), stability_name(r.fixed_points[i].stability));
    }
    H5Id group(H5Gopen2(file.id, "/fixed_points", H5P_DEFAULT), H5Gclose);
    EXPECT_EQ(read_attribute(group.id, "n_inits"), 128.0);
    EXPECT_EQ(read_attribute(group.id, "newton_refinement"), 1.0);
    EXPECT_EQ(read_attribute(group.id, "n_refined"), static_cast<double>(r.search.n_refined));
    EXPECT_EQ(read_attribute(group.id, "n_slow_points"), 0.0);
    auto [rdims, refined] = read_doubles(file.id, "/fixed_points/refined");
    EXPECT_EQ(rdims, (std::vector<hsize_t>{k}));
    for (double v : refined) EXPECT_EQ(v, 1.0);
    auto [erdims, exp_refined] = read_doubles(file.id, "/expansion_points/refined");
    for (double v : exp_refined) EXPECT_EQ(v, 0.0);
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace jslds::analysis
