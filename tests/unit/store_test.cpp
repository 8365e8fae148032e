// Experiment database: RAII wrappers, schema, campaign/run lifecycle, results, and a reader
// process that never makes the writer fail (DESIGN §3, §5).
#include <grp.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "store/campaign_status.h"
#include "store/experiment_store.h"
#include "store/schema.h"
#include "store/sqlite.h"

namespace jslds::store {
namespace {

namespace fs = std::filesystem;

int64_t count(Database& db, const std::string& sql) {
  Statement st(db, sql);
  EXPECT_TRUE(st.step());
  return st.column_int64(0);
}

CampaignSpec demo_spec(const std::string& name = "reach-cotrain-v1") {
  return {name, "[campaign]\nname = \"" + name + "\"\n", "aaaa", "grid", "val_bps", "maximize"};
}

std::vector<NewRun> demo_runs(int n) {
  std::vector<NewRun> runs;
  for (int i = 1; i <= n; ++i) {
    NewRun r;
    r.number = i;
    r.repeat = 0;
    r.config_json = "{\"model\":{\"latent_dim\":" + std::to_string(8 * i) + "}}";
    r.config_sha256 = "sha-" + std::to_string(i);
    r.run_dir = "runs/demo/" + std::to_string(i);
    r.params = {{"model.latent_dim", 8.0 * i}, {"model.cell", std::string(i % 2 ? "gru" : "tanh")}};
    runs.push_back(r);
  }
  return runs;
}

/// A fresh temporary directory per test, removed afterwards.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "jslds-store-XXXXXX").string();
    std::vector<char> buf(pattern.begin(), pattern.end());
    buf.push_back('\0');
    if (!mkdtemp(buf.data())) throw std::runtime_error("mkdtemp failed");
    path_ = buf.data();
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  fs::path operator/(const std::string& name) const { return path_ / name; }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// ---- schema ---------------------------------------------------------------------------

TEST(Schema, CreatesEveryTableAndViewAtTheCurrentVersion) {
  ExperimentStore store(":memory:");
  Database& db = store.database();
  EXPECT_EQ(schema_version(db), 3);
  std::set<std::string> names;
  Statement st(db, "SELECT name FROM sqlite_master WHERE type IN ('table', 'view')");
  while (st.step()) names.insert(st.column_text(0));
  for (const char* expected : {"campaigns", "runs", "params", "metrics", "summaries",
                               "fixed_points", "modes", "artifacts", "events", "run_overview",
                               "run_params", "run_summaries"}) {
    EXPECT_TRUE(names.count(expected)) << "missing " << expected;
  }
  // DESIGN §5 columns of runs, in order, then version 3's data_sha256.
  std::vector<std::string> columns;
  Statement info(db, "SELECT name FROM pragma_table_info('runs')");
  while (info.step()) columns.push_back(info.column_text(0));
  EXPECT_EQ(columns, (std::vector<std::string>{
                         "id", "campaign_id", "number", "repeat", "config_json", "config_sha256",
                         "status", "attempts", "epoch", "worker", "device", "run_dir",
                         "steps_done", "started_at", "finished_at", "error",
                         "data_sha256", "jslds_build"}));
}

TEST(Schema, ReopeningOnDiskKeepsDataAndVersion) {
  TempDir dir;
  std::string path = (dir / "jslds.sqlite").string();
  {
    ExperimentStore store(path);
    auto c = store.create_or_load_campaign(demo_spec());
    auto runs = demo_runs(2);
    store.insert_runs(c.id, runs);
  }
  ExperimentStore again(path);
  EXPECT_EQ(schema_version(again.database()), kSchemaVersion);
  EXPECT_EQ(count(again.database(), "SELECT count(*) FROM runs"), 2);
}

// A version 1 database (before fixed_points.refined): readers read it as it is, with the
// refined flag absent; the writer migrates it in place, keeping every row.
TEST(Schema, Version1DatabaseIsReadAsIsAndMigratedByTheWriter) {
  TempDir dir;
  std::string path = (dir / "v1.sqlite").string();
  int64_t id = 0;
  {
    ExperimentStore store(path);
    auto c = store.create_or_load_campaign(demo_spec());
    store.insert_runs(c.id, demo_runs(1));
    id = store.list_runs(c.id).at(0).id;
    store.record_fixed_points(id, std::vector<FixedPointRecord>{
                                      {0, "numerical", 1e-9, "stable", 0, 0.9, {1.0, 2.0}, true}});
    // Back to version 1's layout, as a jslds of that version wrote it.
    store.database().exec("ALTER TABLE fixed_points DROP COLUMN refined");
    store.database().exec("ALTER TABLE runs DROP COLUMN data_sha256");
    store.database().exec("ALTER TABLE runs DROP COLUMN jslds_build");
    store.database().exec("PRAGMA user_version = 1");
  }
  {
    ExperimentStore reader(path, {.read_only = true});
    EXPECT_EQ(schema_version(reader.database()), 1);
    auto points = reader.fixed_points(id);
    ASSERT_EQ(points.size(), 1u);
    EXPECT_EQ(points[0].coords, (std::vector<double>{1.0, 2.0}));
    EXPECT_FALSE(points[0].refined);
  }
  ExperimentStore writer(path);
  EXPECT_EQ(schema_version(writer.database()), kSchemaVersion);
  const auto campaign = writer.find_campaign(demo_spec().name)->id;
  EXPECT_TRUE(writer.data_fingerprints(campaign).empty());  // runs.data_sha256 added, NULL
  writer.record_data_fingerprints(campaign, {{1, std::string(64, 'f')}});
  EXPECT_EQ(writer.data_fingerprints(campaign).at(1), std::string(64, 'f'));
  writer.record_data_fingerprints(campaign, {{1, std::string(64, 'e')}});  // only where NULL
  EXPECT_EQ(writer.data_fingerprints(campaign).at(1), std::string(64, 'f'));
  auto points = writer.fixed_points(id);
  ASSERT_EQ(points.size(), 1u);
  EXPECT_FALSE(points[0].refined);  // written before the column existed: NULL
  writer.record_fixed_points(id, std::vector<FixedPointRecord>{
                                     {0, "numerical", 1e-9, "stable", 0, 0.9, {1.0, 2.0}, false},
                                     {1, "expansion", 1e-3, "marginal", 0, 1.0, {0.0, 0.5}, {}}});
  points = writer.fixed_points(id);
  ASSERT_EQ(points.size(), 2u);
  ASSERT_TRUE(points[0].refined);
  EXPECT_FALSE(*points[0].refined);
  EXPECT_FALSE(points[1].refined);
  EXPECT_THROW(writer.database().exec("UPDATE fixed_points SET refined = 2"), std::exception);
}

// Found by a tester: a sweep launch refused after reading an older file (another spec, changed
// data) had already migrated it, so the older jslds that made it could no longer read it. With
// defer_migration (jslds sweep) the file is migrated at the launch's first write only.
TEST(Schema, ADeferredMigrationWaitsForTheFirstWriteOfALaunch) {
  TempDir dir;
  const std::string path = (dir / "v2.sqlite").string();
  {
    ExperimentStore store(path);
    auto c = store.create_or_load_campaign(demo_spec());
    store.insert_runs(c.id, demo_runs(2));
    store.database().exec("ALTER TABLE runs DROP COLUMN data_sha256");
    store.database().exec("ALTER TABLE runs DROP COLUMN jslds_build");
    store.database().exec("PRAGMA user_version = 2");
  }
  OpenOptions deferred;
  deferred.defer_migration = true;
  {
    ExperimentStore launch(path, deferred);  // reads as a refused launch would
    EXPECT_EQ(launch.list_runs(launch.find_campaign(demo_spec().name)->id).size(), 2u);
    EXPECT_TRUE(launch.data_fingerprints(1).empty());
  }
  {
    ExperimentStore reader(path, {.read_only = true});
    EXPECT_EQ(schema_version(reader.database()), 2);
  }
  ExperimentStore launch(path, deferred);
  launch.create_or_load_campaign(demo_spec());  // the first write
  EXPECT_EQ(schema_version(launch.database()), kSchemaVersion);
  // A new file gets its tables at once.
  ExperimentStore fresh((dir / "new.sqlite").string(), deferred);
  EXPECT_EQ(schema_version(fresh.database()), kSchemaVersion);
}

TEST(Schema, RefusesADatabaseFromANewerVersion) {
  TempDir dir;
  std::string path = (dir / "future.sqlite").string();
  {
    ExperimentStore store(path);
    store.database().exec("PRAGMA user_version = 7");
  }
  try {
    ExperimentStore store(path);
    FAIL() << "a newer schema was accepted";
  } catch (const StoreError& e) {
    EXPECT_NE(std::string(e.what()).find("schema version 7"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("upgrade jslds"), std::string::npos) << e.what();
  }
  EXPECT_THROW(ExperimentStore(path, {.read_only = true}), StoreError);
}

TEST(Schema, RefusesAForeignDatabase) {
  TempDir dir;
  std::string path = (dir / "other.sqlite").string();
  { Database(path).exec("CREATE TABLE mine (x)"); }
  try {
    ExperimentStore store(path);
    FAIL() << "a foreign database was accepted";
  } catch (const StoreError& e) {
    EXPECT_NE(std::string(e.what()).find("not a jslds experiment database"), std::string::npos)
        << e.what();
  }
}

// Another program's database that sets user_version (to jslds's 2, or negative) is refused by
// name, for reading and writing, and left unchanged (it got raw "no such table" SQL errors).
TEST(Schema, RefusesAForeignDatabaseWhoseVersionLooksLikeOurs) {
  TempDir dir;
  for (int version : {1, 2, -1}) {
    SCOPED_TRACE(version);
    const std::string path = (dir / ("other" + std::to_string(version + 1) + ".sqlite")).string();
    {
      Database db(path, {.journal = JournalMode::kRollback});
      db.exec("CREATE TABLE mine (x)");
      db.exec("PRAGMA user_version = " + std::to_string(version));
    }
    for (bool read_only : {true, false}) {
      try {
        ExperimentStore store(path, {.read_only = read_only});
        ADD_FAILURE() << "a foreign database was accepted";
      } catch (const StoreError& e) {
        EXPECT_NE(std::string(e.what()).find("is an SQLite database but not a jslds experiment database "
                                             "(schema version " + std::to_string(version) + ", without jslds's tables)"),
                  std::string::npos) << e.what();
      }
    }
    {
      // Its journal mode too is as it was (a writer used to switch it to WAL first).
      Database db(path, {.read_only = true});
      EXPECT_EQ(db.journal_mode(), "delete");
    }
    Database db(path, {.journal = JournalMode::kRollback});
    Statement st(db, "SELECT count(*) FROM sqlite_master");
    st.step();
    EXPECT_EQ(st.column_int64(0), 1) << "nothing was added";
  }
}

TEST(Schema, ReaderRefusesAMissingFile) {
  TempDir dir;
  EXPECT_THROW(ExperimentStore((dir / "absent.sqlite").string(), {.read_only = true}),
               StoreError);
  EXPECT_FALSE(fs::exists(dir / "absent.sqlite"));
}

TEST(Database, ATextFileOrADirectoryIsRefusedByName) {
  TempDir dir;
  std::string text = (dir / "notes.txt").string();
  { std::ofstream(text) << "hello\n"; }
  for (bool read_only : {true, false}) {
    try {
      Database db(text, {.read_only = read_only});
      FAIL() << "a text file was opened as a database";
    } catch (const StoreError& e) {
      std::string message = e.what();
      EXPECT_NE(message.find("'" + text + "'"), std::string::npos) << message;
      EXPECT_NE(message.find("not an SQLite database"), std::string::npos) << message;
      EXPECT_EQ(message.find("PRAGMA"), std::string::npos) << "leaks the SQL: " << message;
    }
  }
  EXPECT_EQ(std::ifstream(text).rdbuf()->sgetc(), 'h') << "the text file was modified";
  try {
    Database db((dir / "").string(), {.read_only = true});
    FAIL() << "a directory was opened as a database";
  } catch (const StoreError& e) {
    EXPECT_NE(std::string(e.what()).find("is a directory"), std::string::npos) << e.what();
  }
}

TEST(Database, RecognisesSqliteFilesByTheirHeader) {
  TempDir dir;
  std::string db = (dir / "a.sqlite").string();
  { ExperimentStore store(db); }
  std::string text = (dir / "a.csv").string();
  { std::ofstream(text) << "SQLite format 2,but text\n"; }
  EXPECT_TRUE(is_sqlite_file(db));
  EXPECT_FALSE(is_sqlite_file(text));
  EXPECT_FALSE(is_sqlite_file((dir / "absent").string()));
  EXPECT_FALSE(is_sqlite_file((dir / "").string()));  // a directory
}

// ---- journal policy --------------------------------------------------------------------

TEST(Database, LocalFileUsesWalAndRollbackWhenAsked) {
  TempDir dir;
  ASSERT_FALSE(is_network_filesystem((dir / "x.sqlite").string()))
      << "the temporary directory is on a network filesystem; this test assumes a local one";
  Database wal((dir / "wal.sqlite").string());
  EXPECT_EQ(wal.journal_mode(), "wal");
  Database rollback((dir / "rollback.sqlite").string(), {.journal = JournalMode::kRollback});
  EXPECT_EQ(rollback.journal_mode(), "delete");
  EXPECT_EQ(count(rollback, "PRAGMA mmap_size"), 0);
}

TEST(Database, ReadOnlyConnectionRefusesWrites) {
  TempDir dir;
  std::string path = (dir / "db.sqlite").string();
  { ExperimentStore writer(path); }
  ExperimentStore reader(path, {.read_only = true});
  EXPECT_THROW(reader.database().exec("DELETE FROM runs"), StoreError);
}

// A finished WAL database in a directory the reader cannot write (a colleague's campaign, a
// read-only archive): SQLite cannot create the -shm index, and readers still work. A
// read-only bind mount makes the directory unwritable even for root; where mounting is not
// allowed (an unprivileged container) the test is skipped.
TEST(Database, AWalDatabaseInAReadOnlyDirectoryCanBeRead) {
  TempDir dir;
  fs::create_directories(dir / "src");
  fs::create_directories(dir / "ro");
  const std::string source = (dir / "src" / "db.sqlite").string();
  {
    ExperimentStore writer(source);
    ASSERT_EQ(writer.database().journal_mode(), "wal");
    auto c = writer.create_or_load_campaign({"archived", "spec", "sha", "grid", "val_bps", "maximize"});
    writer.insert_runs(c.id, demo_runs(3));
  }
  ASSERT_FALSE(fs::exists(source + "-shm")) << "the writer removes its index when it closes";
  const std::string mount = "mount --bind " + (dir / "src").string() + " " + (dir / "ro").string() +
                            " 2>/dev/null && mount -o remount,bind,ro " + (dir / "ro").string() +
                            " 2>/dev/null";
  if (std::system(mount.c_str()) != 0) {
    std::system(("umount " + (dir / "ro").string() + " 2>/dev/null").c_str());
    GTEST_SKIP() << "cannot make a read-only bind mount here (needs root and mount rights)";
  }
  struct Unmount {
    fs::path at;
    ~Unmount() { std::system(("umount " + at.string()).c_str()); }
  } unmount{dir / "ro"};
  const std::string path = (dir / "ro" / "db.sqlite").string();
  ASSERT_NE(::access((dir / "ro").c_str(), W_OK), 0) << "the mount is not read-only";
  ExperimentStore reader(path, {.read_only = true});
  auto c = reader.find_campaign("archived");
  ASSERT_TRUE(c);
  EXPECT_EQ(reader.list_runs(c->id).size(), 3u);
}

// What `fn` throws as another user (a forked child with that uid and gid): "" when it
// returns, the StoreError's message when it throws one.
std::string as_user(uid_t uid, const std::function<void()>& fn) {
  int pipe_fds[2];
  if (::pipe(pipe_fds) != 0) return "pipe failed";
  const pid_t child = ::fork();
  if (child == 0) {
    ::close(pipe_fds[0]);
    std::string message;
    if (::setgroups(0, nullptr) != 0 || ::setgid(uid) != 0 || ::setuid(uid) != 0) {
      message = "setuid failed";
    } else {
      try {
        fn();
      } catch (const std::exception& e) {
        message = e.what();
      }
    }
    if (!message.empty() && ::write(pipe_fds[1], message.data(), message.size()) < 0) _exit(2);
    _exit(0);
  }
  ::close(pipe_fds[1]);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(pipe_fds[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  ::close(pipe_fds[0]);
  int status = 0;
  ::waitpid(child, &status, 0);
  return out;
}

// Databases shared between users (a colleague's campaign, a lab folder). Needs root, to act
// as other users; skipped otherwise.
// 1. A finished WAL database in a folder the reader cannot write: read (SQLite reports
//    READONLY_CANTINIT there, which the immutable fallback did not cover).
// 2. The same with changes still in its -wal: refused by name, never an older state shown.
// 3. A reader of another user left -wal/-shm the owner cannot write: the owner's writer says
//    whose files they are and what to do, instead of "attempt to write a readonly database".
TEST(Database, ADatabaseSharedBetweenUsersIsReadWholeOrRefusedByName) {
  if (::getuid() != 0) GTEST_SKIP() << "needs root to act as other users";
  constexpr uid_t kReader = 65534, kOwner = 1001;
  TempDir dir;
  fs::permissions(dir.path(), fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                  fs::perms::others_read | fs::perms::others_exec);
  const std::string path = (dir / "db.sqlite").string();
  {
    ExperimentStore writer(path);
    auto c = writer.create_or_load_campaign({"shared", "spec", "sha", "grid", "val_bps", "maximize"});
    writer.insert_runs(c.id, demo_runs(3));
  }
  // 1.
  size_t runs = 0;
  std::string error = as_user(kReader, [&] {
    ExperimentStore reader(path, {.read_only = true});
    runs = reader.list_runs(reader.find_campaign("shared")->id).size();
    if (runs != 3) throw std::runtime_error("read " + std::to_string(runs) + " runs");
  });
  EXPECT_EQ(error, "");
  EXPECT_FALSE(fs::exists(path + "-shm"));

  // 2. A copy taken while a writer had changes in the -wal (no -shm beside it).
  fs::create_directories(dir / "copy");
  {
    ExperimentStore writer(path);
    writer.create_or_load_campaign({"newer", "spec", "sha2", "grid", "val_bps", "maximize"});
    ASSERT_GT(fs::file_size(path + "-wal"), 0u);
    fs::copy_file(path, dir / "copy" / "db.sqlite");
    fs::copy_file(path + "-wal", dir / "copy" / "db.sqlite-wal");
  }
  const std::string copy = (dir / "copy" / "db.sqlite").string();
  error = as_user(kReader, [&] { ExperimentStore reader(copy, {.read_only = true}); });
  EXPECT_NE(error.find("cannot read database '" + copy + "': its latest changes are in " + copy + "-wal"),
            std::string::npos) << error;

  // 3. A folder everyone may write; the database belongs to kOwner.
  fs::create_directories(dir / "lab");
  fs::permissions(dir / "lab", fs::perms::all);
  const std::string lab = (dir / "lab" / "db.sqlite").string();
  { ExperimentStore writer(lab); }
  ASSERT_EQ(::chown(lab.c_str(), kOwner, kOwner), 0);
  error = as_user(kReader, [&] { ExperimentStore reader(lab, {.read_only = true}); });
  ASSERT_EQ(error, "");
  struct stat st {};
  ASSERT_EQ(::stat((lab + "-wal").c_str(), &st), 0) << "the reader left its -wal";
  ASSERT_EQ(st.st_uid, kReader);
  error = as_user(kOwner, [&] { ExperimentStore writer(lab); });
  EXPECT_NE(error.find("cannot write database '" + lab + "': " + lab +
                       "-wal belongs to user id 65534 and is not writable for you"),
            std::string::npos) << error;
  EXPECT_NE(error.find("chown 1001 " + lab + "-wal " + lab + "-shm"), std::string::npos) << error;
}

// A writer in rollback-journal mode (network filesystems) killed mid-transaction leaves a
// hot journal that only a writer can roll back: readers say so and that the next sweep does
// it, instead of "attempt to write a readonly database"; a writer then reads the old state.
TEST(Database, AHotJournalIsNamedToReadersAndRolledBackByTheNextWriter) {
  TempDir dir;
  const std::string path = (dir / "db.sqlite").string();
  {
    ExperimentStore writer(path, {.journal = JournalMode::kRollback});
    writer.create_or_load_campaign({"kept", "spec", "sha", "grid", "val_bps", "maximize"});
  }
  const pid_t child = ::fork();
  if (child == 0) {
    try {
      Database db(path, {.journal = JournalMode::kRollback});
      db.exec("PRAGMA cache_size = 1");  // spill pages into the file mid-transaction
      db.exec("BEGIN IMMEDIATE");
      db.exec("CREATE TABLE filler (x BLOB)");
      for (int i = 0; i < 200; ++i) db.exec("INSERT INTO filler VALUES (zeroblob(4000))");
      _exit(0);  // no commit, no rollback, no close: a crash
    } catch (...) {
      _exit(3);
    }
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  ASSERT_GT(fs::file_size(path + "-journal"), 0u) << "no hot journal was left";
  try {
    ExperimentStore reader(path, {.read_only = true});
    ADD_FAILURE() << "a database with a hot journal was read";
  } catch (const StoreError& e) {
    EXPECT_NE(std::string(e.what()).find("a write to it was interrupted (its coordinator died "
                                         "mid-transaction) and left " + path + "-journal"),
              std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("The next `jslds sweep` with this --db rolls it back"),
              std::string::npos) << e.what();
  }
  ExperimentStore writer(path, {.journal = JournalMode::kRollback});
  EXPECT_TRUE(writer.find_campaign("kept"));
  ExperimentStore reader(path, {.read_only = true});
  EXPECT_TRUE(reader.find_campaign("kept"));
}

TEST(Database, StatementErrorsNameTheSql) {
  Database db(":memory:");
  try {
    Statement st(db, "SELECT * FROM no_such_table");
    FAIL();
  } catch (const StoreError& e) {
    EXPECT_NE(std::string(e.what()).find("no_such_table"), std::string::npos) << e.what();
  }
  EXPECT_THROW(Statement(db, "SELECT 1; SELECT 2"), StoreError);
}

// Prepared statements are reused (store/sqlite.h): a reused one starts without the previous
// bindings or position, two live ones with the same SQL are independent, a schema change
// between uses is picked up, and a statement may outlive its connection.
TEST(Database, ReusedStatementsStartCleanAndLiveOnesAreIndependent) {
  Database db(":memory:");
  db.exec("CREATE TABLE t (x INTEGER)");
  {
    Statement insert(db, "INSERT INTO t (x) VALUES (?)");
    for (int64_t x : {1, 2, 3}) {
      insert.bind(1, x).run();
      insert.reset();
    }
  }
  {
    Statement insert(db, "INSERT INTO t (x) VALUES (?)");  // the cached one: binding cleared
    insert.run();
  }
  EXPECT_EQ(count(db, "SELECT COUNT(*) FROM t WHERE x IS NULL"), 1);
  const std::string sql = "SELECT x FROM t WHERE x IS NOT NULL ORDER BY x";
  {
    Statement half(db, sql);
    ASSERT_TRUE(half.step());  // left in the middle of its rows
    EXPECT_EQ(half.column_int64(0), 1);
  }
  // Nested use of the same SQL: the outer loop is not disturbed by the inner statement.
  std::vector<int64_t> pairs;
  Statement outer(db, sql);
  while (outer.step()) {
    Statement inner(db, sql);
    int64_t n = 0;
    while (inner.step()) ++n;
    pairs.push_back(outer.column_int64(0) * 10 + n);
  }
  EXPECT_EQ(pairs, (std::vector<int64_t>{13, 23, 33}));
  // A column added between two uses of a cached SELECT * shows up.
  { Statement all(db, "SELECT * FROM t"); EXPECT_EQ(all.column_count(), 1); }
  db.exec("ALTER TABLE t ADD COLUMN y TEXT");
  {
    Statement all(db, "SELECT * FROM t");
    ASSERT_TRUE(all.step());
    EXPECT_EQ(all.column_count(), 2);
  }
  // A statement that outlives its connection is finalised, not returned.
  auto db2 = std::make_unique<Database>(":memory:");
  auto orphan = std::make_unique<Statement>(*db2, "SELECT 1");
  db2.reset();
  orphan.reset();
}

// ---- transactions ----------------------------------------------------------------------

TEST(Transaction, RollsBackWhenNotCommitted) {
  Database db(":memory:");
  db.exec("CREATE TABLE t (x INTEGER)");
  {
    Transaction t(db);
    db.exec("INSERT INTO t VALUES (1)");
    EXPECT_EQ(count(db, "SELECT count(*) FROM t"), 1);
  }  // no commit
  EXPECT_EQ(count(db, "SELECT count(*) FROM t"), 0);
  EXPECT_TRUE(db.autocommit());
  {
    Transaction t(db);
    db.exec("INSERT INTO t VALUES (2)");
    t.commit();
  }
  EXPECT_EQ(count(db, "SELECT count(*) FROM t"), 1);
}

TEST(Transaction, NestedRollbackKeepsTheOuterWrites) {
  Database db(":memory:");
  db.exec("CREATE TABLE t (x INTEGER)");
  {
    Transaction outer(db);
    db.exec("INSERT INTO t VALUES (1)");
    {
      Transaction inner(db);
      db.exec("INSERT INTO t VALUES (2)");
    }  // inner rolled back
    outer.commit();
  }
  EXPECT_EQ(count(db, "SELECT group_concat(x) IS '1' FROM t"), 1);
}

TEST(ExperimentStore, BatchRollsBackEverythingWhenItThrows) {
  ExperimentStore store(":memory:");
  auto c = store.create_or_load_campaign(demo_spec());
  auto runs = demo_runs(3);
  EXPECT_THROW(store.batch([&] {
    store.insert_runs(c.id, runs);
    throw std::runtime_error("coordinator failed half way");
  }),
               std::runtime_error);
  EXPECT_EQ(count(store.database(), "SELECT count(*) FROM runs"), 0);
  EXPECT_EQ(count(store.database(), "SELECT count(*) FROM params"), 0);
}

// ---- campaigns and runs ----------------------------------------------------------------

TEST(ExperimentStore, CampaignLoadBumpsEpochAndKeepsStoredSpec) {
  ExperimentStore store(":memory:");
  auto first = store.create_or_load_campaign(demo_spec());
  EXPECT_FALSE(first.existing);
  EXPECT_EQ(first.epoch, 1);
  CampaignSpec changed = demo_spec();
  changed.spec_sha256 = "bbbb";
  auto second = store.create_or_load_campaign(changed);
  EXPECT_TRUE(second.existing);
  EXPECT_EQ(second.id, first.id);
  EXPECT_EQ(second.epoch, 2);
  EXPECT_EQ(second.stored_spec_sha256, "aaaa");
  store.replace_campaign_spec(second.id, changed);
  EXPECT_EQ(store.get_campaign(second.id).spec_sha256, "bbbb");
  EXPECT_EQ(store.create_or_load_campaign(changed).epoch, 3);
}

TEST(ExperimentStore, RejectsBadCampaignNamesAndGoals) {
  ExperimentStore store(":memory:");
  EXPECT_THROW(store.create_or_load_campaign(demo_spec("has space")), StoreError);
  CampaignSpec bad = demo_spec();
  bad.objective_goal = "max";
  EXPECT_THROW(store.create_or_load_campaign(bad), StoreError);
}

TEST(ExperimentStore, RelocateRunDirsMovesOnlyPathsUnderTheOldFolder) {
  ExperimentStore store(":memory:");
  auto c = store.create_or_load_campaign(demo_spec());
  auto runs = demo_runs(3);
  runs[0].run_dir = "/old/unit/1";
  runs[1].run_dir = "/old/unit2/2";  // shares a text prefix, not the folder
  runs[2].run_dir = "/old/unit/3";
  auto ids = store.insert_runs(c.id, runs);
  store.record_artifact(ids[0].id, {"checkpoint", "/old/unit/1/checkpoint.pt", 40, 10, "ab", ""});
  store.record_artifact(ids[1].id, {"checkpoint", "/old/unit2/2/checkpoint.pt", 40, 10, "cd", ""});
  EXPECT_EQ(store.relocate_run_dirs(c.id, "/old/unit", "/new/place/unit"), 2);
  EXPECT_EQ(store.get_run(ids[0].id).run_dir, "/new/place/unit/1");
  EXPECT_EQ(store.get_run(ids[1].id).run_dir, "/old/unit2/2");
  EXPECT_EQ(store.get_run(ids[2].id).run_dir, "/new/place/unit/3");
  EXPECT_EQ(store.artifacts(ids[0].id).at(0).path, "/new/place/unit/1/checkpoint.pt");
  EXPECT_EQ(store.artifacts(ids[1].id).at(0).path, "/old/unit2/2/checkpoint.pt");
  // Another campaign's runs in the same folder are not this campaign's to move.
  auto other = store.create_or_load_campaign({"other", "spec", "sha", "grid", "val_bps", "maximize"});
  auto other_runs = demo_runs(1);
  other_runs[0].run_dir = "/new/place/unit/9";
  auto other_ids = store.insert_runs(other.id, other_runs);
  EXPECT_EQ(store.relocate_run_dirs(c.id, "/new/place/unit", "/elsewhere"), 2);
  EXPECT_EQ(store.get_run(other_ids[0].id).run_dir, "/new/place/unit/9");
}

TEST(ExperimentStore, InsertRunsIsIdempotent) {
  ExperimentStore store(":memory:");
  auto c = store.create_or_load_campaign(demo_spec());
  auto runs = demo_runs(3);
  auto first = store.insert_runs(c.id, runs);
  ASSERT_EQ(first.size(), 3u);
  for (const auto& r : first) EXPECT_TRUE(r.inserted);
  auto grown = demo_runs(4);  // the resumed expansion grew by one run
  auto second = store.insert_runs(c.id, grown);
  ASSERT_EQ(second.size(), 4u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_FALSE(second[i].inserted);
    EXPECT_EQ(second[i].id, first[i].id);
  }
  EXPECT_TRUE(second[3].inserted);
  EXPECT_EQ(count(store.database(), "SELECT count(*) FROM runs"), 4);
  EXPECT_EQ(count(store.database(), "SELECT count(*) FROM params"), 8);

  auto params = store.run_params(first[1].id);
  ASSERT_EQ(params.size(), 2u);
  EXPECT_EQ(params[0].name, "model.cell");
  EXPECT_EQ(std::get<std::string>(params[0].value), "tanh");
  EXPECT_EQ(std::get<double>(params[1].value), 16.0);

  // A different config claiming an existing number is an error, and nothing is written.
  NewRun clash = demo_runs(1)[0];
  clash.config_sha256 = "other";
  try {
    store.insert_runs(c.id, std::vector<NewRun>{clash});
    FAIL();
  } catch (const StoreError& e) {
    EXPECT_NE(std::string(e.what()).find("run number 1 already belongs"), std::string::npos)
        << e.what();
  }
  EXPECT_EQ(count(store.database(), "SELECT count(*) FROM runs"), 4);
}

TEST(ExperimentStore, TransitionsFollowTheStateMachine) {
  ExperimentStore store(":memory:");
  auto c = store.create_or_load_campaign(demo_spec());
  auto runs = demo_runs(1);
  int64_t id = store.insert_runs(c.id, runs)[0].id;

  RunRow r = store.transition_run(id, RunStatus::kRunning, {.worker = "rank 1", .device = "cpu"});
  EXPECT_EQ(r.status, RunStatus::kRunning);
  EXPECT_EQ(r.attempts, 1);
  EXPECT_EQ(r.epoch, 1);
  EXPECT_EQ(r.worker, "rank 1");
  ASSERT_TRUE(r.started_at);
  EXPECT_TRUE(std::regex_match(*r.started_at,
                               std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)")))
      << *r.started_at;
  EXPECT_FALSE(r.finished_at);

  r = store.transition_run(id, RunStatus::kFailed,
                           {.error = "child exited with status 134 (SIGABRT)", .steps_done = 40});
  EXPECT_EQ(r.error, "child exited with status 134 (SIGABRT)");
  EXPECT_EQ(r.steps_done, 40);
  EXPECT_TRUE(r.finished_at);

  r = store.transition_run(id, RunStatus::kRunning, {.worker = "rank 2"});
  EXPECT_EQ(r.attempts, 2);
  EXPECT_FALSE(r.error);
  EXPECT_FALSE(r.finished_at);
  EXPECT_EQ(r.steps_done, 40);
  r = store.transition_run(id, RunStatus::kDone, {.steps_done = 2000});
  EXPECT_EQ(r.steps_done, 2000);

  for (RunStatus to : all_run_statuses()) {
    try {
      store.transition_run(id, to);
      FAIL() << "done -> " << to_string(to) << " was accepted";
    } catch (const StoreError& e) {
      EXPECT_NE(std::string(e.what()).find("illegal transition done -> " +
                                           std::string(to_string(to))),
                std::string::npos)
          << e.what();
    }
  }
  EXPECT_EQ(store.get_run(id).status, RunStatus::kDone);
  // Every change was logged for `jslds show`.
  auto events = store.events(c.id, id);
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[1].level, "error");
  EXPECT_NE(events[1].message.find("running -> failed"), std::string::npos);
}

TEST(ExperimentStore, LegalTransitionTable) {
  using S = RunStatus;
  EXPECT_TRUE(is_legal_transition(S::kPending, S::kRunning));
  EXPECT_FALSE(is_legal_transition(S::kPending, S::kDone));
  EXPECT_FALSE(is_legal_transition(S::kRunning, S::kRunning));
  EXPECT_TRUE(is_legal_transition(S::kInterrupted, S::kRunning));
  EXPECT_TRUE(is_legal_transition(S::kDiverged, S::kPending));
  EXPECT_FALSE(is_legal_transition(S::kPruned, S::kRunning));
  for (S s : all_run_statuses()) EXPECT_EQ(parse_run_status(to_string(s)), s);
  EXPECT_THROW(parse_run_status("finished"), StoreError);
}

TEST(ExperimentStore, StaleRunningRowsOfEarlierEpochsBecomeInterrupted) {
  ExperimentStore store(":memory:");
  auto c = store.create_or_load_campaign(demo_spec());
  auto runs = demo_runs(3);
  auto ids = store.insert_runs(c.id, runs);
  store.transition_run(ids[0].id, RunStatus::kRunning);
  store.transition_run(ids[1].id, RunStatus::kRunning);
  store.transition_run(ids[1].id, RunStatus::kDone);
  auto resumed = store.create_or_load_campaign(demo_spec());  // the old coordinator died
  ASSERT_EQ(resumed.epoch, 2);
  EXPECT_EQ(store.mark_stale_runs_interrupted(c.id, resumed.epoch), 1);
  EXPECT_EQ(store.get_run(ids[0].id).status, RunStatus::kInterrupted);
  // The run's own history records the change (jslds show), not only the campaign's.
  const auto history = store.events(c.id, ids[0].id);
  ASSERT_FALSE(history.empty());
  EXPECT_EQ(history.back().message,
            "run " + std::to_string(ids[0].number) +
                ": running -> interrupted: coordinator of epoch 1 stopped while the run was running");
  EXPECT_EQ(store.get_run(ids[1].id).status, RunStatus::kDone);
  EXPECT_EQ(store.get_run(ids[2].id).status, RunStatus::kPending);
  // A run started in the current epoch is not stale.
  store.transition_run(ids[0].id, RunStatus::kRunning);
  EXPECT_EQ(store.get_run(ids[0].id).epoch, 2);
  EXPECT_EQ(store.mark_stale_runs_interrupted(c.id, resumed.epoch), 0);
  EXPECT_EQ(store.list_runs(c.id, RunStatus::kRunning).size(), 1u);
}

// ---- results ---------------------------------------------------------------------------

TEST(ExperimentStore, MetricsSummariesFixedPointsModesArtifacts) {
  ExperimentStore store(":memory:");
  auto c = store.create_or_load_campaign(demo_spec());
  auto runs = demo_runs(1);
  int64_t id = store.insert_runs(c.id, runs)[0].id;

  store.record_metrics(id, 100, {{"train_loss", 3.5}, {"val_bps", std::nan("")}});
  store.record_metrics(id, 100, {{"train_loss", 3.25}});  // resumed: step repeated
  EXPECT_EQ(count(store.database(), "SELECT count(*) FROM metrics"), 2);
  Statement m(store.database(),
              "SELECT value FROM metrics WHERE run_id = ? AND name = ? AND step = 100");
  m.bind(1, id).bind(2, "train_loss");
  ASSERT_TRUE(m.step());
  EXPECT_DOUBLE_EQ(m.column_double(0), 3.25);
  m.reset();
  m.bind(2, "val_bps");
  ASSERT_TRUE(m.step());
  EXPECT_TRUE(m.is_null(0));

  store.record_summaries(id, {{"val_bps", 0.125}, {"rel_state_error", 0.03}});
  EXPECT_DOUBLE_EQ(store.run_summaries(id).at("val_bps"), 0.125);
  EXPECT_EQ(count(store.database(), "SELECT objective = 0.125 FROM run_overview"), 1);

  std::vector<FixedPointRecord> points = {
      {0, "expansion", 1e-9, "stable", 0, 0.97, {1.5, -2.25, 1e-300}, {}},
      {1, "numerical", 2e-8, "unstable", 2, 1.2, {0.0, 3.0, -0.5}, true}};
  store.record_fixed_points(id, points);
  auto back = store.fixed_points(id);
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[0].coords, points[0].coords);
  EXPECT_EQ(back[1].stability, "unstable");
  EXPECT_FALSE(back[0].refined);
  ASSERT_TRUE(back[1].refined);
  EXPECT_TRUE(*back[1].refined);
  EXPECT_EQ(count(store.database(), "SELECT length(coords) FROM fixed_points WHERE idx = 0"), 24);
  points[0].source = "guess";
  EXPECT_THROW(store.record_fixed_points(id, points), StoreError);
  EXPECT_EQ(store.fixed_points(id).size(), 2u);  // the failed replacement rolled back

  std::vector<ModeRecord> modes = {{0, 0, 0.9, 0.3, 0.9487, 7.9, 0.25},
                                   {0, 1, 1.0, 0.0, 1.0, 0.0, std::nullopt}};
  store.record_modes(id, modes);
  auto modes_back = store.modes(id);
  ASSERT_EQ(modes_back.size(), 2u);
  EXPECT_DOUBLE_EQ(modes_back[0].freq_hz, 7.9);
  EXPECT_FALSE(modes_back[1].tau_s);

  store.record_artifact(id, {"checkpoint", "/runs/1/checkpoint.pt", 200, 1000, "ab", ""});
  store.record_artifact(id, {"checkpoint", "/runs/1/checkpoint.pt", 400, 1100, "cd", ""});
  store.record_artifact(id, {"log", "/runs/1/log.txt", std::nullopt, 10, "", ""});
  auto files = store.artifacts(id);
  ASSERT_EQ(files.size(), 2u);
  EXPECT_EQ(files[0].step, 400);
  EXPECT_EQ(files[0].sha256, "cd");
  EXPECT_FALSE(files[0].created_at.empty());
}

// ---- status report ---------------------------------------------------------------------

TEST(CampaignStatus, CountsRunningWorkersFailuresAndEta) {
  ExperimentStore store(":memory:");
  auto c = store.create_or_load_campaign(demo_spec());
  auto runs = demo_runs(6);
  runs[0].config_json = R"({"train":{"steps":2000}})";
  auto ids = store.insert_runs(c.id, runs);
  store.transition_run(ids[0].id, RunStatus::kRunning, {.worker = "rank 2", .device = "cuda:0"});
  store.update_steps_done(ids[0].id, 340);
  store.transition_run(ids[1].id, RunStatus::kRunning, {.worker = "rank 1"});
  store.transition_run(ids[2].id, RunStatus::kRunning);
  store.transition_run(ids[2].id, RunStatus::kDone);
  store.transition_run(ids[3].id, RunStatus::kRunning);
  store.transition_run(ids[3].id, RunStatus::kFailed, {.error = "first failure"});
  store.transition_run(ids[4].id, RunStatus::kRunning);
  store.transition_run(ids[4].id, RunStatus::kDiverged, {.error = "loss is NaN at step 12"});

  CampaignStatus s = campaign_status(store, c.id);
  EXPECT_EQ(s.total, 6);
  EXPECT_EQ(s.counts.at(RunStatus::kPending), 1);
  EXPECT_EQ(s.counts.at(RunStatus::kRunning), 2);
  EXPECT_EQ(s.counts.at(RunStatus::kDone), 1);
  EXPECT_EQ(s.counts.at(RunStatus::kPruned), 0);
  EXPECT_EQ(s.finished, 3);
  // All three finished just now, in a campaign created just now: too early for a rate.
  EXPECT_EQ(s.recent_finished, 3);
  EXPECT_LT(s.recent_window_h, 1.0 / 60.0);
  EXPECT_EQ(s.runs_per_hour_recent, 0.0);
  EXPECT_FALSE(s.eta_s);
  ASSERT_EQ(s.running.size(), 2u);
  EXPECT_EQ(s.running[0].run.worker, "rank 1");  // ordered by worker
  EXPECT_EQ(s.running[1].run.steps_done, 340);
  EXPECT_EQ(s.running[1].total_steps, 2000);
  EXPECT_FALSE(s.running[0].total_steps);
  ASSERT_EQ(s.failures.size(), 2u);
  EXPECT_EQ(s.failures[0].error, "loss is NaN at step 12");  // newest first
  EXPECT_TRUE(s.last_event_at);

  // Created 30 min ago, the three finished 10 min ago, two still running: the window is the
  // campaign's 30 minutes, not an hour and not a one-minute floor.
  Database& db = store.database();
  Statement(db, "UPDATE campaigns SET created_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-30 minutes')")
      .run();
  Statement(db, "UPDATE runs SET finished_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-10 minutes') "
                "WHERE finished_at IS NOT NULL")
      .run();
  s = campaign_status(store, c.id);
  EXPECT_NEAR(s.recent_window_h, 0.5, 1e-3);
  EXPECT_TRUE(s.recent_window_ends_now);
  EXPECT_NEAR(s.runs_per_hour_recent, 6.0, 0.02);
  EXPECT_NEAR(s.runs_per_hour_overall, 6.0, 0.02);
  ASSERT_TRUE(s.eta_s);
  EXPECT_NEAR(*s.eta_s, 3.0 / 6.0 * 3600.0, 10.0);  // 3 left at 6 per hour

  // Nothing running, created 2 h ago, last finish 65 min ago: the hour before the last
  // finish, however long ago that was.
  Statement(db, "UPDATE runs SET status = 'interrupted' WHERE status = 'running'").run();
  Statement(db, "UPDATE campaigns SET created_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-120 minutes')")
      .run();
  Statement(db, "UPDATE runs SET finished_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-65 minutes') "
                "WHERE finished_at IS NOT NULL")
      .run();
  s = campaign_status(store, c.id);
  EXPECT_FALSE(s.recent_window_ends_now);
  EXPECT_NEAR(s.recent_window_h, 55.0 / 60.0, 1e-3);  // cut at the creation
  EXPECT_EQ(s.recent_finished, 3);
  EXPECT_NEAR(s.runs_per_hour_overall, 3.0 / (55.0 / 60.0), 0.02);
}

// ---- concurrency -----------------------------------------------------------------------

// A reader process loops SELECTs (on the tables and the views) while this process commits
// 10,000 metric rows in 1,000 small transactions; neither side may fail.
void reader_never_blocks_writer(JournalMode journal) {
  TempDir dir;
  std::string path = (dir / "live.sqlite").string();
  ExperimentStore writer(path, {.journal = journal});
  auto c = writer.create_or_load_campaign(demo_spec());
  auto runs = demo_runs(1);
  int64_t id = writer.insert_runs(c.id, runs)[0].id;

  struct Shared {
    std::atomic<int> stop;
    std::atomic<int> selects;
    std::atomic<int> reader_ready;
  };
  void* mem = mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                   -1, 0);
  ASSERT_NE(mem, MAP_FAILED);
  auto* shared = new (mem) Shared{{0}, {0}, {0}};

  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    int code = 0;
    try {
      ExperimentStore reader(path, {.read_only = true});
      Statement metrics(reader.database(), "SELECT count(*), max(step) FROM metrics");
      Statement overview(reader.database(), "SELECT status, duration_s FROM run_overview");
      shared->reader_ready = 1;
      while (!shared->stop) {
        metrics.reset();
        while (metrics.step()) {
        }
        overview.reset();
        while (overview.step()) {
        }
        shared->selects.fetch_add(1);
      }
    } catch (const std::exception& e) {
      fprintf(stderr, "reader failed: %s\n", e.what());
      code = 1;
    }
    _exit(code);
  }
  while (!shared->reader_ready) usleep(1000);
  int written = 0;
  EXPECT_NO_THROW({
    for (int commit = 0; commit < 1000; ++commit) {
      std::vector<MetricPoint> points;
      for (int k = 0; k < 10; ++k) {
        points.push_back({id, commit * 10 + k, "train_loss", 1.0 / (1 + commit)});
      }
      writer.record_metrics(points);
      written += 10;
    }
  });
  shared->stop = 1;
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the reader process failed";
  EXPECT_EQ(written, 10000);
  EXPECT_EQ(count(writer.database(), "SELECT count(*) FROM metrics"), 10000);
  EXPECT_GT(shared->selects.load(), 0);
  munmap(mem, sizeof(Shared));
}

TEST(Concurrency, ReaderProcessNeverMakesTheWalWriterFail) {
  reader_never_blocks_writer(JournalMode::kWal);
}

TEST(Concurrency, ReaderProcessNeverMakesTheRollbackWriterFail) {
  reader_never_blocks_writer(JournalMode::kRollback);
}

}  // namespace
}  // namespace jslds::store
