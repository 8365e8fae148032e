jslds_add_test(query_test SOURCES unit/query_test.cpp LIBS jslds_store LABEL unit)
# CLI level: runs the jslds executable on a small database (query, best, show, export, status).
jslds_add_test(cli_query_test SOURCES e2e/cli_query_test.cpp LIBS jslds_store jslds_coordinator nlohmann_json::nlohmann_json
  LABEL e2e TIMEOUT 120)
add_dependencies(cli_query_test jslds)
