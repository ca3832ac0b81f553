// The line between C++ and PostgreSQL (after pg_duckdb's InvokeCPPFunc and PostgresFunctionGuard).
//
// - cpp_entry() wraps the body of every function PostgreSQL calls. No C++ exception escapes it:
//   each is caught, and the PostgreSQL error is raised only after the catch block has closed,
//   so that C++ destructors have run and the longjmp crosses no live C++ frame.
// - pg_call() wraps every call into PostgreSQL made while C++ objects are alive. A PostgreSQL
//   ERROR inside it is caught and rethrown as a C++ exception (PgError), which unwinds the C++
//   frames normally and is re-raised unchanged by cpp_entry(). The code inside a pg_call() keeps
//   no C++ object with a destructor alive across a PostgreSQL call: the longjmp that brings an
//   ERROR back to pg_call() would skip it.
//
// Include this after all C++ and third-party headers: postgres.h defines macros (snprintf, ...)
// that would otherwise leak into them.
#pragma once

#include <exception>
#include <initializer_list>
#include <new>
#include <string>
#include <type_traits>

#include "errors.hpp"

extern "C" {
#include "postgres.h"
#include "fmgr.h"
#include "utils/elog.h"
#include "utils/memutils.h"
}

namespace clerk_sync {

// A PostgreSQL error caught by pg_call(), on its way out through the C++ frames.
struct PgError {
    ErrorData *edata;
};

int sqlstate_of(ErrorKind kind);

// A cancel (pg_cancel_backend, statement_timeout) or a terminate is pending. Only reads flags, so
// it may be called from any thread.
bool backend_interrupted();

// Throws Error(null_argument) naming the first of the function's arguments that is NULL.
void require_args(FunctionCallInfo fcinfo, std::initializer_list<const char *> names);

template <typename F>
auto pg_call(F &&f) -> decltype(f()) {
    using Result = decltype(f());
    if constexpr (std::is_void_v<Result>) {
        pg_call([&] {
            f();
            return 0;
        });
    } else {
        static_assert(std::is_scalar_v<Result>, "pg_call returns Datums and pointers only");
        MemoryContext caller = CurrentMemoryContext;
        ErrorData *volatile edata = nullptr;
        // A C++ exception must not leave the PG_TRY block (PG_exception_stack would be left
        // pointing at a dead frame): it is carried out and rethrown after PG_END_TRY.
        std::exception_ptr cpp_error;
        volatile Result result{};
        PG_TRY();
        {
            try {
                result = f();
            } catch (...) {
                cpp_error = std::current_exception();
            }
        }
        PG_CATCH();
        {
            MemoryContextSwitchTo(caller);
            edata = CopyErrorData();
            FlushErrorState();
        }
        PG_END_TRY();
        if (edata)
            throw PgError{edata};
        if (cpp_error)
            std::rethrow_exception(cpp_error);
        return result;
    }
}

namespace detail {
// Room for the error raised after a catch block closes; backends are single-threaded.
struct PendingError {
    int sqlstate;
    char message[1024];
    char detail[2048];
    char hint[1024];
};
void capture(PendingError &pending, int sqlstate, const char *message, const char *detail = "",
             const char *hint = "") noexcept;
[[noreturn]] void raise(const PendingError &pending);
}  // namespace detail

template <typename F>
auto cpp_entry(F &&body) noexcept -> decltype(body()) {
    static detail::PendingError pending;
    ErrorData *pg_error = nullptr;
    try {
        return body();
    } catch (const PgError &e) {
        pg_error = e.edata;
    } catch (const Error &e) {
        detail::capture(pending, sqlstate_of(e.kind()), e.what(), e.detail().c_str(), e.hint().c_str());
    } catch (const std::bad_alloc &) {
        detail::capture(pending, ERRCODE_OUT_OF_MEMORY, "out of memory in clerk_sync");
    } catch (const std::exception &e) {
        detail::capture(pending, ERRCODE_INTERNAL_ERROR, "clerk_sync internal error", e.what());
    } catch (...) {
        detail::capture(pending, ERRCODE_INTERNAL_ERROR, "clerk_sync internal error",
                        "an unknown C++ exception was caught");
    }
    if (pg_error)
        ReThrowError(pg_error);
    detail::raise(pending);
}

}  // namespace clerk_sync
