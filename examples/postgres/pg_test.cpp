// Talks to the PostgreSQL server of the VM it runs in (127.0.0.1:5432), or
// to the one PGHOST names (another node of a topology: examples/topology).
#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <cstdlib>
#include <memory>
#include <string>

namespace {

using Connection = std::unique_ptr<PGconn, decltype(&PQfinish)>;
using Result = std::unique_ptr<PGresult, decltype(&PQclear)>;

Connection connect() {
  // libpq takes PGHOST itself when the connection string names no host.
  std::string info = "port=5432 user=postgres dbname=postgres connect_timeout=5";
  if (!std::getenv("PGHOST")) info += " host=127.0.0.1";
  return Connection(PQconnectdb(info.c_str()), &PQfinish);
}

std::string query_value(PGconn* db, const char* sql) {
  Result r(PQexec(db, sql), &PQclear);
  EXPECT_EQ(PQresultStatus(r.get()), PGRES_TUPLES_OK) << PQerrorMessage(db);
  return PQntuples(r.get()) > 0 ? PQgetvalue(r.get(), 0, 0) : "";
}

}  // namespace

TEST(Postgres, AnswersAQuery) {
  Connection db = connect();
  ASSERT_EQ(PQstatus(db.get()), CONNECTION_OK) << PQerrorMessage(db.get());
  EXPECT_EQ(query_value(db.get(), "SELECT 40 + 2"), "42");
}

// Each test gets its own copy of the database: a table made here is gone
// for the next test, which runs in another VM.
TEST(Postgres, StartsEmptyInEveryVm) {
  Connection db = connect();
  ASSERT_EQ(PQstatus(db.get()), CONNECTION_OK) << PQerrorMessage(db.get());
  EXPECT_EQ(query_value(db.get(), "SELECT count(*) FROM pg_tables WHERE tablename = 'visits'"), "0");
  Result created(PQexec(db.get(), "CREATE TABLE visits (at timestamptz DEFAULT now())"), &PQclear);
  ASSERT_EQ(PQresultStatus(created.get()), PGRES_COMMAND_OK) << PQerrorMessage(db.get());
}
