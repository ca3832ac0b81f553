# clerk_sync: keep an application's users in sync with Clerk, inside PostgreSQL.
# Built with PGXS:  make && sudo make install && make installcheck

EXTENSION    = clerk_sync
EXTVERSION   = 0.1.0
MODULE_big   = clerk_sync
DATA         = sql/clerk_sync--$(EXTVERSION).sql

# The pure C++ core (no postgres.h): webhook signatures and the Clerk user mapping.
CORE_OBJS    = src/svix.o src/clerk_user.o src/json_guard.o src/clerk_api.o src/page_stream.o
# The glue at the Postgres boundary.
GLUE_OBJS    = src/pg_boundary.o src/clerk_sync.o src/settings.o src/user_store.o src/webhook.o src/sync.o \
               src/shared_state.o src/worker.o
OBJS         = $(CORE_OBJS) $(GLUE_OBJS)

PG_CPPFLAGS  = -Isrc
PG_CXXFLAGS  = -std=c++17 -fexceptions -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers -Wno-register
SHLIB_LINK   = -lcurl -lssl -lcrypto -lstdc++

# pg_regress: a throwaway instance whose config preloads the library.
REGRESS      = setup signatures events privileges sync ratelimit
# REGRESS_OUT: where results and the temp instance go (test/run.sh points it outside the tree).
REGRESS_OUT ?= .
REGRESS_OPTS = --temp-instance=$(REGRESS_OUT)/tmp_check --outputdir=$(REGRESS_OUT) \
               --temp-config=test/regress.conf --load-extension=clerk_sync

EXTRA_CLEAN  = tmp_check results regression.diffs regression.out

# No LLVM bitcode: PGXS would compile the C++ sources again with clang's defaults.
override with_llvm = no

PG_CONFIG   ?= pg_config
PGXS        := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS compiles .cpp with CXXFLAGS inherited from the server's C flags; drop the C-only ones.
override CXXFLAGS := $(filter-out -Wmissing-prototypes -Wdeclaration-after-statement -Wimplicit-fallthrough=3,$(CXXFLAGS))

$(OBJS): $(wildcard src/*.hpp)
