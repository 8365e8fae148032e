#include "store/schema.h"

#include <string_view>

#include <fmt/format.h>

namespace jslds::store {
namespace {

// Version 1 (DESIGN §5). Times are UTC ISO-8601 text written by the store. Curves, params and
// summaries are WITHOUT ROWID tables keyed by (run, name[, step]) so that a lookup of one
// value of one run is a single B-tree probe (the query compiler relies on it).
constexpr std::string_view kSchemaV1 = R"sql(
CREATE TABLE campaigns (
  id               INTEGER PRIMARY KEY,
  name             TEXT NOT NULL UNIQUE,
  spec_toml        TEXT NOT NULL,
  spec_sha256      TEXT NOT NULL,
  method           TEXT NOT NULL,
  objective_metric TEXT NOT NULL,
  objective_goal   TEXT NOT NULL CHECK (objective_goal IN ('maximize', 'minimize')),
  status           TEXT NOT NULL,
  epoch            INTEGER NOT NULL DEFAULT 1,
  created_at       TEXT NOT NULL,
  updated_at       TEXT NOT NULL
);

CREATE TABLE runs (
  id            INTEGER PRIMARY KEY,
  campaign_id   INTEGER NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
  number        INTEGER NOT NULL,
  repeat        INTEGER NOT NULL DEFAULT 0,
  config_json   TEXT NOT NULL,
  config_sha256 TEXT NOT NULL,
  status        TEXT NOT NULL DEFAULT 'pending' CHECK (status IN
                  ('pending', 'running', 'done', 'failed', 'diverged', 'interrupted', 'pruned')),
  attempts      INTEGER NOT NULL DEFAULT 0,
  epoch         INTEGER NOT NULL DEFAULT 0,
  worker        TEXT,
  device        TEXT,
  run_dir       TEXT NOT NULL DEFAULT '',
  steps_done    INTEGER NOT NULL DEFAULT 0,
  started_at    TEXT,
  finished_at   TEXT,
  error         TEXT,
  UNIQUE (campaign_id, number),
  UNIQUE (campaign_id, config_sha256, repeat)
);
CREATE INDEX runs_by_status ON runs (campaign_id, status);

CREATE TABLE params (
  run_id     INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  name       TEXT NOT NULL,
  value_real REAL,
  value_text TEXT,
  PRIMARY KEY (run_id, name)
) WITHOUT ROWID;
CREATE INDEX params_by_name ON params (name, value_real, value_text);

CREATE TABLE metrics (
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  name   TEXT NOT NULL,
  step   INTEGER NOT NULL,
  value  REAL,
  PRIMARY KEY (run_id, name, step)
) WITHOUT ROWID;

CREATE TABLE summaries (
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  name   TEXT NOT NULL,
  value  REAL,
  PRIMARY KEY (run_id, name)
) WITHOUT ROWID;
CREATE INDEX summaries_by_name ON summaries (name, value);

CREATE TABLE fixed_points (
  run_id      INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  idx         INTEGER NOT NULL,
  source      TEXT NOT NULL CHECK (source IN ('expansion', 'numerical')),
  q           REAL,
  stability   TEXT NOT NULL CHECK (stability IN ('stable', 'marginal', 'unstable')),
  n_unstable  INTEGER NOT NULL,
  max_abs_eig REAL,
  coords      BLOB NOT NULL,
  PRIMARY KEY (run_id, idx)
);

CREATE TABLE modes (
  run_id    INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  point_idx INTEGER NOT NULL,
  mode_idx  INTEGER NOT NULL,
  eig_re    REAL,
  eig_im    REAL,
  abs       REAL,
  freq_hz   REAL,
  tau_s     REAL,
  PRIMARY KEY (run_id, point_idx, mode_idx)
);

CREATE TABLE artifacts (
  run_id     INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  kind       TEXT NOT NULL,
  path       TEXT NOT NULL,
  step       INTEGER,
  bytes      INTEGER NOT NULL,
  sha256     TEXT NOT NULL,
  created_at TEXT NOT NULL,
  PRIMARY KEY (run_id, kind, path)
);

CREATE TABLE events (
  id          INTEGER PRIMARY KEY,
  campaign_id INTEGER NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
  run_id      INTEGER REFERENCES runs(id) ON DELETE CASCADE,
  at          TEXT NOT NULL,
  level       TEXT NOT NULL CHECK (level IN ('info', 'warning', 'error')),
  message     TEXT NOT NULL
);
CREATE INDEX events_by_campaign ON events (campaign_id, id);
CREATE INDEX events_by_run ON events (run_id, id);

-- One row per run: status, how long it ran (seconds; a running run counts until now), and
-- its value of the campaign objective.
CREATE VIEW run_overview AS
SELECT c.name AS campaign,
       r.id AS run_id,
       r.number,
       r.repeat,
       r.status,
       r.attempts,
       r.steps_done,
       r.worker,
       r.device,
       r.started_at,
       r.finished_at,
       CASE
         WHEN r.started_at IS NULL THEN NULL
         WHEN r.status = 'running'
           THEN (julianday('now') - julianday(r.started_at)) * 86400.0
         WHEN r.finished_at IS NULL THEN NULL
         ELSE (julianday(r.finished_at) - julianday(r.started_at)) * 86400.0
       END AS duration_s,
       c.objective_metric,
       c.objective_goal,
       (SELECT s.value FROM summaries s
         WHERE s.run_id = r.id AND s.name = c.objective_metric) AS objective,
       r.error,
       r.run_dir
  FROM runs r JOIN campaigns c ON c.id = r.campaign_id;

-- Long format: one row per (run, swept parameter); value is the number or the text.
CREATE VIEW run_params AS
SELECT c.name AS campaign, r.id AS run_id, r.number, p.name,
       COALESCE(p.value_real, p.value_text) AS value, p.value_real, p.value_text
  FROM params p JOIN runs r ON r.id = p.run_id JOIN campaigns c ON c.id = r.campaign_id;

-- Long format: one row per (run, summary).
CREATE VIEW run_summaries AS
SELECT c.name AS campaign, r.id AS run_id, r.number, s.name, s.value
  FROM summaries s JOIN runs r ON r.id = s.run_id JOIN campaigns c ON c.id = r.campaign_id;
)sql";

// Version 2: whether the Newton refinement (docs/analysis.md) polished a numerical point into
// a fixed point (1) or left it a slow point (0). NULL for expansion points and older rows.
constexpr std::string_view kSchemaV2 = R"sql(
ALTER TABLE fixed_points ADD COLUMN refined INTEGER CHECK (refined IN (0, 1));
)sql";

