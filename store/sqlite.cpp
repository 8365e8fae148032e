#include "store/sqlite.h"

#include <sys/stat.h>
#include <unistd.h>

#include <sys/statfs.h>

#include <algorithm>
#include <cerrno>
#include <unordered_map>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>
#include <sqlite3.h>

namespace jslds::store {

namespace detail {
// Prepared statements of one connection that no Statement uses, by SQL text. Shared between
// the Database and its live Statements so that either may go first.
struct StatementCache {
  static constexpr std::size_t kMaxEntries = 256;
  std::unordered_map<std::string, sqlite3_stmt*> idle;
  bool closed = false;

  sqlite3_stmt* take(std::string_view sql) {
    auto it = idle.find(std::string(sql));
    if (it == idle.end()) return nullptr;
    sqlite3_stmt* st = it->second;
    idle.erase(it);
    return st;
  }
  // Keeps `st` for reuse, or finalises it (closed connection, a copy already kept, full).
  void give_back(std::string&& sql, sqlite3_stmt* st) noexcept {
    try {
      if (!closed && idle.size() < kMaxEntries) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        if (idle.emplace(std::move(sql), st).second) return;
      }
    } catch (...) {  // std::bad_alloc: finalise instead
    }
    sqlite3_finalize(st);
  }
  void close() noexcept {
    for (auto& [sql, st] : idle) sqlite3_finalize(st);
    idle.clear();
    closed = true;
  }
};
}  // namespace detail

namespace {

std::string sql_excerpt(std::string_view sql) {
  constexpr std::size_t kMax = 200;
  std::string s(sql.substr(0, kMax));
  if (sql.size() > kMax) s += "...";
  return s;
}

[[noreturn]] void throw_sqlite(sqlite3* db, int rc, const std::string& what) {
  const char* message = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  int code = db ? sqlite3_extended_errcode(db) : rc;
  throw StoreError(fmt::format("{}: {} (SQLite code {})", what, message, code), code);
}

}  // namespace

std::string sqlite_version() { return sqlite3_libversion(); }

bool is_network_filesystem(const std::string& path) {
  // Magic numbers from statfs(2) / linux/magic.h and the vendors' headers.
  constexpr long kNfs = 0x6969;
  constexpr long kLustre = 0x0BD00BD0;
  constexpr long kGpfs = 0x47504653;
  constexpr long kCifs = 0xFF534D42;
  constexpr long kSmb2 = 0xFE534D42;
  constexpr long kSmb = 0x517B;
  constexpr long kBeegfs = 0x19830326;
  constexpr long kCeph = 0x00C36400;
  constexpr long kAfs = 0x5346414F;
  constexpr long kFuse = 0x65735546;  // sshfs and friends
  std::filesystem::path p(path);
  std::error_code ec;
  std::filesystem::path dir = std::filesystem::is_directory(p, ec) ? p : p.parent_path();
  if (dir.empty()) dir = ".";
  struct statfs info {};
  if (statfs(dir.c_str(), &info) != 0) return false;
  // f_type is signed on some ABIs; compare the low 32 bits.
  const long type = static_cast<long>(static_cast<unsigned int>(info.f_type));
  for (long magic : {kNfs, kLustre, kGpfs, kCifs, kSmb2, kSmb, kBeegfs, kCeph, kAfs, kFuse}) {
    if (type == static_cast<long>(static_cast<unsigned int>(magic))) return true;
  }
  return false;
}

bool is_sqlite_file(const std::string& path) {
  static constexpr char kHeader[16] = {'S', 'Q', 'L', 'i', 't', 'e', ' ', 'f',
                                       'o', 'r', 'm', 'a', 't', ' ', '3', '\0'};
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return false;
  std::ifstream file(path, std::ios::binary);
  char header[16] = {};
  if (!file.read(header, sizeof header)) return false;
  return std::equal(std::begin(header), std::end(header), std::begin(kHeader));
}

// ---- Database -------------------------------------------------------------------------

void Database::Closer::operator()(sqlite3* db) const noexcept {
  // close_v2 defers the close until outstanding statements are finalised; never throws.
  sqlite3_close_v2(db);
}

