# Fixed-point search speed (issue 5): build/bench/fixed_points (the name bench/run_all.sh runs)
# prints one JSON object; compare with
# ../shared/reference/ref_fixed_points.py bench.
add_executable(fixed_points fixed_points.cpp)
target_link_libraries(fixed_points PRIVATE jslds_core CLI11::CLI11 jslds_warnings)
target_precompile_headers(fixed_points REUSE_FROM jslds_core)
