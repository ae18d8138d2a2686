#pragma once
/// @file tidings.hpp
/// @brief Includes every public header of tidings.

#include <tidings/bus.hpp>
#include <tidings/command.hpp>
#include <tidings/concepts.hpp>
#include <tidings/config.hpp>
#include <tidings/delivery.hpp>
#include <tidings/executor.hpp>
#include <tidings/fwd.hpp>
#include <tidings/observable.hpp>
#include <tidings/options.hpp>
#include <tidings/policy.hpp>
#include <tidings/publisher.hpp>
#include <tidings/subscriber.hpp>
#include <tidings/subscription.hpp>
