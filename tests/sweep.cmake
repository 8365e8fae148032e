# Sweeps and MPI (issue 6): unit tests of the pure parts (no Torch, no MPI run).
jslds_add_test(sweep_spec_test SOURCES unit/sweep_spec_test.cpp
  LIBS jslds_coordinator LABEL unit)
jslds_add_test(scheduler_test SOURCES unit/scheduler_test.cpp
  LIBS jslds_coordinator LABEL unit)
jslds_add_test(protocol_test SOURCES unit/protocol_test.cpp
  LIBS jslds_protocol LABEL unit)
