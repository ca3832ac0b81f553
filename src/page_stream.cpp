#include "page_stream.hpp"

#include <chrono>
#include <csignal>
#include <algorithm>
#include <unordered_map>

#include <pthread.h>

#include "errors.hpp"

namespace clerk_sync {

namespace {

constexpr std::chrono::milliseconds kInterruptPoll{50};

// Blocks every signal in the calling thread for its lifetime; a thread started meanwhile inherits
// the full mask, so PostgreSQL's signal handlers keep running on the backend's own thread.
class SignalsBlocked {
public:
    SignalsBlocked() {
        sigset_t all;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &saved_);
    }
    ~SignalsBlocked() { pthread_sigmask(SIG_SETMASK, &saved_, nullptr); }

private:
    sigset_t saved_;
};

}  // namespace

MappedPage map_page(const UserPager::Page &page, const MappingOptions &options) {
    MappedPage out;
    out.rows.reserve(page.users.size());
    out.last_id = page.last_id;
    std::unordered_map<std::string, size_t> index;
    for (size_t i = 0; i < page.users.size(); ++i) {
        MappedUser m = map_user(page.users[i], options, page.raw(i));
        if (m.outcome != MapOutcome::invalid) {
            int64_t updated = m.row.updated_at_ms;
            out.oldest_updated_ms = out.oldest_updated_ms ? std::min(out.oldest_updated_ms, updated) : updated;
            out.newest_updated_ms = std::max(out.newest_updated_ms, updated);
        }
        switch (m.outcome) {
        case MapOutcome::mapped: {
            // clerk._upsert_users takes each id once: of a user listed twice, keep the newest.
            auto [it, fresh] = index.emplace(m.row.id, out.rows.size());
            if (fresh)
                out.rows.push_back(std::move(m.row));
            else if (m.row.updated_at_ms >= out.rows[it->second].updated_at_ms)
                out.rows[it->second] = std::move(m.row);
            break;
        }
        case MapOutcome::no_email:
            out.seen.push_back(std::move(m.row.id));
            break;
        case MapOutcome::invalid:
            out.problems.push_back(std::move(m.problem));
            break;
        }
    }
    return out;
}

namespace {
ApiHooks stream_hooks(ApiHooks hooks, std::function<bool()> interrupted, std::function<void(const std::string &)> log) {
    hooks.interrupted = std::move(interrupted);
    hooks.log = std::move(log);
    return hooks;
}
}  // namespace

PageStream::PageStream(ApiConfig config, ApiHooks hooks, MappingOptions options, int page_size, PageOrder order,
                       std::string start_after, std::function<bool()> interrupted)
    : interrupted_(std::move(interrupted)),
      options_(std::move(options)),
      client_(std::move(config),
              stream_hooks(std::move(hooks), [this] { return stopping() || interrupted_(); },
                           [this](const std::string &line) {
                               std::lock_guard<std::mutex> lock(mutex_);
                               log_.push_back(line);
                           })),
      pager_(client_, page_size, order, std::move(start_after)) {
    SignalsBlocked blocked;
    thread_ = std::thread([this] { fetch_loop(); });
}

PageStream::~PageStream() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stop_ = true;
    }
    changed_.notify_all();
    if (thread_.joinable())
        thread_.join();
}

bool PageStream::stopping() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return stop_;
}

void PageStream::fetch_loop() {
    try {
        for (;;) {
            auto page = pager_.next_page();
            std::optional<MappedPage> mapped;
            if (page)
                mapped = map_page(*page, options_);
            std::unique_lock<std::mutex> lock(mutex_);
            changed_.wait(lock, [this] { return stop_ || !full_; });
            if (stop_)
                return;
            slot_ = std::move(mapped);
            full_ = true;
            progress_ = {pager_.pages(), client_.requests_sent(), client_.rate_limited(), pager_.using_offset()};
            changed_.notify_all();
            if (!slot_)
                return;  // the end of the listing is in the slot
        }
    } catch (...) {
        std::lock_guard<std::mutex> lock(mutex_);
        error_ = std::current_exception();
        changed_.notify_all();
    }
}

std::optional<MappedPage> PageStream::next(std::vector<std::string> &log) {
    std::unique_lock<std::mutex> lock(mutex_);
    if (finished_)
        return std::nullopt;
    while (!full_ && !error_) {
        changed_.wait_for(lock, kInterruptPoll);
        if (!full_ && !error_ && interrupted_())
            throw Error(ErrorKind::interrupted, "interrupted while waiting for the Clerk API");
    }
    log.insert(log.end(), std::make_move_iterator(log_.begin()), std::make_move_iterator(log_.end()));
    log_.clear();
    if (!full_)
        std::rethrow_exception(error_);
    std::optional<MappedPage> page = std::move(slot_);
    slot_.reset();
    full_ = false;
    finished_ = !page;
    published_ = progress_;
    changed_.notify_all();
    return page;
}

StreamProgress PageStream::progress() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return published_;
}

}  // namespace clerk_sync
