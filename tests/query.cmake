jslds_add_test(query_test SOURCES unit/query_test.cpp LIBS jslds_store LABEL unit)
