// Module entry: the magic block and _PG_init. Each concern lives in its own file:
//   svix.cpp        webhook signature verification (core, no postgres.h)
//   clerk_user.cpp  the mapping of a Clerk user / event to a row (core)
//   json_guard.cpp  safe parsing of untrusted JSON (core)
//   settings.cpp    clerk_sync.* settings and secret handling (glue)
//   user_store.cpp  writing mapped users and events through SPI (glue)
//   webhook.cpp     the SQL-callable webhook functions (glue)
#include "settings.hpp"
#include "pg_boundary.hpp"

extern "C" {
#include "miscadmin.h"

PG_MODULE_MAGIC;

void _PG_init(void);

void _PG_init(void) {
    // Defining settings raises no C++ exception, so no cpp_entry() is needed here.
    clerk_sync::define_settings(process_shared_preload_libraries_in_progress);
}
}
