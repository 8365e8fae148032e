# Analysis (MODEL.md §7) on known systems: no trained model needed.
jslds_add_test(analysis_test
  SOURCES
    core/analysis/generator_maps_test.cpp
    core/analysis/fixed_points_test.cpp
    core/analysis/known_systems_test.cpp
    core/analysis/analysis_output_test.cpp
  LIBS jslds_core hdf5::hdf5
  LABEL core
  TIMEOUT 300)
target_precompile_headers(analysis_test REUSE_FROM jslds_core)
