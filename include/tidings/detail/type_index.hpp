#pragma once
/// @file detail/type_index.hpp
/// @brief The identity of an event type (or a command key) that every module of a process
/// agrees on: the compiler's name for the type, its 64-bit hash, its size and alignment, and
/// two addresses that tell apart types the name does not (no RTTI). A bus's channel table
/// (detail/bus_core.hpp) is keyed by it.
///
/// Why not a counter per type: an inline variable is one object per *module* when a shared
/// library is built with -fvisibility=hidden (the norm for plugins, and how Windows DLLs
/// behave), so a per-type number assigned on first use means different types in different
/// modules. Names are what every module agrees on.
///
/// - `type_anchor<T>` is one byte per type and module: its address identifies `T` within a
///   module (or, for a type with internal linkage, within a translation unit). Lookups compare
///   it first, so the usual lookup costs one pointer comparison.
/// - `module_anchor` is one byte per module: two different anchors from one module are two
///   different types, even when the compiler gives them one name (clang names a local class
///   without its function).
/// - A name that marks a type no other module can name (an anonymous namespace, an unnamed
///   class, a lambda, a class local to a function under g++ and MSVC) is never shared across
///   anchors: such a type has one channel per module, or per translation unit.
///
/// Thread safety: everything here is a constant or a constant address; safe anywhere.

#include <tidings/detail/type_name.hpp>
#include <tidings/fwd.hpp>

#include <bit>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string_view>

namespace tidings {

/// @brief Thrown by a lookup (publish, subscribe, handle, send, publisher, subscriber_count)
/// whose type has the name of a type the bus already knows from another module, but another
/// size or alignment (two definitions of one name, an ODR violation across shared libraries),
/// or when the bus cannot tell which of two same-named types another module means. The message
/// names both types. Nothing is delivered to the other type.
class type_mismatch : public std::logic_error {
public:
    using std::logic_error::logic_error;
};

namespace detail {

/// Distinguishes a command's channel from an event channel of the same type (command.hpp).
template <class Command>
struct command_key {};

/// The type whose layout a key's channel carries: the event itself, or a command_key's
/// command.
template <class Key>
struct key_payload {
    using type = Key;
};
template <class Command>
struct key_payload<command_key<Command>> {
    using type = Command;
};

/// FNV-1a over the name, then a 64-bit finalizer (MurmurHash3's fmix64) so that the low bits,
/// which index the table, depend on every byte.
[[nodiscard]] constexpr std::uint64_t hash_type_name(std::string_view name) noexcept {
    std::uint64_t hash = 0xcbf29ce484222325ULL;
    for (const char c : name) {
        hash ^= static_cast<unsigned char>(c);
        hash *= 0x100000001b3ULL;
    }
    hash ^= hash >> 33;
    hash *= 0xff51afd7ed558ccdULL;
    hash ^= hash >> 33;
    hash *= 0xc4ceb9fe1a85ec53ULL;
    hash ^= hash >> 33;
    return hash;
}

/// True when the compiler's name for a type marks it as one that code in another module
/// cannot name: an anonymous namespace, an unnamed class or enum, a closure type, or a class
/// local to a function (g++ writes "f()::local", MSVC "`f'::local"; clang writes only "local",
/// see the Known limits in docs/architecture.md). Such a name never joins another module's
/// channel.
[[nodiscard]] constexpr bool module_local_name(std::string_view name) noexcept {
    constexpr std::string_view markers[] = {
        "{anonymous}",            // g++: anonymous namespace
        "(anonymous",             // clang: "(anonymous namespace)", "(anonymous struct at"
        "`anonymous namespace'",  // MSVC
        "<unnamed",               // g++: "<unnamed struct>"; MSVC: "<unnamed-type-x>"
        "(unnamed",               // clang: "(unnamed struct at f.cpp:3:1)"
        "<lambda",                // g++: "<lambda(int)>"; MSVC: "<lambda_1>"
        "(lambda at",             // clang
        ")::",                    // g++: a function's scope, "main()::local"
        "`",                      // MSVC: a function's scope, "`void __cdecl f(void)'::"
    };
    for (const std::string_view marker : markers) {
        if (name.find(marker) != std::string_view::npos) return true;
    }
    return false;
}

/// One byte per module: its address identifies the module that made a lookup.
inline constinit unsigned char module_anchor = 0;

/// One byte per type and module (per translation unit for a type with internal linkage): its
/// address identifies `Key` within its module. Not const, so that no linker may merge two of
/// them.
template <class Key>
inline constinit unsigned char type_anchor = 0;

/// Size and alignment in one word: size << 8 | log2(alignment) (alignments are powers of 2).
template <class T>
inline constexpr std::uint64_t layout_of = (std::uint64_t{sizeof(T)} << 8) |
                                           static_cast<std::uint64_t>(std::countr_zero(alignof(T)));

/// What a lookup of `Key` presents to a channel table. The name is a string_view into this
/// module's copy of the compiler's signature text.
struct type_identity {
    std::uint64_t hash;
    std::uint64_t layout;
    std::string_view name;
    const void* anchor;
    const void* module;
    bool shareable;
};

template <class Key>
inline constexpr std::string_view key_name = type_name<Key>;

template <class Key>
inline constexpr std::uint64_t key_hash = hash_type_name(key_name<Key>);

template <class Key>
inline constexpr std::uint64_t key_layout = layout_of<typename key_payload<Key>::type>;

template <class Key>
inline constexpr bool key_shareable = !module_local_name(key_name<Key>);

/// @brief The identity of `Key` as this module sees it.
/// Thread safety: safe from any thread (it reads only constants).
template <class Key>
[[nodiscard]] inline type_identity identity_of() noexcept {
    return {key_hash<Key>,     key_layout<Key>, key_name<Key>,
            &type_anchor<Key>, &module_anchor,  key_shareable<Key>};
}

}  // namespace detail
}  // namespace tidings
