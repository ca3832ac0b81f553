#include "shared_state.hpp"

#include <algorithm>
#include <chrono>
#include <thread>

#include "errors.hpp"
#include "pg_boundary.hpp"

extern "C" {
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/latch.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/guc.h"
#include "utils/timestamp.h"
}

namespace clerk_sync {

namespace {

struct SharedState {
    // The rate budget (lock-free: read and advanced by backends and their fetching threads).
    pg_atomic_uint64 next_slot_us;      // GCRA: when the next request may be sent (Unix µs)
    pg_atomic_uint64 paused_until_us;   // a 429's Retry-After: nobody sends before this (Unix µs)

    // The worker's record, under `mutex`.
    slock_t mutex;
    int launcher_pid;
    Latch *launcher_latch;   // the launcher's PGPROC latch, in shared memory
    int run_pid;
    char state[64];
    TimestampTz next_run_at;
    int consecutive_failures;
    int wakeup;              // 0 none, 1 run, 2 full run
    int run_result;          // 0 none reported, 1 succeeded, 2 failed
};

SharedState *shared = nullptr;
shmem_request_hook_type previous_request_hook = nullptr;
shmem_startup_hook_type previous_startup_hook = nullptr;
int rate_budget_setting = 0;

constexpr long kSliceMs = 20;  // waits look at the interrupt flags this often

uint64_t unix_micros() {
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count());
}

void request_memory() {
    if (previous_request_hook)
        previous_request_hook();
    RequestAddinShmemSpace(MAXALIGN(sizeof(SharedState)));
}

void attach_memory() {
    if (previous_startup_hook)
        previous_startup_hook();
    LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
    bool found = false;
    shared = static_cast<SharedState *>(ShmemInitStruct("clerk_sync", sizeof(SharedState), &found));
    if (!found) {
        memset(shared, 0, sizeof(SharedState));
        pg_atomic_init_u64(&shared->next_slot_us, 0);
        pg_atomic_init_u64(&shared->paused_until_us, 0);
        SpinLockInit(&shared->mutex);
        snprintf(shared->state, sizeof shared->state, "starting");
    }
    LWLockRelease(AddinShmemInitLock);
}

}  // namespace

