jslds_add_test(config_test SOURCES unit/config_test.cpp LIBS jslds_config LABEL unit)
