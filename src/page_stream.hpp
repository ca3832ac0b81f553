// Pages of Clerk users, fetched and mapped one page ahead on a thread of their own, so that the
// network waits and the JSON work of the next page overlap the database writes of the current one.
// Pure C++: the thread never touches PostgreSQL. It reads the backend's interrupt flags through
// the `interrupted` hook (plain flag reads), and its log lines are handed to the caller, which
// reports them from the backend's own thread.
#pragma once

#include <condition_variable>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "clerk_api.hpp"
#include "clerk_user.hpp"

namespace clerk_sync {

// One page of Clerk users, mapped.
struct MappedPage {
    std::vector<UserRow> rows;          // to store; distinct ids (of a user listed twice, the newest)
    std::vector<std::string> seen;      // in Clerk but not stored (no email): must not be deleted
    std::vector<std::string> problems;  // users that cannot be stored, and why
    std::string last_id;                // the pager's cursor after this page (to resume a pass)
    int64_t oldest_updated_ms = 0;      // the page's oldest and newest updated_at (delta sweeps);
    int64_t newest_updated_ms = 0;      // 0 when the page has no usable user
};

MappedPage map_page(const UserPager::Page &page, const MappingOptions &options);

struct StreamProgress {
    long pages = 0;
    long requests = 0;       // sent, retries included
    long rate_limited = 0;   // answered 429
    bool using_offset = false;
};

class PageStream {
public:
    // `hooks`: its before_request and on_rate_limited are used (the shared rate budget); the
    // stream supplies interrupted (the caller's, or its own end) and log (handed to the caller).
    PageStream(ApiConfig config, ApiHooks hooks, MappingOptions options, int page_size, PageOrder order,
               std::string start_after, std::function<bool()> interrupted);
    ~PageStream();
    PageStream(const PageStream &) = delete;
    PageStream &operator=(const PageStream &) = delete;

    // The next page, or nothing when the listing is complete. Moves the fetching thread's log
    // lines into `log`. Rethrows whatever the fetching thread threw; throws Error(interrupted)
    // when `interrupted` turns true while waiting.
    std::optional<MappedPage> next(std::vector<std::string> &log);

    // As of the last page handed out.
    StreamProgress progress() const;

private:
    void fetch_loop();
    bool stopping() const;

    std::function<bool()> interrupted_;
    MappingOptions options_;
    ClerkClient client_;
    UserPager pager_;

    mutable std::mutex mutex_;
    std::condition_variable changed_;
    bool stop_ = false;                  // the caller is gone: the thread must end
    bool full_ = false;                  // `slot_` holds a page (or the end) not yet taken
    bool finished_ = false;              // the end of the listing has been handed out
    std::optional<MappedPage> slot_;
    std::exception_ptr error_;
    std::vector<std::string> log_;
    StreamProgress progress_, published_;
    std::thread thread_;
};

}  // namespace clerk_sync