Database::Database(const std::string& path, const OpenOptions& options)
    : path_(path), read_only_(options.read_only && path != ":memory:") {
  int flags = SQLITE_OPEN_NOMUTEX;
  if (read_only_) {
    flags |= SQLITE_OPEN_READONLY;
  } else {
    flags |= SQLITE_OPEN_READWRITE;
    if (options.create) flags |= SQLITE_OPEN_CREATE;
  }
  std::error_code ec;
  if (path != ":memory:" && !path.empty() && std::filesystem::is_directory(path, ec)) {
    throw StoreError(fmt::format(
        "cannot open database '{}': it is a directory, not a database file", path));
  }
  // Opens `name` (a path, or a URI with SQLITE_OPEN_URI) into db_ and reads the schema,
  // which sqlite3_open_v2 does not: its status says what is wrong with the file, before a
  // PRAGMA fails with SQLite's terse "file is not a database".
  sqlite3* raw = nullptr;
  auto open_and_read = [&](const std::string& name, int open_flags, const std::string& what) {
    raw = nullptr;
    int rc = sqlite3_open_v2(name.c_str(), &raw, open_flags, nullptr);
    db_.reset(raw);  // owned even on failure: sqlite3_open_v2 may allocate a handle anyway
    if (rc != SQLITE_OK) {
      std::string hint;
      if (read_only_ && !std::filesystem::exists(path)) hint = " (the file does not exist)";
      throw_sqlite(raw, rc, fmt::format("cannot open database '{}'{}{}", path, what, hint));
    }
    sqlite3_extended_result_codes(raw, 1);
    sqlite3_busy_timeout(raw, options.busy_timeout_ms);
    return sqlite3_exec(raw, "SELECT count(*) FROM sqlite_master", nullptr, nullptr, nullptr);
  };
  int rc = open_and_read(path, flags, "");
  if (rc != SQLITE_OK && db_) rc = sqlite3_extended_errcode(db_.get());  // e.g. READONLY_CANTINIT
  if (read_only_ && rc == SQLITE_READONLY_ROLLBACK) {
    throw StoreError(fmt::format(
        "cannot read database '{}': a write to it was interrupted (its coordinator died "
        "mid-transaction) and left {}-journal, which must be rolled back before the database "
        "can be read; reading commands open it read-only and cannot. The next `jslds sweep` "
        "with this --db rolls it back (nothing recorded before the interruption is lost)",
        path, path), rc);
  }
  if (read_only_ && ((rc & 0xff) == SQLITE_CANTOPEN || rc == SQLITE_READONLY_CANTINIT ||
                     rc == SQLITE_READONLY_DIRECTORY)) {
    // A WAL database in a directory this user cannot write (a colleague's campaign, a
    // read-only archive): SQLite cannot create the -shm index a WAL reader needs. No writer
    // can be active without that index, so the file is read as immutable instead; but only
    // when no -wal holds changes the database file lacks: an immutable read ignores them and
    // would show an older state without a word.
    std::error_code wal_ec;
    const auto wal_bytes = std::filesystem::file_size(path + "-wal", wal_ec);
    if (!wal_ec && wal_bytes > 0) {
      throw StoreError(fmt::format(
          "cannot read database '{}': its latest changes are in {}-wal ({} bytes), and reading "
          "them needs {}-shm, which this user cannot create (the folder is not writable for "
          "you). Copy the database and its -wal file together into a folder you can write and "
          "read the copy, or ask the owner to make the folder writable for you",
          path, path, wal_bytes, path), rc);
    }
    std::string uri = "file:";
    for (char c : path) {
      if (c == '%' || c == '?' || c == '#') uri += fmt::format("%{:02X}", static_cast<unsigned char>(c));
      else uri += c;
    }
    rc = open_and_read(uri + "?immutable=1", flags | SQLITE_OPEN_URI, " read-only");
  }
  if ((rc & 0xff) == SQLITE_NOTADB) {
    throw StoreError(fmt::format("cannot open database '{}': the file is not an SQLite "
                                 "database (give the experiment database written by "
                                 "`jslds sweep`)",
                                 path),
                     rc);
  }
  if (rc != SQLITE_OK) throw_sqlite(raw, rc, fmt::format("cannot read database '{}'", path));

  if (read_only_) {
    exec("PRAGMA query_only = ON");
    return;
  }
  exec("PRAGMA foreign_keys = ON");
  if (path == ":memory:" || path.empty()) return;
  // A reader of another user leaves -wal and -shm owned by that user (SQLite gives them the
  // database's mode, e.g. 644): this writer could then not write them, and would fail at its
  // first transaction with SQLite's bare "attempt to write a readonly database".
  for (const char* suffix : {"-wal", "-shm"}) {
    const std::string companion = path + suffix;
    std::error_code companion_ec;
    if (std::filesystem::exists(companion, companion_ec) && ::access(companion.c_str(), W_OK) != 0) {
      if (errno == EROFS)  // no owner can help there (found by a tester: it advised chown)
        throw StoreError(fmt::format("cannot write database '{}': it lies on a read-only file system; give a --db "
                                     "on a writable one (reading commands such as `jslds status` work here)",
                                     path));
      struct stat st {};
      const std::string owner =
          ::stat(companion.c_str(), &st) == 0 ? fmt::format("user id {}", st.st_uid) : "another user";
      throw StoreError(fmt::format(
          "cannot write database '{}': {} belongs to {} and is not writable for you (a reading "
          "command of that user, e.g. `jslds status`, created it). Root can give it back "
          "(chown {} {}-wal {}-shm); to share a database among users for good, give its folder to "
          "a group (chmod g+ws, umask 002) so that these files are group-writable",
          path, companion, owner, ::getuid(), path, path));
    }
  }
  journal_ = options.journal;
  if (!options.defer_journal_policy) apply_journal_policy();
}

