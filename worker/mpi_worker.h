// The loop of MPI ranks > 0 (DESIGN §2): tasks from rank 0, children supervised here.
#pragma once

#include "coordinator/mpi.h"
#include "worker/worker_loop.h"

namespace jslds {

/// Runs the worker loop over MPI until rank 0 sends Shutdown. Places children with
/// `layout` (threads = cores / workers on the node; GPU = worker rank mod GPUs) unless
/// options.supervisor already sets them. Reacts to stop signals (StopSignals must be
/// installed by the caller). Throws MpiError or ProtocolError; the caller aborts the job.
void run_mpi_worker(const MpiSession& session, const NodeLayout& layout,
                    WorkerLoopOptions options);

}  // namespace jslds
