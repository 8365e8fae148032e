jslds_add_test(store_test SOURCES unit/store_test.cpp LIBS jslds_store LABEL unit)
