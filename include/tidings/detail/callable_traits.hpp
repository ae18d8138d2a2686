#pragma once
/// @file detail/callable_traits.hpp
/// @brief Deduces the event type a callable handles, from its single parameter.

#include <type_traits>

namespace tidings::detail {

/// Marks "could not deduce"; subscribe turns it into a readable static_assert.
struct undeducible_event {};

template <class Signature>
struct parameter_of {
    using type = undeducible_event;
};

template <class R, class A>
struct parameter_of<R(A)> {
    using type = std::remove_cvref_t<A>;
};

template <class R, class A>
struct parameter_of<R(A) noexcept> {
    using type = std::remove_cvref_t<A>;
};

template <class Member>
struct member_parameter {
    using type = undeducible_event;
    using object = void;
};

// One specialization per qualifier combination a handler member function may carry.
#define TIDINGS_DETAIL_MEMBER_PARAMETER(QUALIFIERS)   \
    template <class R, class C, class A>              \
    struct member_parameter<R (C::*)(A) QUALIFIERS> { \
        using type = std::remove_cvref_t<A>;          \
        using object = C;                             \
    };
TIDINGS_DETAIL_MEMBER_PARAMETER()
TIDINGS_DETAIL_MEMBER_PARAMETER(const)
TIDINGS_DETAIL_MEMBER_PARAMETER(noexcept)
TIDINGS_DETAIL_MEMBER_PARAMETER(const noexcept)
TIDINGS_DETAIL_MEMBER_PARAMETER(&)
TIDINGS_DETAIL_MEMBER_PARAMETER(const&)
TIDINGS_DETAIL_MEMBER_PARAMETER(&noexcept)
TIDINGS_DETAIL_MEMBER_PARAMETER(const& noexcept)
#undef TIDINGS_DETAIL_MEMBER_PARAMETER

template <class F, class = void>
struct callable_parameter {
    using type = undeducible_event;  // generic lambda, overloaded functor, or not callable
};

template <class F>
struct callable_parameter<F, std::void_t<decltype(&F::operator())>> {
    using type = typename member_parameter<decltype(&F::operator())>::type;
};

template <class F>
requires std::is_function_v<std::remove_pointer_t<F>>
struct callable_parameter<F, void> {
    using type = typename parameter_of<std::remove_cv_t<std::remove_pointer_t<F>>>::type;
};

/// @brief The event type `F` handles: the decayed type of its single parameter, or
/// undeducible_event for a generic lambda, an overloaded functor, or anything else.
template <class F>
using event_of_callable = typename callable_parameter<std::remove_cvref_t<F>>::type;

/// @brief The event type a member function pointer handles.
template <class M>
using event_of_member = typename member_parameter<std::remove_cvref_t<M>>::type;

}  // namespace tidings::detail
