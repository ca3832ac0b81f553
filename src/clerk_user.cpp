#include "clerk_user.hpp"

#include "errors.hpp"
#include "json_guard.hpp"

namespace clerk_sync {

namespace {

// Milliseconds since the epoch that PostgreSQL's timestamptz can hold, with room to spare
// (up to the year 5138).
constexpr int64_t kMaxTimestampMs = 100'000'000'000'000;

// A timestamp member in ms: present, an integer, and in range.
std::optional<int64_t> timestamp_member(const nlohmann::json &object, const char *key) {
    auto it = object.find(key);
    if (it == object.end() || !it->is_number_integer())
        return std::nullopt;
    if (it->is_number_unsigned()) {
        uint64_t v = it->get<uint64_t>();
        if (v > static_cast<uint64_t>(kMaxTimestampMs))
            return std::nullopt;
        return static_cast<int64_t>(v);
    }
    int64_t v = it->get<int64_t>();
    if (v < 0 || v > kMaxTimestampMs)
        return std::nullopt;
    return v;
}

// The address whose id is primary_email_address_id: not simply the first one.
std::optional<std::string> primary_email(const nlohmann::json &user) {
    auto primary_id = string_member(user, "primary_email_address_id");
    auto addresses = user.find("email_addresses");
    if (!primary_id || addresses == user.end() || !addresses->is_array())
        return std::nullopt;
    for (const auto &address : *addresses) {
        if (address.is_object() && string_member(address, "id") == primary_id)
            return string_member(address, "email_address");
    }
    return std::nullopt;
}

// The tier named in public_metadata, if any. A non-string value is passed on as its JSON text,
// so that the SQL side reports it as an unknown tier rather than dropping it silently.
std::optional<std::string> tier_from_metadata(const nlohmann::json &metadata, const std::string &key) {
    if (!metadata.is_object() || key.empty())
        return std::nullopt;
    auto it = metadata.find(key);
    if (it == metadata.end() || it->is_null())
        return std::nullopt;
    if (it->is_string()) {
        std::string tier = it->get<std::string>();
        return tier.empty() ? std::nullopt : std::optional<std::string>(tier);
    }
    return dump_json(*it);
}

// PostgreSQL text and jsonb cannot hold U+0000; find it before the database refuses the row.
bool holds_nul(const UserRow &row) {
    for (const auto *field : {&row.email, &row.first_name, &row.last_name, &row.username,
                              &row.image_url, &row.tier})
        if (*field && field->value().find('\0') != std::string::npos)
            return true;
    return row.id.find('\0') != std::string::npos || row.raw.find("\\u0000") != std::string::npos;
}

MappedUser invalid(std::string problem) {
    return MappedUser{MapOutcome::invalid, UserRow{}, std::move(problem)};
}

}  // namespace

int64_t timestamp_to_ms(int64_t value) {
    // 1e11 s is the year 5138; 1e11 ms is March 1973, long before Clerk existed.
    return value < 100'000'000'000 ? value * 1000 : value;
}

MappedUser map_user(const nlohmann::json &user, const MappingOptions &options, std::string_view raw_text) {
    if (!user.is_object())
        return invalid("the user is not a JSON object");
    UserRow row;
    auto id = string_member(user, "id");
    if (!id || id->empty())
        return invalid("the user has no \"id\"");
    row.id = std::move(*id);
    auto created = timestamp_member(user, "created_at");
    auto updated = timestamp_member(user, "updated_at");
    if (!created || !updated)
        return invalid("user " + row.id + " has no valid \"created_at\"/\"updated_at\" (ms since the epoch)");
    row.created_at_ms = *created;
    row.updated_at_ms = *updated;

    row.email = primary_email(user);
    row.first_name = string_member(user, "first_name");
    row.last_name = string_member(user, "last_name");
    row.username = string_member(user, "username");
    row.image_url = string_member(user, "image_url");

    auto metadata = user.find("public_metadata");
    if (metadata != user.end() && metadata->is_object()) {
        row.public_metadata = dump_json(*metadata);
        row.tier = tier_from_metadata(*metadata, options.tier_key);
    } else {
        row.public_metadata = "{}";
    }
    row.raw = raw_text.empty() ? dump_json(user) : std::string(raw_text);

    if (holds_nul(row))
        return invalid("user " + row.id + " contains the character U+0000, which PostgreSQL cannot store");
    if (!row.email && options.require_email)
        return MappedUser{MapOutcome::no_email, std::move(row), "the user has no primary email address"};
    return MappedUser{MapOutcome::mapped, std::move(row), {}};
}

ClerkEvent parse_event(std::string_view body, const MappingOptions &options) {
    ParsedJson parsed = parse_json(body);
    if (parsed.status == JsonParseStatus::not_json)
        throw Error(ErrorKind::invalid_json, "webhook body is not valid JSON");
    if (parsed.status == JsonParseStatus::too_deep)
        throw Error(ErrorKind::invalid_event, "webhook body is not a Clerk event",
                    "It is nested more than " + std::to_string(kMaxJsonDepth) + " levels deep.");
    const nlohmann::json &event = parsed.value;

    auto type = event.is_object() ? string_member(event, "type") : std::nullopt;
    auto data = event.is_object() ? event.find("data") : event.end();
    if (!type || type->empty() || data == event.end() || !data->is_object())
        throw Error(ErrorKind::invalid_event, "webhook body is not a Clerk event",
                    "A Clerk event is a JSON object with a string \"type\" and an object \"data\".");

    ClerkEvent out;
    out.type = std::move(*type);
    if (auto ts = timestamp_member(event, "timestamp"))
        out.timestamp_ms = timestamp_to_ms(*ts);

    if (out.type == "user.created" || out.type == "user.updated") {
        MappedUser mapped = map_user(*data, options);
        switch (mapped.outcome) {
        case MapOutcome::invalid:
            throw Error(ErrorKind::invalid_event, "\"" + out.type + "\" event carries an unusable user",
                        mapped.problem);
        case MapOutcome::no_email:
            out.action = EventAction::skip;
            out.detail = mapped.problem;
            out.user_id = mapped.row.id;
            break;
        case MapOutcome::mapped:
            out.action = EventAction::upsert_user;
            out.user_id = mapped.row.id;
            out.user = std::move(mapped.row);
            break;
        }
    } else if (out.type == "user.deleted") {
        auto id = string_member(*data, "id");
        if (id && !id->empty() && id->find('\0') == std::string::npos) {
            out.action = EventAction::delete_user;
            out.user_id = std::move(*id);
        } else {
            // Clerk's spec makes the id optional; without it there is nothing to delete, and an
            // error would only make Svix retry a delivery that can never succeed.
            out.action = EventAction::skip;
            out.detail = "user.deleted event without a user id";
        }
    } else {
        out.action = EventAction::ignore;
    }
    return out;
}

}  // namespace clerk_sync
