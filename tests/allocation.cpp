// publish allocates nothing in steady state. This file replaces the global allocation
// functions (every form) with counting versions; they count only on a thread that has opened
// a measuring window, so Catch2 and other threads do not disturb the count. Under ASan or
// TSan, whose runtimes define the allocation functions themselves (Clang links them
// statically, so a replacement would be a duplicate definition), the count comes from the
// sanitizer's malloc hook instead, which sees every operator new as well. Other test files
// count through tidings_test::allocation_window (test_support.hpp), defined on top of this.
//
// The same replaced functions make an allocation fail on request (tidings_test::
// allocation_failure, for tests/allocation_failure.cpp and tests/throwing_events.cpp): a
// thread-local countdown, armed by the thread itself, throws std::bad_alloc at its Nth
// operator new (a nothrow form returns null). A malloc hook cannot do that (it is told of an
// allocation, it cannot refuse it), so under GCC's sanitizers this file still replaces the
// eight operator new forms, but only to check the countdown: each forwards to the sanitizer's
// own operator new, found with dlsym(RTLD_NEXT) (GCC links the sanitizer runtimes dynamically,
// so the executable's definitions take precedence), and operator delete is not replaced at
// all. The sanitizer thus keeps checking every allocation (new/delete mismatches), and
// LeakSanitizer sees what a failure leaked. Clang links its sanitizer runtimes statically: a
// replaced operator new there either does not link (TSan) or hides the runtime's, which
// RTLD_NEXT cannot reach (ASan, whose operator delete then reports a mismatch). So under
// Clang's sanitizers tidings_test::can_fail_allocations is false and the failure sweeps are
// skipped; CI runs the sanitizers with GCC.

#include <tidings/tidings.hpp>

#include <catch2/catch.hpp>

#include "test_support.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <new>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#if TIDINGS_TEST_ASAN || TIDINGS_TEST_TSAN
#define TIDINGS_TEST_MALLOC_HOOK 1
// From <sanitizer/allocator_interface.h>, which GCC does not install; both runtimes have it.
extern "C" int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void*,
                                                                             std::size_t),
                                                         void (*free_hook)(const volatile void*));
#else
#define TIDINGS_TEST_MALLOC_HOOK 0
#endif

// Under GCC's sanitizers, operator new forwards to the next definition (see the top of the
// file).
#if TIDINGS_TEST_MALLOC_HOOK && !defined(__clang__)
#define TIDINGS_TEST_FORWARDED_NEW 1
#include <dlfcn.h>
#else
#define TIDINGS_TEST_FORWARDED_NEW 0
#endif

namespace {

using tidings_test::allocation_failure;
using tidings_test::allocation_window;

thread_local bool counting = false;
thread_local std::int64_t allocations = 0;

// The allocation failure: the countdown of this thread's allocations until the one that fails
// (0: none armed), and whether it failed since it was armed.
thread_local std::int64_t failure_countdown = 0;
thread_local bool failure_happened = false;

/// True for the one allocation that must fail.
[[maybe_unused]] bool fail_this_allocation() noexcept {
    if (failure_countdown == 0 || --failure_countdown != 0) return false;
    failure_happened = true;
    return true;
}

#if TIDINGS_TEST_FORWARDED_NEW
static_assert(std::is_same_v<std::size_t, unsigned long>,
              "the mangled names below assume std::size_t is unsigned long");

/// The operator new that this file's replacement hides (the sanitizer's), by mangled name.
void* next_definition(const char* mangled) noexcept {
    void* found = ::dlsym(RTLD_NEXT, mangled);
    if (found == nullptr) {
        std::fputs("tests/allocation.cpp: no operator new to forward to\n", stderr);
        std::abort();
    }
    return found;
}

// One per form, looked up on first use (dlsym allocates with malloc, not operator new).
template <class Function>
Function* forward_to(const char* mangled) noexcept {
    return reinterpret_cast<Function*>(next_definition(mangled));
}
#endif

#if TIDINGS_TEST_MALLOC_HOOK
void count_malloc(const volatile void* /*pointer*/, std::size_t /*size*/) {
    if (counting) ++allocations;
}
void count_free(const volatile void* /*pointer*/) {}
[[maybe_unused]] const int hooks_installed =
    __sanitizer_install_malloc_and_free_hooks(&count_malloc, &count_free);
#else
void* allocate(std::size_t size) noexcept {
    if (counting) ++allocations;
    if (fail_this_allocation()) return nullptr;
    return std::malloc(size != 0 ? size : 1);
}

void* allocate_aligned(std::size_t size, std::align_val_t alignment) noexcept {
    if (counting) ++allocations;
    if (fail_this_allocation()) return nullptr;
    const auto align = static_cast<std::size_t>(alignment);
    const std::size_t rounded = (size + align - 1) / align * align;
    return std::aligned_alloc(align, rounded != 0 ? rounded : align);
}

// Out of line, so that GCC does not pair the malloc in one replaced function with the free in
// another and warn (-Wmismatched-new-delete).
[[gnu::noinline]] void deallocate(void* p) noexcept { std::free(p); }

void* allocate_or_throw(std::size_t size) {
    if (void* p = allocate(size)) return p;
    throw std::bad_alloc();
}

void* allocate_aligned_or_throw(std::size_t size, std::align_val_t alignment) {
    if (void* p = allocate_aligned(size, alignment)) return p;
    throw std::bad_alloc();
}
#endif

struct tick {
    int value = 0;
};
struct tock {
    int value = 0;
};

constexpr int publishes = 1000;

void* volatile escape = nullptr;

}  // namespace

