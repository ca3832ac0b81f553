// SQL-callable sync functions: clerk_sync_all() and clerk_fetch_user().
#include <chrono>
#include <string>
#include <vector>

#include "clerk_api.hpp"
#include "clerk_user.hpp"
#include "page_stream.hpp"
#include "shared_state.hpp"
#include "settings.hpp"
#include "user_store.hpp"
#include "pg_boundary.hpp"

extern "C" {
#include "access/htup_details.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(clerk_sync_all);
PG_FUNCTION_INFO_V1(clerk_fetch_user);
}

namespace clerk_sync {

namespace {

// How many unmappable users are reported one by one before only the count is kept.
constexpr int64_t kFailedUsersReported = 10;

void notice(const std::string &message) {
    pg_call([&] { ereport(NOTICE, (errmsg_internal("%s", message.c_str()))); });
}

void warning(const std::string &message, const std::string &hint = {}) {
    pg_call([&] {
        ereport(WARNING, (errmsg_internal("%s", message.c_str()),
                          hint.empty() ? 0 : errhint("%s", hint.c_str())));
    });
}

// The client of a backend serving a SQL call: a cancel (pg_cancel_backend, statement_timeout) or
// a terminate abandons the request; retries are reported to the caller.
ClerkClient backend_client() {
    ApiConfig config = api_config();
    ApiHooks hooks = budget_hooks(config.secret_key, backend_interrupted);
    hooks.log = [](const std::string &m) { notice("clerk_sync: " + m); };
    return ClerkClient(std::move(config), std::move(hooks));
}

struct SyncResult {
    SyncCounts counts;
    double elapsed_s = 0;
};

// One complete pass over Clerk's users, in this transaction; see clerk_sync_all in the README.
SyncResult sync_all(bool delete_missing_users) {
    const auto started = std::chrono::steady_clock::now();
    auto seconds_since_start = [&] {
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    };
    const int64_t run_id = begin_sync_run("manual");
    SyncResult result;
    SyncCounts &c = result.counts;
    std::vector<std::string> log;

    // Each page's SQL values live in a context reset after the page, so memory stays flat.
    MemoryContext page_context = pg_call([] {
        return AllocSetContextCreate(CurrentMemoryContext, "clerk_sync page", ALLOCSET_DEFAULT_SIZES);
    });
    ApiConfig config = api_config();
    ApiHooks hooks = budget_hooks(config.secret_key, backend_interrupted);
    PageStream stream(std::move(config), std::move(hooks), mapping_options(), page_size(),
                      PageOrder::created_ascending, {}, backend_interrupted);
    try {
        for (;;) {
            std::optional<MappedPage> page = stream.next(log);
            for (const std::string &line : log)
                notice("clerk_sync: " + line);
            log.clear();
            if (!page)
                break;

            MemoryContext caller = MemoryContextSwitchTo(page_context);
            StoreCounts stored = store_users(page->rows, page->seen);
            MemoryContextSwitchTo(caller);
            pg_call([&] { MemoryContextReset(page_context); });

            for (const std::string &problem : page->problems)
                if (++c.failed <= kFailedUsersReported)
                    warning("clerk_sync: a Clerk user cannot be stored: " + problem,
                            c.failed == kFailedUsersReported ? "Further failures are counted, not listed." : "");
            c.pages = stream.progress().pages;
            c.synced += stored.applied + stored.stale;
            c.skipped += static_cast<int64_t>(page->seen.size());
            int64_t so_far = c.synced + c.skipped + c.failed;
            char rate[32];
            snprintf(rate, sizeof rate, "%.0f", so_far / std::max(seconds_since_start(), 1e-3));
            notice("clerk_sync_all: page " + std::to_string(c.pages) + ", " + std::to_string(so_far) +
                   " users so far (" + std::to_string(c.synced) + " synced, " + std::to_string(c.skipped) +
                   " skipped, " + std::to_string(c.failed) + " failed), " + rate + " users/s");
        }
    } catch (const Error &e) {
        // Say which page failed; the transaction (and so this run's record) rolls back.
        throw Error(e.kind(), std::string(e.what()) + " (clerk_sync_all, fetching page " +
                                  std::to_string(stream.progress().pages + 1) + ")",
                    e.detail(), e.hint());
    }

    const StreamProgress progress = stream.progress();
    std::string detail;
    if (progress.using_offset)
        detail = "the server refused the starting_after cursor; paged by offset. ";
    if (delete_missing_users) {
        std::string deletions = finish_pass_deletions(c);
        if (c.failed > 0)
            warning("clerk_sync_all: " + deletions,
                    "A user that cannot be stored might be deleted as missing, so deletion is skipped.");
        detail += deletions;
    }
    result.elapsed_s = seconds_since_start();
    c.requests = progress.requests;
    c.rate_limited = progress.rate_limited;
    finish_sync_run(run_id, "succeeded", c, {}, detail);
    char elapsed[32];
    snprintf(elapsed, sizeof elapsed, "%.1f", result.elapsed_s);
    notice("clerk_sync_all: done: " + std::to_string(c.synced) + " synced, " + std::to_string(c.skipped) +
           " skipped, " + std::to_string(c.failed) + " failed, " + std::to_string(c.deleted) +
           " deleted, total " + std::to_string(c.synced + c.skipped + c.failed) + ", " +
           std::to_string(c.pages) + " pages in " + elapsed + " s");
    return result;
}

// GET /users/{id} and apply it; a 404 deletes the user locally with a tombstone.
std::string fetch_user(const std::string &user_id) {
    if (user_id.empty())
        throw Error(ErrorKind::invalid_argument, "user_id must not be empty");
    ClerkClient client = backend_client();
    ApiResponse r = client.get("/users/" + client.escape(user_id));
    if (r.status == 404) {
        delete_user(user_id);
        return "deleted";
    }
    if (r.status != 200)
        throw_for_status(r, "for user " + user_id);
    MappedUser m = map_user(r.body, mapping_options());
    switch (m.outcome) {
    case MapOutcome::invalid:
        throw Error(ErrorKind::invalid_event, "Clerk returned a user that cannot be stored", m.problem);
    case MapOutcome::no_email:
        store_users({}, {m.row.id});
        return "skipped";
    case MapOutcome::mapped:
        break;
    }
    StoreCounts stored = store_users({m.row}, {});
    return stored.applied ? "applied" : "stale";
}

}  // namespace
}  // namespace clerk_sync

