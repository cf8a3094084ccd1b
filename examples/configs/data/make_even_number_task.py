#!/usr/bin/env python3
"""Writes the even-number task for sft_to_gspo (examples/configs/sft_to_gspo.json), the main
example's task ("Is 347 even? JSON please." answered {"answer":"yes"} or {"answer":"no"}):

- even_number_prompts.jsonl: prompts for GSPO, with the answer and the number (what a programmatic
  grader or the `evaluate` recipe reads);
- even_number_sft.jsonl: the first 500 of those prompts answered right, for the SFT warm-up (as the
  main example's demonstrations are);
- even_number_eval.jsonl: 200 numbers no training file asks about, with their answers, for
  measuring the trained model (`evaluate`);
- even_number_verdicts.jsonl: responses to the task's prompts (right, wrong or malformed) with the
  verdict the task's rule gives and the rule's reasoning, for the judge stage that trains the built-in
  model into the task's judge. The reasoning is the one the main example trains its judge on
  (examples/sft_then_gspo/even_number_task.cpp): it writes the last digit down first.

    python3 examples/configs/data/make_even_number_task.py examples/configs/data
"""
import json
import random
import sys

MALFORMED = ["yes", "no", '{"answer": "maybe"}', '{"answer": "yes"', '{"result": "no"}', '"no"', "{}"]


def compact(value):
    """JSON as the model's answers are spelt: nlohmann's dump(), no spaces."""
    return json.dumps(value, separators=(",", ":"))


def prompt(number):
    return f"Is {number} even? JSON please."


def answer(number):
    return "yes" if number % 2 == 0 else "no"


def said(response):
    """The answer a response gives by the task's rule (a JSON object whose "answer" is "yes" or
    "no"), else None: what both the label and the reasoning read."""
    try:
        value = json.loads(response)
    except json.JSONDecodeError:
        return None
    given = value.get("answer") if isinstance(value, dict) else None
    return given if given in ("yes", "no") else None


def reasoning(number, response):
    expected = answer(number)
    rule = f"Ends in {number % 10}: {'even' if number % 2 == 0 else 'odd'}, so \"{expected}\". "
    given = said(response)
    if given is None:
        return rule + "The response is not the JSON object asked for."
    return rule + f"The response says \"{given}\"."


def verdict_line(number, rng):
    draw = rng.random()
    if draw < 0.4:
        response = compact({"answer": answer(number)})
    elif draw < 0.8:
        response = compact({"answer": "no" if answer(number) == "yes" else "yes"})
    else:
        response = rng.choice(MALFORMED)
    return {"prompt": prompt(number), "completion": response, "label": int(said(response) == answer(number)),
            "reasoning": reasoning(number, response)}


def write(path, lines):
    with open(path, "w") as out:
        for line in lines:
            out.write(json.dumps(line) + "\n")


def question(number):
    return {"prompt": prompt(number), "answer": answer(number), "number": number}


def main(folder):
    held_out = set(random.Random(22).sample(range(10, 1000), 200))
    rng = random.Random(21)
    numbers = lambda count: [rng.randint(10, 999) for _ in range(count)]
    # The SFT demonstrations come from the GSPO prompts: with a separate set of numbers the warm-up
    # left GSPO a policy that did not read the number at all, and GSPO then settled on "no" for every
    # number, graded by the judge or by the rule alike (docs/writing-recipes.md).
    train = [n for n in numbers(2500) if n not in held_out]
    write(f"{folder}/even_number_prompts.jsonl", [question(n) for n in train])
    write(f"{folder}/even_number_sft.jsonl",
          [{"prompt": prompt(n), "completion": compact({"answer": answer(n)})} for n in train[:500]])
    write(f"{folder}/even_number_eval.jsonl", [question(n) for n in sorted(held_out)])
    write(f"{folder}/even_number_verdicts.jsonl", [verdict_line(n, rng) for n in numbers(6000)])


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "examples/configs/data")
