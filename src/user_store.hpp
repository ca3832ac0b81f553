// Writing what the mapping produced into the clerk.* tables, through SPI. All SQL logic (staleness,
// tombstones, the inbox) lives in the extension's SQL functions; this file only passes values.
// Every function raises PgError on a database error.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "clerk_user.hpp"

namespace clerk_sync {

// Applies one webhook event in the current transaction (clerk._apply_event) and returns its
// outcome: applied, duplicate, stale, ignored or skipped. `svix_id` is empty for the trusted path,
// which has no message id and so no duplicate check.
std::string store_event(const ClerkEvent &event, std::string_view svix_id, std::string_view payload);

struct StoreCounts {
    int64_t applied = 0;
    int64_t stale = 0;
};

// Upserts a page of users with one set-based statement (clerk._upsert_users), and marks
// `seen_ids` (users present in Clerk but not stored, e.g. without email) as seen by this pass.
StoreCounts store_users(const std::vector<UserRow> &users, const std::vector<std::string> &seen_ids);

// Takes the write lock of each of these users until the transaction ends (clerk._lock_users), as
// single-user writers do: for a page written in a short transaction of its own.
void lock_users(const std::vector<UserRow> &users);

// Deletes one user and keeps a tombstone (clerk._delete_user); returns applied or stale.
std::string delete_user(const std::string &user_id);

struct SyncCounts {
    int64_t synced = 0, skipped = 0, failed = 0, deleted = 0, pages = 0;
    int64_t requests = 0, rate_limited = 0;  // Clerk API requests sent, and 429s among them
};

struct MissingUsers {
    int64_t deleted = 0;  // 0 when refused by the max_delete_fraction circuit breaker
    int64_t missing = 0;  // users not seen by this pass
    int64_t total = 0;    // users in clerk.users before the deletion
};

// After a complete pass: deletes users not seen since the pass began (clerk._delete_missing):
// `pass_start` as text, or empty for this transaction's start (a pass in one transaction).
MissingUsers delete_missing(double max_fraction, const std::string &pass_start = {});

// The end of a complete full pass (clerk_sync_all or the worker's): deletes the users it did not
// see (delete_missing), unless some users could not be stored (one of them might be deleted as
// missing). Sets counts.deleted; returns what the run's record should say, empty if nothing.
std::string finish_pass_deletions(SyncCounts &counts, const std::string &pass_start = {});

// A row of clerk.sync_runs: begun (taking the database's sync lock, 55P03 if taken) and finished.

int64_t begin_sync_run(const char *kind);
void finish_sync_run(int64_t run_id, const char *status, const SyncCounts &counts,
                     const std::string &error, const std::string &detail);

}  // namespace clerk_sync
