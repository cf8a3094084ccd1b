#!/usr/bin/env python3
"""Writes arithmetic_verdicts.jsonl: responses to every "What is a + b?" prompt of the arithmetic
task (a, b in 0..9), labelled 1 or 0 by the task's rule (the sum, as a number alone), each with
the rule's reasoning: judge verdicts for sft_to_gspo's judge stage (--set judge_dataset=...).

    python3 examples/configs/data/make_arithmetic_verdicts.py > examples/configs/data/arithmetic_verdicts.jsonl
"""
import json
import random

rng = random.Random(7)
for a in range(10):
    for b in range(10):
        prompt = f"What is {a} + {b}? Answer with the number only."
        total = a + b
        wrong_near = total + rng.choice([-2, -1, 1, 2])
        if wrong_near < 0:
            wrong_near = total + 1
        wrong_far = rng.choice([n for n in range(19) if abs(n - total) > 2])
        malformed = rng.choice([f"The answer is {total}.", f"{total} + 0", f"{a} + {b}", f"{total}{total}", "I do not know."])
        responses = [str(total), str(wrong_near), str(wrong_far), malformed]
        for response in responses:
            if response == str(total):
                reasoning = f"{a} + {b} = {total}. The response is {total}."
            elif response.isdigit():
                reasoning = f"{a} + {b} = {total}. The response is {response}."
            else:
                reasoning = f"{a} + {b} = {total}. The response is not the number alone."
            line = {"prompt": prompt, "completion": response, "label": int(response == str(total)),
                    "reasoning": reasoning}
            print(json.dumps(line))
