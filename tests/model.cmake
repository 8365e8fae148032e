# Model and training tests (core/model, core/train): CPU Torch, label core.
jslds_add_test(model_jvp_test SOURCES core/model_jvp_test.cpp LIBS jslds_core LABEL core)
target_precompile_headers(model_jvp_test REUSE_FROM jslds_core)
jslds_add_test(loss_metrics_test SOURCES core/loss_metrics_test.cpp LIBS jslds_core LABEL core)
target_precompile_headers(loss_metrics_test REUSE_FROM jslds_core)
jslds_add_test(train_checkpoint_test SOURCES core/train_checkpoint_test.cpp LIBS jslds_core LABEL core TIMEOUT 600)
target_precompile_headers(train_checkpoint_test REUSE_FROM jslds_core)
jslds_add_test(train_cli_test SOURCES core/train_cli_test.cpp LIBS jslds_config nlohmann_json::nlohmann_json LABEL e2e)
add_dependencies(train_cli_test jslds)
