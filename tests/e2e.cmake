# End to end (issue 8): a small campaign of real `jslds train` children on the premotor
# reaching recording under `mpirun -np 3`, then killed with SIGKILL mid-way and resumed.
# Skips when ../shared/data is absent. About 2 minutes on 2 cores.
jslds_add_test(reach_campaign_test SOURCES e2e/reach_campaign_test.cpp
  LIBS jslds_worker jslds_store nlohmann_json::nlohmann_json fmt::fmt OpenSSL::Crypto
  LABEL e2e TIMEOUT 600)
add_dependencies(reach_campaign_test jslds)
