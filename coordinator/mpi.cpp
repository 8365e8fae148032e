#include "coordinator/mpi.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <thread>

#include <fmt/format.h>
#include <mpi.h>

namespace jslds {

namespace {

std::string error_string(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  if (MPI_Error_string(code, text, &length) != MPI_SUCCESS) return fmt::format("error {}", code);
  return std::string(text, static_cast<size_t>(length));
}

}  // namespace

MpiError::MpiError(const char* call, int code)
    : std::runtime_error(fmt::format("{} failed: {}", call, error_string(code))),
      call_(call),
      code_(code) {}

void mpi_check(int rc, const char* call) {
  if (rc != MPI_SUCCESS) throw MpiError(call, rc);
}

bool launched_by_mpi() {
  return std::getenv("OMPI_COMM_WORLD_SIZE") != nullptr || std::getenv("PMIX_RANK") != nullptr ||
         std::getenv("PMI_SIZE") != nullptr;
}

// ---------------------------------------------------------------------------------------

MpiSession::MpiSession(int* argc, char*** argv) {
  int initialized = 0;
  mpi_check(MPI_Initialized(&initialized), "MPI_Initialized");
  if (initialized) throw std::logic_error("MpiSession: MPI is already initialised");
  // Open MPI's MPI_Init turns on yield-when-idle by itself when the node is oversubscribed:
  // every MPI call that makes progress then gives the processor away. Our ranks never wait
  // inside MPI (they sleep between non-blocking checks, IdleBackoff), so the yield only put a
  // rank that had just sent a result, or a task, behind the training children: measured on 2
  // cores with 4 workers, a worker's send of a result took 1 ms (median) instead of 20 µs.
  // Off unless the user chose otherwise (--mca mpi_yield_when_idle 1 sets this variable);
  // other MPIs ignore it.
  ::setenv("OMPI_MCA_mpi_yield_when_idle", "0", /*overwrite=*/0);
  int provided = 0;
  // FUNNELED: only the main thread calls MPI (the worker's supervisor does not).
  mpi_check(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
  try {
    mpi_check(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN),
              "MPI_Comm_set_errhandler");
    mpi_check(MPI_Comm_rank(MPI_COMM_WORLD, &rank_), "MPI_Comm_rank");
    mpi_check(MPI_Comm_size(MPI_COMM_WORLD, &size_), "MPI_Comm_size");
  } catch (const std::exception& e) {
    abort(1, e.what());
  }
}

MpiSession::~MpiSession() {
  if (std::uncaught_exceptions() > 0) return;  // the handler up the stack must abort()
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

NodeLayout MpiSession::node_layout() const {
  NodeLayout layout;
  char name[MPI_MAX_PROCESSOR_NAME];
  int length = 0;
  mpi_check(MPI_Get_processor_name(name, &length), "MPI_Get_processor_name");
  layout.host.assign(name, static_cast<size_t>(length));
  MPI_Comm node = MPI_COMM_NULL;
  mpi_check(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL,
                                &node),
            "MPI_Comm_split_type");
  struct Free {
    MPI_Comm* comm;
    ~Free() { MPI_Comm_free(comm); }
  } free_node{&node};
  mpi_check(MPI_Comm_rank(node, &layout.node_rank), "MPI_Comm_rank");
  mpi_check(MPI_Comm_size(node, &layout.node_size), "MPI_Comm_size");
  int mine = rank_ == 0 ? 1 : 0, sum = 0;
  mpi_check(MPI_Allreduce(&mine, &sum, 1, MPI_INT, MPI_SUM, node), "MPI_Allreduce");
  layout.has_coordinator = sum > 0;
  return layout;
}

void MpiSession::abort(int code, std::string_view message) {
  int rank = -1, initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized && !finalized) MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  std::fprintf(stderr, "jslds: rank %d: %.*s\n", rank, static_cast<int>(message.size()),
               message.data());
  std::fflush(stderr);
  if (initialized && !finalized) MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);
}

// ---------------------------------------------------------------------------------------

namespace {
constexpr int kTag = 7;  // the one tag of jslds messages
}

struct MpiMailbox::Pending {
  std::string bytes;
  MPI_Request request = MPI_REQUEST_NULL;
};

MpiMailbox::MpiMailbox() = default;

MpiMailbox::~MpiMailbox() {
  try {
    if (flush(5.0)) return;
  } catch (...) {
  }
  for (auto& p : pending_) {
    MPI_Cancel(&p.request);
    MPI_Request_free(&p.request);
  }
}

void MpiMailbox::send(int rank, std::string bytes) {
  pending_.push_back(Pending{std::move(bytes), MPI_REQUEST_NULL});
  auto& p = pending_.back();
  int rc = MPI_Isend(p.bytes.data(), static_cast<int>(p.bytes.size()), MPI_BYTE, rank, kTag,
                     MPI_COMM_WORLD, &p.request);
  if (rc != MPI_SUCCESS) {
    pending_.pop_back();
    throw MpiError("MPI_Isend", rc);
  }
  complete_sends();
}

void MpiMailbox::complete_sends() {
  for (auto it = pending_.begin(); it != pending_.end();) {
    int done = 0;
    mpi_check(MPI_Test(&it->request, &done, MPI_STATUS_IGNORE), "MPI_Test");
    it = done ? pending_.erase(it) : std::next(it);
  }
}

std::optional<std::pair<int, std::string>> MpiMailbox::try_receive() {
  complete_sends();
  int flag = 0;
  MPI_Status status;
  mpi_check(MPI_Iprobe(MPI_ANY_SOURCE, kTag, MPI_COMM_WORLD, &flag, &status), "MPI_Iprobe");
  if (!flag) return std::nullopt;
  int count = 0;
  mpi_check(MPI_Get_count(&status, MPI_BYTE, &count), "MPI_Get_count");
  std::string bytes(static_cast<size_t>(count), '\0');
  mpi_check(MPI_Recv(bytes.data(), count, MPI_BYTE, status.MPI_SOURCE, kTag, MPI_COMM_WORLD,
                     MPI_STATUS_IGNORE),
            "MPI_Recv");
  return std::make_pair(status.MPI_SOURCE, std::move(bytes));
}

bool MpiMailbox::flush(double seconds) {
  auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (true) {
    complete_sends();
    if (pending_.empty()) return true;
    if (std::chrono::steady_clock::now() >= end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

}  // namespace jslds