// Version 3: the fingerprint (dataset_sha256, core/data/dataset.h) of each run's data when its
// campaign was launched, for refusing a resume whose data changed; and the jslds builds that
// trained it (core/build_id.h), from its result. NULL for older rows.
constexpr std::string_view kSchemaV3 = R"sql(
ALTER TABLE runs ADD COLUMN data_sha256 TEXT;
ALTER TABLE runs ADD COLUMN jslds_build TEXT;
)sql";

// migrations[v - 1] takes a database from version v - 1 to v.
constexpr std::string_view kMigrations[] = {kSchemaV1, kSchemaV2, kSchemaV3};
static_assert(std::size(kMigrations) == kSchemaVersion);

int64_t user_table_count(Database& db) {
  Statement st(db, "SELECT count(*) FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'");
  st.step();
  return st.column_int64(0);
}

[[noreturn]] void throw_newer(const Database& db, int version) {
  throw StoreError(fmt::format(
      "database '{}' has schema version {}, but this jslds understands versions up to {}: it "
      "was written by a newer jslds; upgrade jslds to read it",
      db.path(), version, kSchemaVersion));
}

// Version 1's tables (later versions only add): a file that claims a jslds schema version
// must have them, or it is another program's database that happens to set user_version.
bool has_jslds_tables(Database& db) {
  Statement st(db,
               "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('campaigns', "
               "'runs', 'params', 'metrics', 'summaries', 'fixed_points', 'modes', 'artifacts', "
               "'events')");
  st.step();
  return st.column_int64(0) == 9;
}

[[noreturn]] void throw_not_ours(const Database& db, int version) {
  throw StoreError(fmt::format(
      "'{}' is an SQLite database but not a jslds experiment database (schema version {}, "
      "without jslds's tables); give another --db file",
      db.path(), version));
}

}  // namespace

int schema_version(Database& db) {
  Statement st(db, "PRAGMA user_version");
  st.step();
  return static_cast<int>(st.column_int64(0));
}

int refuse_foreign_database(Database& db) {
  const int version = schema_version(db);
  if (version > kSchemaVersion) throw_newer(db, version);
  if (version < 0 || (version > 0 && !has_jslds_tables(db))) throw_not_ours(db, version);
  if (version == 0 && user_table_count(db) > 0) {
    throw StoreError(fmt::format(
        "'{}' is an SQLite database but not a jslds experiment database (it has tables but "
        "no jslds schema version); give another --db file",
        db.path()));
  }
  return version;
}

void apply_schema(Database& db) {
  Transaction transaction(db);  // IMMEDIATE: two writers cannot both migrate
  // Checked again under the lock: the file may have changed since the writer opened it.
  const int version = refuse_foreign_database(db);
  if (version == kSchemaVersion) return;  // rolled back (nothing written)
  for (int v = version + 1; v <= kSchemaVersion; ++v) db.exec(kMigrations[v - 1]);
  db.exec(fmt::format("PRAGMA user_version = {}", kSchemaVersion));
  transaction.commit();
}

void check_schema(Database& db) {
  // Readers refuse any file without a schema version, empty or not: there is nothing to read.
  if (schema_version(db) == 0) {
    throw StoreError(fmt::format(
        "'{}' is not a jslds experiment database (no schema version; is it empty?)", db.path()));
  }
  refuse_foreign_database(db);
  // Older versions are readable: migrations only add, and readers never migrate.
}

}  // namespace jslds::store
