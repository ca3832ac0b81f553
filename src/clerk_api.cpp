#include "clerk_api.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <random>
#include <thread>

#include <curl/curl.h>

#include "errors.hpp"
#include "json_guard.hpp"

namespace clerk_sync {

namespace {

constexpr long kBackoffBaseMs = 250;
constexpr long kBackoffCapMs = 10000;
constexpr int kMax429InARow = 30;
constexpr long kSleepSliceMs = 50;  // how often a wait looks at the interrupt flag

// curl_global_init once per process (a backend), never in the postmaster.
void ensure_curl_initialised() {
    static bool done = false;
    if (!done) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
            throw std::runtime_error("curl_global_init failed");
        done = true;
    }
}

size_t append_body(char *data, size_t size, size_t nmemb, void *userdata) {
    static_cast<std::string *>(userdata)->append(data, size * nmemb);
    return size * nmemb;
}

// Collects Retry-After; every other header is ignored.
size_t read_header(char *data, size_t size, size_t nitems, void *userdata) {
    std::string_view line(data, size * nitems);
    constexpr std::string_view name = "retry-after:";
    if (line.size() > name.size()) {
        std::string head(line.substr(0, name.size()));
        std::transform(head.begin(), head.end(), head.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        if (head == name) {
            long seconds = 0;
            for (char c : line.substr(name.size()))
                if (c >= '0' && c <= '9' && seconds < 1000000)
                    seconds = seconds * 10 + (c - '0');
            *static_cast<long *>(userdata) = seconds;
        }
    }
    return size * nitems;
}

// curl calls this during transfers; a non-zero return abandons the request. It only reads a
// flag: no PostgreSQL call, no exception, may happen here.
int on_progress(void *clientp, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
    const auto *interrupted = static_cast<const std::function<bool()> *>(clientp);
    return (*interrupted && (*interrupted)()) ? 1 : 0;
}

bool is_loopback(const std::string &host) {
    return host == "localhost" || host == "::1" || host == "[::1]" || host.rfind("127.", 0) == 0;
}

long jittered_backoff_ms(int attempt) {
    static std::mt19937 rng{std::random_device{}()};
    long ceiling = std::min(kBackoffCapMs, kBackoffBaseMs << std::min(attempt, 10));
    return std::uniform_int_distribution<long>(ceiling / 2, ceiling)(rng);
}

}  // namespace

struct ClerkClient::Attempt {
    CURLcode code = CURLE_OK;
    long status = 0;
    long retry_after_s = -1;
    std::string body;
    std::string curl_error;
};

std::string clerk_error_text(const nlohmann::json &body) {
    if (body.is_object()) {
        auto errors = body.find("errors");
        if (errors != body.end() && errors->is_array() && !errors->empty() && (*errors)[0].is_object()) {
            const auto &first = (*errors)[0];
            std::string code = string_member(first, "code").value_or("unknown");
            std::string message = string_member(first, "long_message")
                                      .value_or(string_member(first, "message").value_or(""));
            return code + (message.empty() ? "" : ": " + message);
        }
    }
    return "no Clerk error body";
}

void throw_for_status(const ApiResponse &r, const std::string &what) {
    std::string detail = "HTTP " + std::to_string(r.status) + ", " + clerk_error_text(r.body);
    if (r.status == 401 || r.status == 403)
        throw Error(ErrorKind::api_auth_failed, "Clerk refused the secret key", detail,
                    "Check clerk_sync.secret_key (or CLERK_SECRET_KEY): it must be the instance's "
                    "secret key, sk_live_... or sk_test_....");
    throw Error(ErrorKind::api_rejected, "Clerk refused the request " + what, detail);
}

void check_api_url(const std::string &url, bool allow_insecure_http) {
    CURLU *parsed = curl_url();
    if (!parsed)
        throw std::bad_alloc();
    char *scheme = nullptr;
    char *host = nullptr;
    bool ok = curl_url_set(parsed, CURLUPART_URL, url.c_str(), 0) == CURLUE_OK &&
              curl_url_get(parsed, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
              curl_url_get(parsed, CURLUPART_HOST, &host, 0) == CURLUE_OK;
    std::string s = ok ? scheme : "", h = ok ? host : "";
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(parsed);
    if (!ok || (s != "https" && s != "http"))
        throw Error(ErrorKind::not_configured, "clerk_sync.api_url is not an http(s) URL");
    if (s == "http" && !is_loopback(h) && !allow_insecure_http)
        throw Error(ErrorKind::not_configured,
                    "clerk_sync.api_url uses plain http to a host that is not this machine",
                    "The secret key would cross the network in clear.",
                    "Use https, or set clerk_sync.allow_insecure_http = on if the network is trusted.");
}

ClerkClient::ClerkClient(ApiConfig config, ApiHooks hooks)
    : config_(std::move(config)), hooks_(std::move(hooks)) {
    check_api_url(config_.base_url, config_.allow_insecure_http);
    ensure_curl_initialised();
    curl_ = curl_easy_init();
    if (!curl_)
        throw std::runtime_error("curl_easy_init failed");
    for (const std::string &h : {"Authorization: Bearer " + config_.secret_key,
                                 "Clerk-API-Version: " + config_.api_version,
                                 std::string("Accept: application/json")}) {
        struct curl_slist *grown = curl_slist_append(headers_, h.c_str());
        if (!grown)
            throw std::bad_alloc();
        headers_ = grown;
    }
    curl_easy_setopt(curl_, CURLOPT_NOSIGNAL, 1L);  // no SIGALRM in a backend
    curl_easy_setopt(curl_, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl_, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(curl_, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(curl_, CURLOPT_SSL_VERIFYHOST, 2L);
    if (!config_.ca_file.empty())
        curl_easy_setopt(curl_, CURLOPT_CAINFO, config_.ca_file.c_str());
    curl_easy_setopt(curl_, CURLOPT_CONNECTTIMEOUT_MS, config_.connect_timeout_ms);
    curl_easy_setopt(curl_, CURLOPT_TIMEOUT_MS, config_.request_timeout_ms);
    curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, headers_);
    curl_easy_setopt(curl_, CURLOPT_USERAGENT, "clerk_sync/0.1.0");
    curl_easy_setopt(curl_, CURLOPT_ACCEPT_ENCODING, "");  // whatever curl can decode
    curl_easy_setopt(curl_, CURLOPT_WRITEFUNCTION, append_body);
    curl_easy_setopt(curl_, CURLOPT_HEADERFUNCTION, read_header);
    curl_easy_setopt(curl_, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl_, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(curl_, CURLOPT_XFERINFODATA, &hooks_.interrupted);
}

ClerkClient::~ClerkClient() {
    if (curl_)
        curl_easy_cleanup(curl_);
    curl_slist_free_all(headers_);
}

std::string ClerkClient::escape(const std::string &s) {
    char *escaped = curl_easy_escape(curl_, s.data(), static_cast<int>(s.size()));
    if (!escaped)
        throw std::bad_alloc();
    std::string out(escaped);
    curl_free(escaped);
    return out;
}

ClerkClient::Attempt ClerkClient::perform(const std::string &url) {
    Attempt a;
    char error_buffer[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(curl_, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl_, CURLOPT_WRITEDATA, &a.body);
    curl_easy_setopt(curl_, CURLOPT_HEADERDATA, &a.retry_after_s);
    curl_easy_setopt(curl_, CURLOPT_ERRORBUFFER, error_buffer);
    ++requests_;
    a.code = curl_easy_perform(curl_);
    curl_easy_setopt(curl_, CURLOPT_ERRORBUFFER, nullptr);
    if (a.code == CURLE_OK)
        curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, &a.status);
    a.curl_error = error_buffer[0] ? error_buffer : curl_easy_strerror(a.code);
    return a;
}

void ClerkClient::sleep_ms(long ms) {
    for (long slept = 0; slept < ms; slept += kSleepSliceMs) {
        if (hooks_.interrupted && hooks_.interrupted())
            throw Error(ErrorKind::interrupted, "interrupted while waiting to retry a Clerk API request");
        std::this_thread::sleep_for(std::chrono::milliseconds(std::min(kSleepSliceMs, ms - slept)));
    }
}

ApiResponse ClerkClient::get(const std::string &path_and_query) {
    const std::string url = config_.base_url + path_and_query;
    int failures = 0;
    int throttled = 0;
    std::string last_problem;
    for (;;) {
        if (hooks_.interrupted && hooks_.interrupted())
            throw Error(ErrorKind::interrupted, "interrupted before a Clerk API request");
        if (hooks_.before_request)
            hooks_.before_request(hooks_.interrupted);
        Attempt a = perform(url);
        if (a.code == CURLE_ABORTED_BY_CALLBACK)
            throw Error(ErrorKind::interrupted, "Clerk API request interrupted");
        // An untrusted certificate does not get better by asking again.
        if (a.code == CURLE_PEER_FAILED_VERIFICATION || a.code == CURLE_SSL_CACERT_BADFILE)
            throw Error(ErrorKind::api_unavailable, "the Clerk API's TLS certificate could not be verified",
                        "GET " + path_and_query + ": " + a.curl_error,
                        "Check clerk_sync.api_url; behind a private CA or a TLS-inspecting proxy, set "
                        "clerk_sync.ca_file to its certificate.");

        if (a.code == CURLE_OK && a.status == 429) {
            ++rate_limited_;
            if (++throttled > kMax429InARow)
                throw Error(ErrorKind::api_unavailable, "Clerk kept answering 429 Too Many Requests",
                            std::to_string(throttled) + " answers in a row to GET " + path_and_query);
            long wait_s = std::clamp(a.retry_after_s < 0 ? 1L : a.retry_after_s, 1L,
                                     static_cast<long>(config_.max_retry_after_s));
            if (hooks_.on_rate_limited)
                hooks_.on_rate_limited(wait_s);
            if (hooks_.log)
                hooks_.log("Clerk answered 429; waiting " + std::to_string(wait_s) + " s as Retry-After says");
            sleep_ms(wait_s * 1000);
            continue;
        }

        if (a.code == CURLE_OK && a.status >= 200 && a.status < 500) {
            ParsedJson parsed = parse_json(a.body);
            if (parsed.status == JsonParseStatus::ok)
                return ApiResponse{a.status, std::move(parsed.value), std::move(a.body)};
            if (a.status >= 400)  // a 4xx without Clerk's error body is still final
                return ApiResponse{a.status, nullptr, std::move(a.body)};
            last_problem = "HTTP " + std::to_string(a.status) + " with a body that is not JSON (" +
                           std::to_string(a.body.size()) + " bytes)";
        } else if (a.code == CURLE_OK) {
            last_problem = "HTTP " + std::to_string(a.status);
        } else {
            // connection refused or dropped, timeout, truncated body (CURLE_PARTIAL_FILE), TLS...
            last_problem = a.curl_error;
        }

        if (++failures > config_.max_retries)
            throw Error(ErrorKind::api_unavailable, "the Clerk API request failed",
                        "GET " + path_and_query + ": " + last_problem + " (after " +
                            std::to_string(failures) + " attempts)");
        long wait_ms = jittered_backoff_ms(failures - 1);
        if (hooks_.log)
            hooks_.log("Clerk API request failed (" + last_problem + "); retry " + std::to_string(failures) +
                       " of " + std::to_string(config_.max_retries) + " in " + std::to_string(wait_ms) + " ms");
        sleep_ms(wait_ms);
    }
}

std::optional<UserPager::Page> UserPager::next_page() {
    if (done_)
        return std::nullopt;
    const bool by_created = order_ == PageOrder::created_ascending;
    if (!by_created)
        use_offset_ = true;  // Clerk takes starting_after only with created_at ordering
    for (;;) {
        std::string query = std::string("/users?order_by=") + (by_created ? "%2Bcreated_at" : "-updated_at") +
                            "&limit=" + std::to_string(page_size_);
        if (use_offset_)
            query += "&offset=" + std::to_string(fetched_);
        else if (!last_id_.empty())
            query += "&starting_after=" + client_.escape(last_id_);
        ApiResponse r = client_.get(query);

        if (r.status == 422 && !use_offset_ && !last_id_.empty()) {
            // This server does not take the cursor: go on by offset, in the same order (a resumed
            // pass, whose offset is unknown, starts again from the beginning).
            use_offset_ = true;
            continue;
        }
        if (r.status != 200)
            throw_for_status(r, "to list users");
        if (!r.body.is_array())
            throw Error(ErrorKind::api_unavailable, "Clerk's list of users is not a JSON array");

        ++pages_;
        fetched_ += static_cast<long>(r.body.size());
        if (static_cast<int>(r.body.size()) < page_size_)
            done_ = true;
        if (!r.body.empty()) {
            auto id = r.body.back().is_object() ? string_member(r.body.back(), "id") : std::nullopt;
            if (!id && !use_offset_)
                use_offset_ = true;  // no usable cursor: carry on by offset
            else if (id)
                last_id_ = *id;
        }
        Page page{std::move(r.body), std::move(r.text), {}, last_id_};
        // Each user's own text, to store as received rather than serialised again.
        if (auto elements = array_elements(page.text); elements && elements->size() == page.users.size())
            for (std::string_view e : *elements)
                page.ranges.emplace_back(static_cast<size_t>(e.data() - page.text.data()), e.size());
        return page;
    }
}

}  // namespace clerk_sync
