// The Clerk Backend API client: libcurl, one keep-alive connection per client, retries with
// backoff, 429 handling, cancellation. Pure C++ (no postgres.h): the glue supplies the hooks that
// tie it to a backend (interrupt flags, logging).
#pragma once

#include <functional>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

typedef void CURL;
struct curl_slist;

namespace clerk_sync {

struct ApiConfig {
    std::string base_url;          // clerk_sync.api_url, e.g. https://api.clerk.com/v1
    std::string secret_key;        // sk_live_... / sk_test_...; sent only as a bearer token
    std::string api_version;       // sent as Clerk-API-Version
    long connect_timeout_ms = 5000;
    long request_timeout_ms = 30000;
    int max_retries = 5;           // for 5xx, network errors, truncated or non-JSON bodies
    int max_retry_after_s = 60;    // the longest a 429's Retry-After is honoured for
    bool allow_insecure_http = false;
    std::string ca_file;           // PEM certificates to verify the API's TLS certificate with,
                                   // instead of the system's; empty: the system's
};

struct ApiHooks {
    std::function<bool()> interrupted;               // true: abandon the request (query cancel)
    std::function<void(const std::string &)> log;    // retries and waits, for the server log
    // waits for a turn in a shared rate budget, giving up when its argument (the client's
    // `interrupted`) turns true
    std::function<void(const std::function<bool()> &)> before_request;
    std::function<void(long)> on_rate_limited;       // a 429 with its Retry-After, in seconds
};

// A finished request: a 2xx with a JSON body, or a 4xx that the caller may handle (404, 422).
struct ApiResponse {
    long status = 0;
    nlohmann::json body;  // the parsed body (Clerk's error object for a 4xx)
    std::string text;     // the body as received
};

// Clerk's own code and message from an error body, e.g. "authentication_invalid: ...".
std::string clerk_error_text(const nlohmann::json &body);

// Throws for a response the caller cannot use: Error(api_auth_failed) for 401/403 (the key),
// Error(api_rejected) for any other status; `what` names the request.
[[noreturn]] void throw_for_status(const ApiResponse &response, const std::string &what);

class ClerkClient {
public:
    ClerkClient(ApiConfig config, ApiHooks hooks);
    ~ClerkClient();
    ClerkClient(const ClerkClient &) = delete;
    ClerkClient &operator=(const ClerkClient &) = delete;

    // GET base_url + path_and_query. Retries 429 (after Retry-After), 5xx, network failures and
    // bad bodies; returns 2xx and 4xx responses. Throws Error(api_unavailable) when retries run
    // out, Error(interrupted) when hooks.interrupted() turns true.
    ApiResponse get(const std::string &path_and_query);

    // `s` percent-encoded for a URL path segment or query value.
    std::string escape(const std::string &s);

    // How many requests were sent (retries included), and how many were answered 429.
    long requests_sent() const { return requests_; }
    long rate_limited() const { return rate_limited_; }

private:
    struct Attempt;
    Attempt perform(const std::string &url);
    void sleep_ms(long ms);

    ApiConfig config_;
    ApiHooks hooks_;
    CURL *curl_ = nullptr;
    struct curl_slist *headers_ = nullptr;
    long requests_ = 0;
    long rate_limited_ = 0;
};

// Throws Error(not_configured) unless `url` is https, or http to a loopback host (or any host
// when allow_insecure_http): the secret key must never cross a network in clear by accident.
void check_api_url(const std::string &url, bool allow_insecure_http);

// The order a UserPager walks the users in.
enum class PageOrder {
    created_ascending,  // oldest first, by the starting_after cursor (offset if refused): full passes
    updated_descending, // most recently updated first, by offset: delta sweeps
};

// Pages through GET /users. Created-ascending pages use the starting_after cursor, starting after
// `start_after` (a resumed pass), and fall back to offset paging if the server refuses the
// cursor. Stops after a short page.
class UserPager {
public:
    UserPager(ClerkClient &client, int page_size, PageOrder order = PageOrder::created_ascending,
              std::string start_after = {})
        : client_(client), page_size_(page_size), order_(order), last_id_(std::move(start_after)) {}

    // The next page, or nothing when the listing is complete.
    struct Page {
        nlohmann::json users;  // a JSON array, maybe empty
        std::string text;      // the body as received
        // Where each user's own text lies in `text` (offset, length); empty if it could not be split.
        std::vector<std::pair<size_t, size_t>> ranges;
        std::string last_id;   // the cursor after this page

        // User i's JSON as received, or nothing when unknown.
        std::string_view raw(size_t i) const {
            return ranges.empty() ? std::string_view() : std::string_view(text).substr(ranges[i].first, ranges[i].second);
        }
    };
    std::optional<Page> next_page();

    bool using_offset() const { return use_offset_; }
    long pages() const { return pages_; }

private:
    ClerkClient &client_;
    int page_size_;
    PageOrder order_;
    bool done_ = false;
    bool use_offset_ = false;
    long fetched_ = 0;
    long pages_ = 0;
    std::string last_id_;
};

}  // namespace clerk_sync