void tidings_test::start_counting_allocations() noexcept {
    allocations = 0;
    counting = true;
}

std::int64_t tidings_test::stop_counting_allocations() noexcept {
    counting = false;
    return allocations;
}

void tidings_test::fail_nth_allocation(std::int64_t n) noexcept {
    failure_countdown = can_fail_allocations && n > 0 ? n : 0;
    failure_happened = false;
}

bool tidings_test::stop_failing_allocations() noexcept {
    failure_countdown = 0;
    return std::exchange(failure_happened, false);
}

#if TIDINGS_TEST_FORWARDED_NEW
// --- operator new, forwarded to the sanitizer's (delete is not replaced) ----------------------
// Each form names its own mangled name; the pointer is resolved once, on first use.
#define TIDINGS_TEST_FORWARD(mangled, ...) \
    static auto* const next = forward_to<void*(__VA_ARGS__)>(mangled)
void* operator new(std::size_t size) {
    TIDINGS_TEST_FORWARD("_Znwm", std::size_t);
    if (fail_this_allocation()) throw std::bad_alloc();
    return next(size);
}
void* operator new[](std::size_t size) {
    TIDINGS_TEST_FORWARD("_Znam", std::size_t);
    if (fail_this_allocation()) throw std::bad_alloc();
    return next(size);
}
void* operator new(std::size_t size, std::align_val_t a) {
    TIDINGS_TEST_FORWARD("_ZnwmSt11align_val_t", std::size_t, std::align_val_t);
    if (fail_this_allocation()) throw std::bad_alloc();
    return next(size, a);
}
void* operator new[](std::size_t size, std::align_val_t a) {
    TIDINGS_TEST_FORWARD("_ZnamSt11align_val_t", std::size_t, std::align_val_t);
    if (fail_this_allocation()) throw std::bad_alloc();
    return next(size, a);
}
void* operator new(std::size_t size, const std::nothrow_t& tag) noexcept {
    TIDINGS_TEST_FORWARD("_ZnwmRKSt9nothrow_t", std::size_t, const std::nothrow_t&);
    if (fail_this_allocation()) return nullptr;
    return next(size, tag);
}
void* operator new[](std::size_t size, const std::nothrow_t& tag) noexcept {
    TIDINGS_TEST_FORWARD("_ZnamRKSt9nothrow_t", std::size_t, const std::nothrow_t&);
    if (fail_this_allocation()) return nullptr;
    return next(size, tag);
}
void* operator new(std::size_t size, std::align_val_t a, const std::nothrow_t& tag) noexcept {
    TIDINGS_TEST_FORWARD("_ZnwmSt11align_val_tRKSt9nothrow_t", std::size_t, std::align_val_t,
                         const std::nothrow_t&);
    if (fail_this_allocation()) return nullptr;
    return next(size, a, tag);
}
void* operator new[](std::size_t size, std::align_val_t a, const std::nothrow_t& tag) noexcept {
    TIDINGS_TEST_FORWARD("_ZnamSt11align_val_tRKSt9nothrow_t", std::size_t, std::align_val_t,
                         const std::nothrow_t&);
    if (fail_this_allocation()) return nullptr;
    return next(size, a, tag);
}
#undef TIDINGS_TEST_FORWARD
#endif

