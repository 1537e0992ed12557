#!/usr/bin/env python3
"""Builds the training and evaluation files of megaqa's shipped SQuAD model.

Training file (in this order, because `megaqa train --holdout-articles 2` holds out
the file's last two articles to choose the null threshold on):
  1. SQuAD v1.1 train articles (all of them, or a seeded sample of about
     --train-questions questions' worth of whole articles),
  2. six articles of the CS224N dev half (real SQuAD 2.0 unanswerable questions),
  3. two more dev-half articles: the held-out threshold set.
Evaluation file: the other eight dev-half articles (Normans and
Computational_complexity_theory among them). Nothing of these is trained on or tuned on.

Standard library only; the output is the same for the same inputs and flags.
"""
import argparse
import json
import os
import random

# Dev-half articles by position in dev-v2.0-cs224n-half.json.
DEV_TRAIN = [3, 5, 7, 9, 11, 13]      # Steam_engine, European_Union_law, Harvard_University,
                                      # Immune_system, Islamism, Warsaw
DEV_THRESHOLD = [14, 15]              # French_and_Indian_War, Force
DEV_EVAL = [0, 1, 2, 4, 6, 8, 10, 12]  # Normans, Computational_complexity_theory, Huguenot,
                                      # 1973_oil_crisis, Packet_switching, Yuan_dynasty,
                                      # Scottish_Parliament, Imperialism


def questions(article):
    return sum(len(p["qas"]) for p in article["paragraphs"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", default=os.path.join(os.path.dirname(__file__), "..", "..", "shared"))
    ap.add_argument("--out", required=True, help="directory for train.json and eval.json")
    ap.add_argument("--train-questions", type=int, default=0,
                    help="about this many SQuAD v1.1 questions (whole articles, seeded sample); 0 = all")
    ap.add_argument("--skip-questions", type=int, default=0,
                    help="leave out the sample's first articles worth about this many questions "
                         "(what an earlier stage trained on), then take --train-questions more")
    ap.add_argument("--seed", type=int, default=42)
    a = ap.parse_args()

    squad = os.path.join(a.shared, "data", "squad")
    with open(os.path.join(squad, "train-v1.1.json"), encoding="utf-8") as f:
        train = json.load(f)["data"]
    with open(os.path.join(squad, "dev-v2.0-cs224n-half.json"), encoding="utf-8") as f:
        dev = json.load(f)["data"]
    assert len(dev) == 16 and dev[0]["title"] == "Normans", "unexpected dev-v2.0-cs224n-half.json"

    if a.train_questions > 0:
        order = list(range(len(train)))
        random.Random(a.seed).shuffle(order)
        # The same seeded order with a prefix skipped. The skip counts the earlier stages'
        # nominal question budgets, so a stage may start with the earlier stage's last
        # article (3 of the 442 are read twice over the five CPU stages).
        skipped = 0
        while order and skipped < a.skip_questions:
            skipped += questions(train[order.pop(0)])
        picked, n = [], 0
        for i in order:
            if n >= a.train_questions:
                break
            picked.append(i)
            n += questions(train[i])
        train = [train[i] for i in sorted(picked)]

    os.makedirs(a.out, exist_ok=True)
    mix = train + [dev[i] for i in DEV_TRAIN + DEV_THRESHOLD]
    ev = [dev[i] for i in DEV_EVAL]
    for name, data in (("train.json", mix), ("eval.json", ev)):
        tmp = os.path.join(a.out, name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"version": "megaqa-mix", "data": data}, f, ensure_ascii=False)
        os.replace(tmp, os.path.join(a.out, name))
    print(json.dumps({
        "train_articles": len(mix), "train_questions": sum(map(questions, mix)),
        "squad_v1_questions": sum(map(questions, train)),
        "threshold_articles": [dev[i]["title"] for i in DEV_THRESHOLD],
        "eval_articles": [dev[i]["title"] for i in DEV_EVAL],
        "eval_questions": sum(map(questions, ev)),
    }))


if __name__ == "__main__":
    main()
