// Writing what the mapping produced into the clerk.* tables, through SPI. All SQL logic (staleness,
// tombstones, the inbox) lives in the extension's SQL functions; this file only passes values.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "clerk_user.hpp"

namespace clerk_sync {

// Applies one webhook event in the current transaction (clerk._apply_event) and returns its
// outcome: applied, duplicate, stale, ignored or skipped. `svix_id` is empty for the trusted path,
// which has no message id and so no duplicate check. Raises PgError on any database error.
std::string store_event(const ClerkEvent &event, std::string_view svix_id, std::string_view payload);

}  // namespace clerk_sync
