# bench/dispatch: per-run coordinator overhead, rank 0 CPU and worker utilisation of
# `mpirun -np 5 jslds sweep` with the stand-in trainer (issue 6).
if(NOT TARGET jslds_fake_train)  # tests/sweep.cmake defines it when BUILD_TESTING is on
  add_executable(jslds_fake_train ${PROJECT_SOURCE_DIR}/tests/sweep/fake_train.cpp)
  target_link_libraries(jslds_fake_train PRIVATE jslds_config CLI11::CLI11 fmt::fmt
    nlohmann_json::nlohmann_json jslds_warnings)
endif()
# The no-op child: static, so a run costs a fork and an exec, not a dynamic loader.
add_executable(jslds_noop_child noop_child.c)
target_link_options(jslds_noop_child PRIVATE -static)
add_executable(bench_dispatch dispatch.cpp)
set_target_properties(bench_dispatch PROPERTIES OUTPUT_NAME dispatch)
target_link_libraries(bench_dispatch PRIVATE jslds_worker jslds_store
  nlohmann_json::nlohmann_json jslds_warnings)
target_compile_definitions(bench_dispatch PRIVATE
  JSLDS_EXE="$<TARGET_FILE:jslds>"
  JSLDS_FAKE_TRAIN_EXE="$<TARGET_FILE:jslds_fake_train>"
  JSLDS_NOOP_CHILD_EXE="$<TARGET_FILE:jslds_noop_child>")
add_dependencies(bench_dispatch jslds jslds_fake_train jslds_noop_child)
