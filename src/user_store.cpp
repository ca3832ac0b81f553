#include "user_store.hpp"

#include <array>
#include <cstring>

#include "settings.hpp"
#include "pg_boundary.hpp"

extern "C" {
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
}

namespace clerk_sync {

namespace {

// A SQL parameter: its type and its value (NULL when `null`).
struct Param {
    Oid type;
    Datum value;
    bool null;
};

constexpr Param kNullText{TEXTOID, 0, true};

Param text_param(std::string_view s) {
    return {TEXTOID, PointerGetDatum(cstring_to_text_with_len(s.data(), static_cast<int>(s.size()))), false};
}

Param text_param(const std::optional<std::string> &s) { return s ? text_param(std::string_view(*s)) : kNullText; }

Param nonempty_text_param(std::string_view s) { return s.empty() ? kNullText : text_param(s); }

TimestampTz timestamptz_from_ms(int64_t ms) {
    // Unix ms to PostgreSQL's microseconds since 2000-01-01.
    return ms * 1000 - static_cast<TimestampTz>(POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY;
}

Param timestamp_param(std::optional<int64_t> ms) {
    return ms ? Param{TIMESTAMPTZOID, TimestampTzGetDatum(timestamptz_from_ms(*ms)), false}
              : Param{TIMESTAMPTZOID, 0, true};
}

// One column of a batch as a SQL array: text (NULL elements allowed) or timestamptz.
template <typename Row, typename Get>
Param text_array_param(const std::vector<Row> &rows, Get get) {
    int n = static_cast<int>(rows.size());
    Datum *values = static_cast<Datum *>(palloc0(sizeof(Datum) * (n ? n : 1)));
    bool *nulls = static_cast<bool *>(palloc0(sizeof(bool) * (n ? n : 1)));
    for (int i = 0; i < n; i++) {
        const std::string *s = get(rows[i]);
        nulls[i] = s == nullptr;
        if (s)
            values[i] = PointerGetDatum(cstring_to_text_with_len(s->data(), static_cast<int>(s->size())));
    }
    int dims[1] = {n}, lbs[1] = {1};
    return {TEXTARRAYOID, PointerGetDatum(construct_md_array(values, nulls, 1, dims, lbs, TEXTOID, -1, false, TYPALIGN_INT)), false};
}

Param timestamp_array_param(const std::vector<UserRow> &rows, int64_t UserRow::*field) {
    int n = static_cast<int>(rows.size());
    Datum *values = static_cast<Datum *>(palloc0(sizeof(Datum) * (n ? n : 1)));
    for (int i = 0; i < n; i++)
        values[i] = TimestampTzGetDatum(timestamptz_from_ms(rows[i].*field));
    return {TIMESTAMPTZARRAYOID, PointerGetDatum(construct_array(values, n, TIMESTAMPTZOID, sizeof(TimestampTz), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE)), false};
}

const std::string *opt(const std::optional<std::string> &s) { return s ? &*s : nullptr; }

// A statement prepared once per backend and kept; the plan cache replans it if the extension is
// dropped and recreated.
struct Statement {
    const char *sql;
    SPIPlanPtr plan = nullptr;
};

constexpr int kMaxParams = 17;

// Runs a statement through SPI and hands each result row to `on_row` (inside the SPI
// connection: copy out what must outlive it). Call only inside pg_call().
template <typename OnRow>
void run(Statement &st, const Param *params, int nparams, OnRow on_row) {
    Oid types[kMaxParams];
    Datum values[kMaxParams];
    char nulls[kMaxParams];
    for (int i = 0; i < nparams; i++) {
        types[i] = params[i].type;
        values[i] = params[i].value;
        nulls[i] = params[i].null ? 'n' : ' ';
    }
    if (SPI_connect() != SPI_OK_CONNECT)
        elog(ERROR, "clerk_sync: SPI_connect failed");
    if (st.plan == nullptr) {
        SPIPlanPtr prepared = SPI_prepare(st.sql, nparams, types);
        if (prepared == nullptr)
            elog(ERROR, "clerk_sync: could not prepare \"%s\": %s", st.sql, SPI_result_code_string(SPI_result));
        SPI_keepplan(prepared);
        st.plan = prepared;
    }
    int rc = SPI_execute_plan(st.plan, values, nulls, false, 0);
    if (rc < 0)
        elog(ERROR, "clerk_sync: \"%s\" failed: %s", st.sql, SPI_result_code_string(rc));
    for (uint64 i = 0; i < SPI_processed; i++)
            on_row(SPI_tuptable->vals[i], SPI_tuptable->tupdesc);
    SPI_finish();
}

void run(Statement &st, const Param *params, int nparams) {
    run(st, params, nparams, [](HeapTuple, TupleDesc) {});
}

// Column 1 of a row, a short text, into a fixed buffer (no C++ object lives across the SPI calls).
struct ShortText {
    char value[32] = "";
    bool is(const char *s) const { return strcmp(value, s) == 0; }
};

void copy_text_column(HeapTuple tuple, TupleDesc desc, ShortText &out) {
    bool isnull = false;
    Datum d = SPI_getbinval(tuple, desc, 1, &isnull);
    if (!isnull)
        text_to_cstring_buffer(DatumGetTextPP(d), out.value, sizeof out.value);
}

const char *action_name(EventAction action) {
    switch (action) {
    case EventAction::upsert_user: return "upsert";
    case EventAction::delete_user: return "delete";
    case EventAction::skip: return "skipped";
    case EventAction::ignore: return "ignored";
    }
    return "ignored";
}

Statement apply_event{"SELECT clerk._apply_event($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"};
Statement upsert_users{"SELECT applied, stale FROM clerk._upsert_users($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"};
Statement mark_seen{"SELECT clerk._mark_seen($1)"};
Statement lock_each_user{"SELECT clerk._lock_users($1)"};
Statement delete_one{"SELECT clerk._delete_user($1, NULL)"};
Statement delete_missing_users{"SELECT deleted, missing, total FROM clerk._delete_missing(coalesce($2::timestamptz, now()), $1)"};
Statement begin_run{"SELECT clerk._begin_sync($1)"};
Statement finish_run{"SELECT clerk._finish_sync($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"};

Param int8_param(int64_t v) { return {INT8OID, Int64GetDatum(v), false}; }

int64_t int8_column(HeapTuple tuple, TupleDesc desc, int column) {
    bool isnull = false;
    Datum d = SPI_getbinval(tuple, desc, column, &isnull);
    return isnull ? 0 : DatumGetInt64(d);
}

}  // namespace

std::string store_event(const ClerkEvent &event, std::string_view svix_id, std::string_view payload) {
    const UserRow &u = event.user;
    const bool upsert = event.action == EventAction::upsert_user;
    ShortText outcome;
    pg_call([&] {
        std::array<Param, 17> params = {
            nonempty_text_param(svix_id),
            text_param(std::string_view(event.type)),
            timestamp_param(event.timestamp_ms),
            text_param(payload),
            text_param(std::string_view(action_name(event.action))),
            nonempty_text_param(event.detail),
            nonempty_text_param(event.user_id),
            text_param(u.email),
            text_param(u.first_name),
            text_param(u.last_name),
            text_param(u.username),
            text_param(u.image_url),
            text_param(u.tier),
            upsert ? text_param(std::string_view(u.public_metadata)) : kNullText,
            upsert ? text_param(std::string_view(u.raw)) : kNullText,
            timestamp_param(upsert ? std::optional<int64_t>(u.created_at_ms) : std::nullopt),
            timestamp_param(upsert ? std::optional<int64_t>(u.updated_at_ms) : std::nullopt),
        };
        run(apply_event, params.data(), static_cast<int>(params.size()),
            [&](HeapTuple t, TupleDesc d) { copy_text_column(t, d, outcome); });
    });
    return outcome.value;
}

StoreCounts store_users(const std::vector<UserRow> &users, const std::vector<std::string> &seen_ids) {
    StoreCounts counts;
    pg_call([&] {
        if (!users.empty()) {
            using R = UserRow;
            std::array<Param, 11> params = {
                text_array_param<R>(users, [](const R &r) { return &r.id; }),
                text_array_param<R>(users, [](const R &r) { return opt(r.email); }),
                text_array_param<R>(users, [](const R &r) { return opt(r.first_name); }),
                text_array_param<R>(users, [](const R &r) { return opt(r.last_name); }),
                text_array_param<R>(users, [](const R &r) { return opt(r.username); }),
                text_array_param<R>(users, [](const R &r) { return opt(r.image_url); }),
                text_array_param<R>(users, [](const R &r) { return opt(r.tier); }),
                text_array_param<R>(users, [](const R &r) { return &r.public_metadata; }),
                text_array_param<R>(users, [](const R &r) { return &r.raw; }),
                timestamp_array_param(users, &R::created_at_ms),
                timestamp_array_param(users, &R::updated_at_ms),
            };
            run(upsert_users, params.data(), static_cast<int>(params.size()), [&](HeapTuple t, TupleDesc d) {
                counts.applied = int8_column(t, d, 1);
                counts.stale = int8_column(t, d, 2);
            });
        }
        if (!seen_ids.empty()) {
            Param ids = text_array_param<std::string>(seen_ids, [](const std::string &s) { return &s; });
            run(mark_seen, &ids, 1);
        }
    });
    return counts;
}

void lock_users(const std::vector<UserRow> &users) {
    pg_call([&] {
        Param ids = text_array_param<UserRow>(users, [](const UserRow &r) { return &r.id; });
        run(lock_each_user, &ids, 1);
    });
}

std::string delete_user(const std::string &user_id) {
    ShortText outcome;
    pg_call([&] {
        Param id = text_param(std::string_view(user_id));
        run(delete_one, &id, 1, [&](HeapTuple t, TupleDesc d) { copy_text_column(t, d, outcome); });
    });
    return outcome.value;
}

MissingUsers delete_missing(double max_fraction, const std::string &pass_start) {
    MissingUsers result;
    pg_call([&] {
        Param params[2] = {{FLOAT8OID, Float8GetDatum(max_fraction), false}, nonempty_text_param(pass_start)};
        run(delete_missing_users, params, 2, [&](HeapTuple t, TupleDesc d) {
            result.deleted = int8_column(t, d, 1);
            result.missing = int8_column(t, d, 2);
            result.total = int8_column(t, d, 3);
        });
    });
    return result;
}

int64_t begin_sync_run(const char *kind) {
    int64_t id = 0;
    pg_call([&] {
        Param k = text_param(std::string_view(kind));
        run(begin_run, &k, 1, [&](HeapTuple t, TupleDesc d) { id = int8_column(t, d, 1); });
    });
    return id;
}

void finish_sync_run(int64_t run_id, const char *status, const SyncCounts &counts,
                     const std::string &error, const std::string &detail) {
    pg_call([&] {
        std::array<Param, 11> params = {
            int8_param(run_id), text_param(std::string_view(status)),
            int8_param(counts.synced), int8_param(counts.skipped), int8_param(counts.failed),
            int8_param(counts.deleted), int8_param(counts.pages),
            int8_param(counts.requests), int8_param(counts.rate_limited),
            nonempty_text_param(error), nonempty_text_param(detail),
        };
        run(finish_run, params.data(), static_cast<int>(params.size()));
    });
}

std::string finish_pass_deletions(SyncCounts &counts, const std::string &pass_start) {
    if (counts.failed > 0)
        return "missing users not deleted: " + std::to_string(counts.failed) + " users could not be stored";
    MissingUsers m = delete_missing(max_delete_fraction(), pass_start);
    counts.deleted = m.deleted;
    if (m.missing > 0 && m.deleted == 0)
        return "deletion refused: " + std::to_string(m.missing) + " of " + std::to_string(m.total) +
               " users missing from Clerk, more than clerk_sync.max_delete_fraction";
    return {};
}

}  // namespace clerk_sync
