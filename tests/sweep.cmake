# Sweeps and MPI (issue 6): unit tests of the pure parts (no Torch, no MPI run).
jslds_add_test(sweep_spec_test SOURCES unit/sweep_spec_test.cpp
  LIBS jslds_coordinator LABEL unit)
jslds_add_test(scheduler_test SOURCES unit/scheduler_test.cpp
  LIBS jslds_coordinator LABEL unit)
jslds_add_test(artifacts_owner_test SOURCES unit/artifacts_owner_test.cpp
  LIBS jslds_coordinator LABEL unit)
jslds_add_test(protocol_test SOURCES unit/protocol_test.cpp
  LIBS jslds_protocol LABEL unit)
jslds_add_test(checkpoint_receipt_test SOURCES unit/checkpoint_receipt_test.cpp
  LIBS jslds_config LABEL unit)
jslds_add_test(atomic_file_test SOURCES unit/atomic_file_test.cpp
  LIBS jslds_config LABEL unit)

# A stand-in for `jslds train` (no Torch) that the supervisor, sweep, kill/resume tests and
# bench/dispatch run through JSLDS_TRAIN_EXE.
add_executable(jslds_fake_train sweep/fake_train.cpp)
target_link_libraries(jslds_fake_train PRIVATE jslds_config CLI11::CLI11 fmt::fmt
  nlohmann_json::nlohmann_json jslds_warnings)

jslds_add_test(supervisor_test SOURCES unit/supervisor_test.cpp
  LIBS jslds_worker nlohmann_json::nlohmann_json LABEL unit TIMEOUT 120)
target_compile_definitions(supervisor_test PRIVATE
  JSLDS_FAKE_TRAIN_EXE="$<TARGET_FILE:jslds_fake_train>")
add_dependencies(supervisor_test jslds_fake_train)

jslds_add_test(coordinator_test SOURCES unit/coordinator_test.cpp
  LIBS jslds_coordinator jslds_worker LABEL unit TIMEOUT 180)
target_compile_definitions(coordinator_test PRIVATE
  JSLDS_FAKE_TRAIN_EXE="$<TARGET_FILE:jslds_fake_train>")
add_dependencies(coordinator_test jslds_fake_train)

# CLI level: `jslds sweep` under mpirun, killed, signalled and resumed (fake children).
foreach(t sweep_kill_resume_test sweep_signal_test)
  jslds_add_test(${t} SOURCES e2e/${t}.cpp LIBS jslds_worker jslds_store LABEL e2e TIMEOUT 400)
  target_compile_definitions(${t} PRIVATE
    JSLDS_FAKE_TRAIN_EXE="$<TARGET_FILE:jslds_fake_train>")
  add_dependencies(${t} jslds_fake_train jslds)
endforeach()
