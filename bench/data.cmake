# bench/data_load: time to load and bin each shared recording (median of 5), one JSON object.
add_executable(data_load ${CMAKE_CURRENT_SOURCE_DIR}/data_load.cpp)
target_link_libraries(data_load PRIVATE jslds_core nlohmann_json::nlohmann_json jslds_warnings)
target_compile_definitions(data_load PRIVATE
  JSLDS_SHARED_DATA_DIR="${PROJECT_SOURCE_DIR}/../shared/data")
