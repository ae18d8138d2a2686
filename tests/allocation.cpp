// publish allocates nothing in steady state. This file replaces the global allocation
// functions (every form) with counting versions; they count only on a thread that has opened
// a measuring window, so Catch2 and other threads do not disturb the count. Under ASan or
// TSan, whose runtimes define the allocation functions themselves (Clang links them
// statically, so a replacement would be a duplicate definition), the count comes from the
// sanitizer's malloc hook instead, which sees every operator new as well. Other test files
// count through tidings_test::allocation_window (test_support.hpp), defined on top of this.

#include <tidings/tidings.hpp>

#include <catch2/catch.hpp>

#include "test_support.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>
#include <thread>
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

namespace {

using tidings_test::allocation_window;

thread_local bool counting = false;
thread_local std::int64_t allocations = 0;

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
    return std::malloc(size != 0 ? size : 1);
}

void* allocate_aligned(std::size_t size, std::align_val_t alignment) noexcept {
    if (counting) ++allocations;
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
