# Data area: loaders on ../shared/data and on small files the tests write, splits, simulators.
# The loader test writes HDF5 and MAT files itself, so it sees hdf5 and matio headers.
jslds_add_test(data_loaders_test SOURCES core/data_loaders_test.cpp
  LIBS jslds_core hdf5::hdf5 PkgConfig::MATIO LABEL core TIMEOUT 120)
jslds_add_test(data_simulators_test SOURCES core/data_simulators_test.cpp
  LIBS jslds_core LABEL core TIMEOUT 120)
