// Loaders on the shared recordings, every bad-input class on small files written here,
// the project-layout round trip and the train/validation split.
// Legend: B trials, T time bins, N neurons.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include <gtest/gtest.h>
#include <hdf5.h>
#include <torch/torch.h>

#include <fmt/format.h>

#include "core/data/hdf5_file.h"
#include "core/data/inspect.h"
#include "core/data/loaders.h"
#include "core/data/readers.h"
#include "core/data/mat_file.h"

namespace fs = std::filesystem;
using namespace jslds;

namespace {

const fs::path kShared = JSLDS_SHARED_DATA_DIR;
const fs::path kReach = kShared / "reach_delay_pmd.mat";
const fs::path kZheng = kShared / "human_mtl_zheng2022_sub4.nwb";

#define REQUIRE_SHARED(file)                                                              \
  if (!fs::exists(file))                                                                  \
  GTEST_SKIP() << "shared recording " << (file) << " is absent (expected ../shared/data " \
               << "beside the project root; see DESIGN §7)"

// A fresh temporary directory per test, removed afterwards.
class DataFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("jslds_data_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  fs::path path(const std::string& name) const { return dir_ / name; }
  fs::path dir_;
};

// Expects load_dataset to throw DataError whose message contains every fragment.
void expect_data_error(const DataOptions& o, std::initializer_list<std::string> fragments) {
  try {
    load_dataset(o);
    FAIL() << "expected DataError for " << o.path;
  } catch (const DataError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(e.file()), std::string::npos);
    for (const auto& f : fragments)
      EXPECT_NE(what.find(f), std::string::npos) << "message lacks '" << f << "': " << what;
  }
}

// A MAT v5 file with struct array `D` whose trial i holds `matrices[i]` (rows × cols,
// column-major) and condition label `labels[i]`.
struct MatTrial {
  size_t rows, cols;
  std::vector<double> values;  // column-major
  std::string label;
};
void write_mat(const fs::path& file, const std::vector<MatTrial>& trials, bool v73 = false) {
  auto f = v73 ? mat::File::create_v73(file) : mat::File::create_v5(file);
  size_t dims[2] = {1, trials.size()};
  const char* fields[3] = {"data", "condition", nullptr};
  mat::Variable d(Mat_VarCreateStruct2("D", 2, dims, fields));
  for (size_t i = 0; i < trials.size(); ++i) {
    size_t md[2] = {trials[i].rows, trials[i].cols};
    auto values = trials[i].values;
    Mat_VarSetStructFieldByName(
        d.get(), "data", i,
        Mat_VarCreate(nullptr, MAT_C_DOUBLE, MAT_T_DOUBLE, 2, md, values.data(), 0));
    std::string label = trials[i].label;
    size_t cd[2] = {1, label.size()};
    Mat_VarSetStructFieldByName(d.get(), "condition", i,
                                Mat_VarCreate(nullptr, MAT_C_CHAR, MAT_T_UTF8, 2, cd,
                                              label.data(), 0));
  }
  f.write(d.get());
}

MatTrial constant_trial(size_t rows, size_t cols, double value, std::string label = "a") {
  return {rows, cols, std::vector<double>(rows * cols, value), std::move(label)};
}

// A minimal NWB-like file: units with ragged spike times and one intervals table.
void write_nwb(const fs::path& file, const std::vector<double>& times,
               const std::vector<int64_t>& index, const std::vector<double>& starts,
               const std::vector<double>& stops) {
  auto f = h5::File::create(file);
  f.create_group("/units");
  f.write("/units/spike_times", {static_cast<int64_t>(times.size())}, H5T_NATIVE_DOUBLE,
          H5T_IEEE_F64LE, times.data());
  f.write("/units/spike_times_index", {static_cast<int64_t>(index.size())}, H5T_NATIVE_INT64,
          H5T_STD_I64LE, index.data());
  f.create_group("/intervals");
  f.create_group("/intervals/trials");
  f.write("/intervals/trials/start_time", {static_cast<int64_t>(starts.size())},
          H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, starts.data());
  f.write("/intervals/trials/stop_time", {static_cast<int64_t>(stops.size())}, H5T_NATIVE_DOUBLE,
          H5T_IEEE_F64LE, stops.data());
  f.write_attribute("/", "nwb_version", std::string("2.4.0"));
}

DataOptions mat_options(const fs::path& file) {
  DataOptions o;
  o.path = file.string();
  o.variable = "D";
  o.field = "data";
  o.source_bin_ms = 1.0;
  o.bin_ms = 20.0;
  return o;
}

// Reads a 1-D dataset with the plain HDF5 C API (independent of the loader's wrapper).
template <class T>
std::vector<T> raw_read(hid_t file, const char* path, hid_t mem_type) {
  hid_t d = H5Dopen2(file, path, H5P_DEFAULT);
  hid_t s = H5Dget_space(d);
  std::vector<T> out(static_cast<size_t>(H5Sget_simple_extent_npoints(s)));
  H5Dread(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data());
  H5Sclose(s);
  H5Dclose(d);
  return out;
}

}  // namespace