#if !TIDINGS_TEST_MALLOC_HOOK
// --- the replaced allocation functions ------------------------------------------------------
void* operator new(std::size_t size) { return allocate_or_throw(size); }
void* operator new[](std::size_t size) { return allocate_or_throw(size); }
void* operator new(std::size_t size, std::align_val_t a) {
    return allocate_aligned_or_throw(size, a);
}
void* operator new[](std::size_t size, std::align_val_t a) {
    return allocate_aligned_or_throw(size, a);
}
void* operator new(std::size_t size, const std::nothrow_t&) noexcept { return allocate(size); }
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept { return allocate(size); }
void* operator new(std::size_t size, std::align_val_t a, const std::nothrow_t&) noexcept {
    return allocate_aligned(size, a);
}
void* operator new[](std::size_t size, std::align_val_t a, const std::nothrow_t&) noexcept {
    return allocate_aligned(size, a);
}
void operator delete(void* p) noexcept { deallocate(p); }
void operator delete[](void* p) noexcept { deallocate(p); }
void operator delete(void* p, std::size_t) noexcept { deallocate(p); }
void operator delete[](void* p, std::size_t) noexcept { deallocate(p); }
void operator delete(void* p, std::align_val_t) noexcept { deallocate(p); }
void operator delete[](void* p, std::align_val_t) noexcept { deallocate(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { deallocate(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { deallocate(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { deallocate(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { deallocate(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { deallocate(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { deallocate(p); }
#endif

// --- tests ----------------------------------------------------------------------------------

TEST_CASE("the allocation counter sees allocations made inside its window", "[allocation]") {
    allocation_window window;
    auto plain = std::make_unique<int>(1);
    escape = plain.get();
    auto* aligned = new (std::align_val_t{64}) int(2);
    escape = aligned;
    ::operator delete (aligned, std::align_val_t{64});
    std::vector<int> many(10);
    escape = many.data();
    CHECK(window.stop() == 3);
}

TEMPLATE_TEST_CASE("publish allocates nothing in steady state", "[allocation]", tidings::bus,
                   tidings::single_threaded_bus) {
    TestType bus;
    int calls = 0;
    auto s = bus.template subscribe<tick>([&](const tick& t) { calls += t.value; });
    bus.publish(tick{1});  // warm-up: the first publish of a thread may register it

    allocation_window window;
    for (int i = 0; i < publishes; ++i) bus.publish(tick{1});
    bus.publish(tock{});  // a type without a channel
    const std::int64_t counted = window.stop();
    CHECK(counted == 0);
    CHECK(calls == publishes + 1);
}

TEMPLATE_TEST_CASE("publish to 10 subscribers with filters and priorities allocates nothing",
                   "[allocation]", tidings::bus, tidings::single_threaded_bus) {
    TestType bus;
    std::int64_t calls = 0;
    std::vector<tidings::subscription> subs;
    for (int i = 0; i < 10; ++i) {
        switch (i % 3) {
            case 0:
                subs.push_back(bus.template subscribe<tick>([&](const tick&) { ++calls; }));
                break;
            case 1:
                subs.push_back(bus.template subscribe<tick>([&](const tick&) { ++calls; },
                                                            tidings::priority{i}));
                break;
            default:
                subs.push_back(bus.template subscribe<tick>(
                    [&](const tick&) { ++calls; }, tidings::priority{-i},
                    tidings::filter([](const tick& t) { return t.value % 2 == 0; })));
                break;
        }
    }
    // A subscription that left, so the snapshot has been replaced at least once.
    subs[4].unsubscribe();
    bus.publish(tick{0});
    calls = 0;

    allocation_window window;
    for (int i = 0; i < publishes; ++i) bus.publish(tick{i});
    const std::int64_t counted = window.stop();
    CHECK(counted == 0);
    // 6 unfiltered handlers always run; 3 filtered ones run for even values.
    CHECK(calls == publishes * 6 + publishes / 2 * 3);
}

TEMPLATE_TEST_CASE("publishing through a publisher allocates nothing", "[allocation]", tidings::bus,
                   tidings::single_threaded_bus) {
    using threading = typename TestType::threading;
    TestType bus;
    int calls = 0;
    auto s = bus.template subscribe<tick>([&](const tick&) { ++calls; });
    auto t = bus.template subscribe<tick>([&](const tick&) { ++calls; }, tidings::priority{1});
    const tidings::publisher<tick, threading> pub{bus};
    const tidings::publisher<tock, threading> nobody{bus};
    pub.publish(tick{});

    allocation_window window;
    for (int i = 0; i < publishes; ++i) {
        pub.publish(tick{i});
        nobody.publish(tock{});
    }
    const std::int64_t counted = window.stop();
    CHECK(counted == 0);
    CHECK(calls == 2 * (publishes + 1));
}

TEMPLATE_TEST_CASE("a publish nested in a handler allocates nothing", "[allocation]", tidings::bus,
                   tidings::single_threaded_bus) {
    TestType bus;
    int tocks = 0;
    auto outer = bus.template subscribe<tick>([&](const tick& t) { bus.publish(tock{t.value}); });
    auto inner = bus.template subscribe<tock>([&](const tock&) { ++tocks; });
    bus.publish(tick{});

    allocation_window window;
    for (int i = 0; i < publishes; ++i) bus.publish(tick{i});
    const std::int64_t counted = window.stop();
    CHECK(counted == 0);
    CHECK(tocks == publishes + 1);
}

TEST_CASE("publish on another thread allocates nothing after that thread's first publish",
          "[allocation]") {
    tidings::bus bus;
    std::atomic<int> calls{0};
    auto s =
        bus.subscribe<tick>([&](const tick&) { calls.fetch_add(1, std::memory_order_relaxed); });
    bus.publish(tick{});
    std::int64_t counted = -1;
    std::thread([&] {
        bus.publish(tick{});  // this thread's warm-up
        allocation_window window;
        for (int i = 0; i < publishes; ++i) bus.publish(tick{i});
        counted = window.stop();
    }).join();
    CHECK(counted == 0);
    CHECK(calls.load() == publishes + 2);
}

TEST_CASE("the allocation failure fails exactly the nth allocation of its thread",
          "[allocation][allocation-failure]") {
    if (!tidings_test::can_fail_allocations) {
        SUCCEED("this build cannot make an allocation fail (a Clang sanitizer)");
        return;
    }
    std::vector<std::unique_ptr<int>> made;
    made.reserve(8);
    // Another thread's allocations neither fail nor count: it allocates while the failure is
    // armed, between this thread's first and second allocation.
    std::atomic<bool> go{false};
    std::atomic<bool> other_done{false};
    bool other_thread_failed = true;
    std::unique_ptr<int> other_made;
    std::thread other([&] {
        tidings_test::spin_until([&] { return go.load(std::memory_order_acquire); });
        try {
            other_made = std::make_unique<int>(0);
            other_thread_failed = false;
        } catch (const std::bad_alloc&) {
        }
        other_done.store(true, std::memory_order_release);
    });
    int thrown_at = 0;
    bool failed = false;
    {
        allocation_failure failure{3};
        for (int i = 1; i <= 5; ++i) {
            try {
                made.push_back(std::make_unique<int>(i));
            } catch (const std::bad_alloc&) {
                thrown_at = i;
            }
            if (i == 1) {
                go.store(true, std::memory_order_release);  // pairs with the acquire above
                tidings_test::spin_until(
                    [&] { return other_done.load(std::memory_order_acquire); });
            }
        }
        failed = failure.failed();
    }
    other.join();
    CHECK(thrown_at == 3);
    CHECK_FALSE(other_thread_failed);
    CHECK(failed);
    CHECK(made.size() == 4);

    // The nothrow forms return null instead, aligned or not.
    allocation_failure nothrow_failure{2};
    int* first = new (std::nothrow) int(1);
    auto* second = new (std::align_val_t{64}, std::nothrow) int(2);
    escape = second;
    const bool nothrow_failed = nothrow_failure.failed();
    CHECK(first != nullptr);
    CHECK(second == nullptr);
    CHECK(nothrow_failed);
    delete first;

    // Disarmed: nothing fails, and failed() says so.
    allocation_failure unused{100};
    made.push_back(std::make_unique<int>(7));
    CHECK_FALSE(unused.failed());
}
