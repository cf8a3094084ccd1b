// The one include a recipe needs.
#pragma once

#include <chorus/channel.hpp>
#include <chorus/config.hpp>
#include <chorus/context.hpp>
#include <chorus/errors.hpp>
#include <chorus/gather.hpp>
#include <chorus/generation.hpp>
#include <chorus/metrics.hpp>
#include <chorus/model.hpp>
#include <chorus/recipe_main.hpp>
#include <chorus/task.hpp>
#include <chorus/training.hpp>
