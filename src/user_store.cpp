#include "user_store.hpp"

#include <array>

#include "pg_boundary.hpp"

extern "C" {
#include "catalog/pg_type.h"
#include "executor/spi.h"
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

Param text_param(std::string_view s) {
    return {TEXTOID, PointerGetDatum(cstring_to_text_with_len(s.data(), static_cast<int>(s.size()))), false};
}

Param text_param(const std::optional<std::string> &s) {
    return s ? text_param(std::string_view(*s)) : Param{TEXTOID, 0, true};
}

Param nonempty_text_param(std::string_view s) {
    return s.empty() ? Param{TEXTOID, 0, true} : text_param(s);
}

Param timestamp_param(std::optional<int64_t> ms) {
    if (!ms)
        return {TIMESTAMPTZOID, 0, true};
    // Unix ms to PostgreSQL's microseconds since 2000-01-01.
    TimestampTz ts = *ms * 1000 - (TimestampTz)(POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY;
    return {TIMESTAMPTZOID, TimestampTzGetDatum(ts), false};
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

constexpr int kApplyEventArgs = 17;
constexpr const char *kApplyEventSql =
    "SELECT clerk._apply_event($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)";

// Prepared once per backend; the plan cache replans it if the extension is dropped and recreated.
SPIPlanPtr apply_event_plan = nullptr;

// Runs a one-row, one-column text query through SPI and returns the value in the caller's memory.
text *run_text_query(SPIPlanPtr *plan, const char *sql, const Param *params, int nparams) {
    MemoryContext caller = CurrentMemoryContext;
    Oid types[kApplyEventArgs];
    Datum values[kApplyEventArgs];
    char nulls[kApplyEventArgs];
    for (int i = 0; i < nparams; i++) {
        types[i] = params[i].type;
        values[i] = params[i].value;
        nulls[i] = params[i].null ? 'n' : ' ';
    }
    if (SPI_connect() != SPI_OK_CONNECT)
        elog(ERROR, "clerk_sync: SPI_connect failed");
    if (*plan == nullptr) {
        SPIPlanPtr prepared = SPI_prepare(sql, nparams, types);
        if (prepared == nullptr)
            elog(ERROR, "clerk_sync: could not prepare \"%s\": %s", sql, SPI_result_code_string(SPI_result));
        SPI_keepplan(prepared);
        *plan = prepared;
    }
    int rc = SPI_execute_plan(*plan, values, nulls, false, 1);
    if (rc != SPI_OK_SELECT || SPI_processed != 1)
        elog(ERROR, "clerk_sync: \"%s\" returned %s", sql, SPI_result_code_string(rc));
    bool isnull = false;
    Datum d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
    MemoryContext spi = MemoryContextSwitchTo(caller);
    text *result = isnull ? nullptr : DatumGetTextPCopy(d);
    MemoryContextSwitchTo(spi);
    SPI_finish();
    return result;
}

}  // namespace

std::string store_event(const ClerkEvent &event, std::string_view svix_id, std::string_view payload) {
    const UserRow &u = event.user;
    const bool upsert = event.action == EventAction::upsert_user;
    text *outcome = pg_call([&] {
        std::array<Param, kApplyEventArgs> params = {
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
            upsert ? text_param(std::string_view(u.public_metadata)) : Param{TEXTOID, 0, true},
            upsert ? text_param(std::string_view(u.raw)) : Param{TEXTOID, 0, true},
            upsert ? timestamp_param(u.created_at_ms) : timestamp_param(std::nullopt),
            upsert ? timestamp_param(u.updated_at_ms) : timestamp_param(std::nullopt),
        };
        return run_text_query(&apply_event_plan, kApplyEventSql, params.data(), kApplyEventArgs);
    });
    if (outcome == nullptr)
        return "unknown";
    return std::string(VARDATA_ANY(outcome), VARSIZE_ANY_EXHDR(outcome));
}

}  // namespace clerk_sync
