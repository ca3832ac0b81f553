// Module entry: the magic block and _PG_init. Each concern lives in its own file:
//   svix.cpp        webhook signature verification (core, no postgres.h)
//   clerk_user.cpp  the mapping of a Clerk user / event to a row (core)
//   json_guard.cpp  safe parsing of untrusted JSON (core)
//   settings.cpp    clerk_sync.* settings and secret handling (glue)
//   user_store.cpp  writing mapped users and events through SPI (glue)
//   webhook.cpp     the SQL-callable webhook functions (glue)
//   clerk_api.cpp   the libcurl Clerk Backend API client and pager (core)
//   page_stream.cpp pages fetched and mapped one ahead on a thread of their own (core)
//   sync.cpp        clerk_sync_all() and clerk_fetch_user() (glue)
//   shared_state.cpp the cluster-wide rate budget and the worker's record (glue)
//   worker.cpp      the background worker (glue)
#include "settings.hpp"
#include "shared_state.hpp"
#include "pg_boundary.hpp"

extern "C" {
#include "miscadmin.h"
#include "utils/guc.h"

PG_MODULE_MAGIC;

void _PG_init(void);

void _PG_init(void) {
    // Nothing here raises a C++ exception, so no cpp_entry() is needed.
    clerk_sync::define_settings(process_shared_preload_libraries_in_progress);
    clerk_sync::define_budget_setting();
    clerk_sync::define_worker_settings();
    // Only now: a clerk_sync.* name still undefined is a typo, and is reported as one.
    MarkGUCPrefixReserved("clerk_sync");
    // The shared rate budget and the background worker exist only when preloaded (and not
    // while pg_upgrade runs the server).
    if (process_shared_preload_libraries_in_progress && !IsBinaryUpgrade) {
        clerk_sync::request_shared_state();
        clerk_sync::register_launcher();
    }
}
}
