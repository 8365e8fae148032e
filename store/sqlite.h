// RAII over the SQLite C API: Database (one connection), Statement (one prepared statement),
// Transaction (BEGIN IMMEDIATE or a nested SAVEPOINT that rolls back unless committed).
//
// This is the only header of the project that knows about SQLite, and it does so through
// forward declarations: <sqlite3.h> is included by store/sqlite.cpp alone (DESIGN §1).
//
// Thread safety: a Database and its Statements belong to one thread at a time (SQLite's
// "multi-thread" mode). Several processes may open the same file: one writer and any number
// of read-only readers (DESIGN §5).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

struct sqlite3;
struct sqlite3_stmt;

namespace jslds::store {

namespace detail {
struct StatementCache;  // a connection's prepared statements not in use (store/sqlite.cpp)
}

/// Any failure of the database layer: what was attempted, the SQLite message and the
/// extended result code (0 when the error did not come from SQLite). Fatal for a sweep
/// (STYLE rule 6), shown to the user by the CLI with exit status 1.
class StoreError : public std::runtime_error {
 public:
  explicit StoreError(const std::string& message, int sqlite_code = 0)
      : std::runtime_error(message), sqlite_code_(sqlite_code) {}
  /// SQLite extended result code, e.g. SQLITE_BUSY (5) or SQLITE_CONSTRAINT_UNIQUE (2067).
  int sqlite_code() const { return sqlite_code_; }

 private:
  int sqlite_code_;
};

/// A BLOB value for binding: a view of `size` bytes at `data`, copied by Statement::bind.
struct Blob {
  const void* data = nullptr;
  std::size_t size = 0;
};

/// A dynamically typed SQL value, as produced by the query compiler (store/query.h) for its
/// bound parameters.
using SqlValue = std::variant<std::nullptr_t, int64_t, double, std::string>;

/// How the connection journals its writes (DESIGN §5).
enum class JournalMode {
  kAuto,      ///< WAL on local filesystems; rollback (DELETE) with mmap off on network filesystems
  kWal,       ///< write-ahead log: readers never block the writer; needs working shared memory
  kRollback,  ///< rollback journal (DELETE) with mmap off: safe on NFS, Lustre, GPFS, CIFS
};

/// Options for opening a database file. Every field has its default here.
struct OpenOptions {
  /// Read-only connections never write (not even the journal mode) and are what
  /// `jslds status/query/show` use while a sweep writes.
  bool read_only = false;
  /// Create the file when it does not exist (ignored for read-only connections).
  bool create = true;
  /// Journal policy for writers; readers follow whatever the file uses.
  JournalMode journal = JournalMode::kAuto;
  /// How long a statement waits for another process's lock before failing with
  /// SQLITE_BUSY, in milliseconds. Readers loop SELECTs while the writer commits; both wait.
  int busy_timeout_ms = 30000;
  /// Writers: leave the journal mode as the file has it until apply_journal_policy() (a
  /// caller that must first check the file is its own, without changing a foreign one).
  bool defer_journal_policy = false;
  /// Writers (ExperimentStore): bring a file of an older schema version up to date only at
  /// the first write of a launch (create_or_load_campaign), so that a launch refused after
  /// reading it (another spec, changed data) leaves the file as an older jslds can read it.
  /// A new or empty file gets its tables at once.
  bool defer_migration = false;
};

/// The SQLite library version in use, e.g. "3.40.1".
std::string sqlite_version();

/// True when `path`'s directory lives on NFS, Lustre, GPFS, CIFS/SMB, BeeGFS or another
/// network filesystem where SQLite's WAL shared memory and POSIX locks are unreliable.
/// Detected with statfs(2) magic numbers; false when statfs fails.
bool is_network_filesystem(const std::string& path);

/// True when the file at `path` starts with the 16-byte SQLite 3 header ("SQLite format 3\0"),
/// i.e. it is an SQLite database of any kind (jslds or not). False for a missing, unreadable,
/// short or other file; never throws. Used to refuse overwriting a database with an export.
bool is_sqlite_file(const std::string& path);

/// One SQLite connection, owned by a unique_ptr whose deleter calls sqlite3_close_v2.
///
/// Opening a writer applies the journal policy (`journal_mode`), `foreign_keys = ON`,
/// `synchronous = NORMAL` under WAL (FULL under rollback) and the busy timeout. Opening a
/// reader applies the busy timeout and `query_only`.
/// Throws StoreError when the file cannot be opened, naming the path and saying why in the
/// user's terms: "is a directory", "is not an SQLite database", "does not exist" (readers),
/// or SQLite's message.
class Database {
 public:
  /// `path` is a file name or ":memory:" (an in-memory database, always a writer).
  explicit Database(const std::string& path, const OpenOptions& options = {});
  ~Database();
  Database(Database&&) noexcept;
  Database& operator=(Database&&) noexcept;
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  /// Runs one or more SQL statements without results (DDL, PRAGMA, BEGIN...). Throws
  /// StoreError with the SQLite message and the first 200 characters of `sql`.
  void exec(std::string_view sql);

