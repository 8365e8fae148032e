# bench/train_step: steps/s of the co-trained model, co-training overhead, JVP routes (issue 4).
add_executable(train_step ${CMAKE_CURRENT_SOURCE_DIR}/train_step.cpp)
target_link_libraries(train_step PRIVATE jslds_core CLI11::CLI11 nlohmann_json::nlohmann_json jslds_warnings)
target_precompile_headers(train_step REUSE_FROM jslds_core)

# bench/blas_core: the OpenBLAS kernel set `jslds` asks for here (bench/run_all.sh uses it).
add_executable(blas_core ${CMAKE_CURRENT_SOURCE_DIR}/blas_core.cpp)
target_link_libraries(blas_core PRIVATE jslds_config nlohmann_json::nlohmann_json jslds_warnings)
