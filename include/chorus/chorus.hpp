// The one include a recipe needs.
#pragma once

#include <chorus/channel.hpp>
#include <chorus/config.hpp>
#include <chorus/context.hpp>
#include <chorus/errors.hpp>
#include <chorus/gather.hpp>
#include <chorus/metrics.hpp>
#include <chorus/recipe_main.hpp>
#include <chorus/task.hpp>
