#pragma once
/// @file detail/type_name.hpp
/// @brief The name of a type, computed at compile time from the compiler's function signature
/// (no RTTI). Used in error reports and in the description of a bus.

#include <string_view>

namespace tidings::detail {

/// Returns `const char*`, not a std::string_view: gcc would describe that alias after `T`
/// ("[with T = name; std::string_view = ...]"), and a name may itself contain `;` or `]`
/// (`key<';'>`, `tagged<int[1], 2>`), so the name could not be cut at the first of them.
/// With no alias to describe, `T` is the last thing in the brackets on every compiler.
template <class T>
constexpr const char* raw_signature() noexcept {
#if defined(_MSC_VER) && !defined(__clang__)
    return __FUNCSIG__;
#else
    return __PRETTY_FUNCTION__;
#endif
}

/// Extracts `T` from the signature: gcc says "[with T = name]", clang says "[T = name]",
/// MSVC says "raw_signature<name>(void)". The name runs to the last `]` (or `>(void)`), never
/// to the first one, which may belong to the name.
template <class T>
constexpr std::string_view compute_type_name() noexcept {
    constexpr std::string_view sig{raw_signature<T>()};
#if defined(_MSC_VER) && !defined(__clang__)
    constexpr std::string_view open = "raw_signature<";
    constexpr auto first = sig.find(open) + open.size();
    constexpr auto last = sig.rfind(">(void)");
    std::string_view name = sig.substr(first, last - first);
    for (std::string_view prefix : {"struct ", "class ", "enum ", "union "}) {
        if (name.starts_with(prefix)) name.remove_prefix(prefix.size());
    }
    return name;
#else
    constexpr std::string_view open = "T = ";
    constexpr auto first = sig.find(open) + open.size();
    constexpr auto last = sig.rfind(']');
    return sig.substr(first, last - first);
#endif
}

/// @brief The readable name of `T`, e.g. "order_placed" or "shop::order_placed".
/// Thread safety: a constant; safe anywhere.
template <class T>
inline constexpr std::string_view type_name = compute_type_name<T>();

}  // namespace tidings::detail
