# Analysis (MODEL.md §7) on known systems: no trained model needed.
jslds_add_test(analysis_test
  SOURCES
    core/analysis/generator_maps_test.cpp
    core/analysis/fixed_points_test.cpp
    core/analysis/known_systems_test.cpp
    core/analysis/analysis_output_test.cpp
    core/analysis/cpu_kernels_test.cpp
  LIBS jslds_core hdf5::hdf5
  LABEL core
  TIMEOUT 300)
target_precompile_headers(analysis_test REUSE_FROM jslds_core)

# The glue to a trained JsldsModel (core/analysis/model_analysis.h): tiny untrained models.
jslds_add_test(model_analysis_test
  SOURCES core/analysis/model_analysis_test.cpp
  LIBS jslds_core
  LABEL core)
target_precompile_headers(model_analysis_test REUSE_FROM jslds_core)

# `jslds train` with the analysis and `jslds analyze`, end to end (a 20-step training per test).
jslds_add_test(analyze_cli_test
  SOURCES core/analysis/analyze_cli_test.cpp
  LIBS nlohmann_json::nlohmann_json
  LABEL e2e)
add_dependencies(analyze_cli_test jslds)
