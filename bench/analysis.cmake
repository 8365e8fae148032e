# Fixed-point search speed (issue 5): prints one JSON object; compare with
# ../shared/reference/ref_fixed_points.py bench.
add_executable(bench_fixed_points fixed_points.cpp)
target_link_libraries(bench_fixed_points PRIVATE jslds_core CLI11::CLI11 jslds_warnings)
target_precompile_headers(bench_fixed_points REUSE_FROM jslds_core)
