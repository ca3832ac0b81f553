// State shared by every backend of the cluster (only when clerk_sync is preloaded): the one rate
// budget for the Clerk API, and what the background worker is doing.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "clerk_api.hpp"

namespace clerk_sync {

// clerk_sync.rate_budget; from _PG_init.
void define_budget_setting();
// Requests shared memory for the state and hooks its initialisation; from _PG_init when preloaded.
void request_shared_state();

// The background worker (worker.cpp): its settings, and the launcher's registration.
void define_worker_settings();
void register_launcher();

// Whether this process can use the shared state (clerk_sync was preloaded).
bool shared_state_available();

// The shared rate budget, a GCRA over atomics: callable from any thread, never touches anything
// but shared memory. wait_for_turn() sleeps until this caller may send one request (and past any
// pause a 429 set); it throws Error(interrupted) when `interrupted` turns true meanwhile.
void wait_for_turn(long requests_per_10s, const std::function<bool()> &interrupted);
// A 429: nobody in the cluster sends before `retry_after_s` seconds have passed.
void pause_everyone(long retry_after_s);

// Client hooks for a process of this cluster: `interrupted`, and the shared rate budget for
// `secret_key`'s requests (nothing when clerk_sync is not preloaded).
ApiHooks budget_hooks(const std::string &secret_key, std::function<bool()> interrupted);

// Requests per 10 s for a secret key: clerk_sync.rate_budget, or Clerk's limit for the kind of
// key (sk_live_: 1000, otherwise 100).
long requests_per_10s_for(const std::string &secret_key);

// The background worker's record in shared memory.
struct WorkerStatus {
    int launcher_pid = 0;
    int run_pid = 0;
    std::string state;
    int64_t next_run_at = 0;   // PostgreSQL TimestampTz, 0 = none scheduled
    int64_t paused_until = 0;  // PostgreSQL TimestampTz, 0 = not paused
    int consecutive_failures = 0;
};
WorkerStatus worker_status();

}  // namespace clerk_sync

namespace clerk_sync {

// For the worker (shared_state.cpp keeps the lock discipline in one place).
void launcher_attach(int pid, void *latch);  // latch: the launcher's MyLatch
void launcher_detach();
void worker_set_state(const char *state, int run_pid, int64_t next_run_at, int consecutive_failures);
// Asks the worker to run now (a full reconciliation if `full`); false when no worker is running.
bool request_wakeup(bool full);
// The launcher takes a pending wakeup request: 0 none, 1 a run, 2 a full run.
int take_wakeup();
// A run worker reports how its run ended; the launcher takes it (false also when none reported).
void set_run_result(bool succeeded);
bool take_run_result();

}  // namespace clerk_sync
