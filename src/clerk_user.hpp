// The one mapping of a Clerk user (and of a Clerk webhook event) to what clerk.users stores.
// Every path that writes users (webhooks, the trusted replay path, the backfill) goes through
// map_user(), so the rules live here and nowhere else.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace clerk_sync {

struct MappingOptions {
    std::string tier_key;  // public_metadata member holding the tier (clerk_sync.tier_key)
    bool require_email;    // users without a primary email are skipped (clerk_sync.require_email)
};

// One row of clerk.users, as the SQL side receives it.
struct UserRow {
    std::string id;
    std::optional<std::string> email;  // the address whose id is primary_email_address_id
    std::optional<std::string> first_name, last_name, username, image_url;
    std::optional<std::string> tier;   // as named in public_metadata; resolved against clerk.tiers in SQL
    std::string public_metadata;       // JSON text, "{}" when Clerk sent none
    std::string raw;                   // the whole user object, JSON text
    int64_t created_at_ms = 0;
    int64_t updated_at_ms = 0;
};

enum class MapOutcome {
    mapped,    // store it
    no_email,  // no primary email and clerk_sync.require_email is on: count as skipped
    invalid,   // not a user we can store; `problem` says why
};

struct MappedUser {
    MapOutcome outcome;
    UserRow row;
    std::string problem;
};

// `raw_text`, when given, is the user's JSON exactly as received, stored as `raw` instead of
// serialising `user` again.
MappedUser map_user(const nlohmann::json &user, const MappingOptions &options,
                    std::string_view raw_text = {});

// What a webhook event asks of the database.
enum class EventAction { upsert_user, delete_user, skip, ignore };

struct ClerkEvent {
    std::string type;
    std::optional<int64_t> timestamp_ms;  // the envelope's timestamp (sent as ms or s), in ms
    EventAction action = EventAction::ignore;
    std::string user_id;                  // upsert_user and delete_user
    UserRow user;                         // upsert_user
    std::string detail;                   // why an event is skipped
};

// Parses and maps a webhook body. Throws Error(invalid_json) when it is not JSON and
// Error(invalid_event) when it is not a Clerk event or its user cannot be stored.
ClerkEvent parse_event(std::string_view body, const MappingOptions &options);

// Clerk's docs give event timestamps in ms, its spec's examples in seconds: accept both.
int64_t timestamp_to_ms(int64_t value);

}  // namespace clerk_sync