TEST(RealData, ReachDelayMatAt20msHas210TrialsOf20BinsAnd61Neurons) {
  REQUIRE_SHARED(kReach);
  DataOptions o = mat_options(kReach);
  o.condition_field = "condition";
  Dataset d = load_dataset(o);
  ASSERT_EQ(d.spikes_btn.sizes(), (std::vector<int64_t>{210, 20, 61}));
  EXPECT_EQ(d.spikes_btn.sum().item<double>(), 50353.0);
  EXPECT_EQ(d.bin_ms, 20.0);
  EXPECT_EQ(d.neuron_ids.size(), 61u);
  std::map<std::string, int> per_condition;
  for (const auto& c : d.conditions) ++per_condition[c];
  ASSERT_EQ(per_condition.size(), 7u);
  for (int k = 1; k <= 7; ++k) EXPECT_EQ(per_condition["reach" + std::to_string(k)], 30);

  // Stratified split: 20 % of each condition's 30 trials validate.
  o.valid_fraction = 0.2;
  o.heldout_neurons = 0.25;
  Split s = make_split(d, o);
  std::map<std::string, int> valid_per_condition;
  for (int64_t t : s.valid_trials) ++valid_per_condition[d.conditions[static_cast<size_t>(t)]];
  for (const auto& [label, n] : valid_per_condition) EXPECT_EQ(n, 6) << label;
  EXPECT_EQ(s.valid_trials.size(), 42u);
  EXPECT_EQ(s.train_trials.size(), 168u);
  EXPECT_EQ(s.heldout_neurons.size(), 15u);  // round(0.25 · 61)
  EXPECT_EQ(s.heldin_neurons.size(), 46u);
}

