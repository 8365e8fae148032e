# bench_query: `jslds query`/`best --pareto` on a synthetic database of 100,000 runs (issue 7).
add_executable(bench_query query_bench.cpp)
target_link_libraries(bench_query PRIVATE jslds_store nlohmann_json::nlohmann_json
  CLI11::CLI11 jslds_warnings)
