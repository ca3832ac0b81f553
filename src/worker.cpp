// The background worker: with clerk_sync in shared_preload_libraries, a launcher (connected to no
// database, so it never blocks DROP DATABASE) starts a short-lived run worker every
// clerk_sync.sync_interval, or when clerk_sync_wakeup() asks. The run worker connects to
// clerk_sync.database, decides in SQL what is due (clerk._worker_begin: a full reconciliation,
// the rest of an interrupted one, or a delta sweep), fetches pages outside any transaction,
// writes each page in a short transaction of its own together with its progress, and exits.
// Progress therefore survives a crash, and a full pass resumes after its last committed page.
#include <algorithm>
#include <string>

#include "clerk_api.hpp"
#include "page_stream.hpp"
#include "settings.hpp"
#include "shared_state.hpp"
#include "user_store.hpp"
#include "pg_boundary.hpp"

extern "C" {
#include "access/xact.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

PGDLLEXPORT void clerk_sync_launcher_main(Datum arg);
PGDLLEXPORT void clerk_sync_run_main(Datum arg);
PG_FUNCTION_INFO_V1(clerk_sync_wakeup);
PG_FUNCTION_INFO_V1(clerk_worker_status);
}

namespace clerk_sync {

namespace {

char *database_setting = nullptr;
int sync_interval_setting = 300;       // s; 0: no periodic runs
int full_sync_interval_setting = 86400;
int delta_overlap_setting = 60;        // s
int run_retention_setting = 30;        // days
int inbox_retention_setting = 30;      // days; 0: keep every delivery

constexpr int kMaxBackoffFactor = 12;  // failing runs wait up to 12 intervals (and at most 1 h)

// Runs `f` in a transaction of its own, with a snapshot and an SPI-ready state.
template <typename F>
void in_transaction(F f) {
    pg_call([] {
        SetCurrentStatementStartTimestamp();
        StartTransactionCommand();
        PushActiveSnapshot(GetTransactionSnapshot());
    });
    f();
    pg_call([] {
        PopActiveSnapshot();
        CommitTransactionCommand();
    });
}

void report_activity(const std::string &what) {
    pg_call([&] { pgstat_report_activity(STATE_RUNNING, what.c_str()); });
}

struct RunPlan {
    bool go = false;
    int64_t run_id = 0;
    std::string kind, cursor;
    std::string pass_started_at, watermark;  // as text, handed back to SQL
    int64_t watermark_ms = 0;                // 0: none
};

// clerk._worker_begin, unless the extension is absent from this database (then wait quietly).
RunPlan begin_run(bool full_requested) {
    RunPlan plan;
    in_transaction([&] {
        pg_call([&] {
            if (SPI_connect() != SPI_OK_CONNECT)
                elog(ERROR, "clerk_sync: SPI_connect failed");
            if (SPI_execute("SELECT 1 FROM pg_extension WHERE extname = 'clerk_sync'", true, 1) == SPI_OK_SELECT &&
                SPI_processed == 1) {
                char sql[256];
                snprintf(sql, sizeof sql,
                         "SELECT run_id, kind, cursor, pass_started_at::text, watermark::text, "
                         "(extract(epoch FROM watermark) * 1000)::bigint FROM clerk._worker_begin(%s, '%d s')",
                         full_requested ? "true" : "false", full_sync_interval_setting);
                if (SPI_execute(sql, false, 0) == SPI_OK_SELECT && SPI_processed == 1) {
                    HeapTuple t = SPI_tuptable->vals[0];
                    TupleDesc d = SPI_tuptable->tupdesc;
                    bool isnull;
                    plan.go = true;
                    plan.run_id = DatumGetInt64(SPI_getbinval(t, d, 1, &isnull));
                    char *v;
                    if ((v = SPI_getvalue(t, d, 2)))
                        plan.kind = v;
                    if ((v = SPI_getvalue(t, d, 3)))
                        plan.cursor = v;
                    if ((v = SPI_getvalue(t, d, 4)))
                        plan.pass_started_at = v;
                    if ((v = SPI_getvalue(t, d, 5)))
                        plan.watermark = v;
                    Datum ms = SPI_getbinval(t, d, 6, &isnull);
                    plan.watermark_ms = isnull ? 0 : DatumGetInt64(ms);
                }
            }
            SPI_finish();
        });
    });
    return plan;
}

// Runs one statement with text parameters (NULL for nullptr) through SPI, in the current transaction.
void exec(const char *sql, std::initializer_list<const char *> args) {
    pg_call([&] {
        Oid types[16];
        Datum values[16];
        char nulls[16];
        int n = 0;
        for (const char *a : args) {
            types[n] = TEXTOID;
            values[n] = a ? CStringGetTextDatum(a) : 0;
            nulls[n] = a ? ' ' : 'n';
            ++n;
        }
        if (SPI_connect() != SPI_OK_CONNECT)
            elog(ERROR, "clerk_sync: SPI_connect failed");
        if (SPI_execute_with_args(sql, n, types, values, nulls, false, 0) < 0)
            elog(ERROR, "clerk_sync: \"%s\" failed", sql);
        SPI_finish();
    });
}

std::string num(int64_t v) { return std::to_string(v); }

// One run, as planned; returns whether it succeeded. Errors are recorded in clerk.sync_runs.
bool run(const RunPlan &plan) {
    const bool full = plan.kind == "full";
    SyncCounts c;
    StreamProgress progress;
    int64_t newest_ms = 0;
    std::string error;
    try {
        ApiConfig config = api_config();
        ApiHooks hooks = budget_hooks(config.secret_key, backend_interrupted);
        PageStream stream(std::move(config), std::move(hooks), mapping_options(), page_size(),
                          full ? PageOrder::created_ascending : PageOrder::updated_descending,
                          full ? plan.cursor : std::string(), backend_interrupted);
        const int64_t stop_below_ms =
            plan.watermark_ms ? plan.watermark_ms - int64_t(delta_overlap_setting) * 1000 : 0;
        std::vector<std::string> log;
        for (;;) {
            report_activity("clerk_sync: " + plan.kind + " run, waiting for page " + num(c.pages + 1));
            std::optional<MappedPage> page = stream.next(log);
            for (const std::string &line : log)
                pg_call([&] { ereport(LOG, (errmsg_internal("clerk_sync: %s", line.c_str()))); });
            log.clear();
            if (!page)
                break;
            progress = stream.progress();
            c.pages = progress.pages;
            c.skipped += static_cast<int64_t>(page->seen.size());
            c.failed += static_cast<int64_t>(page->problems.size());
            c.requests = progress.requests;
            c.rate_limited = progress.rate_limited;
            newest_ms = std::max(newest_ms, page->newest_updated_ms);
            report_activity("clerk_sync: " + plan.kind + " run, writing page " + num(c.pages));
            in_transaction([&] {
                lock_users(page->rows);  // a short transaction: no webhook may race its users
                StoreCounts stored = store_users(page->rows, page->seen);
                c.synced += stored.applied + stored.stale;
                exec("SELECT clerk._worker_progress($1::bigint, $2, $3::bigint, $4::bigint, $5::bigint, "
                     "$6::bigint, $7::bigint, $8::bigint)",
                     {num(plan.run_id).c_str(), full ? page->last_id.c_str() : nullptr, num(c.synced).c_str(),
                      num(c.skipped).c_str(), num(c.failed).c_str(), num(c.pages).c_str(),
                      num(c.requests).c_str(), num(c.rate_limited).c_str()});
            });
            // A delta sweep ends once it reaches users updated before the watermark.
            if (!full && stop_below_ms && page->oldest_updated_ms && page->oldest_updated_ms < stop_below_ms)
                break;
        }

        std::string detail;
        in_transaction([&] {
            if (full)
                detail = finish_pass_deletions(c, plan.pass_started_at);
            std::string newest = newest_ms ? num(newest_ms) : std::string();
            std::string inbox_retention = num(inbox_retention_setting) + " days";
            exec("SELECT clerk._worker_end($1, timestamptz 'epoch' + $2::bigint * interval '1 ms', $3::interval, "
                 "$4::interval)",
                 {plan.kind.c_str(), newest_ms ? newest.c_str() : nullptr,
                  (num(run_retention_setting) + " days").c_str(),
                  inbox_retention_setting ? inbox_retention.c_str() : nullptr});
            finish_sync_run(plan.run_id, "succeeded", c, {}, detail);
        });
        return true;
    } catch (const PgError &e) {
        error = e.edata->message ? e.edata->message : "database error";
    } catch (const Error &e) {
        error = std::string(e.what()) + (e.detail().empty() ? "" : " (" + e.detail() + ")");
    }
    // Record the failure; the pages committed so far stay, and a full pass resumes after them.
    pg_call([] { AbortCurrentTransaction(); });
    in_transaction([&] { finish_sync_run(plan.run_id, "failed", c, error, {}); });
    pg_call([&] { ereport(LOG, (errmsg_internal("clerk_sync: %s run failed: %s", plan.kind.c_str(), error.c_str()))); });
    return false;
}

// The run worker's body, inside the C++ boundary.
bool run_worker(bool full_requested) {
    RunPlan plan = begin_run(full_requested);
    if (!plan.go)
        return true;  // no extension in this database, or another sync runs: nothing to do
    return run(plan);
}

// Starts one run worker and waits for it to end; returns whether its run succeeded.
bool start_run(bool full, int failures) {
    BackgroundWorker worker = {};
    worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
    worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
    worker.bgw_restart_time = BGW_NEVER_RESTART;
    snprintf(worker.bgw_library_name, BGW_MAXLEN, "clerk_sync");
    snprintf(worker.bgw_function_name, BGW_MAXLEN, "clerk_sync_run_main");
    snprintf(worker.bgw_name, BGW_MAXLEN, "clerk_sync run");
    snprintf(worker.bgw_type, BGW_MAXLEN, "clerk_sync run");
    worker.bgw_main_arg = BoolGetDatum(full);
    worker.bgw_notify_pid = MyProcPid;
    BackgroundWorkerHandle *handle = nullptr;
    if (!RegisterDynamicBackgroundWorker(&worker, &handle)) {
        ereport(LOG, (errmsg("clerk_sync: could not start a run worker"),
                      errhint("Raise max_worker_processes.")));
        return false;
    }
    pid_t pid = 0;
    if (WaitForBackgroundWorkerStartup(handle, &pid) != BGWH_STARTED)
        return false;
    take_run_result();  // forget any stale report
    worker_set_state(full ? "running a full reconciliation" : "running", pid, 0, failures);
    for (;;) {
        if (GetBackgroundWorkerPid(handle, &pid) == BGWH_STOPPED)
            break;
        (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 1000, PG_WAIT_EXTENSION);
        ResetLatch(MyLatch);
        CHECK_FOR_INTERRUPTS();
    }
    return take_run_result();
}

void on_launcher_exit(int, Datum) { launcher_detach(); }

}  // namespace

void define_worker_settings() {
    // A postmaster-level setting can only be defined while preloading (later it is FATAL); the
    // worker exists only then anyway.
    if (process_shared_preload_libraries_in_progress)
        DefineCustomStringVariable(
            "clerk_sync.database", "The database the background worker keeps in sync.", nullptr,
            &database_setting, "postgres", PGC_POSTMASTER, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "clerk_sync.sync_interval", "How often the background worker runs (a delta sweep, or a full "
        "reconciliation when one is due); 0 disables its periodic runs.", nullptr,
        &sync_interval_setting, 300, 0, 7 * 86400, PGC_SIGHUP, GUC_UNIT_S, nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "clerk_sync.full_sync_interval", "How often the background worker reconciles every user, "
        "deleting those missing from Clerk.", nullptr,
        &full_sync_interval_setting, 86400, 1, 365 * 86400, PGC_SIGHUP, GUC_UNIT_S, nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "clerk_sync.delta_overlap", "How far before its watermark a delta sweep looks again.", nullptr,
        &delta_overlap_setting, 60, 0, 86400, PGC_SIGHUP, GUC_UNIT_S, nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "clerk_sync.run_retention", "How long clerk.sync_runs keeps finished runs, in days.", nullptr,
        &run_retention_setting, 30, 1, 3650, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "clerk_sync.inbox_retention", "How long clerk.webhook_events keeps deliveries, in days; 0 keeps "
        "them all.", nullptr,
        &inbox_retention_setting, 30, 0, 3650, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
}

void register_launcher() {
    BackgroundWorker worker = {};
    worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
    worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
    worker.bgw_restart_time = 5;
    snprintf(worker.bgw_library_name, BGW_MAXLEN, "clerk_sync");
    snprintf(worker.bgw_function_name, BGW_MAXLEN, "clerk_sync_launcher_main");
    snprintf(worker.bgw_name, BGW_MAXLEN, "clerk_sync launcher");
    snprintf(worker.bgw_type, BGW_MAXLEN, "clerk_sync launcher");
    RegisterBackgroundWorker(&worker);
}

}  // namespace clerk_sync

using namespace clerk_sync;

extern "C" void clerk_sync_launcher_main(Datum) {
    pqsignal(SIGTERM, die);
    pqsignal(SIGHUP, SignalHandlerForConfigReload);
    BackgroundWorkerUnblockSignals();
    // Connected to no database (like the logical replication launcher): it blocks no DROP
    // DATABASE, yet it is a backend that pg_stat_activity shows and pg_terminate_backend stops.
    BackgroundWorkerInitializeConnection(nullptr, nullptr, 0);
    pgstat_report_appname("clerk_sync");
    launcher_attach(MyProcPid, MyLatch);
    on_proc_exit(on_launcher_exit, 0);

    // A run at start catches up on whatever happened while the server was down.
    TimestampTz last_run_end = 0;
    int failures = 0;
    bool first = true;
    for (;;) {
        int wakeup = take_wakeup();
        long interval_ms = long(sync_interval_setting) * 1000;
        long delay_ms = std::min<long>(interval_ms * std::min(1 << std::min(failures, 4), kMaxBackoffFactor),
                                       std::max<long>(interval_ms, 3600L * 1000));
        TimestampTz next_run = TimestampTzPlusMilliseconds(last_run_end, delay_ms);
        bool due = sync_interval_setting > 0 && (first || GetCurrentTimestamp() >= next_run);
        if (wakeup || due) {
            first = false;
            worker_set_state("running", 0, 0, failures);
            bool ok = start_run(wakeup == 2, failures);
            failures = ok ? 0 : failures + 1;
            last_run_end = GetCurrentTimestamp();
            continue;
        }
        worker_set_state(sync_interval_setting == 0 ? "idle (sync_interval is 0)" : failures ? "backing off" : "idle",
                         0, sync_interval_setting ? next_run : 0, failures);
        long timeout_ms = sync_interval_setting > 0
                              ? std::max<long>(TimestampDifferenceMilliseconds(GetCurrentTimestamp(), next_run), 1)
                              : -1;
        (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_EXIT_ON_PM_DEATH | (timeout_ms >= 0 ? WL_TIMEOUT : 0),
                        timeout_ms, PG_WAIT_EXTENSION);
        ResetLatch(MyLatch);
        CHECK_FOR_INTERRUPTS();
        if (ConfigReloadPending) {
            ConfigReloadPending = false;
            ProcessConfigFile(PGC_SIGHUP);
        }
    }
}

extern "C" void clerk_sync_run_main(Datum arg) {
    pqsignal(SIGTERM, die);
    BackgroundWorkerUnblockSignals();
    BackgroundWorkerInitializeConnection(database_setting, nullptr, 0);
    pgstat_report_appname("clerk_sync");
    bool ok = cpp_entry([&] { return run_worker(DatumGetBool(arg)); });
    set_run_result(ok);
    proc_exit(0);
}

// clerk_sync_wakeup(full boolean) returns boolean
extern "C" Datum clerk_sync_wakeup(PG_FUNCTION_ARGS) {
    return BoolGetDatum(request_wakeup(PG_GETARG_BOOL(0)));
}

// clerk._worker_status()
extern "C" Datum clerk_worker_status(PG_FUNCTION_ARGS) {
    return cpp_entry([&] {
        WorkerStatus s = worker_status();
        long budget = 0;
        try {
            budget = requests_per_10s_for(api_config().secret_key);
        } catch (const Error &) {
        }
        return pg_call([&] {
            TupleDesc desc;
            if (get_call_result_type(fcinfo, nullptr, &desc) != TYPEFUNC_COMPOSITE)
                elog(ERROR, "clerk_sync: return type must be a row type");
            Datum values[7] = {Int32GetDatum(s.launcher_pid), CStringGetTextDatum(s.state.c_str()),
                               Int32GetDatum(s.run_pid), TimestampTzGetDatum(s.next_run_at),
                               TimestampTzGetDatum(s.paused_until), Int32GetDatum(s.consecutive_failures),
                               Int32GetDatum(static_cast<int32>(budget))};
            bool nulls[7] = {s.launcher_pid == 0, false, s.run_pid == 0, s.next_run_at == 0,
                             s.paused_until == 0, false, budget == 0};
            return HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls));
        });
    });
}
