// The one include a recipe needs.
#pragma once

#include <chorus/advantages.hpp>
#include <chorus/channel.hpp>
#include <chorus/checkpoint.hpp>
#include <chorus/config.hpp>
#include <chorus/config_codec.hpp>
#include <chorus/context.hpp>
#include <chorus/dataset.hpp>
#include <chorus/deadline.hpp>
#include <chorus/dpo.hpp>
#include <chorus/environment.hpp>
#include <chorus/errors.hpp>
#include <chorus/gather.hpp>
#include <chorus/generation.hpp>
#include <chorus/grader.hpp>
#include <chorus/grpo.hpp>
#include <chorus/gspo.hpp>
#include <chorus/metrics.hpp>
#include <chorus/model.hpp>
#include <chorus/ppo.hpp>
#include <chorus/recipe_main.hpp>
#include <chorus/reward_modelling.hpp>
#include <chorus/schedule.hpp>
#include <chorus/sft.hpp>
#include <chorus/task.hpp>
#include <chorus/training.hpp>
