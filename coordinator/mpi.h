// A thin RAII layer over MPI (DESIGN §2, STYLE "Arbor"): every call's return code is checked
// and a failure throws MpiError with the call's name; the session finalises only when no
// exception is unwinding; fatal errors MPI_Abort every rank instead of leaving some blocked
// in a receive.
//
// Only `jslds sweep` under mpirun uses MPI. The `jslds train` children never do.
#pragma once

#include <list>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace jslds {

/// An MPI call failed: "MPI_Send failed: <MPI's error string>".
class MpiError : public std::runtime_error {
 public:
  MpiError(const char* call, int code);
  const char* call() const { return call_; }
  int code() const { return code_; }

 private:
  const char* call_;
  int code_;
};

/// Throws MpiError(call, rc) unless rc is MPI_SUCCESS.
void mpi_check(int rc, const char* call);

/// True when this process was started by mpirun/mpiexec/srun with a PMI (Open MPI's
/// OMPI_COMM_WORLD_SIZE, PMIx's PMIX_RANK or PMI's PMI_SIZE is set).
bool launched_by_mpi();

/// Where this process sits on its node, for placing children (DESIGN §2).
struct NodeLayout {
  std::string host;          // MPI_Get_processor_name
  int node_rank = 0;         // rank among all ranks on this node (MPI_COMM_TYPE_SHARED)
  int node_size = 1;         // ranks on this node
  bool has_coordinator = false;  // world rank 0 is on this node
  /// Rank among the workers (world ranks > 0) on this node, and their number.
  int worker_rank() const { return node_rank - (has_coordinator ? 1 : 0); }
  int workers_on_node() const { return node_size - (has_coordinator ? 1 : 0); }
};

/// MPI_Init_thread (MPI_THREAD_FUNNELED) … MPI_Finalize. One per process. Sets
/// MPI_ERRORS_RETURN on MPI_COMM_WORLD so that failures become MpiError.
class MpiSession {
 public:
  MpiSession(int* argc, char*** argv);
  /// Finalises unless an exception is unwinding (then the other ranks would wait forever in
  /// MPI_Finalize's barrier; the caller must abort() instead). Never throws.
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }

  /// Collective over MPI_COMM_WORLD: every rank must call it, in the same order.
  NodeLayout node_layout() const;

  /// Prints "jslds: rank R: MESSAGE" on stderr and MPI_Abort(MPI_COMM_WORLD, code): every
  /// rank ends, none is left blocked. Safe to call while unwinding.
  [[noreturn]] static void abort(int code, std::string_view message);

 private:
  int rank_ = 0;
  int size_ = 1;
};

/// Point-to-point byte messages on MPI_COMM_WORLD with one tag, never blocking: sends are
/// MPI_Isend whose buffers are kept until complete; receives are MPI_Iprobe + MPI_Recv of a
/// message already arrived. Messages between one pair of ranks arrive in send order.
/// Used by one thread only.
class MpiMailbox {
 public:
  MpiMailbox();
  /// Waits up to 5 s for outstanding sends, then cancels what is left. Never throws.
  ~MpiMailbox();
  MpiMailbox(const MpiMailbox&) = delete;
  MpiMailbox& operator=(const MpiMailbox&) = delete;

  /// Starts sending `bytes` to `rank`. Throws MpiError.
  void send(int rank, std::string bytes);
  /// A message that has arrived from any rank: (source rank, bytes), or nullopt. Also
  /// completes finished sends. Throws MpiError.
  std::optional<std::pair<int, std::string>> try_receive();
  /// Waits (testing and sleeping 1 ms) until every send has completed or `seconds` passed.
  /// Returns true when all completed.
  bool flush(double seconds);

 private:
  struct Pending;
  void complete_sends();
  std::list<Pending> pending_;
};

}  // namespace jslds
