// Svix / Standard Webhooks signature verification, over the raw body bytes exactly as received.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace clerk_sync::svix {

// The three signing headers of one delivery.
struct Headers {
    std::string id;         // svix-id: the message id, identical on every retry
    std::string timestamp;  // svix-timestamp: seconds since the epoch, as sent
    std::string signature;  // svix-signature: space-separated "v1,<base64>" entries
};

// Picks the signing headers out of a JSON object of request headers. Names are matched
// case-insensitively; the svix-* names are used when svix-id is present, otherwise the Standard
// Webhooks webhook-* names. A value may be a string or an array of strings (joined by spaces).
// Throws Error(invalid_argument) when `headers` is not an object, Error(invalid_signature) when a
// header is missing or given twice with different values.
Headers headers_from_json(const nlohmann::json &headers);

// Decodes a whitespace-separated list of signing secrets ("whsec_<base64>", the prefix optional)
// into raw HMAC keys. On failure returns false and says which entry (never its value) in `problem`.
bool decode_secrets(std::string_view configured, std::vector<std::string> &keys, std::string &problem);

// Verifies one delivery: the timestamp lies within `tolerance_s` of `now_s`, and at least one v1
// signature is the HMAC-SHA256, under one of `keys`, of "<id>.<timestamp>.<payload>".
// Throws Error(invalid_signature) with the reason otherwise.
void verify(std::string_view payload, const Headers &headers, const std::vector<std::string> &keys,
            int64_t now_s, int64_t tolerance_s);

}  // namespace clerk_sync::svix