void Database::apply_journal_policy() {
  if (read_only_ || path_ == ":memory:" || path_.empty()) return;
  bool rollback = journal_ == JournalMode::kRollback ||
                  (journal_ == JournalMode::kAuto && is_network_filesystem(path_));
  if (rollback) {
    // Network filesystems: no shared-memory WAL index and no mmap (DESIGN §5).
    exec("PRAGMA journal_mode = DELETE");
    exec("PRAGMA mmap_size = 0");
    exec("PRAGMA synchronous = FULL");
  } else {
    exec("PRAGMA journal_mode = WAL");
    exec("PRAGMA synchronous = NORMAL");
  }
}

Database::~Database() {
  if (cache_) cache_->close();
}
Database::Database(Database&&) noexcept = default;
Database& Database::operator=(Database&&) noexcept = default;

void Database::exec(std::string_view sql) {
  std::string text(sql);
  char* message = nullptr;
  int rc = sqlite3_exec(db_.get(), text.c_str(), nullptr, nullptr, &message);
  if (rc != SQLITE_OK) {
    std::string detail = message ? message : sqlite3_errstr(rc);
    sqlite3_free(message);
    int code = sqlite3_extended_errcode(db_.get());
    throw StoreError(fmt::format("database '{}': {} (SQLite code {}) in: {}", path_, detail, code,
                                 sql_excerpt(sql)),
                     code);
  }
}

int64_t Database::last_insert_rowid() const { return sqlite3_last_insert_rowid(db_.get()); }
int64_t Database::changes() const { return sqlite3_changes64(db_.get()); }
bool Database::autocommit() const { return sqlite3_get_autocommit(db_.get()) != 0; }

std::string Database::journal_mode() {
  Statement st(*this, "PRAGMA journal_mode");
  if (!st.step()) return "";
  std::string mode = st.column_text(0);
  for (char& c : mode) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return mode;
}

// ---- Statement ------------------------------------------------------------------------

void Statement::Finalizer::operator()(sqlite3_stmt* st) const noexcept { sqlite3_finalize(st); }

Statement::Statement(Database& db, std::string_view sql) : db_(db.handle()) {
  if (!db.cache_) db.cache_ = std::make_shared<detail::StatementCache>();
  cache_ = db.cache_;
  sql_ = sql;
  if (sqlite3_stmt* cached = cache_->take(sql)) {
    stmt_.reset(cached);
    return;
  }
  sqlite3_stmt* raw = nullptr;
  const char* tail = nullptr;
  int rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &raw, &tail);
  stmt_.reset(raw);
  if (rc != SQLITE_OK) {
    throw_sqlite(db_, rc, fmt::format("cannot prepare SQL: {}", sql_excerpt(sql)));
  }
  if (raw == nullptr) throw StoreError("empty SQL statement");
  std::string_view rest(tail, static_cast<std::size_t>(sql.data() + sql.size() - tail));
  if (rest.find_first_not_of(" \t\r\n;") != std::string_view::npos) {
    throw StoreError(fmt::format("more than one SQL statement given to Statement: {}",
                                 sql_excerpt(sql)));
  }
}

Statement::~Statement() {
  if (stmt_ && cache_) cache_->give_back(std::move(sql_), stmt_.release());
}
Statement::Statement(Statement&&) noexcept = default;
Statement& Statement::operator=(Statement&&) noexcept = default;

void Statement::check_bind(int rc, int index) {
  if (rc != SQLITE_OK) {
    throw_sqlite(db_, rc,
                 fmt::format("cannot bind parameter {} of: {}", index,
                             sql_excerpt(sqlite3_sql(stmt_.get()))));
  }
}

