# MPI: `mpirun -np 3 jslds sweep` with 2 worker ranks (the test starts mpirun itself, with
# --oversubscribe --allow-run-as-root so it runs as root on 2 cores).
jslds_add_test(mpi_sweep_test SOURCES mpi/mpi_sweep_test.cpp
  LIBS jslds_worker jslds_store LABEL mpi TIMEOUT 400)
target_compile_definitions(mpi_sweep_test PRIVATE
  JSLDS_FAKE_TRAIN_EXE="$<TARGET_FILE:jslds_fake_train>")
add_dependencies(mpi_sweep_test jslds_fake_train jslds)
