#include "svix.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <optional>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "errors.hpp"

namespace clerk_sync::svix {

namespace {

constexpr size_t kSha256Size = 32;

[[noreturn]] void reject(std::string reason) {
    throw Error(ErrorKind::invalid_signature, "webhook signature verification failed",
                std::move(reason));
}

std::string lowercase(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

// The value of one header, looked up case-insensitively; nothing when absent or not a string.
std::optional<std::string> header_value(const nlohmann::json &headers, std::string_view name) {
    std::optional<std::string> found;
    for (const auto &[key, value] : headers.items()) {
        if (lowercase(key) != name)
            continue;
        std::string text;
        if (value.is_string()) {
            text = value.get<std::string>();
        } else if (value.is_array()) {
            for (const auto &part : value) {
                if (!part.is_string())
                    continue;
                if (!text.empty())
                    text += ' ';
                text += part.get<std::string>();
            }
        } else {
            continue;
        }
        if (found && *found != text)
            reject("header \"" + std::string(name) + "\" is given more than once with different values");
        found = std::move(text);
    }
    return found;
}

// Base64 (standard alphabet, padding optional) to bytes, through OpenSSL.
std::optional<std::string> base64_decode(std::string_view in) {
    std::string padded(in);
    if (padded.empty() || padded.size() > (1u << 20))
        return std::nullopt;
    for (char c : padded)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/' || c == '='))
            return std::nullopt;
    while (padded.size() % 4 != 0)
        padded += '=';
    std::string out(padded.size() / 4 * 3, '\0');
    int n = EVP_DecodeBlock(reinterpret_cast<unsigned char *>(out.data()),
                            reinterpret_cast<const unsigned char *>(padded.data()),
                            static_cast<int>(padded.size()));
    if (n < 0)
        return std::nullopt;
    size_t padding = 0;
    for (auto it = padded.rbegin(); it != padded.rend() && *it == '=' && padding < 2; ++it)
        ++padding;
    out.resize(static_cast<size_t>(n) - padding);
    return out;
}

}  // namespace

Headers headers_from_json(const nlohmann::json &headers) {
    if (!headers.is_object())
        throw Error(ErrorKind::invalid_argument, "webhook headers must be a JSON object",
                    "Pass the request headers as {\"svix-id\": ..., \"svix-timestamp\": ..., "
                    "\"svix-signature\": ...}.");
    const bool standard_webhooks = !header_value(headers, "svix-id") && header_value(headers, "webhook-id");
    const std::string prefix = standard_webhooks ? "webhook-" : "svix-";
    Headers out;
    struct Field { const char *name; std::string *dest; };
    for (Field f : {Field{"id", &out.id}, Field{"timestamp", &out.timestamp},
                    Field{"signature", &out.signature}}) {
        std::string name = prefix + f.name;
        auto value = header_value(headers, name);
        if (!value || value->empty())
            reject("missing header \"" + name + "\"");
        *f.dest = std::move(*value);
    }
    return out;
}

bool decode_secrets(std::string_view configured, std::vector<std::string> &keys, std::string &problem) {
    keys.clear();
    size_t pos = 0;
    int entry = 0;
    while (pos < configured.size()) {
        size_t start = configured.find_first_not_of(" \t\r\n", pos);
        if (start == std::string_view::npos)
            break;
        size_t end = configured.find_first_of(" \t\r\n", start);
        if (end == std::string_view::npos)
            end = configured.size();
        std::string_view secret = configured.substr(start, end - start);
        pos = end;
        ++entry;
        if (secret.substr(0, 6) == "whsec_")
            secret.remove_prefix(6);
        auto key = base64_decode(secret);
        if (!key || key->empty()) {
            problem = "secret number " + std::to_string(entry) +
                      " is not \"whsec_\" followed by base64";
            return false;
        }
        keys.push_back(std::move(*key));
    }
    if (keys.empty()) {
        problem = "no secret is given";
        return false;
    }
    return true;
}

void verify(std::string_view payload, const Headers &headers, const std::vector<std::string> &keys,
            int64_t now_s, int64_t tolerance_s) {
    int64_t sent_s = 0;
    const std::string &ts = headers.timestamp;
    auto [end, ec] = std::from_chars(ts.data(), ts.data() + ts.size(), sent_s);
    if (ec != std::errc() || end != ts.data() + ts.size() || sent_s < 0)
        reject("the timestamp header is not a whole number of seconds");
    if (now_s - sent_s > tolerance_s)
        reject("the timestamp is " + std::to_string(now_s - sent_s) +
               " s old, more than the tolerance of " + std::to_string(tolerance_s) + " s");
    if (sent_s - now_s > tolerance_s)
        reject("the timestamp is " + std::to_string(sent_s - now_s) +
               " s in the future, more than the tolerance of " + std::to_string(tolerance_s) + " s");

    std::string signed_content;
    signed_content.reserve(headers.id.size() + ts.size() + payload.size() + 2);
    signed_content.append(headers.id).append(1, '.').append(ts).append(1, '.').append(payload);

    std::vector<std::string> expected;
    for (const std::string &key : keys) {
        unsigned char mac[EVP_MAX_MD_SIZE];
        unsigned int mac_len = 0;
        if (!HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
                  reinterpret_cast<const unsigned char *>(signed_content.data()),
                  signed_content.size(), mac, &mac_len) ||
            mac_len != kSha256Size)
            throw std::runtime_error("HMAC-SHA256 failed in OpenSSL");
        expected.emplace_back(reinterpret_cast<const char *>(mac), mac_len);
    }

    // Each entry is "<version>,<base64>"; only v1 is defined. Other versions are skipped.
    std::string_view list = headers.signature;
    size_t pos = 0;
    while (pos < list.size()) {
        size_t start = list.find_first_not_of(' ', pos);
        if (start == std::string_view::npos)
            break;
        size_t end = list.find(' ', start);
        if (end == std::string_view::npos)
            end = list.size();
        std::string_view entry = list.substr(start, end - start);
        pos = end;
        if (entry.substr(0, 3) != "v1,")
            continue;
        auto given = base64_decode(entry.substr(3));
        if (!given || given->size() != kSha256Size)
            continue;
        for (const std::string &mac : expected)
            if (CRYPTO_memcmp(mac.data(), given->data(), kSha256Size) == 0)
                return;
    }
    reject("no v1 signature matches the body under the configured secret(s)");
}

}  // namespace clerk_sync::svix