Statement& Statement::bind(int index, int64_t value) {
  check_bind(sqlite3_bind_int64(stmt_.get(), index, value), index);
  return *this;
}
Statement& Statement::bind(int index, double value) {
  check_bind(sqlite3_bind_double(stmt_.get(), index, value), index);
  return *this;
}
Statement& Statement::bind(int index, std::string_view value) {
  check_bind(sqlite3_bind_text64(stmt_.get(), index, value.data(), value.size(), SQLITE_TRANSIENT,
                                 SQLITE_UTF8),
             index);
  return *this;
}
Statement& Statement::bind(int index, std::nullptr_t) {
  check_bind(sqlite3_bind_null(stmt_.get(), index), index);
  return *this;
}
Statement& Statement::bind(int index, Blob value) {
  check_bind(sqlite3_bind_blob64(stmt_.get(), index, value.data, value.size, SQLITE_TRANSIENT),
             index);
  return *this;
}
Statement& Statement::bind(int index, const SqlValue& value) {
  std::visit([&](const auto& v) { bind(index, v); }, value);
  return *this;
}
Statement& Statement::bind_all(const std::vector<SqlValue>& values) {
  for (std::size_t i = 0; i < values.size(); ++i) bind(static_cast<int>(i + 1), values[i]);
  return *this;
}

bool Statement::step() {
  int rc = sqlite3_step(stmt_.get());
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  throw_sqlite(db_, rc, fmt::format("cannot execute: {}", sql_excerpt(sqlite3_sql(stmt_.get()))));
}

void Statement::run() {
  if (step()) {
    throw StoreError(fmt::format("statement unexpectedly returned rows: {}",
                                 sql_excerpt(sqlite3_sql(stmt_.get()))));
  }
}

void Statement::reset() { sqlite3_reset(stmt_.get()); }
void Statement::clear_bindings() { sqlite3_clear_bindings(stmt_.get()); }

int Statement::column_count() const { return sqlite3_column_count(stmt_.get()); }
std::string Statement::column_name(int column) const {
  const char* name = sqlite3_column_name(stmt_.get(), column);
  return name ? name : "";
}
bool Statement::is_null(int column) const {
  return sqlite3_column_type(stmt_.get(), column) == SQLITE_NULL;
}
int64_t Statement::column_int64(int column) const {
  return sqlite3_column_int64(stmt_.get(), column);
}
double Statement::column_double(int column) const {
  return sqlite3_column_double(stmt_.get(), column);
}
std::string Statement::column_text(int column) const {
  const unsigned char* text = sqlite3_column_text(stmt_.get(), column);
  int n = sqlite3_column_bytes(stmt_.get(), column);
  return text ? std::string(reinterpret_cast<const char*>(text), static_cast<std::size_t>(n))
              : std::string();
}
std::vector<unsigned char> Statement::column_blob(int column) const {
  const void* data = sqlite3_column_blob(stmt_.get(), column);
  int n = sqlite3_column_bytes(stmt_.get(), column);
  if (!data || n <= 0) return {};
  const auto* bytes = static_cast<const unsigned char*>(data);
  return std::vector<unsigned char>(bytes, bytes + n);
}
std::optional<int64_t> Statement::column_optional_int64(int column) const {
  if (is_null(column)) return std::nullopt;
  return column_int64(column);
}
std::optional<double> Statement::column_optional_double(int column) const {
  if (is_null(column)) return std::nullopt;
  return column_double(column);
}
std::optional<std::string> Statement::column_optional_text(int column) const {
  if (is_null(column)) return std::nullopt;
  return column_text(column);
}
SqlValue Statement::column_value(int column) const {
  switch (sqlite3_column_type(stmt_.get(), column)) {
    case SQLITE_NULL:
      return nullptr;
    case SQLITE_INTEGER:
      return column_int64(column);
    case SQLITE_FLOAT:
      return column_double(column);
    default:
      return column_text(column);
  }
}

// ---- Transaction ----------------------------------------------------------------------

Transaction::Transaction(Database& db) : db_(db) {
  if (db_.autocommit()) {
    db_.exec("BEGIN IMMEDIATE");
  } else {
    static thread_local uint64_t counter = 0;
    savepoint_ = fmt::format("jslds_sp_{}", ++counter);
    db_.exec("SAVEPOINT " + savepoint_);
  }
}

Transaction::~Transaction() {
  if (done_) return;
  // Never throw from here: a failed rollback leaves SQLite to roll back on close.
  if (savepoint_.empty()) {
    sqlite3_exec(db_.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
  } else {
    std::string sql = "ROLLBACK TO " + savepoint_ + "; RELEASE " + savepoint_;
    sqlite3_exec(db_.handle(), sql.c_str(), nullptr, nullptr, nullptr);
  }
}

void Transaction::commit() {
  if (done_) throw StoreError("Transaction::commit called twice");
  db_.exec(savepoint_.empty() ? std::string("COMMIT") : "RELEASE " + savepoint_);
  done_ = true;
}

}  // namespace jslds::store