  /// rowid of the last successful INSERT on this connection.
  int64_t last_insert_rowid() const;
  /// Rows changed by the last INSERT/UPDATE/DELETE.
  int64_t changes() const;
  /// True outside any explicit transaction.
  bool autocommit() const;

  const std::string& path() const { return path_; }
  bool read_only() const { return read_only_; }
  /// The journal mode in effect ("wal", "delete", "memory", ...), lower case.
  std::string journal_mode();
  /// Applies the writer's journal policy (OpenOptions::journal); done by the constructor
  /// unless OpenOptions::defer_journal_policy. No-op for readers and in-memory databases.
  void apply_journal_policy();

  /// The raw handle, for Statement only.
  sqlite3* handle() const { return db_.get(); }

 private:
  friend class Statement;
  struct Closer {
    void operator()(sqlite3* db) const noexcept;
  };
  // Declared before db_ so that it is destroyed after: ~Database finalises the cached
  // statements first, then db_ closes the connection.
  std::shared_ptr<detail::StatementCache> cache_;
  std::unique_ptr<sqlite3, Closer> db_;
  std::string path_;
  bool read_only_ = false;
  JournalMode journal_ = JournalMode::kAuto;  // the writer's policy, for apply_journal_policy
};

/// One prepared statement. Parameters are 1-based as in SQLite; columns are 0-based.
///
/// Statements are cached per connection: the destructor resets the statement, clears its
/// bindings and hands it back to its Database, and the next Statement with the same SQL text
/// takes it instead of compiling the SQL again (sqlite3_prepare_v2 was a fifth of the sweep
/// coordinator's CPU time per run). A statement in use is never shared: two live Statements
/// with the same SQL are two prepared statements. At most 256 distinct SQL texts are kept;
/// others are finalised as before. A Statement that outlives its Database is finalised.
///
///   Statement st(db, "SELECT value FROM summaries WHERE run_id = ? AND name = ?");
///   st.bind(1, run_id).bind(2, "val_bps");
///   while (st.step()) use(st.column_double(0));
class Statement {
 public:
  /// Throws StoreError naming the SQL when it does not compile (or has trailing SQL).
  Statement(Database& db, std::string_view sql);
  ~Statement();
  Statement(Statement&&) noexcept;
  Statement& operator=(Statement&&) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  // Binding: text and blobs are copied (SQLITE_TRANSIENT), so arguments may be temporaries.
  Statement& bind(int index, int64_t value);
  Statement& bind(int index, int value) { return bind(index, static_cast<int64_t>(value)); }
  Statement& bind(int index, double value);
  Statement& bind(int index, std::string_view value);
  Statement& bind(int index, const char* value) { return bind(index, std::string_view(value)); }
  Statement& bind(int index, const std::string& value) {
    return bind(index, std::string_view(value));
  }
  Statement& bind(int index, std::nullptr_t);
  Statement& bind(int index, Blob value);
  Statement& bind(int index, const SqlValue& value);
  template <class T>
  Statement& bind(int index, const std::optional<T>& value) {
    return value ? bind(index, *value) : bind(index, nullptr);
  }
  /// Binds `values[i]` to parameter i + 1.
  Statement& bind_all(const std::vector<SqlValue>& values);

  /// Advances to the next row: true when a row is available, false when done. Throws
  /// StoreError on failure (SQLITE_BUSY after the busy timeout, constraint violations...).
  bool step();
  /// step() for statements without results; throws if the statement returned a row.
  void run();
  /// Resets to run again; bindings are kept (clear_bindings() drops them).
  void reset();
  void clear_bindings();

  int column_count() const;
  std::string column_name(int column) const;
  bool is_null(int column) const;
  int64_t column_int64(int column) const;
  double column_double(int column) const;
  std::string column_text(int column) const;
  std::vector<unsigned char> column_blob(int column) const;
  std::optional<int64_t> column_optional_int64(int column) const;
  std::optional<double> column_optional_double(int column) const;
  std::optional<std::string> column_optional_text(int column) const;
  /// The column as a dynamically typed value (BLOBs come back as text of their bytes).
  SqlValue column_value(int column) const;

 private:
  void check_bind(int rc, int index);
  struct Finalizer {
    void operator()(sqlite3_stmt* st) const noexcept;
  };
  std::unique_ptr<sqlite3_stmt, Finalizer> stmt_;
  sqlite3* db_ = nullptr;
  std::shared_ptr<detail::StatementCache> cache_;  // where the destructor returns stmt_
  std::string sql_;                                 // the SQL text, the cache's key
};

/// A write transaction. At the outermost level it is BEGIN IMMEDIATE (takes the write lock
/// at once, waiting up to the busy timeout); inside another Transaction it is a SAVEPOINT, so
/// helpers that need atomicity compose with callers that batch many writes.
/// The destructor rolls back unless commit() was called, and never throws.
class Transaction {
 public:
  explicit Transaction(Database& db);
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  /// Makes the writes durable (or releases the savepoint into the enclosing transaction).
  /// Throws StoreError on failure, after which the destructor rolls back.
  void commit();

 private:
  Database& db_;
  std::string savepoint_;  // empty at the outermost level
  bool done_ = false;
};

}  // namespace jslds::store