void define_budget_setting() {
    DefineCustomIntVariable(
        "clerk_sync.rate_budget",
        "Clerk API requests per 10 s allowed to the whole cluster; 0: Clerk's limit for the key.",
        "Clerk allows production instances (sk_live_ keys) 1000 requests per 10 s and development "
        "instances 100.",
        &rate_budget_setting, 0, 0, 100000, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
}

void request_shared_state() {
    previous_request_hook = shmem_request_hook;
    shmem_request_hook = request_memory;
    previous_startup_hook = shmem_startup_hook;
    shmem_startup_hook = attach_memory;
}

bool shared_state_available() { return shared != nullptr; }

long requests_per_10s_for(const std::string &secret_key) {
    if (rate_budget_setting > 0)
        return rate_budget_setting;
    return secret_key.rfind("sk_live_", 0) == 0 ? 1000 : 100;
}

void wait_for_turn(long requests_per_10s, const std::function<bool()> &interrupted) {
    if (!shared || requests_per_10s <= 0)
        return;
    // 5% under the limit: the server counts in windows of its own, and a request paced exactly at
    // the limit can land in a window already full.
    const uint64_t interval = 10'500'000 / static_cast<uint64_t>(requests_per_10s);
    // Take the next free slot: at once if the budget has room, else after the slots before it.
    uint64_t slot;
    uint64_t seen = pg_atomic_read_u64(&shared->next_slot_us);
    for (;;) {
        slot = std::max(seen, unix_micros());
        if (pg_atomic_compare_exchange_u64(&shared->next_slot_us, &seen, slot + interval))
            break;
    }
    for (;;) {
        uint64_t now = unix_micros();
        uint64_t until = std::max(slot, pg_atomic_read_u64(&shared->paused_until_us));
        if (now >= until)
            return;
        if (interrupted && interrupted())
            throw Error(ErrorKind::interrupted, "interrupted while waiting for the Clerk API rate budget");
        std::this_thread::sleep_for(std::chrono::microseconds(std::min<uint64_t>(until - now, kSliceMs * 1000)));
    }
}

void pause_everyone(long retry_after_s) {
    if (!shared)
        return;
    uint64_t until = unix_micros() + static_cast<uint64_t>(std::max(retry_after_s, 1L)) * 1'000'000;
    uint64_t seen = pg_atomic_read_u64(&shared->paused_until_us);
    while (seen < until && !pg_atomic_compare_exchange_u64(&shared->paused_until_us, &seen, until)) {
    }
}

WorkerStatus worker_status() {
    WorkerStatus s;
    if (!shared) {
        s.state = "not running: clerk_sync is not in shared_preload_libraries";
        return s;
    }
    SpinLockAcquire(&shared->mutex);
    s.launcher_pid = shared->launcher_pid;
    s.run_pid = shared->run_pid;
    s.state = shared->launcher_pid ? shared->state : "not running";
    s.next_run_at = shared->next_run_at;
    s.consecutive_failures = shared->consecutive_failures;
    SpinLockRelease(&shared->mutex);
    uint64_t paused = pg_atomic_read_u64(&shared->paused_until_us);
    if (paused > unix_micros())
        s.paused_until = static_cast<int64_t>(paused) -
                         static_cast<int64_t>(POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY;
    return s;
}

void launcher_attach(int pid, void *latch) {
    SpinLockAcquire(&shared->mutex);
    shared->launcher_pid = pid;
    shared->launcher_latch = static_cast<Latch *>(latch);
    SpinLockRelease(&shared->mutex);
}

void launcher_detach() {
    if (!shared)
        return;
    SpinLockAcquire(&shared->mutex);
    shared->launcher_pid = 0;
    shared->launcher_latch = nullptr;
    shared->run_pid = 0;
    SpinLockRelease(&shared->mutex);
}

void worker_set_state(const char *state, int run_pid, int64_t next_run_at, int consecutive_failures) {
    SpinLockAcquire(&shared->mutex);
    snprintf(shared->state, sizeof shared->state, "%s", state);
    shared->run_pid = run_pid;
    shared->next_run_at = next_run_at;
    shared->consecutive_failures = consecutive_failures;
    SpinLockRelease(&shared->mutex);
}

bool request_wakeup(bool full) {
    if (!shared)
        return false;
    SpinLockAcquire(&shared->mutex);
    Latch *latch = shared->launcher_latch;
    shared->wakeup = std::max(shared->wakeup, full ? 2 : 1);
    SpinLockRelease(&shared->mutex);
    if (latch)
        SetLatch(latch);
    return latch != nullptr;
}

void set_run_result(bool succeeded) {
    if (!shared)
        return;
    SpinLockAcquire(&shared->mutex);
    shared->run_result = succeeded ? 1 : 2;
    SpinLockRelease(&shared->mutex);
}

bool take_run_result() {
    SpinLockAcquire(&shared->mutex);
    int r = shared->run_result;
    shared->run_result = 0;
    SpinLockRelease(&shared->mutex);
    return r == 1;
}

ApiHooks budget_hooks(const std::string &secret_key, std::function<bool()> interrupted) {
    ApiHooks hooks;
    hooks.interrupted = interrupted;
    if (shared) {
        long budget = requests_per_10s_for(secret_key);
        hooks.before_request = [budget](const std::function<bool()> &stop) { wait_for_turn(budget, stop); };
        hooks.on_rate_limited = [](long seconds) { pause_everyone(seconds); };
    }
    return hooks;
}

int take_wakeup() {
    SpinLockAcquire(&shared->mutex);
    int w = shared->wakeup;
    shared->wakeup = 0;
    SpinLockRelease(&shared->mutex);
    return w;
}

}  // namespace clerk_sync
