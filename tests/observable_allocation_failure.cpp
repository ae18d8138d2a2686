// tidings::observable<std::string> with the Nth allocation failing, swept over N, for set,
// update, observe (inline and queued) and map: after each failure the observable still works.
// Allocation failure comes from tests/allocation.cpp (tidings_test::allocation_failure); its
// other observable cases are in tests/allocation_failure.cpp.

#include <tidings/tidings.hpp>

#include <catch2/catch.hpp>

#include "test_support.hpp"

#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

// Long enough that every copy allocates (no small-string buffer).
std::string text(int n) {
    return "a value long enough to be on the heap, number " + std::to_string(n);
}

struct alloc_rig {
    tidings::manual_executor screen;
    tidings::observable<std::string> value{text(0)};
    std::vector<std::string> inline_seen;
    std::vector<std::string> queued_seen;
    tidings::observer a;
    tidings::observer q;
    alloc_rig() {
        value.set_error_handler([](const tidings::handler_error&) {});
        a = value.observe([this](const std::string& s) { inline_seen.push_back(s); });
        q = value.observe([this](const std::string& s) { queued_seen.push_back(s); },
                          tidings::deliver_on(screen));
        screen.run_pending();
    }
    void check_still_works(int fresh) {
        INFO("fresh " << fresh);
        REQUIRE(value.set(text(fresh)));
        screen.run_pending();
        REQUIRE_FALSE(inline_seen.empty());
        CHECK(inline_seen.back() == text(fresh));
        REQUIRE_FALSE(queued_seen.empty());
        CHECK(queued_seen.back() == text(fresh));
        std::vector<std::string> late;
        auto h = value.observe([&](const std::string& s) { late.push_back(s); });
        CHECK(late == std::vector<std::string>{text(fresh)});
    }
};

template <class Operation>
void sweep(Operation operation) {
    if (!tidings_test::can_fail_allocations) return;
    alloc_rig r;
    int next = 10;
    for (int n = 1; n < 200; ++n) {
        INFO("allocation " << n << " fails");
        bool threw = false;
        bool failed = false;
        {
            tidings_test::allocation_failure failure{n};
            try {
                operation(r, next);
            } catch (const std::bad_alloc&) {
                threw = true;
            }
            failed = failure.failed();
        }
        CHECK(threw == failed);
        r.screen.run_pending();
        r.check_still_works(next + 1);
        next += 10;
        if (!failed) return;
    }
    FAIL("never completed");
}

}  // namespace

TEST_CASE("a set of a string whose Nth allocation fails leaves the observable working",
          "[observable][allocation-failure]") {
    sweep([](alloc_rig& r, int v) { r.value.set(text(v)); });
}

TEST_CASE("an update of a string whose Nth allocation fails leaves the observable working",
          "[observable][allocation-failure]") {
    sweep([](alloc_rig& r, int v) { r.value.update([v](std::string& s) { s = text(v); }); });
}

TEST_CASE("an observe whose Nth allocation fails attaches nothing or a working observer",
          "[observable][allocation-failure]") {
    std::vector<std::string> seen;
    std::vector<tidings::observer> kept;
    sweep([&](alloc_rig& r, int) {
        auto h = r.value.observe([&](const std::string& s) { seen.push_back(s); });
        kept.push_back(std::move(h));
    });
    sweep([&](alloc_rig& r, int) {
        auto h = r.value.observe([&](const std::string& s) { seen.push_back(s); },
                                 tidings::deliver_on(r.screen));
        kept.push_back(std::move(h));
    });
}

TEST_CASE("a map whose Nth allocation fails derives nothing or an observable kept in step",
          "[observable][allocation-failure]") {
    // The derived observables are destroyed outside the failure window: a destructor absorbs
    // allocation failures (unsubscribing falls back when it cannot rebuild a snapshot).
    std::vector<std::unique_ptr<tidings::observable<std::size_t>>> kept;
    kept.reserve(400);
    sweep([&](alloc_rig& r, int v) {
        kept.emplace_back(new tidings::observable<std::size_t>(
            r.value.map([](const std::string& s) { return s.size(); })));
        r.value.set(text(v));
        if (kept.back()->get() != text(v).size()) throw std::logic_error("derived out of date");
    });
}
