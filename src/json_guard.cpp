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

std::optional<std::vector<std::string_view>> array_elements(std::string_view text) {
    auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
    size_t i = 0;
    while (i < text.size() && is_space(text[i]))
        ++i;
    if (i == text.size() || text[i] != '[')
        return std::nullopt;
    std::vector<std::string_view> out;
    int depth = 0;
    bool in_string = false, escaped = false;
    size_t start = std::string_view::npos;  // where the current element began
    auto close_element = [&](size_t end) {
        while (end > start && is_space(text[end - 1]))
            --end;
        out.push_back(text.substr(start, end - start));
        start = std::string_view::npos;
    };
    for (++i; i < text.size(); ++i) {
        char c = text[i];
        if (in_string) {
            if (escaped)
                escaped = false;
            else if (c == '\\')
                escaped = true;
            else if (c == '"')
                in_string = false;
            continue;
        }
        if (depth == 0 && start == std::string_view::npos && !is_space(c) && c != ',' && c != ']')
            start = i;
        switch (c) {
        case '"':
            in_string = true;
            break;
        case '[':
        case '{':
            ++depth;
            break;
        case '}':
            --depth;
            break;
        case ']':
            if (depth == 0) {
                if (start != std::string_view::npos)
                    close_element(i);
                return out;
            }
            --depth;
            break;
        case ',':
            if (depth == 0 && start != std::string_view::npos)
                close_element(i);
            break;
        default:
            break;
        }
    }
    return std::nullopt;  // unterminated
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
