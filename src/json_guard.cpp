#include "json_guard.hpp"

namespace clerk_sync {

namespace {

// A single pass over the bytes, tracking strings and escapes, to find the deepest nesting.
bool depth_within(std::string_view text, int max_depth) {
    int depth = 0;
    bool in_string = false;
    bool escaped = false;
    for (char c : text) {
        if (in_string) {
            if (escaped)
                escaped = false;
            else if (c == '\\')
                escaped = true;
            else if (c == '"')
                in_string = false;
            continue;
        }
        switch (c) {
        case '"':
            in_string = true;
            break;
        case '[':
        case '{':
            if (++depth > max_depth)
                return false;
            break;
        case ']':
        case '}':
            --depth;
            break;
        default:
            break;
        }
    }
    return true;
}

}  // namespace

ParsedJson parse_json(std::string_view text) {
    if (!depth_within(text, kMaxJsonDepth))
        return {JsonParseStatus::too_deep, nullptr};
    nlohmann::json value = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
    if (value.is_discarded())
        return {JsonParseStatus::not_json, nullptr};
    return {JsonParseStatus::ok, std::move(value)};
}

std::optional<std::string> string_member(const nlohmann::json &object, const char *key) {
    auto it = object.find(key);
    if (it == object.end() || !it->is_string())
        return std::nullopt;
    return it->get<std::string>();
}

std::string dump_json(const nlohmann::json &value) {
    return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace clerk_sync