TEST(RealData, ZhengNwbEncodingTableCountsEverySpikeInsideTheTrialWindows) {
  REQUIRE_SHARED(kZheng);
  DataOptions o;
  o.path = kZheng.string();
  o.trials = "intervals/encoding_table";
  o.bin_ms = 20.0;
  Dataset d = load_dataset(o);
  ASSERT_EQ(d.n_trials(), 90);
  ASSERT_EQ(d.n_neurons(), 35);
  const int64_t T = d.n_bins();

  // Independent count with the plain C API: spikes with start ≤ t < start + T·bin.
  hid_t f = H5Fopen(kZheng.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  ASSERT_GE(f, 0);
  auto times = raw_read<double>(f, "/units/spike_times", H5T_NATIVE_DOUBLE);
  auto index = raw_read<uint32_t>(f, "/units/spike_times_index", H5T_NATIVE_UINT32);
  auto starts = raw_read<double>(f, "/intervals/encoding_table/start_time", H5T_NATIVE_DOUBLE);
  auto stops = raw_read<double>(f, "/intervals/encoding_table/stop_time", H5T_NATIVE_DOUBLE);
  H5Fclose(f);
  ASSERT_EQ(times.size(), 214278u);
  double shortest = 1e9;
  for (size_t i = 0; i < starts.size(); ++i) shortest = std::min(shortest, stops[i] - starts[i]);
  EXPECT_EQ(T, static_cast<int64_t>(std::floor(shortest / 0.020)));
  const double window = static_cast<double>(T) * 0.020;
  double expected = 0;
  std::vector<double> per_unit(35, 0.0);
  for (size_t u = 0, begin = 0; u < index.size(); begin = index[u], ++u)
    for (size_t k = begin; k < index[u]; ++k)
      for (double s : starts)
        if (times[k] >= s && times[k] < s + window) ++expected, ++per_unit[u];
  EXPECT_GT(expected, 1000);
  EXPECT_EQ(d.spikes_btn.sum().item<double>(), expected);
  auto got_per_unit = d.spikes_btn.sum(std::vector<int64_t>{0, 1});
  for (int64_t u = 0; u < 35; ++u)
    EXPECT_EQ(got_per_unit[u].item<double>(), per_unit[static_cast<size_t>(u)]) << "unit " << u;

  // Windows of 100 bins: floor(bins_i / 100) windows per clip.
  o.window_bins = 100;
  o.condition_field = "stimCategory";
  Dataset w = load_dataset(o);
  int64_t windows = 0;
  for (size_t i = 0; i < starts.size(); ++i)
    windows += static_cast<int64_t>(std::floor((stops[i] - starts[i]) / 0.020 + 1e-9)) / 100;
  EXPECT_EQ(w.n_trials(), windows);
  EXPECT_EQ(w.n_bins(), 100);
  EXPECT_EQ(static_cast<int64_t>(w.conditions.size()), windows);
}

TEST_F(DataFiles, ProjectLayoutRoundTripsEveryTensorAndTheTruth) {
  DataOptions sim;
  sim.sim_trials = 7;
  sim.sim_bins = 30;
  sim.sim_neurons = 5;
  Dataset d = simulate("oscillator", sim);
  d.conditions = {"a", "b", "a", "b", "a", "b", "c"};
  write_dataset_h5(d, path("osc.h5"));
  DataOptions o;
  o.path = path("osc.h5").string();
  Dataset r = load_dataset(o);
  EXPECT_TRUE(torch::equal(r.spikes_btn, d.spikes_btn));
  EXPECT_EQ(r.conditions, d.conditions);
  EXPECT_EQ(r.neuron_ids, d.neuron_ids);
  EXPECT_EQ(r.bin_ms, d.bin_ms);
  ASSERT_EQ(r.truth.size(), d.truth.size());
  for (const auto& [k, v] : d.truth) {
    ASSERT_TRUE(r.truth.count(k)) << k;
    EXPECT_TRUE(torch::equal(r.truth[k], v)) << k;
  }
  Dataset task = simulate("flipflop", sim);
  write_dataset_h5(task, path("ff.h5"));
  o.path = path("ff.h5").string();
  Dataset t = load_dataset(o);
  EXPECT_FALSE(t.spikes_btn.defined());
  EXPECT_TRUE(torch::equal(t.inputs_btk, task.inputs_btk));
  EXPECT_TRUE(torch::equal(t.targets_bto, task.targets_bto));
  EXPECT_TRUE(torch::equal(t.mask_bt, task.mask_bt));
  // The writer's provenance comes back as a tag (a UTF-8 attribute: HDF5 will not convert
  // it to ASCII, which once made the tag silently disappear).
  EXPECT_NE(t.provenance.find("[" + task.provenance + "]"), std::string::npos) << t.provenance;
}

TEST_F(DataFiles, MissingFileAndWrongFormatNameTheFile) {
  DataOptions o;
  o.path = path("absent.nwb").string();
  expect_data_error(o, {"absent.nwb", "no such file"});
  std::ofstream(path("text.nwb")) << "not an HDF5 file\n";
  o.path = path("text.nwb").string();
  expect_data_error(o, {"text.nwb", "neither an HDF5 file"});
  o.format = "nwb";
  expect_data_error(o, {"text.nwb", "not an HDF5 file"});
  std::ofstream(path("text.mat")) << "not a MAT file either\n";
  o = mat_options(path("text.mat"));
  expect_data_error(o, {"text.mat", "not a MATLAB .mat file"});
  std::ofstream{path("empty.mat")};  // libmatio opens a 0-byte file as an empty MAT file
  o = mat_options(path("empty.mat"));
  expect_data_error(o, {"empty.mat", "is empty (0 bytes)"});
  // A truncated HDF5 file (an interrupted copy) says so, with HDF5's reason, instead of a bare
  // "cannot open".
  Dataset d = simulate("oscillator", DataOptions{});
  write_dataset_h5(d, path("whole.h5"));
  {
    std::ifstream in(path("whole.h5"), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::ofstream(path("cut.h5"), std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  }
  o = DataOptions{};
  o.path = path("cut.h5").string();
  expect_data_error(o, {"cut.h5", "HDF5 cannot open it (truncated file", "is it truncated"});
}

// Found by a tester: `data inspect` printed a summary and exited 0 for a file that is not a
// MAT file (or is empty); the file must fail to open like it does for load_dataset.
TEST_F(DataFiles, InspectRejectsFilesThatCannotBeOpened) {
  std::ofstream(path("fake.mat")) << "hello\n";
  std::ofstream{path("empty.mat")};
  for (const char* name : {"fake.mat", "empty.mat"}) {
    try {
      inspect_data_file(path(name), DataOptions{});
      FAIL() << "expected DataError for " << name;
    } catch (const DataError& e) {
      EXPECT_EQ(e.file(), path(name).string());
    }
  }
}

// Found by a tester: with a wrong data.field the summary read "neurons: 0, duration 0 s";
// unknown values are now unknown, with the reason, while the file's trials still show.
TEST_F(DataFiles, InspectSaysWhatItCannotKnowAndCountsConditions) {
  write_mat(path("r.mat"), {constant_trial(2, 40, 1.0, "left"), constant_trial(2, 40, 0.0, "right"),
                            constant_trial(2, 60, 1.0, "left")});
  DataOptions o;
  o.field = "dat";
  DataFileReport r = inspect_data_file(path("r.mat"), o);
  EXPECT_FALSE(r.neurons.has_value());
  EXPECT_FALSE(r.duration_s.has_value());
  EXPECT_EQ(r.trials, 3);
  EXPECT_NE(r.summary_note.find("'dat' is not a field of D (fields: data, condition)"),
            std::string::npos)
      << r.summary_note;
  EXPECT_NE(r.binned_error.find("D.dat"), std::string::npos) << r.binned_error;
  EXPECT_NE(format_report(r).find("neurons:  unknown"), std::string::npos);

  o = DataOptions{};
  o.condition_field = "condition";
  o.trials = "intervals/trials";  // an NWB option: noted as ignored, not silently dropped
  r = inspect_data_file(path("r.mat"), o);
  EXPECT_EQ(r.neurons, 2);
  EXPECT_EQ(r.total_spikes, 2 * 40 + 2 * 60);  // every count in the file
  ASSERT_TRUE(r.binned_error.empty()) << r.binned_error;
  EXPECT_EQ(r.binned_shape, (std::vector<int64_t>{3, 2, 2}));  // cropped to 40 ms
  EXPECT_EQ(r.binned_spikes, 2 * 40 + 2 * 40);
  using Count = std::pair<std::string, int64_t>;
  EXPECT_EQ(r.condition_counts, (std::vector<Count>{{"left", 2}, {"right", 1}}));
  bool noted = false;
  for (const auto& n : r.binned_notes)
    noted = noted || n.find("data.trials = 'intervals/trials' not used for MAT files") !=
                         std::string::npos;
  EXPECT_TRUE(noted) << fmt::format("{}", fmt::join(r.binned_notes, " | "));
  const std::string text = format_report(r);
  EXPECT_NE(text.find("conditions: 2, trials each: left (2), right (1)"), std::string::npos)
      << text;
  EXPECT_EQ(text.find("binned:", text.find("binned:") + 1), std::string::npos) << text;
}

// Found by a tester: the hint listed "encoding_table/" but data.trials = encoding_table
// failed. The hint now lists "intervals/NAME", and the bare name is accepted too.
TEST_F(DataFiles, NwbTrialsTableByBareNameAndHintsThatWork) {
  write_nwb(path("t.nwb"), {0.01, 0.05, 0.07}, {3}, {0.0, 0.04}, {0.04, 0.08});
  DataOptions o;
  o.path = path("t.nwb").string();
  o.trials = "trials";
  Dataset d = load_dataset(o);
  EXPECT_EQ(d.n_trials(), 2);
  EXPECT_EQ(d.spikes_btn.sum().item<double>(), 3.0);
  o.trials = "nope";
  expect_data_error(o, {"/nope", "expected data.trials to name one of intervals/trials"});
}

TEST_F(DataFiles, MissingObjectsListWhatTheFileHolds) {
  // NWB without spike times: lists the units group.
  {
    auto f = h5::File::create(path("nounits.nwb"));
    f.create_group("/units");
    std::vector<int64_t> id = {0, 1};
    f.write("/units/id", {2}, H5T_NATIVE_INT64, H5T_STD_I64LE, id.data());
  }
  DataOptions o;
  o.path = path("nounits.nwb").string();
  expect_data_error(o, {"/units/spike_times", "not found", "id (2)"});
  // NWB with a wrong trials table name: lists the tables.
  write_nwb(path("s.nwb"), {0.1, 0.2}, {1, 2}, {0.0}, {1.0});
  o.path = path("s.nwb").string();
  o.trials = "intervals/encoding_table";
  expect_data_error(o, {"/intervals/encoding_table", "intervals table not found", "expected data.trials to name one of intervals/trials"});
  // MAT: missing variable and missing field list what is there.
  write_mat(path("m.mat"), {constant_trial(2, 40, 1.0)});
  o = mat_options(path("m.mat"));
  o.variable = "E";
  expect_data_error(o, {"E", "variable not found", "D (struct 1×1, fields data, condition)"});
  o.variable = "D";
  o.field = "counts";
  expect_data_error(o, {"D.counts", "field not found", "data, condition"});
  // Project layout without /spikes.
  {
    auto f = h5::File::create(path("empty.h5"));
    f.create_group("/other");
  }
  o = DataOptions{};
  o.path = path("empty.h5").string();
  expect_data_error(o, {"/spikes", "not found", "other/"});
}

TEST_F(DataFiles, NegativeFractionalAndNonFiniteCountsAreRejectedWithTheirPosition) {
  auto negative = constant_trial(2, 40, 1.0);
  negative.values[3] = -1.0;  // row 2, column 2 (MATLAB indices)
  write_mat(path("neg.mat"), {constant_trial(2, 40, 1.0), negative});
  expect_data_error(mat_options(path("neg.mat")), {"D(2).data(2,2) = -1", "negative"});

  auto nan = constant_trial(2, 40, 1.0);
  nan.values[0] = std::nan("");
  write_mat(path("nan.mat"), {nan});
  expect_data_error(mat_options(path("nan.mat")), {"D(1).data(1,1)", "not a number"});

  {
    auto f = h5::File::create(path("frac.h5"));
    std::vector<double> v(2 * 3 * 4, 1.0);
    v[5] = 0.5;
    f.write("/spikes", {2, 3, 4}, H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, v.data());
    f.write_attribute("/", "bin_ms", 20.0);
  }
  DataOptions o;
  o.path = path("frac.h5").string();
  expect_data_error(o, {"/spikes", "element (0, 1, 1) = 0.5", "not a whole number"});
  {
    auto f = h5::File::create(path("inf.h5"));
    std::vector<double> v(2 * 3 * 4, 1.0);
    v[23] = INFINITY;
    f.write("/spikes", {2, 3, 4}, H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, v.data());
    f.write_attribute("/", "bin_ms", 20.0);
  }
  o.path = path("inf.h5").string();
  expect_data_error(o, {"element (1, 2, 3) = inf", "infinite"});
  // Non-finite spike times in NWB.
  write_nwb(path("t.nwb"), {0.1, NAN}, {2}, {0.0}, {1.0});
  o.path = path("t.nwb").string();
  expect_data_error(o, {"/units/spike_times", "element 1 is nan"});
}

TEST_F(DataFiles, ZeroNeuronsOrTrialsAreRejected) {
  write_nwb(path("nounit.nwb"), {}, {}, {0.0}, {1.0});
  DataOptions o;
  o.path = path("nounit.nwb").string();
  expect_data_error(o, {"/units/spike_times_index", "zero units"});
  write_nwb(path("notrial.nwb"), {0.1}, {1}, {}, {});
  o.path = path("notrial.nwb").string();
  expect_data_error(o, {"/intervals/trials", "zero trials"});
  write_mat(path("zero.mat"), {MatTrial{0, 40, {}, "a"}});
  expect_data_error(mat_options(path("zero.mat")), {"D(1).data", "zero rows"});
  {
    auto f = h5::File::create(path("zero.h5"));
    std::vector<double> v;
    f.write("/spikes", {3, 10, 0}, H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, v.data());
    f.write_attribute("/", "bin_ms", 20.0);
  }
  o.path = path("zero.h5").string();
  expect_data_error(o, {"/spikes", "zero neurons"});
}

// Found by a tester: when every trial is shorter than one bin, the refusal advised
// data.window_bins, which cannot help; it now advises a smaller bin width.
TEST_F(DataFiles, EveryTrialShorterThanOneBinAsksForASmallerBinWidth) {
  write_mat(path("short.mat"), {constant_trial(2, 10, 0.0), constant_trial(2, 10, 1.0)});  // 10 ms each
  DataOptions o = mat_options(path("short.mat"));
  o.bin_ms = 20;
  expect_data_error(o, {"D.data", "every trial is shorter than one bin of 20 ms: expected a smaller data.bin_ms"});
  write_mat(path("one.mat"), {constant_trial(2, 40, 0.0), constant_trial(2, 10, 1.0)});
  expect_data_error(mat_options(path("one.mat")), {"trial 2 is shorter than one bin of 20 ms", "data.window_bins"});
}

TEST_F(DataFiles, WindowLongerThanEveryTrialIsRejected) {
  write_mat(path("w.mat"), {constant_trial(2, 400, 0.0), constant_trial(2, 300, 0.0)});
  DataOptions o = mat_options(path("w.mat"));
  o.window_bins = 21;  // trials hold 20 and 15 bins of 20 ms
  expect_data_error(o, {"D.data", "window of 21 bins (420 ms) is longer than every trial",
                        "longest 20 bins"});
  // Continuous NWB sessions need a window, and it must fit the session.
  write_nwb(path("c.nwb"), {0.5, 1.5}, {2}, {0.0}, {1.0});
  {
    // Same file without the trials table.
    auto f = h5::File::create(path("cont.nwb"));
    f.create_group("/units");
    std::vector<double> t = {0.5, 1.5};
    std::vector<int64_t> idx = {2};
    f.write("/units/spike_times", {2}, H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, t.data());
    f.write("/units/spike_times_index", {1}, H5T_NATIVE_INT64, H5T_STD_I64LE, idx.data());
  }
  DataOptions c;
  c.path = path("cont.nwb").string();
  expect_data_error(c, {"no trials table and data.window_bins = 0"});
  c.window_bins = 100;  // 2 s of 20 ms bins > 1.5 s session
  expect_data_error(c, {"window of 100 bins", "longer than every trial"});
  c.window_bins = 25;  // 0.5 s windows: [0, .5) [.5, 1) [1, 1.5)
  Dataset d = load_dataset(c);
  EXPECT_EQ(d.n_trials(), 3);
  EXPECT_EQ(d.spikes_btn.sum().item<double>(), 1.0);  // 1.5 s falls after the last window
  EXPECT_EQ(d.spikes_btn[1][0][0].item<double>(), 1.0);
  // Spike times before 0 s are outside the continuous session: said, not dropped silently.
  {
    auto f = h5::File::create(path("neg.nwb"));
    f.create_group("/units");
    std::vector<double> t = {-5.0, -0.1, 0.5, 1.5};
    std::vector<int64_t> idx = {4};
    f.write("/units/spike_times", {4}, H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, t.data());
    f.write("/units/spike_times_index", {1}, H5T_NATIVE_INT64, H5T_STD_I64LE, idx.data());
  }
  c.path = path("neg.nwb").string();
  data_detail::LogCapture log;
  d = load_dataset(c);
  EXPECT_EQ(d.n_trials(), 3);
  const bool said = std::any_of(log.lines().begin(), log.lines().end(), [](const std::string& line) {
    return line.find("/units/spike_times: 2 spike times before 0 s lie outside the continuous session") !=
           std::string::npos;
  });
  EXPECT_TRUE(said) << ::testing::PrintToString(log.lines());
  // A condition column cannot stratify a continuous session: said, not ignored silently.
  c.condition_field = "stimCategory";
  data_detail::LogCapture log2;
  d = load_dataset(c);
  EXPECT_TRUE(d.conditions.empty());
  const bool noted = std::any_of(log2.lines().begin(), log2.lines().end(), [](const std::string& line) {
    return line.find("data.condition_field = 'stimCategory' not used: a continuous session (no trials table) has "
                     "no per-trial conditions") != std::string::npos;
  });
  EXPECT_TRUE(noted) << ::testing::PrintToString(log2.lines());
}

// Found by a tester: a 0.001 ms bin width asked Torch for 86 GB and died with its stack
// trace. The size is now estimated before anything is allocated.
TEST_F(DataFiles, BinnedTensorLargerThanMemoryIsRejectedBeforeAllocating) {
  write_nwb(path("big.nwb"), {0.5, 1.5}, {2}, {0.0}, {10.0});
  DataOptions o;
  o.path = path("big.nwb").string();
  o.bin_ms = 1e-9;  // 10 s of 1e-12 s bins: 1e13 bins
  expect_data_error(o, {"/intervals/trials", "binning at 1e-09 ms", "of memory",
                        "expected a larger data.bin_ms"});
  o.window_bins = 1;  // 1e13 windows of one bin
  expect_data_error(o, {"of memory"});
}

// Found by a tester: one corrupt spike time (1e12 s) in a continuous session made the size
// refusal advise a larger bin width; it now names the spike time that set the session's length.
TEST_F(DataFiles, ContinuousSessionStretchedByOneLateSpikeNamesIt) {
  {
    auto f = h5::File::create(path("late.nwb"));
    f.create_group("/units");
    std::vector<double> t = {0.5, 1.5, 0.2, 1e12};
    std::vector<int64_t> idx = {2, 4};
    f.write("/units/spike_times", {4}, H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, t.data());
    f.write("/units/spike_times_index", {2}, H5T_NATIVE_INT64, H5T_STD_I64LE, idx.data());
  }
  DataOptions o;
  o.path = path("late.nwb").string();
  o.window_bins = 25;
  expect_data_error(o, {"/units/spike_times", "of memory",
                        "the continuous session runs from 0 s to the latest spike time, 1e+12 s (unit 1, id 1)",
                        "corrupt or not in seconds"});
}

TEST_F(DataFiles, InconsistentShapesAreRejected) {
  write_mat(path("rows.mat"), {constant_trial(3, 40, 1.0), constant_trial(2, 40, 1.0)});
  expect_data_error(mat_options(path("rows.mat")),
                    {"D(2).data", "has 2 rows (neurons) but D(1).data has 3"});
  write_nwb(path("idx.nwb"), {0.1, 0.2, 0.3}, {1, 2}, {0.0}, {1.0});
  DataOptions o;
  o.path = path("idx.nwb").string();
  expect_data_error(o, {"/units/spike_times_index", "last END offset 2", "holds 3 values"});
  {
    auto f = h5::File::create(path("inputs.h5"));
    std::vector<double> s(2 * 3 * 4, 1.0), in(3 * 3 * 1, 0.0);
    f.write("/spikes", {2, 3, 4}, H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, s.data());
    f.write("/inputs", {3, 3, 1}, H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, in.data());
    f.write_attribute("/", "bin_ms", 20.0);
  }
  o.path = path("inputs.h5").string();
  expect_data_error(o, {"/inputs", "shape (3, 3, 1)", "trials = 2, time = 3"});
}

TEST_F(DataFiles, MatTrialsOfUnequalLengthAreCroppedOrSplit) {
  auto a = constant_trial(2, 400, 1.0, "left");   // 20 bins of 20 ms, 20 spikes per bin
  auto b = constant_trial(2, 310, 2.0, "right");  // 15 bins (10 source bins dropped)
  write_mat(path("u.mat"), {a, b});
  DataOptions o = mat_options(path("u.mat"));
  o.condition_field = "condition";
  Dataset crop = load_dataset(o);
  ASSERT_EQ(crop.spikes_btn.sizes(), (std::vector<int64_t>{2, 15, 2}));
  EXPECT_EQ(crop.spikes_btn[0].sum().item<double>(), 15 * 2 * 20.0);
  EXPECT_EQ(crop.spikes_btn[1].sum().item<double>(), 15 * 2 * 40.0);
  EXPECT_EQ(crop.conditions, (std::vector<std::string>{"left", "right"}));
  o.window_bins = 5;
  Dataset split = load_dataset(o);
  ASSERT_EQ(split.spikes_btn.sizes(), (std::vector<int64_t>{7, 5, 2}));  // 4 + 3 windows
  EXPECT_EQ(split.conditions,
            (std::vector<std::string>{"left", "left", "left", "left", "right", "right", "right"}));
  EXPECT_EQ(split.source_trial, (std::vector<int64_t>{0, 0, 0, 0, 1, 1, 1}));  // for data.split_by
  EXPECT_TRUE(crop.source_trial.empty());
  o.bin_ms = 2.5;  // 2.5 source bins of 1 ms
  expect_data_error(o, {"not a whole multiple of data.source_bin_ms"});
}

// libmatio reads a v5 file cut inside its last variable without complaint (the shared
// recording cut at 147 kB lost 317 of its spikes silently); the framing check refuses it.
TEST_F(DataFiles, TruncatedMatV5FilesAreRefused) {
  std::vector<MatTrial> trials;
  for (int i = 0; i < 20; ++i) {
    trials.push_back(constant_trial(4, 200, 0.0, "c"));
    for (size_t k = 0; k < trials.back().values.size(); ++k)
      trials.back().values[k] = static_cast<double>((k * 7 + static_cast<size_t>(i)) % 5);
  }
  write_mat(path("whole.mat"), trials);
  DataOptions o = mat_options(path("whole.mat"));
  EXPECT_NO_THROW(load_dataset(o));
  std::ifstream in(path("whole.mat"), std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (size_t cut : {bytes.size() - 1, bytes.size() - 40, bytes.size() / 2}) {
    SCOPED_TRACE(cut);
    std::ofstream(path("cut.mat"), std::ios::binary) << bytes.substr(0, cut);
    expect_data_error(mat_options(path("cut.mat")), {"the file is truncated", "cut.mat"});
  }
}

TEST_F(DataFiles, MatV73FilesReadLikeV5) {
  std::vector<MatTrial> trials = {constant_trial(3, 100, 0.0, "x"), constant_trial(3, 100, 0.0, "y")};
  for (size_t i = 0; i < trials[1].values.size(); ++i) trials[1].values[i] = static_cast<double>(i % 4);
  write_mat(path("v5.mat"), trials);
  write_mat(path("v73.mat"), trials, /*v73=*/true);
  DataOptions o = mat_options(path("v5.mat"));
  o.condition_field = "condition";
  Dataset v5 = load_dataset(o);
  o.path = path("v73.mat").string();
  Dataset v73 = load_dataset(o);
  ASSERT_EQ(v73.spikes_btn.sizes(), (std::vector<int64_t>{2, 5, 3}));
  EXPECT_TRUE(torch::equal(v5.spikes_btn, v73.spikes_btn));
  EXPECT_EQ(v73.spikes_btn[1].sum().item<double>(), 450.0);  // 300 values of mean 1.5
  EXPECT_EQ(v73.conditions, (std::vector<std::string>{"x", "y"}));
  EXPECT_NE(v73.provenance.find("v7.3"), std::string::npos) << v73.provenance;
}

TEST(DatasetSha256, ChangesWithAnyCountOrLabelAndOnlyThen) {
  Dataset d;
  d.spikes_btn = torch::zeros({3, 4, 5});
  d.conditions = {"a", "b", "a"};
  d.bin_ms = 20.0;
  const std::string h = dataset_sha256(d);
  EXPECT_EQ(h.size(), 64u);
  Dataset same = d;
  same.spikes_btn = d.spikes_btn.clone();
  same.provenance = "another description";
  EXPECT_EQ(dataset_sha256(same), h) << "provenance text is not data";
  same.spikes_btn[1][2][3] = 1.0;
  EXPECT_NE(dataset_sha256(same), h);
  same = d;
  same.conditions[2] = "b";
  EXPECT_NE(dataset_sha256(same), h);
  same = d;
  same.bin_ms = 10.0;
  EXPECT_NE(dataset_sha256(same), h);
  same = d;
  same.spikes_btn = torch::zeros({3, 5, 4});  // same bytes, other shape
  EXPECT_NE(dataset_sha256(same), h);
}

// Labels that are all unique (one clip per trial) used to leave no validation trial at all,
// and the log blamed valid_fraction = 0: single-trial conditions are now split as one pool.
TEST(Split, ConditionsOfOneTrialAreSplitTogether) {
  Dataset d;
  d.spikes_btn = torch::zeros({20, 4, 5});
  for (int i = 0; i < 20; ++i) d.conditions.push_back("clip" + std::to_string(i));
  DataOptions o;
  o.valid_fraction = 0.2;
  Split s = make_split(d, o);
  EXPECT_EQ(s.valid_trials.size(), 4u);
  EXPECT_EQ(s.train_trials.size(), 16u);
  // Mixed: two conditions of 5 trials keep their stratified share (1 each); the 10
  // singletons give 2 more.
  for (int i = 0; i < 10; ++i) d.conditions[static_cast<size_t>(i)] = i < 5 ? "a" : "b";
  s = make_split(d, o);
  std::map<std::string, int> per;
  for (int64_t t : s.valid_trials) ++per[d.conditions[static_cast<size_t>(t)]];
  EXPECT_EQ(per["a"], 1);
  EXPECT_EQ(per["b"], 1);
  EXPECT_EQ(s.valid_trials.size(), 4u);
  // One trial: nothing to validate on, whatever the fraction.
  Dataset one;
  one.spikes_btn = torch::zeros({1, 4, 5});
  one.conditions = {"only"};
  EXPECT_TRUE(make_split(one, o).valid_trials.empty());
}

// Found by a tester: with data.window_bins the split drew windows, so consecutive windows of one
// trial validated and trained. data.split_by = "trial" draws the recorded trials instead.
TEST(Split, ByTrialKeepsEveryWindowOfARecordedTrialOnOneSide) {
  Dataset d;
  d.spikes_btn = torch::zeros({40, 4, 5});  // 10 recorded trials × 4 windows, 2 conditions
  for (int w = 0; w < 40; ++w) {
    d.source_trial.push_back(w / 4);
    d.conditions.push_back(w / 4 < 5 ? "face" : "place");
  }
  DataOptions o;
  o.valid_fraction = 0.2;
  const Split by_window = make_split(d, o);  // the default: windows on their own
  EXPECT_EQ(by_window.valid_trials.size(), 8u);
  o.split_by = "trial";
  const Split s = make_split(d, o);
  std::set<int64_t> valid_sources, train_sources;
  for (int64_t w : s.valid_trials) valid_sources.insert(d.source_trial[static_cast<size_t>(w)]);
  for (int64_t w : s.train_trials) train_sources.insert(d.source_trial[static_cast<size_t>(w)]);
  EXPECT_EQ(valid_sources.size(), 2u);  // one recorded trial per condition: round(0.2 · 5)
  EXPECT_EQ(s.valid_trials.size(), 8u);  // with all their windows
  for (int64_t t : valid_sources) EXPECT_FALSE(train_sources.count(t)) << "trial " << t << " on both sides";
  std::set<std::string> valid_conditions;
  for (int64_t w : s.valid_trials) valid_conditions.insert(d.conditions[static_cast<size_t>(w)]);
  EXPECT_EQ(valid_conditions, (std::set<std::string>{"face", "place"}));
  EXPECT_EQ(s.train_trials.size() + s.valid_trials.size(), 40u);
  // Without windows (no source_trial) it is the same as the default.
  Dataset whole;
  whole.spikes_btn = torch::zeros({10, 4, 5});
  DataOptions by_trial = o, by_default;
  by_default.valid_fraction = 0.2;
  EXPECT_EQ(make_split(whole, by_trial).valid_trials, make_split(whole, by_default).valid_trials);
  // Windows of one continuous session: no recorded trial is left for validation.
  Dataset session;
  session.spikes_btn = torch::zeros({6, 4, 5});
  session.source_trial.assign(6, 0);
  try {
    make_split(session, o);
    ADD_FAILURE() << "split_by = trial on one continuous session was accepted";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("the 6 windows come from 1 recorded trial (a continuous session)"),
              std::string::npos)
        << e.what();
  }
}

TEST(Split, IsDeterministicDisjointAndCompleteWithoutLabels) {
  Dataset d;
  d.spikes_btn = torch::zeros({50, 4, 20});
  DataOptions o;
  o.valid_fraction = 0.3;
  o.heldout_neurons = 0.2;
  o.split_seed = 11;
  Split a = make_split(d, o), b = make_split(d, o);
  EXPECT_EQ(a.valid_trials, b.valid_trials);
  EXPECT_EQ(a.heldout_neurons, b.heldout_neurons);
  EXPECT_EQ(a.valid_trials.size(), 15u);
  EXPECT_EQ(a.heldout_neurons.size(), 4u);
  std::set<int64_t> all(a.train_trials.begin(), a.train_trials.end());
  for (int64_t t : a.valid_trials) EXPECT_TRUE(all.insert(t).second) << "trial " << t << " twice";
  EXPECT_EQ(all.size(), 50u);
  EXPECT_TRUE(std::is_sorted(a.valid_trials.begin(), a.valid_trials.end()));
  std::set<int64_t> neurons(a.heldin_neurons.begin(), a.heldin_neurons.end());
  for (int64_t n : a.heldout_neurons) EXPECT_TRUE(neurons.insert(n).second);
  EXPECT_EQ(neurons.size(), 20u);
  o.split_seed = 12;
  EXPECT_NE(make_split(d, o).valid_trials, a.valid_trials);
  o.valid_fraction = 0.0;
  EXPECT_TRUE(make_split(d, o).valid_trials.empty());
  // A fraction that rounds to no held-out neuron would silently turn co-smoothing off.
  o.heldout_neurons = 0.02;  // 0.4 of 20 neurons
  try {
    make_split(d, o);
    ADD_FAILURE() << "heldout_neurons = 0.02 of 20 neurons was accepted";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("0.02 of 20 neurons rounds to no held-out neuron: use e.g. 0.05 (1/20: one neuron)"),
              std::string::npos)
        << e.what();
  }
  o.heldout_neurons = 0.05;
  EXPECT_EQ(make_split(d, o).heldout_neurons.size(), 1u);
}