using namespace clerk_sync;

// clerk_sync_all(delete_missing boolean) returns (synced, skipped, failed, deleted, total, pages, elapsed)
extern "C" Datum clerk_sync_all(PG_FUNCTION_ARGS) {
    return cpp_entry([&] {
        require_args(fcinfo, {"delete_missing"});
        SyncResult r = sync_all(PG_GETARG_BOOL(0));
        return pg_call([&] {
            TupleDesc desc;
            if (get_call_result_type(fcinfo, nullptr, &desc) != TYPEFUNC_COMPOSITE)
                elog(ERROR, "clerk_sync_all: return type must be a row type");
            const SyncCounts &c = r.counts;
            Datum values[7] = {
                Int64GetDatum(c.synced), Int64GetDatum(c.skipped), Int64GetDatum(c.failed),
                Int64GetDatum(c.deleted), Int64GetDatum(c.synced + c.skipped + c.failed),
                Int64GetDatum(c.pages),
                IntervalPGetDatum(DatumGetIntervalP(DirectFunctionCall7(
                    make_interval, Int32GetDatum(0), Int32GetDatum(0), Int32GetDatum(0), Int32GetDatum(0),
                    Int32GetDatum(0), Int32GetDatum(0), Float8GetDatum(r.elapsed_s)))),
            };
            bool nulls[7] = {};
            return HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls));
        });
    });
}

// clerk_fetch_user(user_id text) returns text
extern "C" Datum clerk_fetch_user(PG_FUNCTION_ARGS) {
    return cpp_entry([&] {
        require_args(fcinfo, {"user_id"});
        std::string user_id = pg_call([&] { return text_to_cstring(PG_GETARG_TEXT_PP(0)); });
        std::string outcome = fetch_user(user_id);
        return pg_call([&] { return PointerGetDatum(cstring_to_text(outcome.c_str())); });
    });
}
