// Schema of the experiment database (DESIGN §5; docs/database.md documents every table and
// view) and its migrations, versioned through PRAGMA user_version.
//
// Version history:
//   1: campaigns, runs, params, metrics, summaries, fixed_points, modes, artifacts, events;
//      views run_overview, run_params, run_summaries.
//   2: fixed_points.refined (1 when the Newton refinement polished the point into a fixed
//      point, 0 for a slow point; NULL for expansion points and for rows written before v2).
// A new version appends one migration step to schema.cpp; the steps run in order inside one
// transaction, so a database is always at exactly one version.
#pragma once

#include "store/sqlite.h"

namespace jslds::store {

/// The schema version this build writes and reads.
inline constexpr int kSchemaVersion = 3;

/// PRAGMA user_version of the open database (0 for a new, empty file).
int schema_version(Database& db);

/// Throws StoreError, before anything in the file changes, when it is not a database a
/// writer may open: another program's (tables without jslds's schema version, or a version
/// without jslds's tables) or a newer jslds's. An empty file passes. Returns the schema
/// version (0 for an empty file).
int refuse_foreign_database(Database& db);

/// Brings a writable database to kSchemaVersion: creates every table and view on an empty
/// database and runs the pending migrations on an older one, in one transaction.
/// Throws StoreError when the file was written by a newer jslds (user_version greater than
/// kSchemaVersion: "upgrade jslds") or when user_version is 0 but the file already holds
/// tables (not a jslds database).
void apply_schema(Database& db);

/// For read-only connections: throws StoreError unless the database is at a version this
/// build understands (1..kSchemaVersion). An empty or foreign file is "not a jslds
/// experiment database"; a newer one asks to upgrade jslds.
void check_schema(Database& db);

}  // namespace jslds::store
